//! What is packed in what, over time: the rules of the genesis rule
//! [`ContainmentRule::Tracked`](crate::genesis::ContainmentRule::Tracked).
//!
//! Packing changes come from EPCIS AggregationEvents (ADD packs its `childEPCs` into its
//! `parentID`; DELETE takes them out, or everything when it names no child) and from
//! shipments: a shipment holds the instance-level products it was created with (an
//! SGTIN, an SSCC, ...; a lot or a class is not a thing that can be in one place) until
//! its final delivery empties it. Things are named by their identifier keys
//! ([`crate::identifiers::key`]), so the URN and the Digital Link of one pallet are one
//! container.
//!
//! The rules, each refused with [`pb::ResultCode::ContainmentConflict`] and a reason,
//! changing nothing:
//! - a thing is inside at most one container at a time: packing it into another needs
//!   a DELETE from the first;
//! - a DELETE takes out only what is inside that container, and not before it went in;
//! - nothing is packed inside itself, directly or through the containers around it;
//! - at most [`MAX_CHILDREN`] things in one container, [`MAX_NESTING`] containers around
//!   one thing.
//!
//! And custody: what is inside a shipment that is in transit, or in the custody of
//! another member, is not repacked ([`pb::ResultCode::InTransit`],
//! [`pb::ResultCode::NotCustodian`]); a delivered shipment takes nothing more in.
//!
//! State: `a/<key>` ([`pb::Containment`]) is where a thing is now and its stays before
//! (the last [`MAX_PERIODS`]); `k/<key>` ([`pb::Contents`]) what a container holds now.
//! What a container held at an earlier time is replayed from the events that name it
//! ([`contents_at`]): every change of its contents names it.

use serde_json::Value;
use tracechain_proto::v1::{self as pb, ResultCode as Code, tx_body::Action};

use crate::{
    BlockContext, Rejection, identifiers,
    state::{self, StateError, TxState},
};

/// Most things one container holds.
pub const MAX_CHILDREN: usize = 10_000;
/// Most containers around one thing (a case in a pallet in a container in a ship is 3).
pub const MAX_NESTING: usize = 16;
/// Stays kept per thing; older ones are dropped and counted.
pub const MAX_PERIODS: usize = 64;

/// What a packing change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Packs the children into the parent.
    Add,
    /// Takes the children out of the parent; all of them when `children` is empty.
    Delete,
}

/// A packing change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Add or delete.
    pub packing: Packing,
    /// The container, as written.
    pub parent: String,
    /// The things, as written; for a DELETE, empty means everything inside.
    pub children: Vec<String>,
    /// When, unix ms: the event's time, else the block's.
    pub time_ms: i64,
}

fn conflict<T>(message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(Code::ContainmentConflict, message))
}

/// The packing change an EPCIS event describes: an AggregationEvent ADD or DELETE with
/// instance-level children (`childEPCs`), or a DELETE that names no child at all. `None`
/// for anything else (OBSERVE, other event types, an ADD of quantities only). An ADD or
/// DELETE without a parentID is refused.
pub fn of_event(e: &pb::RecordEpcisEvent, block_time_ms: i64) -> Result<Option<Change>, Rejection> {
    let event = serde_json::from_str::<Value>(&e.event_json).ok();
    change(e, event.as_ref(), block_time_ms)
}

/// [`of_event`] with the event's JSON already parsed (`None`: it does not parse).
pub fn change(
    e: &pb::RecordEpcisEvent,
    event: Option<&Value>,
    block_time_ms: i64,
) -> Result<Option<Change>, Rejection> {
    if e.event_type != pb::EpcisEventType::Aggregation as i32 {
        return Ok(None);
    }
    let packing = match e.action.as_str() {
        "ADD" => Packing::Add,
        "DELETE" => Packing::Delete,
        _ => return Ok(None),
    };
    let Some(event) = event else {
        return Err(Rejection::new(
            Code::InvalidArgument,
            "the event's JSON does not parse",
        ));
    };
    let Some(parent) = event["parentID"].as_str().filter(|p| !p.is_empty()) else {
        return Err(Rejection::new(
            Code::InvalidArgument,
            format!("an AggregationEvent {} needs a parentID", e.action),
        ));
    };
    let children: Vec<String> = event["childEPCs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let quantities = event["childQuantityList"]
        .as_array()
        .is_some_and(|q| !q.is_empty());
    // An ADD of quantities only, or a DELETE of quantities only: no instance changes.
    if children.is_empty() && (packing == Packing::Add || quantities) {
        return Ok(None);
    }
    Ok(Some(Change {
        packing,
        parent: parent.to_string(),
        children,
        time_ms: if e.event_time_ms > 0 {
            e.event_time_ms
        } else {
            block_time_ms
        },
    }))
}

/// Whether an identifier names one thing (an SGTIN, an SSCC, a GIAI, ...) rather than a
/// class or lot of them: only a thing is in one place at a time.
pub fn is_instance(identifier: &str) -> bool {
    if identifier.starts_with("urn:epc:class:") || identifier.starts_with("urn:epc:idpat:") {
        return false;
    }
    let key = identifiers::key(identifier);
    let Some(rest) = key.strip_prefix("https://id.gs1.org/") else {
        return true;
    };
    let mut parts = rest.split('/');
    match (parts.next(), parts.next()) {
        // A GTIN is a class; with a serial (21) or a TPX (235) it is one item.
        (Some("01"), _) => rest.contains("/21/") || rest.contains("/235/"),
        // A GRAI without its serial part is an asset type.
        (Some("8003"), Some(value)) => value.len() > 14,
        _ => true,
    }
}

/// The containers around `key`, innermost first.
fn containers_around(
    st: &TxState<'_>,
    key: &str,
) -> Result<Result<Vec<String>, Rejection>, StateError> {
    let mut out: Vec<String> = Vec::new();
    let mut current = key.to_string();
    while let Some(c) = st.read::<pb::Containment>(&state::containment_key(&current))? {
        if c.parent.is_empty() {
            break;
        }
        if out.len() == MAX_NESTING || out.contains(&c.parent) || c.parent == key {
            return Ok(conflict(format!(
                "{key} is nested in more than {MAX_NESTING} containers"
            )));
        }
        out.push(c.parent.clone());
        current = c.parent;
    }
    Ok(Ok(out))
}

/// Whether `signer` may change what is in `key` (or take `key` out of where it is):
/// not while a shipment around it (or it, if it is a shipment) is in transit or in
/// another member's custody.
fn may_repack(
    st: &TxState<'_>,
    signer: &str,
    key: &str,
    around: &[String],
) -> Result<Result<(), Rejection>, StateError> {
    for container in std::iter::once(key).chain(around.iter().map(String::as_str)) {
        let Some(contents) = st.read::<pb::Contents>(&state::contents_key(container))? else {
            continue;
        };
        if contents.shipment_id.is_empty() {
            continue;
        }
        let Some(s) = state::shipment(st, &contents.shipment_id)? else {
            continue;
        };
        let inside = if container == key {
            String::new()
        } else {
            format!("{key} is in shipment {}: ", s.shipment_id)
        };
        if s.status == pb::ShipmentStatus::InTransit as i32 {
            return Ok(Err(Rejection::new(
                Code::InTransit,
                format!("{inside}shipment {} is in transit", s.shipment_id),
            )));
        }
        if s.status != pb::ShipmentStatus::Delivered as i32 && s.custodian != signer {
            return Ok(Err(Rejection::new(
                Code::NotCustodian,
                format!(
                    "{inside}shipment {} is in the custody of {}, not {signer}",
                    s.shipment_id, s.custodian
                ),
            )));
        }
    }
    Ok(Ok(()))
}

fn containment(st: &TxState<'_>, key: &str) -> Result<pb::Containment, StateError> {
    Ok(st
        .read::<pb::Containment>(&state::containment_key(key))?
        .unwrap_or_else(|| pb::Containment {
            key: key.to_string(),
            ..Default::default()
        }))
}

fn contents(st: &TxState<'_>, key: &str) -> Result<pb::Contents, StateError> {
    Ok(st
        .read::<pb::Contents>(&state::contents_key(key))?
        .unwrap_or_else(|| pb::Contents {
            key: key.to_string(),
            ..Default::default()
        }))
}

/// Applies a packing change by `signer`: stages the writes, or says which rule it breaks.
pub(crate) fn apply(
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    change: &Change,
) -> Result<Result<(), Rejection>, StateError> {
    let parent = identifiers::key(&change.parent);
    let around = match containers_around(st, &parent)? {
        Ok(around) => around,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(r) = may_repack(st, signer, &parent, &around)? {
        return Ok(Err(r));
    }
    let mut held = contents(st, &parent)?;
    match change.packing {
        Packing::Add => {
            if !held.shipment_id.is_empty()
                && let Some(s) = state::shipment(st, &held.shipment_id)?
                && s.status == pb::ShipmentStatus::Delivered as i32
            {
                return Ok(Err(Rejection::new(
                    Code::ShipmentClosed,
                    format!("shipment {} was delivered and is closed", s.shipment_id),
                )));
            }
            for child in &change.children {
                if let Err(r) = pack(st, ctx, signer, change, &parent, &around, &mut held, child)? {
                    return Ok(Err(r));
                }
            }
        }
        Packing::Delete => {
            // Each thing once, whatever forms of its id the event lists.
            let children: std::collections::BTreeSet<String> = if change.children.is_empty() {
                held.children.iter().cloned().collect()
            } else {
                change
                    .children
                    .iter()
                    .map(|c| identifiers::key(c))
                    .collect()
            };
            for child in &children {
                if let Err(r) = unpack(st, ctx, signer, Some(change.time_ms), &mut held, child)? {
                    return Ok(Err(r));
                }
            }
        }
    }
    st.write(state::contents_key(&parent), held);
    Ok(Ok(()))
}

/// Packs one child into `parent` (whose contents are `held`).
#[allow(clippy::too_many_arguments)]
fn pack(
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    change: &Change,
    parent: &str,
    around: &[String],
    held: &mut pb::Contents,
    child: &str,
) -> Result<Result<(), Rejection>, StateError> {
    let key = identifiers::key(child);
    if key == parent {
        return Ok(conflict(format!("{child} cannot be packed inside itself")));
    }
    if around.contains(&key) {
        return Ok(conflict(format!(
            "packing {child} into {} would put it inside itself: {} is inside it",
            change.parent, change.parent
        )));
    }
    let mut record = containment(st, &key)?;
    if record.parent == parent {
        return Ok(Ok(()));
    }
    if !record.parent.is_empty() {
        let since = record.periods.last().map_or(String::new(), |p| {
            format!(" (packed at height {} by {})", p.from_height, p.added_by)
        });
        return Ok(conflict(format!(
            "{child} is already inside {}{since}: a DELETE from it must come first",
            record.parent
        )));
    }
    // A shipment packed into something must be its packer's to move.
    if let Err(r) = may_repack(st, signer, &key, &[])? {
        return Ok(Err(r));
    }
    let at = match held.children.binary_search(&key) {
        Ok(_) => return Ok(Ok(())),
        Err(at) => at,
    };
    if held.children.len() >= MAX_CHILDREN {
        return Ok(conflict(format!(
            "{} already holds {MAX_CHILDREN} things, the most one container may hold",
            change.parent
        )));
    }
    held.children.insert(at, key.clone());
    record.parent = parent.to_string();
    record.periods.push(pb::ContainmentPeriod {
        parent: parent.to_string(),
        from_height: ctx.height,
        from_ms: change.time_ms,
        added_by: signer.to_string(),
        ..Default::default()
    });
    if record.periods.len() > MAX_PERIODS {
        let excess = record.periods.len() - MAX_PERIODS;
        record.periods.drain(..excess);
        record.periods_dropped += excess as u64;
    }
    st.write(state::containment_key(&key), record);
    Ok(Ok(()))
}

/// Takes one child (by key) out of the container whose contents are `held`, at
/// `time_ms` (an event's time: not before the child went in), or when `None`, at block
/// time (or when it went in, if that is later: a shipment's delivery is never refused
/// for the time an event claims).
fn unpack(
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    time_ms: Option<i64>,
    held: &mut pb::Contents,
    key: &str,
) -> Result<Result<(), Rejection>, StateError> {
    let mut record = containment(st, key)?;
    if record.parent != held.key {
        let elsewhere = if record.parent.is_empty() {
            String::new()
        } else {
            format!(" (it is inside {})", record.parent)
        };
        return Ok(conflict(format!(
            "{key} is not inside {}{elsewhere}",
            held.key
        )));
    }
    if let Some(open) = record.periods.last_mut() {
        let time_ms = time_ms.unwrap_or(ctx.time_ms.max(open.from_ms));
        if time_ms < open.from_ms {
            return Ok(conflict(format!(
                "{key} would be taken out of {} at {} ms, before it was packed at {} ms",
                held.key, time_ms, open.from_ms
            )));
        }
        open.to_height = ctx.height;
        open.to_ms = time_ms;
        open.removed_by = signer.to_string();
    }
    record.parent.clear();
    if let Ok(at) = held.children.binary_search(&key.to_string()) {
        held.children.remove(at);
    }
    st.write(state::containment_key(key), record);
    Ok(Ok(()))
}

/// A new shipment holds its instance-level products: they are packed into it, by its
/// creator, at block time.
pub(crate) fn fill_shipment(
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    a: &pb::CreateShipment,
) -> Result<Result<(), Rejection>, StateError> {
    let parent = identifiers::key(&a.shipment_id);
    let around = match containers_around(st, &parent)? {
        Ok(around) => around,
        Err(r) => return Ok(Err(r)),
    };
    let mut held = contents(st, &parent)?;
    if !held.shipment_id.is_empty() {
        return Ok(conflict(format!(
            "{} is already the container of shipment {}",
            a.shipment_id, held.shipment_id
        )));
    }
    held.shipment_id = a.shipment_id.clone();
    let change = Change {
        packing: Packing::Add,
        parent: a.shipment_id.clone(),
        children: Vec::new(),
        time_ms: ctx.time_ms,
    };
    for product in a.products.iter().filter(|p| is_instance(&p.epc)) {
        if let Err(r) = pack(
            st,
            ctx,
            signer,
            &change,
            &parent,
            &around,
            &mut held,
            &product.epc,
        )? {
            return Ok(Err(r));
        }
    }
    st.write(state::contents_key(&parent), held);
    Ok(Ok(()))
}

/// A delivered shipment is empty: its final receipt takes everything out, at block time.
pub(crate) fn empty_shipment(
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    shipment_id: &str,
) -> Result<Result<(), Rejection>, StateError> {
    let parent = identifiers::key(shipment_id);
    let Some(mut held) = st.read::<pb::Contents>(&state::contents_key(&parent))? else {
        return Ok(Ok(()));
    };
    for child in held.children.clone() {
        if let Err(r) = unpack(st, ctx, signer, None, &mut held, &child)? {
            return Ok(Err(r));
        }
    }
    st.write(state::contents_key(&parent), held);
    Ok(Ok(()))
}

/// What a container held at `at_ms` (event time), replayed from the committed
/// transactions that name it (`recorded`, in chain order: every change of its contents
/// names it). Keys, sorted.
pub fn contents_at(
    container: &str,
    recorded: &[crate::provenance::Recorded],
    at_ms: i64,
) -> Vec<String> {
    let parent = identifiers::key(container);
    let mut held = std::collections::BTreeSet::new();
    for r in recorded {
        let native_then = r.block_time_ms <= at_ms;
        match &r.action {
            Action::CreateShipment(a)
                if native_then && identifiers::key(&a.shipment_id) == parent =>
            {
                held.extend(
                    a.products
                        .iter()
                        .filter(|p| is_instance(&p.epc))
                        .map(|p| identifiers::key(&p.epc)),
                );
            }
            Action::Receive(a)
                if native_then
                    && a.final_delivery
                    && identifiers::key(&a.shipment_id) == parent =>
            {
                held.clear();
            }
            Action::RecordEpcisEvent(e) => {
                let Ok(Some(change)) = of_event(e, r.block_time_ms) else {
                    continue;
                };
                if identifiers::key(&change.parent) != parent || change.time_ms > at_ms {
                    continue;
                }
                match change.packing {
                    Packing::Add => {
                        held.extend(change.children.iter().map(|c| identifiers::key(c)))
                    }
                    Packing::Delete if change.children.is_empty() => held.clear(),
                    Packing::Delete => {
                        for c in &change.children {
                            held.remove(&identifiers::key(c));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    held.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::Recorded;

    const PALLET: &str = "urn:epc:id:sscc:4012345.0000000077";

    fn packing(height: u64, action: &str, children: &[&str], at_ms: i64) -> Recorded {
        let mut event = serde_json::json!({"type": "AggregationEvent", "action": action,
            "parentID": "https://id.gs1.org/00/040123450000000771"});
        if !children.is_empty() {
            event["childEPCs"] = serde_json::json!(children);
        }
        Recorded {
            height,
            index: 0,
            block_time_ms: at_ms + 5,
            signer: "farm".into(),
            action: Action::RecordEpcisEvent(pb::RecordEpcisEvent {
                event_type: pb::EpcisEventType::Aggregation as i32,
                action: action.into(),
                event_time_ms: at_ms,
                event_json: event.to_string(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn what_a_container_held_at_a_time_is_replayed_from_its_events() {
        let a = "urn:epc:id:sgtin:4012345.011111.A";
        let b = "urn:epc:id:sgtin:4012345.011111.B";
        let history = [
            packing(2, "ADD", &[a, b], 100),
            packing(3, "OBSERVE", &[a], 150),
            packing(4, "DELETE", &[a], 200),
            packing(5, "DELETE", &[], 300),
        ];
        let key = |id: &str| identifiers::key(id);
        assert!(contents_at(PALLET, &history, 99).is_empty());
        assert_eq!(contents_at(PALLET, &history, 100), [key(a), key(b)]);
        assert_eq!(contents_at(PALLET, &history, 250), [key(b)]);
        assert!(contents_at(PALLET, &history, 300).is_empty());
    }

    #[test]
    fn things_are_instances_and_classes_are_not() {
        for thing in [
            "urn:epc:id:sgtin:4012345.011111.A",
            "urn:epc:id:sscc:4012345.0000000077",
            "https://example.com/01/04012345111118/21/7",
            "urn:epc:id:giai:4012345.1",
            "urn:example:pallet:9",
        ] {
            assert!(is_instance(thing), "{thing}");
        }
        for class in [
            "urn:epc:class:lgtin:4012345.012345.998877",
            "urn:epc:idpat:sgtin:4012345.011111.*",
            "https://id.gs1.org/01/04012345111118/10/L1",
            "https://id.gs1.org/01/04012345111118",
        ] {
            assert!(!is_instance(class), "{class}");
        }
    }

    #[test]
    fn only_adds_and_deletes_of_aggregations_change_packing() {
        let e = |event_type: pb::EpcisEventType, action: &str, json: &str| pb::RecordEpcisEvent {
            event_type: event_type as i32,
            action: action.into(),
            event_json: json.into(),
            ..Default::default()
        };
        let agg = pb::EpcisEventType::Aggregation;
        let parent = r#""parentID":"urn:epc:id:sscc:4012345.0000000077""#;
        assert_eq!(
            of_event(&e(pb::EpcisEventType::Object, "ADD", "{}"), 7),
            Ok(None)
        );
        assert_eq!(of_event(&e(agg, "OBSERVE", "{}"), 7), Ok(None));
        // Quantities only: lots are not followed.
        let qty = format!(
            r#"{{{parent},"childQuantityList":[{{"epcClass":"urn:epc:class:lgtin:4012345.012345.1"}}]}}"#
        );
        assert_eq!(of_event(&e(agg, "ADD", &qty), 7), Ok(None));
        assert_eq!(of_event(&e(agg, "DELETE", &qty), 7), Ok(None));
        let all = of_event(&e(agg, "DELETE", &format!("{{{parent}}}")), 7)
            .unwrap()
            .unwrap();
        assert_eq!(
            (all.packing, all.children.len(), all.time_ms),
            (Packing::Delete, 0, 7)
        );
        let bad = of_event(&e(agg, "ADD", r#"{"childEPCs":["x:y"]}"#), 7).unwrap_err();
        assert_eq!(bad.code, Code::InvalidArgument);
    }
}
