//! Connecting to a node and printing what it returns: text for people, JSON for scripts.

use anyhow::Context;
use prost::Message;
use serde_json::{Value, json};
use tonic::transport::Channel;
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient};

use super::units::{fmt_milli_c, fmt_time_ms};

/// A connected gRPC client.
pub(crate) type Client = LedgerClient<Channel>;

/// Connects to a node's gRPC API.
pub(crate) async fn connect(url: &str) -> anyhow::Result<LedgerClient<Channel>> {
    let client = LedgerClient::connect(url.to_string())
        .await
        .with_context(|| format!("cannot reach a node at {url}"))?;
    Ok(client
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(16 * 1024 * 1024))
}

/// A gRPC error as a readable error.
pub(crate) fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}

pub(crate) fn tx_status(v: i32) -> &'static str {
    match pb::TxStatus::try_from(v).unwrap_or_default() {
        pb::TxStatus::Pending => "pending",
        pb::TxStatus::Committed => "committed",
        pb::TxStatus::Unknown | pb::TxStatus::Unspecified => "unknown",
    }
}

pub(crate) fn result_name(v: i32) -> String {
    pb::ResultCode::try_from(v)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("RESULT_CODE_")
                .to_string()
        })
        .unwrap_or_else(|_| format!("code {v}"))
}

fn enum_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

pub(crate) fn status_name(v: i32) -> String {
    enum_name(
        pb::ShipmentStatus::try_from(v)
            .unwrap_or_default()
            .as_str_name(),
        "SHIPMENT_STATUS_",
    )
}

pub(crate) fn verdict_name(v: i32) -> String {
    enum_name(
        pb::Verdict::try_from(v).unwrap_or_default().as_str_name(),
        "VERDICT_",
    )
}

fn customs_name(v: i32) -> String {
    enum_name(
        pb::CustomsStatus::try_from(v)
            .unwrap_or_default()
            .as_str_name(),
        "CUSTOMS_STATUS_",
    )
}

fn opt_c(v: Option<i32>) -> String {
    v.map_or_else(|| "-".to_string(), fmt_milli_c)
}

fn minutes(ms: u64) -> String {
    format!("{} min", ms.div_ceil(60_000))
}

/// A shipment twin as JSON.
fn excursions_json(excursions: &[pb::Excursion]) -> Vec<Value> {
    excursions
        .iter()
        .map(|e| {
            json!({
                "start_ms": e.start_ms, "end_ms": e.end_ms, "duration_ms": e.duration_ms,
                "peak_milli_c": e.peak_milli_c, "device_id": e.device_id, "open": e.open,
            })
        })
        .collect()
}

pub(crate) fn twin_json(t: &pb::ShipmentTwin) -> Value {
    let policy = t.policy.unwrap_or_default();
    json!({
        "shipment_id": t.shipment_id,
        "owner": t.owner,
        "custodian": t.custodian,
        "status": status_name(t.status),
        "customs": customs_name(t.customs),
        "consignee": t.consignee,
        "last_location": t.last_location,
        "last_geo": t.last_geo.map(|g| json!({"lat_e7": g.lat_e7, "lon_e7": g.lon_e7})),
        "products": t.products.iter().map(|p| json!({"epc": p.epc, "description": p.description, "quantity": p.quantity, "uom": p.uom})).collect::<Vec<_>>(),
        "devices": t.attached_devices,
        "policy": {
            "min_milli_c": policy.min_milli_c,
            "max_milli_c": policy.max_milli_c,
            "excursion_budget_minutes": policy.excursion_budget_minutes,
            "max_reading_gap_minutes": policy.max_reading_gap_minutes,
            "mkt_limit_milli_c": policy.mkt_limit_milli_c,
            "hard_min_milli_c": policy.hard_min_milli_c,
            "hard_max_milli_c": policy.hard_max_milli_c,
        },
        "reading_count": t.reading_count,
        "min_milli_c": t.min_milli_c,
        "max_milli_c": t.max_milli_c,
        "mkt_milli_c": t.mkt_milli_c,
        "excursion_ms_total": t.excursion_ms_total,
        "excursions": excursions_json(&t.excursions),
        "verdict": verdict_name(t.verdict),
        "reasons": t.reasons,
        "evidence": "device-signed readings",
        "event_count": t.event_count,
        "attested": t.attested.as_deref().map(|a| json!({
            "evidence": "member-attested readings (imported sensor reports)",
            "attested_by": t.attested_by,
            "reading_count": a.reading_count,
            "min_milli_c": a.min_milli_c,
            "max_milli_c": a.max_milli_c,
            "mkt_milli_c": a.mkt_milli_c,
            "excursion_ms_total": a.excursion_ms_total,
            "excursions": excursions_json(&a.excursions),
            "verdict": verdict_name(a.verdict),
            "reasons": a.reasons,
        })),
    })
}

/// A shipment twin as text.
pub(crate) fn print_twin(t: &pb::ShipmentTwin) {
    let policy = t.policy.unwrap_or_default();
    println!("shipment   {}", t.shipment_id);
    println!(
        "status     {} (customs: {})",
        status_name(t.status),
        customs_name(t.customs)
    );
    println!("owner      {}", t.owner);
    println!("custodian  {}", t.custodian);
    if !t.consignee.is_empty() {
        println!("consignee  {}", t.consignee);
    }
    if !t.last_location.is_empty() {
        println!("location   {}", t.last_location);
    }
    for p in &t.products {
        println!(
            "product    {} {} {} {}",
            p.epc, p.description, p.quantity, p.uom
        );
    }
    println!(
        "policy     {}..{}, excursion budget {} min{}{}",
        fmt_milli_c(policy.min_milli_c),
        fmt_milli_c(policy.max_milli_c),
        policy.excursion_budget_minutes,
        policy
            .mkt_limit_milli_c
            .map_or(String::new(), |m| format!(", MKT ≤ {}", fmt_milli_c(m))),
        if policy.max_reading_gap_minutes > 0 {
            format!(", max gap {} min", policy.max_reading_gap_minutes)
        } else {
            String::new()
        }
    );
    println!(
        "readings   {} (min {}, max {}, MKT {})",
        t.reading_count,
        opt_c(t.min_milli_c),
        opt_c(t.max_milli_c),
        opt_c(t.mkt_milli_c)
    );
    println!(
        "excursions {} totalling {}",
        t.excursions.len(),
        minutes(t.excursion_ms_total)
    );
    for e in &t.excursions {
        println!(
            "  - {} for {}{}, peak {}, device {}",
            fmt_time_ms(e.start_ms),
            minutes(e.duration_ms),
            if e.open { " (open)" } else { "" },
            fmt_milli_c(e.peak_milli_c),
            e.device_id
        );
    }
    println!(
        "verdict    {} (device-signed readings)",
        verdict_name(t.verdict)
    );
    for r in &t.reasons {
        println!("  - {r}");
    }
    if let Some(a) = t.attested.as_deref() {
        println!(
            "attested   {} reading(s) reported by {} (min {}, max {}, MKT {}), {} excursion(s) totalling {}",
            a.reading_count,
            t.attested_by.join(", "),
            opt_c(a.min_milli_c),
            opt_c(a.max_milli_c),
            opt_c(a.mkt_milli_c),
            a.excursions.len(),
            minutes(a.excursion_ms_total)
        );
        println!(
            "           verdict {} (member-attested readings)",
            verdict_name(a.verdict)
        );
        for r in &a.reasons {
            println!("  - {r}");
        }
    }
}

/// A device record as JSON.
pub(crate) fn device_json(d: &pb::DeviceRecord) -> Value {
    json!({
        "device_id": d.device_id,
        "owner": d.owner,
        "scheme": pb::SignatureScheme::try_from(d.scheme).unwrap_or_default().as_str_name(),
        "public_key": hex::encode(&d.public_key),
        "device_type": d.device_type,
        "registered_height": d.registered_height,
        "revoked": d.revoked,
        "revoked_height": d.revoked_height,
        "revoke_reason": d.revoke_reason,
        "last_sequence": d.last_sequence,
        "sequence_gaps": d.sequence_gaps,
        "key_rotations": d.key_rotations,
        "flagged_as_cloned": crate::ledger::conflicts::flags(d),
    })
}

/// A transaction body, decoded for display (it was checked by the node when admitted).
pub(crate) fn body_json(tx: &pb::SignedTx) -> Value {
    match pb::TxBody::decode(tx.body.as_slice()) {
        Ok(b) => {
            let signer = b.signer.unwrap_or_default();
            json!({
                "chain_id": b.chain_id,
                "signer": signer.id,
                "signer_kind": enum_name(pb::SignerKind::try_from(signer.kind).unwrap_or_default().as_str_name(), "SIGNER_KIND_"),
                "sequence": b.sequence,
                "time_ms": b.time_ms,
                "action": b.action.map(|a| format!("{a:?}")),
            })
        }
        Err(e) => json!({"undecodable": e.to_string()}),
    }
}

/// A block header as JSON.
pub(crate) fn header_json(block: &pb::Block) -> Value {
    match pb::BlockHeader::decode(block.header.as_slice()) {
        Ok(h) => json!({
            "chain_id": h.chain_id,
            "height": h.height,
            "hash": hex::encode(blake3::hash(&block.header).as_bytes()),
            "prev_hash": hex::encode(&h.prev_hash),
            "tx_root": hex::encode(&h.tx_root),
            "results_root": hex::encode(&h.results_root),
            "state_commitment": hex::encode(&h.state_commitment),
            "proposer": h.proposer,
            "view": h.view,
            "time_ms": h.time_ms,
            "tx_count": h.tx_count,
        }),
        Err(e) => json!({"undecodable": e.to_string()}),
    }
}

/// Prints a JSON value, pretty.
pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
