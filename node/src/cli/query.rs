//! `tracechain query` and `tracechain status`.

use anyhow::bail;
use prost::Message;
use serde_json::json;
use tracechain_proto::v1 as pb;

use super::{NodeAddr, output};

#[derive(Debug, clap::Args)]
pub(super) struct QueryArgs {
    #[command(flatten)]
    node: NodeAddr,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// A shipment's twin: custody, ownership, readings, excursions, verdict.
    Shipment { id: String },
    /// A shipment's committed events.
    Events {
        id: String,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The committed transactions that name an identifier (an EPC URI or a GS1 Digital
    /// Link URI of an item, lot, container or place, in any form; or any other id).
    Identifier {
        id: String,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// A thing's provenance and authenticity verdict (an EPC URI or GS1 Digital Link
    /// URI of an item, lot or container, in any form).
    Provenance { id: String },
    /// What a thing or lot was made from and what was made from it (EPCIS
    /// TransformationEvents), each way to a depth.
    Lineage {
        id: String,
        /// Transformations to follow each way (default 8, at most 32).
        #[arg(long, default_value_t = 0)]
        depth: u32,
    },
    /// What a container (a pallet, a case, a shipment) holds, now or at a time.
    Contents {
        id: String,
        /// A time (RFC 3339, e.g. 2026-03-02T09:00:00Z): what it held then.
        #[arg(long)]
        at: Option<String>,
    },
    /// DSCSA-style verification of a product identifier: is this GTIN, serial, lot and
    /// expiry a genuine product of the consortium?
    VerifyProduct {
        /// 8, 12, 13 or 14 digits.
        #[arg(long)]
        gtin: String,
        #[arg(long)]
        serial: String,
        #[arg(long)]
        lot: String,
        /// YYMMDD or YYYY-MM-DD.
        #[arg(long)]
        expiry: String,
    },
    /// A transaction by id (hex).
    Tx { id: String },
    /// A recorded EPCIS event by its Event Hash ID (`ni:///sha-256;<hex>?ver=CBV2.0`).
    Event { hash: String },
    /// A block by height or hash (hex).
    Block { id: String },
    /// A device.
    Device { id: String },
    /// Conflicting readings of one device key (a clone) this node saw, not yet reported.
    Conflicts {
        /// Only this device's.
        #[arg(long)]
        device: Option<String>,
    },
}

/// What a verdict resting on `t`'s device-signed readings must say of its devices: one
/// line per conflict proven against one of them.
async fn device_flags(
    client: &mut output::Client,
    t: &pb::ShipmentTwin,
) -> anyhow::Result<Vec<String>> {
    let mut flags = Vec::new();
    for id in crate::ledger::conflicts::devices_of(t) {
        match client
            .get_device(pb::GetDeviceRequest {
                device_id: id.to_string(),
            })
            .await
        {
            Ok(d) => flags.extend(crate::ledger::conflicts::flags(&d.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(output::status_error(s)),
        }
    }
    Ok(flags)
}

#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    node: NodeAddr,
}

pub(super) async fn status(a: StatusArgs, json: bool) -> anyhow::Result<()> {
    let mut client = output::connect(&a.node.node).await?;
    let s = client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .map_err(output::status_error)?
        .into_inner();
    if json {
        output::print_json(&json!({
            "chain_id": s.chain_id,
            "height": s.height,
            "head_hash": hex::encode(&s.head_hash),
            "state_commitment": hex::encode(&s.state_commitment),
            "head_time_ms": s.head_time_ms,
            "mempool_size": s.mempool_size,
            "members": s.members,
            "node_member_id": s.node_member_id,
            "genesis_hash": hex::encode(&s.genesis_hash),
        }));
    } else {
        println!("chain      {}", s.chain_id);
        println!("node       {}", s.node_member_id);
        println!("height     {}", s.height);
        println!("head       {}", hex::encode(&s.head_hash));
        println!("state      {}", hex::encode(&s.state_commitment));
        println!("mempool    {}", s.mempool_size);
        println!("members    {}", s.members);
        println!("genesis    {}", hex::encode(&s.genesis_hash));
    }
    Ok(())
}

/// A page of events, as JSON or as lines; `key` is the identifier's index key, if any.
fn print_events(
    page: &[pb::ShipmentEvent],
    total: u64,
    offset: u64,
    key: Option<&str>,
    json: bool,
) {
    let events: Vec<_> = page
        .iter()
        .map(|e| {
            json!({
                "height": e.height,
                "index": e.index,
                "tx_id": hex::encode(&e.tx_id),
                "block_time_ms": e.block_time_ms,
                "result": output::result_name(e.result.clone().unwrap_or_default().code),
                "body": e.tx.as_ref().map(output::body_json),
            })
        })
        .collect();
    if json {
        let mut v = json!({"total": total, "events": events});
        if let Some(key) = key {
            v["key"] = json!(key);
        }
        output::print_json(&v);
    } else {
        if let Some(key) = key {
            println!("key {key}");
        }
        println!("{total} events (showing {} from {offset})", events.len());
        for e in &events {
            println!(
                "  #{}:{} {} {}",
                e["height"], e["index"], e["block_time_ms"], e["body"]["action"]
            );
        }
    }
}

fn hash32(s: &str) -> anyhow::Result<Vec<u8>> {
    let b = hex::decode(s).map_err(|_| anyhow::anyhow!("{s:?} is not hex"))?;
    if b.len() != 32 {
        bail!("{s:?} is not a 32-byte hash");
    }
    Ok(b)
}

pub(super) async fn query(a: QueryArgs, json: bool) -> anyhow::Result<()> {
    let mut client = output::connect(&a.node.node).await?;
    match a.what {
        What::Shipment { id } => {
            let t = client
                .get_shipment(pb::GetShipmentRequest { shipment_id: id })
                .await
                .map_err(output::status_error)?
                .into_inner();
            let flags = device_flags(&mut client, &t).await?;
            if json {
                let mut v = output::twin_json(&t);
                v["device_flags"] = json!(flags);
                output::print_json(&v);
            } else {
                output::print_twin(&t);
                if !flags.is_empty() {
                    println!(
                        "warning    the device-signed verdict rests on a device flagged as cloned:"
                    );
                    for f in &flags {
                        println!("  - {f}");
                    }
                }
            }
        }
        What::Events { id, offset, limit } => {
            let r = client
                .get_shipment_events(pb::GetShipmentEventsRequest {
                    shipment_id: id,
                    offset,
                    limit,
                })
                .await
                .map_err(output::status_error)?
                .into_inner();
            print_events(&r.events, r.total, offset, None, json);
        }
        What::Identifier { id, offset, limit } => {
            let r = client
                .get_identifier_events(pb::GetIdentifierEventsRequest {
                    identifier: id,
                    offset,
                    limit,
                })
                .await
                .map_err(output::status_error)?
                .into_inner();
            print_events(&r.events, r.total, offset, Some(&r.key), json);
        }
        What::Provenance { id } => {
            let r = client
                .get_provenance(pb::GetProvenanceRequest { identifier: id })
                .await
                .map_err(output::status_error)?
                .into_inner();
            let name = |v: &str| v.rsplit('_').next().unwrap_or(v).to_lowercase();
            let verdict = pb::ProvenanceVerdict::try_from(r.verdict)
                .map(|v| name(v.as_str_name()))
                .unwrap_or_default();
            let steps: Vec<_> = r
                .steps
                .iter()
                .map(|s| {
                    json!({
                        "height": s.height, "index": s.index, "time_ms": s.time_ms,
                        "signer": s.signer, "what": s.what, "place": s.place,
                        "kind": pb::ProvenanceStepKind::try_from(s.kind)
                            .map(|k| name(k.as_str_name()))
                            .unwrap_or_default(),
                    })
                })
                .collect();
            let stays: Vec<_> = r
                .stays
                .iter()
                .map(|s| {
                    json!({
                        "container": s.container, "depth": s.depth,
                        "from_height": s.from_height, "from_ms": s.from_ms,
                        "packed_by": s.packed_by, "to_height": s.to_height, "to_ms": s.to_ms,
                        "unpacked_by": s.unpacked_by, "shipment_id": s.shipment_id,
                        "custody": s.custody, "excursions": s.excursions.len(),
                    })
                })
                .collect();
            if json {
                output::print_json(&json!({
                    "key": r.key, "verdict": verdict, "reasons": r.reasons,
                    "commissioned_by": r.commissioned_by, "prefix_holder": r.prefix_holder,
                    "prefix": r.prefix, "steps": steps, "stays": stays,
                    "stays_dropped": r.stays_dropped, "contents": r.contents,
                }));
            } else {
                println!("{}: {}", r.key, verdict.to_uppercase());
                for reason in &r.reasons {
                    println!("  - {reason}");
                }
                for s in &r.stays {
                    let until = if s.to_height == 0 {
                        "now".to_string()
                    } else {
                        crate::ledger::units::fmt_time_ms(s.to_ms)
                    };
                    println!(
                        "  {:indent$}in {} from {} to {}{}",
                        "",
                        s.container,
                        crate::ledger::units::fmt_time_ms(s.from_ms),
                        until,
                        if s.shipment_id.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (shipment {}, custody {})",
                                s.shipment_id,
                                s.custody.join(", ")
                            )
                        },
                        indent = 2 * (s.depth as usize - 1),
                    );
                }
                if !r.contents.is_empty() {
                    println!("  holds {} thing(s) now:", r.contents.len());
                    for c in &r.contents {
                        println!("    {c}");
                    }
                }
                for s in &r.steps {
                    println!(
                        "  #{}:{} {} {:<13} {} {}{}",
                        s.height,
                        s.index,
                        crate::ledger::units::fmt_time_ms(s.time_ms),
                        s.signer,
                        s.what,
                        if s.place.is_empty() { "" } else { "at " },
                        s.place
                    );
                }
            }
        }
        What::Lineage { id, depth } => {
            let r = client
                .get_lineage(pb::GetLineageRequest {
                    identifier: id,
                    max_depth: depth,
                })
                .await
                .map_err(output::status_error)?
                .into_inner();
            let links = |links: &[pb::LineageLink]| -> Vec<serde_json::Value> {
                links
                    .iter()
                    .map(|l| {
                        json!({
                            "depth": l.depth, "height": l.height, "index": l.index,
                            "time_ms": l.time_ms, "member": l.member,
                            "inputs": l.inputs, "outputs": l.outputs,
                        })
                    })
                    .collect()
            };
            if json {
                output::print_json(&json!({
                    "key": r.key,
                    "upstream": links(&r.upstream),
                    "downstream": links(&r.downstream),
                    "upstream_beyond_depth": r.upstream_beyond_depth,
                    "downstream_beyond_depth": r.downstream_beyond_depth,
                }));
            } else {
                println!("{}", r.key);
                for (name, list, beyond) in [
                    ("made from", &r.upstream, r.upstream_beyond_depth),
                    ("used in", &r.downstream, r.downstream_beyond_depth),
                ] {
                    println!("  {name}: {} transformation(s)", list.len());
                    for l in list {
                        println!(
                            "  {:indent$}#{}:{} {} {}: {} -> {}",
                            "",
                            l.height,
                            l.index,
                            crate::ledger::units::fmt_time_ms(l.time_ms),
                            l.member,
                            l.inputs.join(", "),
                            l.outputs.join(", "),
                            indent = 2 * l.depth as usize,
                        );
                    }
                    if beyond {
                        println!("    ... and further than this depth");
                    }
                }
            }
        }
        What::Contents { id, at } => {
            let at_ms = at
                .map(|t| crate::ledger::epcis::vocab::parse_time(&t))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--at: {e}"))?;
            let r = client
                .get_contents(pb::GetContentsRequest {
                    identifier: id,
                    at_ms,
                })
                .await
                .map_err(output::status_error)?
                .into_inner();
            if json {
                output::print_json(&json!({
                    "key": r.key, "children": r.children, "shipment_id": r.shipment_id,
                }));
            } else {
                println!("{}: {} thing(s)", r.key, r.children.len());
                for c in &r.children {
                    println!("  {c}");
                }
            }
        }
        What::VerifyProduct {
            gtin,
            serial,
            lot,
            expiry,
        } => {
            let r = client
                .verify_product(pb::VerifyProductRequest {
                    gtin,
                    serial,
                    lot,
                    expiry,
                })
                .await
                .map_err(output::status_error)?
                .into_inner();
            if json {
                output::print_json(&json!({
                    "key": r.key, "verified": r.verified, "reasons": r.reasons,
                }));
            } else {
                println!(
                    "{}: {}",
                    r.key,
                    if r.verified {
                        "VERIFIED"
                    } else {
                        "NOT VERIFIED"
                    }
                );
                for reason in &r.reasons {
                    println!("  - {reason}");
                }
            }
        }
        What::Tx { id } => {
            let r = client
                .get_tx(pb::GetTxRequest {
                    tx_id: hash32(&id)?,
                })
                .await
                .map_err(output::status_error)?
                .into_inner();
            let result = r.result.clone().unwrap_or_default();
            let v = json!({
                "tx_id": hex::encode(&r.tx_id),
                "status": output::tx_status(r.status),
                "height": r.height,
                "index": r.index,
                "result": output::result_name(result.code),
                "message": result.message,
                "body": r.tx.as_ref().map(output::body_json),
            });
            if json {
                output::print_json(&v);
            } else {
                println!("tx      {}", id);
                println!("status  {}", v["status"].as_str().unwrap_or_default());
                if r.status == pb::TxStatus::Committed as i32 {
                    println!("block   {} index {}", r.height, r.index);
                    println!(
                        "result  {} {}",
                        v["result"].as_str().unwrap_or_default(),
                        result.message
                    );
                }
                println!("body    {}", v["body"]);
            }
        }
        What::Event { hash } => {
            let r = client
                .get_event(pb::GetEventRequest { event_hash: hash })
                .await
                .map_err(output::status_error)?
                .into_inner();
            let record = r.record.unwrap_or_default();
            let event = r.tx.as_ref().and_then(|tx| {
                let body = pb::TxBody::decode(tx.body.as_slice()).ok()?;
                match body.action? {
                    pb::tx_body::Action::RecordEpcisEvent(e) => {
                        serde_json::from_str::<serde_json::Value>(&e.event_json).ok()
                    }
                    _ => None,
                }
            });
            let v = json!({
                "event_hash": record.event_hash,
                "height": record.height,
                "index": r.index,
                "tx_id": hex::encode(&record.tx_id),
                "recorded_by": record.recorded_by,
                "block_time_ms": r.block_time_ms,
                "event": event,
            });
            if json {
                output::print_json(&v);
            } else {
                println!("event       {}", record.event_hash);
                println!("block       {} index {}", record.height, r.index);
                println!("tx          {}", hex::encode(&record.tx_id));
                println!("recorded by {}", record.recorded_by);
                println!("event json  {}", v["event"]);
            }
        }
        What::Block { id } => {
            let by = match id.parse::<u64>() {
                Ok(h) => pb::get_block_request::By::Height(h),
                Err(_) => pb::get_block_request::By::Hash(hash32(&id)?),
            };
            let b = client
                .get_block(pb::GetBlockRequest { by: Some(by) })
                .await
                .map_err(output::status_error)?
                .into_inner();
            let block = b.block.clone().unwrap_or_default();
            let cert = b.certificate.clone().unwrap_or_default();
            let v = json!({
                "header": output::header_json(&block),
                "certificate": {
                    "view": cert.view,
                    "signers": cert.signatures.iter().map(|s| s.member_id.clone()).collect::<Vec<_>>(),
                },
                "txs": block.txs.iter().zip(&b.results).map(|(t, r)| json!({
                    "tx_id": hex::encode(blake3::hash(&t.body).as_bytes()),
                    "result": output::result_name(r.code),
                    "message": r.message,
                })).collect::<Vec<_>>(),
            });
            if json {
                output::print_json(&v);
            } else {
                let h = &v["header"];
                println!("height   {}", h["height"]);
                println!("hash     {}", h["hash"].as_str().unwrap_or_default());
                println!("prev     {}", h["prev_hash"].as_str().unwrap_or_default());
                println!("time     {}", h["time_ms"]);
                println!("proposer {}", h["proposer"].as_str().unwrap_or_default());
                println!(
                    "state    {}",
                    h["state_commitment"].as_str().unwrap_or_default()
                );
                println!("signed   {}", v["certificate"]["signers"]);
                println!("txs      {}", h["tx_count"]);
                for t in v["txs"].as_array().into_iter().flatten() {
                    println!(
                        "  {} {} {}",
                        t["tx_id"].as_str().unwrap_or_default(),
                        t["result"].as_str().unwrap_or_default(),
                        t["message"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        What::Conflicts { device } => {
            let seen = client
                .get_device_conflicts(pb::GetDeviceConflictsRequest {
                    device_id: device.unwrap_or_default(),
                })
                .await
                .map_err(output::status_error)?
                .into_inner()
                .conflicts;
            let rows: Vec<_> = seen
                .iter()
                .map(|c| {
                    json!({
                        "device_id": c.device_id,
                        "kind": pb::DeviceConflictKind::try_from(c.kind)
                            .map(|k| k.as_str_name().trim_start_matches("DEVICE_CONFLICT_KIND_").to_lowercase())
                            .unwrap_or_default(),
                        "first_tx_id": hex::encode(&c.first_tx_id),
                        "first_sequence": c.first_sequence,
                        "second_tx_id": hex::encode(&c.second_tx_id),
                        "second_sequence": c.second_sequence,
                    })
                })
                .collect();
            if json {
                output::print_json(&json!(rows));
            } else if rows.is_empty() {
                println!("no conflicting device readings seen by this node");
            } else {
                for r in &rows {
                    println!(
                        "{} {}: sequence {} (tx {}) vs sequence {} (tx {})",
                        r["device_id"].as_str().unwrap_or_default(),
                        r["kind"].as_str().unwrap_or_default(),
                        r["first_sequence"],
                        r["first_tx_id"].as_str().unwrap_or_default(),
                        r["second_sequence"],
                        r["second_tx_id"].as_str().unwrap_or_default(),
                    );
                }
                println!(
                    "report one to the ledger: tracechain submit --key MEMBER_KEY report-conflict --device ID"
                );
            }
        }
        What::Device { id } => {
            let d = client
                .get_device(pb::GetDeviceRequest { device_id: id })
                .await
                .map_err(output::status_error)?
                .into_inner();
            let v = output::device_json(&d);
            if json {
                output::print_json(&v);
            } else {
                for (k, val) in v.as_object().into_iter().flatten() {
                    println!("{k:<18} {val}");
                }
            }
        }
    }
    Ok(())
}
