//! The GS1 EPCIS 2.0 REST binding, member side (`tracechain epcis serve`, docs/EPCIS.md):
//! existing EPCIS software queries the consortium over HTTP as it would any EPCIS
//! repository. The gateway is a client of a node's gRPC API (`QueryEvents`); it holds the
//! member's key for capture, so every request must carry the gateway's bearer token.
//!
//! Served so far: `GET /events/{eventID}` (by Event Hash ID or a native event's
//! `urn:tracechain:tx:` id), `GET /events` and `GET /epcs/{epc}/events` with the query parameters
//! `QueryEvents` serves, `perPage` / `nextPageToken` paging with a `Link: <...>;
//! rel="next"` header; errors as RFC 7807 problem details with the binding's
//! `epcisException:` types; `GS1-EPCIS-Version` / `GS1-CBV-Version` on every answer;
//! `application/json` or `application/ld+json` as asked. Every other endpoint answers 501
//! (`epcisException:ImplementationException`) naming what is served.

use std::future::Future;

use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;
use subtle::ConstantTimeEq;
use tonic::transport::Channel;
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient};

use crate::ledger::epcis::{export, query};

/// The EPCIS and CBV versions answered.
pub const EPCIS_VERSION: &str = "2.0.0";
/// The CBV version.
pub const CBV_VERSION: &str = "2.0.0";

/// Longest query string accepted, bytes (the binding's 414 beyond).
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub struct Gateway {
    node: LedgerClient<Channel>,
    token: String,
    chain_id: String,
}

impl Gateway {
    /// A gateway to the node behind `node` (of chain `chain_id`), answering requests that
    /// carry `token`.
    pub fn new(node: LedgerClient<Channel>, token: String, chain_id: String) -> Self {
        Self {
            node,
            token,
            chain_id,
        }
    }
}

/// An RFC 7807 problem, as the binding types them.
struct Problem {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: String) -> Self {
        Problem {
            status,
            kind,
            title,
            detail,
        }
    }

    fn query(detail: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "epcisException:QueryParameterException",
            "EPCIS query exception",
            detail,
        )
    }
}

fn versioned(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert("GS1-EPCIS-Version", HeaderValue::from_static(EPCIS_VERSION));
    h.insert("GS1-CBV-Version", HeaderValue::from_static(CBV_VERSION));
    response
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": self.kind,
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        versioned(
            (
                self.status,
                [(header::CONTENT_TYPE, "application/problem+json")],
                body.to_string(),
            )
                .into_response(),
        )
    }
}

/// The gRPC status of the node as the binding's problem.
fn from_status(s: tonic::Status) -> Problem {
    match s.code() {
        tonic::Code::InvalidArgument => Problem::query(s.message().to_string()),
        tonic::Code::Unavailable => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "epcisException:ImplementationException",
            "The node is not reachable",
            s.message().to_string(),
        ),
        _ => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "epcisException:ImplementationException",
            "The node could not answer",
            format!("{:?}: {}", s.code(), s.message()),
        ),
    }
}

/// Checks the bearer token in constant time.
fn authorised(gateway: &Gateway, headers: &HeaderMap) -> Result<(), Problem> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !given.is_empty() && bool::from(given.as_bytes().ct_eq(gateway.token.as_bytes())) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "epcisException:SecurityException",
            "Unauthorised request",
            "give the gateway's token as `Authorization: Bearer <token>`".into(),
        ))
    }
}

/// The media type to answer with: JSON-LD when the client asks for it, else JSON; a client
/// that accepts neither is refused (406).
fn media_type(headers: &HeaderMap) -> Result<&'static str, Problem> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .collect();
    if types.contains(&"application/ld+json") {
        Ok("application/ld+json")
    } else if types
        .iter()
        .any(|t| matches!(*t, "application/json" | "application/*" | "*/*"))
    {
        Ok("application/json")
    } else {
        Err(Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "epcisException:ImplementationException",
            "Not acceptable",
            format!("{accept:?}: this server answers application/json or application/ld+json"),
        ))
    }
}

/// The binding's query string as `QueryEvents` parameters, and the paging ones apart.
/// A parameter may repeat; values of one are separated by `|` (the binding's OR).
fn parse_query(raw: &str) -> Result<(Vec<pb::QueryParam>, u32, String), Problem> {
    if raw.len() > MAX_QUERY_BYTES {
        return Err(Problem::new(
            StatusCode::URI_TOO_LONG,
            "epcisException:QueryTooLargeException",
            "URL too long",
            format!("the query string is over {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let mut params: Vec<pb::QueryParam> = Vec::new();
    let (mut per_page, mut token) = (0u32, String::new());
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        match name.as_ref() {
            "perPage" => {
                per_page = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Problem::query(format!("perPage {value:?} is not a positive number"))
                })?;
            }
            "nextPageToken" => token = value.into_owned(),
            _ => {
                let values = value.split('|').map(str::to_string);
                match params.iter_mut().find(|p| p.name == name) {
                    Some(p) => p.values.extend(values),
                    None => params.push(pb::QueryParam {
                        name: name.into_owned(),
                        values: values.collect(),
                    }),
                }
            }
        }
    }
    Ok((params, per_page, token))
}

/// Runs a query against the node and answers its page, with the next page's link.
async fn answer(
    mut gateway: Gateway,
    headers: HeaderMap,
    path: &str,
    raw: &str,
    extra: Option<pb::QueryParam>,
) -> Result<Response, Problem> {
    authorised(&gateway, &headers)?;
    let media = media_type(&headers)?;
    let (mut params, per_page, token) = parse_query(raw)?;
    params.extend(extra);
    let page = gateway
        .node
        .query_events(pb::QueryEventsRequest {
            params,
            per_page,
            next_page_token: token,
        })
        .await
        .map_err(from_status)?
        .into_inner();
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, media)],
        page.query_document_json,
    )
        .into_response();
    if !page.next_page_token.is_empty() {
        // The same query, from the next page on.
        let mut next = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
            if name != "nextPageToken" {
                next.append_pair(&name, &value);
            }
        }
        next.append_pair("nextPageToken", &page.next_page_token);
        let link = format!("<{path}?{}>; rel=\"next\"", next.finish());
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(versioned(response))
}

async fn events(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    answer(gateway, headers, "/events", &raw, None)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn epc_events(
    State(gateway): State<Gateway>,
    Path(epc): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let path = format!(
        "/epcs/{}/events",
        form_urlencoded::byte_serialize(epc.as_bytes()).collect::<String>()
    );
    let extra = pb::QueryParam {
        name: "MATCH_anyEPC".into(),
        values: vec![epc],
    };
    answer(gateway, headers, &path, &raw, Some(extra))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn no_such_event(id: &str, why: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "epcisException:NoSuchResourceException",
        "No such event",
        format!("{id}: {why}"),
    )
}

/// One event by its id: an Event Hash ID (`ni:///sha-256;...`, how the consortium
/// identifies an imported event) or a native event's `urn:tracechain:tx:<tx id>`, as a
/// query document of that event.
async fn event_by_id(
    mut gateway: Gateway,
    headers: HeaderMap,
    id: &str,
) -> Result<Response, Problem> {
    authorised(&gateway, &headers)?;
    let media = media_type(&headers)?;
    let not_found = |s: tonic::Status| {
        if s.code() == tonic::Code::NotFound {
            no_such_event(id, "not recorded")
        } else {
            from_status(s)
        }
    };
    let (signed, ok, block_time_ms) = if let Some(digits) = id.strip_prefix("urn:tracechain:tx:") {
        let tx_id = hex::decode(digits)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| no_such_event(id, "not a transaction id (64 hex digits)"))?;
        let r = gateway
            .node
            .get_tx(pb::GetTxRequest { tx_id })
            .await
            .map_err(not_found)?
            .into_inner();
        let ok = r.status == pb::TxStatus::Committed as i32
            && r.result
                .is_some_and(|r| r.code == pb::ResultCode::Ok as i32);
        (r.tx, ok, r.block_time_ms)
    } else if id.starts_with("ni:///") {
        let r = gateway
            .node
            .get_event(pb::GetEventRequest {
                event_hash: id.to_string(),
            })
            .await
            .map_err(|s| {
                if s.code() == tonic::Code::InvalidArgument {
                    no_such_event(id, s.message())
                } else {
                    not_found(s)
                }
            })?
            .into_inner();
        (r.tx, true, r.block_time_ms)
    } else {
        return Err(no_such_event(
            id,
            "events are found by their Event Hash ID (ni:///sha-256;...) or urn:tracechain:tx:<tx id>",
        ));
    };
    let Some(signed) = signed.filter(|_| ok) else {
        return Err(no_such_event(id, "not a committed, successful transaction"));
    };
    // From another process: checked as any transaction is, signature included.
    let checked = crate::tx::check(signed, &gateway.chain_id).map_err(|e| {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "epcisException:ImplementationException",
            "The node answered a transaction that does not check",
            e.to_string(),
        )
    })?;
    let event = export::any_event(&export::ExportEvent {
        block_time_ms,
        tx: &checked,
    })
    .ok()
    .flatten()
    .ok_or_else(|| no_such_event(id, "the transaction is not an EPCIS event"))?;
    let document = query::query_document(
        vec![query::with_record_time(event, block_time_ms)],
        crate::node::now_ms(),
    );
    Ok(versioned(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, media)],
            document.to_string(),
        )
            .into_response(),
    ))
}

async fn event(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    event_by_id(gateway, headers, &id)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Everything not served yet.
async fn not_served(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Err(p) = authorised(&gateway, &headers) {
        return p.into_response();
    }
    Problem::new(
        StatusCode::NOT_IMPLEMENTED,
        "epcisException:ImplementationException",
        "Functionality not supported by server",
        "this gateway serves GET /events, GET /events/{eventID} and GET /epcs/{epc}/events (docs/EPCIS.md)".into(),
    )
    .into_response()
}

/// The gateway's routes.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/events", get(events))
        .route("/epcs/{epc}/events", get(epc_events))
        .route("/events/{event_id}", get(event))
        .fallback(not_served)
        .with_state(gateway)
}

/// Serves the gateway on `listener` until `shutdown` completes.
pub async fn serve(
    gateway: Gateway,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(shutdown)
        .await
}
