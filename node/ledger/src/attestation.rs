//! Imported sensor data as member-attested evidence: the rules of the genesis rule
//! [`AttestationRule::Twin`](crate::genesis::AttestationRule::Twin).
//!
//! An EPCIS AssociationEvent ADD ties loggers (its `childEPCs`) to a container (its
//! `parentID`); DELETE unties them (`g/<logger key>`, [`pb::Association`]). Tying a
//! logger to a shipment is for a party to the shipment (creator, owner, custodian,
//! consignee), as is recording anything in its history.
//!
//! An imported event's temperature reports (`sensorElementList`, type Temperature in
//! CEL, FAH or KEL; the value, else the mean) then count for the shipments the event names
//! and for the shipment each report's logger is tied to, when the member that recorded it
//! is a party to the shipment and it is not delivered. They go into the twin's
//! **attested** record — readings, excursions, MKT and verdict under the shipment's
//! policy, computed by the same code as device-signed readings ([`crate::twin`]) — and
//! never into the device-signed record: a verdict says which evidence it rests on. A
//! logger's report at or before its last attested one on the shipment is not applied
//! (a document sent again, or out of order); reports within one event are applied in
//! time order.

use serde_json::Value;
use tracechain_proto::v1::{self as pb, ResultCode as Code};

use crate::{
    BlockContext, Rejection,
    genesis::Genesis,
    identifiers,
    state::{self, StateError, TxState},
    twin,
};

/// Key of a logger's association (`g/<identifier key>`).
pub fn association_key(device_key: &str) -> Vec<u8> {
    [b"g/".as_slice(), device_key.as_bytes()].concat()
}

/// Whether `member` is a party to the shipment.
pub(crate) fn party(s: &pb::ShipmentTwin, member: &str) -> bool {
    [&s.creator, &s.owner, &s.custodian, &s.consignee]
        .iter()
        .any(|p| p.as_str() == member)
}

/// The shipment an identifier names, if it is one: by the container record (any form of
/// its id), else by the id as written.
fn shipment_of(st: &TxState<'_>, id: &str) -> Result<Option<pb::ShipmentTwin>, StateError> {
    let key = identifiers::key(id);
    if let Some(c) = st.read::<pb::Contents>(&state::contents_key(&key))?
        && !c.shipment_id.is_empty()
    {
        return state::shipment(st, &c.shipment_id);
    }
    state::shipment(st, id)
}

/// Applies an AssociationEvent ADD or DELETE: ties or unties its loggers. Returns the
/// shipment the parent is, if it is one (the event joins its history).
pub(crate) fn associate(
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    e: &pb::RecordEpcisEvent,
    event: Option<&Value>,
) -> Result<Result<Option<String>, Rejection>, StateError> {
    if e.event_type != pb::EpcisEventType::Association as i32
        || !(e.action == "ADD" || e.action == "DELETE")
    {
        return Ok(Ok(None));
    }
    let Some(event) = event else {
        return Ok(Err(Rejection::new(
            Code::InvalidArgument,
            "the event's JSON does not parse",
        )));
    };
    let Some(parent) = event["parentID"].as_str().filter(|p| !p.is_empty()) else {
        return Ok(Err(Rejection::new(
            Code::InvalidArgument,
            format!("an AssociationEvent {} needs a parentID", e.action),
        )));
    };
    let shipment = shipment_of(st, parent)?;
    if let Some(s) = &shipment
        && !party(s, signer)
    {
        return Ok(Err(Rejection::new(
            Code::NotCustodian,
            format!(
                "only a party to shipment {} may tie a logger to it; {signer} is not one",
                s.shipment_id
            ),
        )));
    }
    let children = event["childEPCs"].as_array().cloned().unwrap_or_default();
    for child in children.iter().filter_map(Value::as_str) {
        let device = identifiers::key(child);
        let record = if e.action == "ADD" {
            pb::Association {
                device: device.clone(),
                container: identifiers::key(parent),
                container_id: parent.to_string(),
                since_height: ctx.height,
                by: signer.to_string(),
            }
        } else {
            pb::Association {
                device: device.clone(),
                since_height: ctx.height,
                by: signer.to_string(),
                ..Default::default()
            }
        };
        st.write(association_key(&device), record);
    }
    Ok(Ok(shipment.map(|s| s.shipment_id)))
}

/// A temperature report in m°C, if the reading is one this rule reads.
fn milli_c(r: &pb::EpcisSensorReading) -> Option<i32> {
    let kind = r.r#type.rsplit([':', '/', '-', '#']).next()?;
    if kind != "Temperature" {
        return None;
    }
    let v = i128::from(r.value_micro.or(r.mean_micro)?);
    let milli = match r.uom.as_str() {
        "CEL" => v / 1000,
        "FAH" => (v - 32_000_000) * 5 / 9 / 1000,
        "KEL" => (v - 273_150_000) / 1000,
        _ => return None,
    };
    i32::try_from(milli).ok()
}

/// The shipments an imported event's readings count for, each once, by id: those it
/// names and those its loggers are tied to, where `signer` is a party and which are not
/// delivered.
pub(crate) fn attest(
    genesis: &Genesis,
    st: &mut TxState<'_>,
    signer: &str,
    e: &pb::RecordEpcisEvent,
) -> Result<Vec<String>, StateError> {
    let mut readings: Vec<(&pb::EpcisSensorReading, i32)> = e
        .sensor_readings
        .iter()
        .filter_map(|r| milli_c(r).map(|m| (r, m)))
        .collect();
    if readings.is_empty() {
        return Ok(Vec::new());
    }
    readings.sort_by_key(|(r, _)| r.time_ms);
    // The shipments the event names, looked up once (an event may name many things),
    // and each logger's, once per logger.
    let mut named: Vec<String> = Vec::new();
    for id in &e.epcs {
        if let Some(s) = shipment_of(st, id)?
            && !named.contains(&s.shipment_id)
        {
            named.push(s.shipment_id);
        }
    }
    let mut tied: std::collections::BTreeMap<String, Option<String>> = Default::default();
    let mut touched: Vec<String> = Vec::new();
    for (r, milli) in readings {
        let mut targets: Vec<String> = named.clone();
        if !r.device_id.is_empty() {
            let device = identifiers::key(&r.device_id);
            if !tied.contains_key(&device) {
                let shipment = match st.read::<pb::Association>(&association_key(&device))? {
                    Some(a) if !a.container.is_empty() => {
                        shipment_of(st, &a.container_id)?.map(|s| s.shipment_id)
                    }
                    _ => None,
                };
                tied.insert(device.clone(), shipment);
            }
            targets.extend(tied.get(&device).cloned().flatten());
        }
        targets.sort();
        targets.dedup();
        for id in targets {
            let Some(mut s) = state::shipment(st, &id)? else {
                continue;
            };
            if !party(&s, signer) || s.status == pb::ShipmentStatus::Delivered as i32 {
                continue;
            }
            let logger = if r.device_id.is_empty() {
                format!("reported by {signer}")
            } else {
                r.device_id.clone()
            };
            let mut attested = s
                .attested
                .take()
                .map(|b| *b)
                .unwrap_or_else(|| pb::ShipmentTwin {
                    shipment_id: s.shipment_id.clone(),
                    policy: s.policy,
                    ..Default::default()
                });
            let newer = attested
                .tracks
                .iter()
                .find(|t| t.device_id == logger)
                .is_none_or(|t| t.readings == 0 || r.time_ms > t.last_observed_ms);
            if newer && r.time_ms > 0 {
                twin::apply_reading(
                    &mut attested,
                    &twin::Reading {
                        device_id: &logger,
                        observed_at_ms: r.time_ms,
                        milli_c: milli,
                        location: None,
                    },
                    genesis.mkt_rule(),
                );
                twin::recompute_verdict(&mut attested);
                if let Err(at) = s.attested_by.binary_search(&signer.to_string()) {
                    s.attested_by.insert(at, signer.to_string());
                }
                if !touched.contains(&s.shipment_id) {
                    touched.push(s.shipment_id.clone());
                }
            }
            s.attested = Some(Box::new(attested));
            st.write(state::shipment_key(&s.shipment_id), s);
        }
    }
    Ok(touched)
}
