//! `tracechain epcis import`: check an EPCIS 2.0 document, sign one transaction per
//! event with the member's key file, submit them and report each outcome. A document
//! with any invalid event is refused whole: every bad event is listed, nothing is sent.
//! `tracechain epcis export`: a shipment's events as an EPCIS 2.0 document, from a node
//! or, offline, from a verified audit bundle.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use serde_json::json;
use tracechain_proto::v1 as pb;

use super::{NodeAddr, output};
use crate::{
    crypto::{KeyFile, KeyKind},
    epcis::{EpcisError, export, hash, import, parse},
};

#[derive(Debug, clap::Args)]
pub(super) struct EpcisArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Import an EPCIS 2.0 JSON / JSON-LD document: one signed transaction per event.
    Import {
        /// The document.
        file: PathBuf,
        /// The member's key file (its sequence counter is advanced).
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        node: NodeAddr,
        /// Only check the document; sign and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export a shipment's events as an EPCIS 2.0 JSON-LD document, from a node or,
    /// offline, from a verified audit bundle.
    Export {
        /// The shipment (with --node).
        #[arg(long, required_unless_present = "bundle")]
        shipment: Option<String>,
        #[command(flatten)]
        node: NodeAddr,
        /// Export the proven events of this audit bundle instead (verified first).
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Where to write the document.
        #[arg(long, default_value = "epcis.json")]
        out: PathBuf,
    },
    /// Serve the GS1 EPCIS 2.0 REST binding for the member (docs/EPCIS.md): GET /events
    /// and GET /epcs/{epc}/events over the node's committed events. Every request must
    /// carry `Authorization: Bearer <token>`.
    Serve {
        /// The member's key file (capture signs with it).
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        node: NodeAddr,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// File holding the bearer token clients must give (at least 16 characters).
        #[arg(long)]
        token_file: PathBuf,
    },
    /// Query committed events (EPCIS 2.0 SimpleEventQuery): prints the query document
    /// of one page, or of every page with --all.
    Query {
        /// A parameter as NAME=VALUE (MATCH_epc, MATCH_anyEPC, EQ_bizStep, GE_eventTime,
        /// eventType, ... see docs/EPCIS.md); values of a list parameter separated by
        /// commas. Repeat.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Results per page (default 100, at most 1000).
        #[arg(long, default_value_t = 0)]
        per_page: u32,
        /// Start at this page (the token a previous page gave).
        #[arg(long, default_value = "")]
        page_token: String,
        /// Follow the page tokens to the end: one document with every result.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        node: NodeAddr,
    },
}

/// Runs the REST gateway until Ctrl-C.
async fn serve(
    key: &std::path::Path,
    node: &str,
    listen: &str,
    token_file: &std::path::Path,
) -> anyhow::Result<()> {
    let member = KeyFile::load(key).with_context(|| format!("reading {}", key.display()))?;
    if member.kind != KeyKind::Member {
        bail!("{} is not a member key file", key.display());
    }
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?
        .trim()
        .to_string();
    if token.chars().count() < 16 {
        bail!(
            "the token in {} is shorter than 16 characters",
            token_file.display()
        );
    }
    let mut client = output::connect(node).await?;
    let chain_id = client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .map_err(output::status_error)?
        .into_inner()
        .chain_id;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!(
        "EPCIS 2.0 REST gateway of {} on http://{} (node {node})",
        member.id,
        listener.local_addr()?
    );
    crate::gateway::serve(
        crate::gateway::Gateway::new(client, token, chain_id),
        listener,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await?;
    Ok(())
}

pub(super) async fn epcis(a: EpcisArgs, json: bool) -> anyhow::Result<()> {
    match a.what {
        What::Serve {
            key,
            node,
            listen,
            token_file,
        } => serve(&key, &node.node, &listen, &token_file).await,
        What::Query {
            params,
            per_page,
            page_token,
            all,
            node,
        } => query(&node.node, &params, per_page, page_token, all).await,
        What::Import {
            file,
            key,
            node,
            dry_run,
        } => import_file(&file, key, &node.node, dry_run, json).await,
        What::Export {
            shipment,
            node,
            bundle,
            out,
        } => {
            let (shipment, doc) = match bundle {
                Some(path) => export_bundle(&path)?,
                None => {
                    let id = shipment.context("--shipment is needed")?;
                    let doc = export_node(&node.node, &id).await?;
                    (id, doc)
                }
            };
            let events = doc["epcisBody"]["eventList"].as_array().map_or(0, Vec::len);
            super::ensure_parent(&out)?;
            std::fs::write(&out, serde_json::to_string_pretty(&doc)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if json {
                output::print_json(&json!({
                    "file": out.display().to_string(), "shipment_id": shipment, "events": events,
                }));
            } else {
                println!(
                    "wrote {}: {events} EPCIS events of {shipment}",
                    out.display()
                );
            }
            Ok(())
        }
    }
}

fn export_bundle(path: &PathBuf) -> anyhow::Result<(String, serde_json::Value)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let verified = crate::audit::verify::verify_bytes(&bytes, &Default::default())
        .map_err(|e| anyhow::anyhow!("NOT VERIFIED: {e}"))?;
    let events: Vec<export::ExportEvent<'_>> = verified
        .events
        .iter()
        .filter(|e| e.shipment_seq.is_some())
        .map(|e| export::ExportEvent {
            block_time_ms: e.block_time_ms,
            tx: &e.tx,
        })
        .collect();
    let doc = export::document(&verified.shipment_id, &events, now_ms())?;
    Ok((verified.shipment_id.clone(), doc))
}

async fn export_node(url: &str, shipment: &str) -> anyhow::Result<serde_json::Value> {
    let mut client = output::connect(url).await?;
    let chain_id = client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .map_err(output::status_error)?
        .into_inner()
        .chain_id;
    let mut checked = Vec::new();
    let mut offset = 0u64;
    loop {
        let page = client
            .get_shipment_events(pb::GetShipmentEventsRequest {
                shipment_id: shipment.to_string(),
                offset,
                limit: 1000,
            })
            .await
            .map_err(output::status_error)?
            .into_inner();
        if page.events.is_empty() {
            break;
        }
        offset += page.events.len() as u64;
        for e in page.events {
            let signed =
                e.tx.context("the node sent an event without its transaction")?;
            // Checked like any input: the node is not trusted to send well-formed data.
            let tx = crate::tx::check(signed, &chain_id)
                .map_err(|err| anyhow::anyhow!("event at height {}: {err}", e.height))?;
            checked.push((e.block_time_ms, tx));
        }
        if offset >= page.total {
            break;
        }
    }
    let events: Vec<export::ExportEvent<'_>> = checked
        .iter()
        .map(|(t, tx)| export::ExportEvent {
            block_time_ms: *t,
            tx,
        })
        .collect();
    Ok(export::document(shipment, &events, now_ms())?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn import_file(
    file: &PathBuf,
    key: Option<PathBuf>,
    url: &str,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > parse::MAX_DOCUMENT_BYTES as u64 {
        bail!(
            "{} is {size} bytes, more than a document may be",
            file.display()
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let events = match parse::parse_document(&text) {
        Ok(events) => events,
        Err(EpcisError::Rejected { total, rejected }) => {
            if json {
                output::print_json(&json!({
                    "accepted": false, "total_events": total, "rejected": rejected,
                }));
            } else {
                for r in &rejected {
                    for reason in &r.reasons {
                        eprintln!("event {} ({}): {reason}", r.index, r.event_type);
                    }
                }
            }
            bail!(
                "{} of {total} events rejected; nothing was imported",
                rejected.len()
            );
        }
        Err(e) => {
            if json {
                output::print_json(&json!({ "accepted": false, "error": e.to_string() }));
            }
            bail!("{e}; nothing was imported");
        }
    };
    // Each event's identity (the EPCIS Event Hash ID, as the ledger computes it), and
    // whether the document's own eventID, when it is a hash, agrees.
    let hashes: Vec<Option<String>> = events
        .iter()
        .map(|e| hash::recorded_event_hash(&e.event_json).ok())
        .collect();
    let notes: Vec<Option<String>> = events
        .iter()
        .zip(&hashes)
        .map(|(e, h)| {
            (e.event_id.starts_with("ni:") && Some(&e.event_id) != h.as_ref()).then(|| {
                format!(
                    "its eventID {} is not its Event Hash ID {}",
                    e.event_id,
                    h.as_deref().unwrap_or("(none)")
                )
            })
        })
        .collect();
    if !json {
        for (i, note) in notes.iter().enumerate() {
            if let Some(note) = note {
                eprintln!("note: event {i}: {note}");
            }
        }
    }
    if dry_run {
        if json {
            output::print_json(&json!({
                "accepted": true, "total_events": events.len(), "event_hashes": hashes,
                "notes": notes,
            }));
        } else {
            println!("{}: {} events, all valid", file.display(), events.len());
        }
        return Ok(());
    }
    let key_path = key.context("--key (a member key file) is needed to sign the events")?;
    let mut key_file =
        KeyFile::load(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    if key_file.kind != KeyKind::Member {
        bail!("{} is not a member key", key_path.display());
    }
    let secret = key_file.secret_key()?;
    let mut client = output::connect(url).await?;
    let status = client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .map_err(output::status_error)?
        .into_inner();
    // An event the chain already holds (an earlier import of the same document, or the
    // same event from another member) is done: it is not sent again. One still in
    // flight from an interrupted import is sent again and comes back DUPLICATE_EVENT,
    // which is as good.
    let total = events.len();
    let mut rows: Vec<Option<serde_json::Value>> = vec![None; total];
    let mut to_send = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        if let Some(h) = &hashes[index] {
            match client
                .get_event(pb::GetEventRequest {
                    event_hash: h.clone(),
                })
                .await
            {
                Ok(found) => {
                    let record = found.into_inner().record.unwrap_or_default();
                    rows[index] = Some(json!({
                        "index": index, "event_hash": h, "tx_id": hex::encode(&record.tx_id),
                        "result": ALREADY_RECORDED,
                        "message": format!(
                            "recorded at height {} by {}", record.height, record.recorded_by
                        ),
                        "shipments": [], "note": notes[index],
                    }));
                    continue;
                }
                // Unknown here; or a node from before the Event Hash ID: the ledger decides.
                Err(e)
                    if matches!(e.code(), tonic::Code::NotFound | tonic::Code::Unimplemented) => {}
                Err(e) => return Err(output::status_error(e)),
            }
        }
        to_send.push((index, event));
    }
    if !to_send.is_empty() {
        // Reserve the sequences and save the key file before anything is sent, so that
        // a crash can never hand out one sequence twice.
        let first_sequence = key_file.take_sequence();
        for _ in 1..to_send.len() {
            key_file.take_sequence();
        }
        key_file.save(&key_path)?;
        let (indexes, events): (Vec<usize>, Vec<pb::RecordEpcisEvent>) =
            to_send.into_iter().unzip();
        let txs = import::sign_events(
            events,
            &import::MemberSigner {
                chain_id: &status.chain_id,
                member_id: &key_file.id,
                key: &secret,
                first_sequence,
                time_ms: now_ms(),
            },
        );
        let mut outcomes = Vec::with_capacity(txs.len());
        for chunk in txs.chunks(SUBMIT_CHUNK) {
            outcomes.extend(
                client
                    .submit_txs(pb::SubmitTxsRequest {
                        txs: chunk.to_vec(),
                    })
                    .await
                    .map_err(output::status_error)?
                    .into_inner()
                    .outcomes,
            );
        }
        if outcomes.len() != indexes.len() {
            bail!(
                "the node answered {} outcomes for {} transactions",
                outcomes.len(),
                indexes.len()
            );
        }
        for (index, o) in indexes.into_iter().zip(&outcomes) {
            let (result, message, history) = if !o.accepted {
                (o.error_code.clone(), o.error.clone(), Vec::new())
            } else {
                wait_result(&mut client, &o.tx_id).await?
            };
            let result = if result == "DUPLICATE_EVENT" {
                ALREADY_RECORDED.to_string()
            } else {
                result
            };
            rows[index] = Some(json!({
                "index": index, "event_hash": hashes[index], "tx_id": hex::encode(&o.tx_id),
                "result": result, "message": message, "shipments": history,
                "note": notes[index],
            }));
        }
    }
    let rows: Vec<serde_json::Value> = rows.into_iter().flatten().collect();
    let failed = rows
        .iter()
        .filter(|r| r["result"] != "OK" && r["result"] != ALREADY_RECORDED)
        .count();
    let already = rows
        .iter()
        .filter(|r| r["result"] == ALREADY_RECORDED)
        .count();
    if json {
        output::print_json(&json!({ "accepted": true, "events": rows }));
    } else {
        for r in &rows {
            println!(
                "event {} tx {} {} {}{}",
                r["index"],
                r["tx_id"].as_str().unwrap_or_default(),
                r["result"].as_str().unwrap_or_default(),
                r["message"].as_str().unwrap_or_default(),
                match r["shipments"].as_array() {
                    Some(s) if !s.is_empty() => format!(
                        " (shipments: {})",
                        s.iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => String::new(),
                }
            );
        }
        if already > 0 {
            println!("{already} of {total} events were already recorded");
        }
    }
    if failed > 0 {
        bail!("{failed} of {total} events were not recorded");
    }
    Ok(())
}

/// Runs a query; prints its document (every page's events in one with `all`) and, on
/// stderr, the next page's token.
async fn query(
    node: &str,
    params: &[String],
    per_page: u32,
    mut page_token: String,
    all: bool,
) -> anyhow::Result<()> {
    let params: Vec<pb::QueryParam> = params
        .iter()
        .map(|p| {
            let (name, values) = p
                .split_once('=')
                .with_context(|| format!("--param {p:?} is not NAME=VALUE"))?;
            Ok(pb::QueryParam {
                name: name.to_string(),
                values: values.split(',').map(str::to_string).collect(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut client = output::connect(node).await?;
    let mut document: Option<serde_json::Value> = None;
    loop {
        let r = client
            .query_events(pb::QueryEventsRequest {
                params: params.clone(),
                per_page,
                next_page_token: page_token.clone(),
            })
            .await
            .map_err(output::status_error)?
            .into_inner();
        let page: serde_json::Value =
            serde_json::from_str(&r.query_document_json).context("the node's query document")?;
        let list = "/epcisBody/queryResults/resultsBody/eventList";
        match document.as_mut() {
            None => document = Some(page),
            Some(doc) => {
                let more = page.pointer(list).and_then(|l| l.as_array()).cloned();
                if let (Some(events), Some(more)) =
                    (doc.pointer_mut(list).and_then(|l| l.as_array_mut()), more)
                {
                    events.extend(more);
                }
            }
        }
        page_token = r.next_page_token;
        if !all || page_token.is_empty() {
            break;
        }
    }
    output::print_json(&document.unwrap_or_default());
    if !page_token.is_empty() {
        eprintln!("next page: --page-token {page_token}");
    }
    Ok(())
}

/// The result of an event the chain already holds, by this import or an earlier one.
const ALREADY_RECORDED: &str = "ALREADY_RECORDED";

/// Transactions per SubmitTxs request.
const SUBMIT_CHUNK: usize = 256;

/// Polls until the transaction is committed: its result name, reason and shipments.
async fn wait_result(
    client: &mut pb::ledger_client::LedgerClient<tonic::transport::Channel>,
    tx_id: &[u8],
) -> anyhow::Result<(String, String, Vec<String>)> {
    for _ in 0..600 {
        let r = client
            .get_tx(pb::GetTxRequest {
                tx_id: tx_id.to_vec(),
            })
            .await
            .map_err(output::status_error)?
            .into_inner();
        if r.status == pb::TxStatus::Committed as i32 {
            let result = r.result.unwrap_or_default();
            let shipments = result
                .history
                .iter()
                .filter(|h| h.kind == pb::HistoryKind::Shipment as i32)
                .map(|h| h.subject.clone())
                .collect();
            return Ok((output::result_name(result.code), result.message, shipments));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "transaction {} was not committed within 30 s",
        hex::encode(tx_id)
    )
}
