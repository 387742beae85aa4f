//! A shipment's events as an EPCIS 2.0 JSON-LD document.
//!
//! Native actions map to CBV 2.0 events: creation → ObjectEvent ADD `commissioning`
//! with the products as `quantityList`; attaching a logger → AssociationEvent ADD
//! `installing`; shipping → ObjectEvent OBSERVE `shipping` / `in_transit` with
//! `possessing_party` (and `owning_party`) in `sourceList` / `destinationList`;
//! receiving → `receiving` / `in_progress` (or `arriving` / … for the final delivery);
//! customs → `inspecting` / `conformant` or `holding` / `non_conformant`; a device's
//! reading → ObjectEvent OBSERVE `sensor_reporting` with a `sensorElementList`. Imported
//! EPCIS events are written back exactly as recorded. Member ids, device ids and
//! shipment ids that are not URIs become `urn:tracechain:<kind>:<id>`, since EPCIS
//! identifiers must be URIs. `eventID` is `urn:tracechain:tx:<tx id>`.

use serde_json::{Value, json};
use tracechain_proto::v1::{self as pb, tx_body::Action};

use super::{EpcisError, vocab};
use crate::{
    tx::{CheckedTx, SignerKind},
    units::fmt_time_ms,
};

/// The EPCIS 2.0 JSON-LD context.
pub const CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

/// One event to export: a committed transaction and its block time.
pub struct ExportEvent<'a> {
    /// Block time, unix ms (the time of member actions).
    pub block_time_ms: i64,
    /// The transaction.
    pub tx: &'a CheckedTx,
}

/// An id as a URI: kept if it already is one, else `urn:tracechain:<kind>:<id>` with
/// every character outside the URN-safe set percent-encoded.
pub fn as_uri(kind: &str, id: &str) -> String {
    if vocab::is_uri_or_curie(id) && id.contains(':') && !id.starts_with(':') {
        return id.to_string();
    }
    let mut out = format!("urn:tracechain:{kind}:");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An xsd:dateTime in UTC with milliseconds (`2024-03-02T09:00:00.000Z`).
pub fn time(ms: i64) -> String {
    // "2024-03-02 09:00:00Z" → "2024-03-02T09:00:00.000Z" with milliseconds.
    let base = fmt_time_ms(ms).replacen(' ', "T", 1);
    format!("{}.{:03}Z", base.trim_end_matches('Z'), ms.rem_euclid(1000))
}

fn decimal(milli: i64) -> Value {
    // Exact in f64 for every value a reading can hold (|x| < 2^53 thousandths).
    json!(milli as f64 / 1000.0)
}

fn party(kind: &str, id: &str) -> Value {
    json!({ "type": kind, "source": as_uri("member", id) })
}

fn dest(kind: &str, id: &str) -> Value {
    json!({ "type": kind, "destination": as_uri("member", id) })
}

fn base(
    event_type: &str,
    action: Option<&str>,
    ms: i64,
    tx: &CheckedTx,
    biz_step: &str,
) -> serde_json::Map<String, Value> {
    let mut e = serde_json::Map::new();
    e.insert("type".into(), json!(event_type));
    e.insert(
        "eventID".into(),
        json!(format!("urn:tracechain:tx:{}", tx.id)),
    );
    e.insert("eventTime".into(), json!(time(ms)));
    e.insert("eventTimeZoneOffset".into(), json!("+00:00"));
    if let Some(a) = action {
        e.insert("action".into(), json!(a));
    }
    e.insert("bizStep".into(), json!(biz_step));
    e
}

fn location(e: &mut serde_json::Map<String, Value>, key: &str, loc: &str) {
    if !loc.is_empty() {
        e.insert(key.into(), json!({ "id": as_uri("location", loc) }));
    }
}

/// One transaction as an EPCIS event (or `None` for actions that are not events of a
/// shipment, e.g. device lifecycle).
pub fn event(shipment_id: &str, ev: &ExportEvent<'_>) -> Result<Option<Value>, EpcisError> {
    let tx = ev.tx;
    let ship = as_uri("shipment", shipment_id);
    let at = ev.block_time_ms;
    let v = match &tx.action {
        Action::CreateShipment(a) => {
            let mut e = base("ObjectEvent", Some("ADD"), at, tx, "commissioning");
            e.insert("epcList".into(), json!([ship]));
            e.insert("disposition".into(), json!("active"));
            let q: Vec<Value> = a
                .products
                .iter()
                .filter(|p| !p.epc.is_empty())
                .map(|p| {
                    let mut q =
                        json!({ "epcClass": as_uri("product", &p.epc), "quantity": p.quantity });
                    if vocab::check_unit(&p.uom).is_ok() {
                        q["uom"] = json!(p.uom);
                    }
                    q
                })
                .collect();
            if !q.is_empty() {
                e.insert("quantityList".into(), json!(q));
            }
            location(&mut e, "readPoint", &a.origin_location);
            let owner = if a.owner.is_empty() {
                &tx.signer.id
            } else {
                &a.owner
            };
            e.insert(
                "destinationList".into(),
                json!([
                    dest("possessing_party", &tx.signer.id),
                    dest("owning_party", owner)
                ]),
            );
            e
        }
        Action::AttachDevice(a) => {
            let mut e = base("AssociationEvent", Some("ADD"), at, tx, "installing");
            e.insert("parentID".into(), json!(ship));
            e.insert("childEPCs".into(), json!([as_uri("device", &a.device_id)]));
            e
        }
        Action::Ship(a) => {
            let mut e = base("ObjectEvent", Some("OBSERVE"), at, tx, "shipping");
            e.insert("epcList".into(), json!([ship]));
            e.insert("disposition".into(), json!("in_transit"));
            location(&mut e, "readPoint", &a.location);
            let mut sources = vec![party("possessing_party", &tx.signer.id)];
            let mut dests = vec![dest("possessing_party", &a.to_custodian)];
            if !a.new_owner.is_empty() {
                sources.push(party("owning_party", &tx.signer.id));
                dests.push(dest("owning_party", &a.new_owner));
            }
            e.insert("sourceList".into(), json!(sources));
            e.insert("destinationList".into(), json!(dests));
            e
        }
        Action::Receive(a) => {
            let mut e = base("ObjectEvent", Some("OBSERVE"), at, tx, "receiving");
            e.insert("epcList".into(), json!([ship]));
            e.insert(
                "disposition".into(),
                json!(if a.final_delivery {
                    "active"
                } else {
                    "in_progress"
                }),
            );
            location(&mut e, "readPoint", &a.location);
            e.insert(
                "destinationList".into(),
                json!([dest("possessing_party", &tx.signer.id)]),
            );
            e
        }
        Action::Customs(a) => {
            let held = a.outcome == pb::CustomsOutcome::Held as i32;
            let mut e = base(
                "ObjectEvent",
                Some("OBSERVE"),
                at,
                tx,
                if held { "holding" } else { "inspecting" },
            );
            e.insert("epcList".into(), json!([ship]));
            e.insert(
                "disposition".into(),
                json!(if held { "non_conformant" } else { "conformant" }),
            );
            location(&mut e, "readPoint", &a.location);
            e
        }
        Action::SensorReport(r) if tx.signer.kind == SignerKind::Device => {
            let mut e = base(
                "ObjectEvent",
                Some("OBSERVE"),
                r.observed_at_ms,
                tx,
                "sensor_reporting",
            );
            e.insert("epcList".into(), json!([ship]));
            let device = as_uri("device", &tx.signer.id);
            let mut reports = vec![json!({
                "type": "Temperature",
                "value": decimal(i64::from(r.temperature_milli_c)),
                "uom": "CEL",
            })];
            if let Some(h) = r.humidity_permille {
                reports.push(json!({ "type": "RelativeHumidity", "value": decimal(i64::from(h) * 100), "uom": "P1" }));
            }
            e.insert(
                "sensorElementList".into(),
                json!([{
                    "sensorMetadata": { "time": time(r.observed_at_ms), "deviceID": device },
                    "sensorReport": reports,
                }]),
            );
            e
        }
        Action::RecordEpcisEvent(r) => {
            let v: Value = serde_json::from_str(&r.event_json).map_err(|e| {
                EpcisError::Export(format!("recorded event {} is not JSON: {e}", tx.id))
            })?;
            return Ok(Some(v));
        }
        _ => return Ok(None),
    };
    Ok(Some(Value::Object(v)))
}

/// One transaction as an EPCIS event, whatever shipment it is about (the one its action
/// names), or `None` for actions that are not events (device lifecycle).
pub fn any_event(ev: &ExportEvent<'_>) -> Result<Option<Value>, EpcisError> {
    let shipment = match &ev.tx.action {
        Action::CreateShipment(a) => a.shipment_id.as_str(),
        Action::AttachDevice(a) => &a.shipment_id,
        Action::Ship(a) => &a.shipment_id,
        Action::Receive(a) => &a.shipment_id,
        Action::Customs(a) => &a.shipment_id,
        Action::SensorReport(a) => &a.shipment_id,
        _ => "",
    };
    event(shipment, ev)
}

/// The document of a shipment's events, in chain order.
pub fn document(
    shipment_id: &str,
    events: &[ExportEvent<'_>],
    created_ms: i64,
) -> Result<Value, EpcisError> {
    let mut list = Vec::with_capacity(events.len());
    for ev in events {
        if let Some(e) = event(shipment_id, ev)? {
            list.push(e);
        }
    }
    Ok(json!({
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": time(created_ms),
        "epcisBody": { "eventList": list },
    }))
}
