//! The EPCIS 2.0 REST gateway as an EPCIS client meets it: a real HTTP client over
//! 127.0.0.1, against the gateway in front of a real one-member node (both in this
//! process, on ephemeral ports).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::bytes::Bytes;
use tokio::sync::watch;
use tonic::transport::Channel;
use tracechain_node::{
    api,
    crypto::{Scheme, SecretKey},
    gateway::{self, Gateway},
    genesis::{Genesis, GenesisFile},
    loadgen,
    node::{Node, NodeConfig},
};
use tracechain_proto::v1::ledger_client::LedgerClient;

const CHAIN: &str = "rest-chain";
const TOKEN: &str = "a-token-of-some-length";

struct Served {
    base: String,
    _stop: watch::Sender<bool>,
    _data: tempfile::TempDir,
}

/// A node with three committed EPCIS ObjectEvents (OBSERVE, inspecting; items
/// `urn:epc:id:sgtin:4012345.011111.farm0` .. `farm2`), its API and the gateway.
async fn serve() -> Served {
    let admin = SecretKey::generate(Scheme::Ed25519);
    let node_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let genesis = Genesis::from_file(GenesisFile::single_member(
        CHAIN,
        1_700_000_000_000,
        &node_key.verifying_key(),
        &admin.public_key(),
    ))
    .expect("genesis");
    let data = tempfile::tempdir().expect("tempdir");
    let node = Node::open(
        NodeConfig::new(data.path().join("db"), "farm".into()),
        genesis,
        node_key,
    )
    .expect("node");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let events = loadgen::epcis_observations(CHAIN, "farm", &admin, 1, 3, now - 60_000);
    assert!(node.submit(events).await.iter().all(Result::is_ok));
    node.produce_block().await.expect("block");
    let (stop, stopped) = watch::channel(false);
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api_addr = api_listener.local_addr().expect("addr");
    let mut until = stopped.clone();
    tokio::spawn(api::serve(node, api_listener, async move {
        let _ = until.wait_for(|s| *s).await;
    }));
    let channel = Channel::from_shared(format!("http://{api_addr}"))
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut until = stopped;
    tokio::spawn(gateway::serve(
        Gateway::new(LedgerClient::new(channel), TOKEN.into()),
        listener,
        async move {
            let _ = until.wait_for(|s| *s).await;
        },
    ));
    Served {
        base,
        _stop: stop,
        _data: data,
    }
}

struct Answer {
    status: u16,
    headers: axum::http::HeaderMap,
    body: serde_json::Value,
}

async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = axum::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = client
        .request(req.body(Empty::new()).expect("request"))
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

const AUTH: (&str, &str) = ("authorization", "Bearer a-token-of-some-length");

fn events(a: &Answer) -> Vec<serde_json::Value> {
    a.body
        .pointer("/epcisBody/queryResults/resultsBody/eventList")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default()
}

fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn queries_page_and_fail_as_the_binding_says() {
    let s = serve().await;
    let url = |path: &str| format!("{}{path}", s.base);

    // Without the token: nothing.
    let a = request("GET", &url("/events"), &[]).await;
    assert_eq!(a.status, 401);
    assert_eq!(header(&a, "content-type"), "application/problem+json");
    assert_eq!(
        a.body["type"], "epcisException:SecurityException",
        "{}",
        a.body
    );
    assert_eq!(header(&a, "gs1-epcis-version"), "2.0.0");
    let a = request("GET", &url("/events"), &[("authorization", "Bearer nope")]).await;
    assert_eq!(a.status, 401);

    // One item, by its EPC; in JSON-LD when asked.
    let item = "urn:epc:id:sgtin:4012345.011111.farm1";
    let a = request("GET", &url(&format!("/events?MATCH_epc={item}")), &[AUTH]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(header(&a, "content-type"), "application/json");
    assert_eq!(header(&a, "gs1-epcis-version"), "2.0.0");
    assert_eq!(header(&a, "gs1-cbv-version"), "2.0.0");
    assert_eq!(a.body["type"], "EPCISQueryDocument");
    let found = events(&a);
    assert_eq!(found.len(), 1, "{}", a.body);
    assert_eq!(found[0]["epcList"][0], item);
    let ld = request(
        "GET",
        &url(&format!("/events?MATCH_epc={item}")),
        &[AUTH, ("accept", "application/ld+json")],
    )
    .await;
    assert_eq!(header(&ld, "content-type"), "application/ld+json");
    assert_eq!(events(&ld), found);
    // The same through /epcs/{epc}/events, and by pattern, values OR-ed with `|`.
    let a = request("GET", &url(&format!("/epcs/{item}/events")), &[AUTH]).await;
    assert_eq!(events(&a), found);
    let a = request(
        "GET",
        &url("/events?MATCH_epc=urn:epc:idpat:sgtin:4012345.011111.*&EQ_bizStep=shipping%7Cinspecting"),
        &[AUTH],
    )
    .await;
    assert_eq!(events(&a).len(), 3, "{}", a.body);

    // Paged: two, then the `Link` to the last one, then no link.
    let a = request(
        "GET",
        &url("/events?EQ_bizStep=inspecting&perPage=2"),
        &[AUTH],
    )
    .await;
    assert_eq!(events(&a).len(), 2);
    let link = header(&a, "link").to_string();
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .map(|(u, _)| u.to_string())
        .unwrap_or_else(|| panic!("a next link: {link:?}"));
    assert!(next.starts_with("/events?EQ_bizStep=inspecting&perPage=2&nextPageToken="));
    let last = request("GET", &url(&next), &[AUTH]).await;
    assert_eq!(events(&last).len(), 1, "{}", last.body);
    assert!(last.headers.get("link").is_none());

    // Bad input: each a problem of its type.
    for (path, status, kind) in [
        (
            "/events?MATCH_whatever=x",
            400,
            "epcisException:QueryParameterException",
        ),
        (
            "/events?nextPageToken=1.2.3",
            400,
            "epcisException:QueryParameterException",
        ),
        (
            "/events?perPage=none",
            400,
            "epcisException:QueryParameterException",
        ),
        ("/capture", 501, "epcisException:ImplementationException"),
    ] {
        let a = request("GET", &url(path), &[AUTH]).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        assert_eq!(a.body["type"], kind, "{path}");
        assert!(a.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let a = request("POST", &url("/capture"), &[AUTH]).await;
    assert_eq!(a.status, 501);
    let a = request(
        "GET",
        &url("/events"),
        &[AUTH, ("accept", "application/xml")],
    )
    .await;
    assert_eq!(a.status, 406);
    let long = format!(
        "/events?EQ_bizStep={}",
        "x".repeat(gateway::MAX_QUERY_BYTES)
    );
    let a = request("GET", &url(&long), &[AUTH]).await;
    assert_eq!(a.status, 414);
}
