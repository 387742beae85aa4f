//! The rules of each action. `apply` checks the signer, then the action; it stages
//! writes in the transaction's [`TxState`] and returns the histories the transaction
//! joins (a shipment's events, a device's lifecycle: for the indexes and for
//! `TxResult.history`), or the rule it broke.

use tracechain_proto::v1::{self as pb, ResultCode as Code, tx_body::Action};

use crate::{
    BlockContext, Rejection, attestation, conflicts, containment,
    epcis::hash,
    genesis::{
        AttestationRule, ContainmentRule, DeviceConflictRule, EventIdentity, Genesis, LineageRule,
        Role,
    },
    lineage,
    state::{self, StateError, TxState},
    twin,
    tx::{CheckedTx, SignerKind},
};

/// A rule outcome: the history entries of the transaction (empty if it joins none).
type Outcome = Result<Vec<pb::HistoryEntry>, Rejection>;

fn shipment_event(s: &pb::ShipmentTwin) -> Vec<pb::HistoryEntry> {
    vec![pb::HistoryEntry {
        kind: pb::HistoryKind::Shipment as i32,
        subject: s.shipment_id.clone(),
        seq: s.event_count,
    }]
}

/// Records an event on a shipment: its read point (if given), its place in the
/// shipment's history, and the updated twin; returns the history entry.
fn record_event(
    st: &mut TxState<'_>,
    mut s: pb::ShipmentTwin,
    location: &str,
) -> Vec<pb::HistoryEntry> {
    if !location.is_empty() {
        s.last_location = location.to_string();
    }
    s.event_count += 1;
    let history = shipment_event(&s);
    st.write(state::shipment_key(&s.shipment_id), s);
    history
}

fn device_event(d: &pb::DeviceRecord) -> Vec<pb::HistoryEntry> {
    vec![pb::HistoryEntry {
        kind: pb::HistoryKind::Device as i32,
        subject: d.device_id.clone(),
        seq: d.lifecycle_events,
    }]
}

fn reject<T>(code: Code, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}

/// Unwraps a rule check: a rejection ends the transaction, as its result.
macro_rules! rule {
    ($check:expr) => {
        match $check {
            Ok(value) => value,
            Err(rejection) => return Ok(Err(rejection)),
        }
    };
}

/// Applies `tx`. The outer error is a local store fault; the inner one a rule violation.
pub(super) fn apply(
    genesis: &Genesis,
    ctx: BlockContext,
    st: &mut TxState<'_>,
    tx: &CheckedTx,
) -> Result<Outcome, StateError> {
    Ok(match tx.signer.kind {
        SignerKind::Member => member_tx(genesis, ctx, st, tx)?,
        SignerKind::Device => device_tx(genesis, ctx, st, tx)?,
    })
}

// ---- signers -------------------------------------------------------------------

fn member_tx(
    genesis: &Genesis,
    ctx: BlockContext,
    st: &mut TxState<'_>,
    tx: &CheckedTx,
) -> Result<Outcome, StateError> {
    let signer = &tx.signer.id;
    let Some(member) = genesis.member(signer) else {
        return Ok(reject(
            Code::UnknownSigner,
            format!("{signer} is not a member"),
        ));
    };
    if tx.signer.public_key.as_slice() != member.admin_key.as_bytes() {
        return Ok(reject(
            Code::KeyMismatch,
            format!("the key that signed is not {signer}'s admin key"),
        ));
    }
    let key = state::member_key(signer);
    let mut account: pb::MemberAccount = st.read(&key)?.unwrap_or_else(|| pb::MemberAccount {
        member_id: signer.clone(),
        last_sequence: 0,
    });
    if tx.sequence <= account.last_sequence {
        return Ok(reject(
            Code::SequenceReplayed,
            format!(
                "sequence {} is not above {signer}'s last accepted sequence {}",
                tx.sequence, account.last_sequence
            ),
        ));
    }
    let outcome = match &tx.action {
        Action::RegisterDevice(a) => register_device(st, ctx, signer, a)?,
        Action::RotateDeviceKey(a) => rotate_device_key(st, signer, a)?,
        Action::RevokeDevice(a) => revoke_device(st, ctx, signer, a)?,
        Action::CreateShipment(a) => create_shipment(genesis, st, ctx, signer, a)?,
        Action::AttachDevice(a) => attach_device(st, signer, a)?,
        Action::Ship(a) => ship(genesis, st, signer, a)?,
        Action::Receive(a) => receive(genesis, st, ctx, signer, a)?,
        Action::Customs(a) => customs(genesis, st, signer, a)?,
        Action::SensorReport(_) => reject(
            Code::WrongSignerKind,
            "a sensor report must be signed by a device",
        ),
        Action::RecordEpcisEvent(a) => record_epcis_event(genesis, ctx, st, tx, a)?,
        Action::ReportDeviceConflict(a) => report_device_conflict(genesis, st, ctx, signer, a)?,
    };
    if outcome.is_ok() {
        account.last_sequence = tx.sequence;
        st.write(key, account);
    }
    Ok(outcome)
}

fn device_tx(
    genesis: &Genesis,
    ctx: BlockContext,
    st: &mut TxState<'_>,
    tx: &CheckedTx,
) -> Result<Outcome, StateError> {
    let id = &tx.signer.id;
    let Some(mut device) = state::device(st, id)? else {
        return Ok(reject(
            Code::UnknownDevice,
            format!("device {id} is not registered"),
        ));
    };
    if device.revoked {
        return Ok(reject(
            Code::DeviceRevoked,
            format!(
                "device {id} was revoked at height {}",
                device.revoked_height
            ),
        ));
    }
    if device.scheme != pb::SignatureScheme::from(tx.signer.scheme) as i32
        || device.public_key != tx.signer.public_key
    {
        return Ok(reject(
            Code::KeyMismatch,
            format!("the key that signed is not device {id}'s current key"),
        ));
    }
    if let Some(c) = conflicts::current_key_compromised(&device) {
        return Ok(reject(
            Code::DeviceKeyCompromised,
            format!(
                "device {id}'s key was proven to sign conflicting readings at height {}: nothing it signs is accepted until its owner {} rotates the key",
                c.height, device.owner
            ),
        ));
    }
    if tx.sequence <= device.last_sequence {
        return Ok(reject(
            Code::SequenceReplayed,
            format!(
                "sequence {} is not above device {id}'s last accepted sequence {} (replayed or out of order)",
                tx.sequence, device.last_sequence
            ),
        ));
    }
    let Action::SensorReport(report) = &tx.action else {
        return Ok(reject(
            Code::WrongSignerKind,
            "devices may only sign sensor reports",
        ));
    };
    let outcome = sensor_report(genesis, st, ctx, id, report)?;
    if outcome.is_ok() {
        // A skipped counter value is flagged, not rejected: the reading may be lost in
        // transit, but it can never be inserted later (sequences only go up).
        if tx.sequence > device.last_sequence + 1 && device.last_sequence > 0 {
            device.sequence_gaps += 1;
        }
        device.last_sequence = tx.sequence;
        st.write(state::device_key(id), device);
    }
    Ok(outcome)
}

// ---- devices -------------------------------------------------------------------

fn owned_device(
    st: &TxState<'_>,
    signer: &str,
    device_id: &str,
) -> Result<Result<pb::DeviceRecord, Rejection>, StateError> {
    Ok(match state::device(st, device_id)? {
        None => reject(
            Code::UnknownDevice,
            format!("device {device_id} is not registered"),
        ),
        Some(d) if d.owner != signer => reject(
            Code::NotDeviceOwner,
            format!("device {device_id} belongs to {}, not {signer}", d.owner),
        ),
        Some(d) if d.revoked => reject(
            Code::DeviceRevoked,
            format!(
                "device {device_id} was revoked at height {}",
                d.revoked_height
            ),
        ),
        Some(d) => Ok(d),
    })
}

fn register_device(
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    a: &pb::RegisterDevice,
) -> Result<Outcome, StateError> {
    if let Some(existing) = state::device(st, &a.device_id)? {
        return Ok(reject(
            Code::DeviceExists,
            format!(
                "device {} is already registered (owner {})",
                a.device_id, existing.owner
            ),
        ));
    }
    let record = pb::DeviceRecord {
        device_id: a.device_id.clone(),
        owner: signer.to_string(),
        scheme: a.scheme,
        public_key: a.public_key.clone(),
        device_type: a.device_type.clone(),
        registered_height: ctx.height,
        lifecycle_events: 1,
        ..Default::default()
    };
    let history = device_event(&record);
    st.write(state::device_key(&a.device_id), record);
    Ok(Ok(history))
}

fn rotate_device_key(
    st: &mut TxState<'_>,
    signer: &str,
    a: &pb::RotateDeviceKey,
) -> Result<Outcome, StateError> {
    let mut d = rule!(owned_device(st, signer, &a.device_id)?);
    d.scheme = a.scheme;
    d.public_key = a.public_key.clone();
    d.key_rotations += 1;
    d.lifecycle_events += 1;
    let history = device_event(&d);
    st.write(state::device_key(&a.device_id), d);
    Ok(Ok(history))
}

fn revoke_device(
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    a: &pb::RevokeDevice,
) -> Result<Outcome, StateError> {
    let mut d = rule!(owned_device(st, signer, &a.device_id)?);
    d.revoked = true;
    d.revoked_height = ctx.height;
    d.revoke_reason = a.reason.clone();
    d.lifecycle_events += 1;
    let history = device_event(&d);
    st.write(state::device_key(&a.device_id), d);
    Ok(Ok(history))
}

/// Records proof that a device's key signed conflicting readings ([`conflicts`]): any
/// member may report it, since the proof is in the two signatures. The key must be the
/// device's current one (a rotated key signs nothing any more) and not flagged yet (one
/// proof per key is enough: the key is refused from then on).
fn report_device_conflict(
    genesis: &Genesis,
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    a: &pb::ReportDeviceConflict,
) -> Result<Outcome, StateError> {
    if genesis.device_conflicts() == DeviceConflictRule::None {
        return Ok(reject(
            Code::BadEvidence,
            "this chain's genesis does not take device conflict reports (device_conflicts = \"none\")",
        ));
    }
    let proof = match conflicts::check(a, genesis.chain_id()) {
        Ok(proof) => proof,
        Err(why) => return Ok(reject(Code::BadEvidence, why)),
    };
    let id = &proof.device_id;
    let Some(mut device) = state::device(st, id)? else {
        return Ok(reject(
            Code::BadEvidence,
            format!("device {id} is not registered"),
        ));
    };
    if device.scheme != proof.scheme as i32 || device.public_key != proof.public_key {
        return Ok(reject(
            Code::BadEvidence,
            format!("the key that signed both is not device {id}'s current key"),
        ));
    }
    if let Some(c) = conflicts::current_key_compromised(&device) {
        return Ok(reject(
            Code::BadEvidence,
            format!(
                "device {id}'s key is already flagged (proof recorded at height {})",
                c.height
            ),
        ));
    }
    device.conflicts.push(proof.record(ctx.height, signer));
    device.lifecycle_events += 1;
    let history = device_event(&device);
    st.write(state::device_key(id), device);
    Ok(Ok(history))
}

// ---- shipments -----------------------------------------------------------------

fn open_shipment(
    st: &TxState<'_>,
    id: &str,
) -> Result<Result<pb::ShipmentTwin, Rejection>, StateError> {
    Ok(match state::shipment(st, id)? {
        None => reject(
            Code::UnknownShipment,
            format!("shipment {id} does not exist"),
        ),
        Some(s) if s.status == pb::ShipmentStatus::Delivered as i32 => reject(
            Code::ShipmentClosed,
            format!("shipment {id} was delivered and is closed"),
        ),
        Some(s) => Ok(s),
    })
}

fn not_held(s: &pb::ShipmentTwin) -> Result<(), Rejection> {
    if s.customs == pb::CustomsStatus::Held as i32 {
        return reject(
            Code::ShipmentOnHold,
            format!("shipment {} is held by customs", s.shipment_id),
        );
    }
    Ok(())
}

fn require_member(genesis: &Genesis, id: &str, what: &str) -> Result<(), Rejection> {
    if genesis.member(id).is_none() {
        return reject(Code::UnknownMember, format!("{what} {id} is not a member"));
    }
    Ok(())
}

fn create_shipment(
    genesis: &Genesis,
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    a: &pb::CreateShipment,
) -> Result<Outcome, StateError> {
    if state::shipment(st, &a.shipment_id)?.is_some() {
        return Ok(reject(
            Code::ShipmentExists,
            format!("shipment {} already exists", a.shipment_id),
        ));
    }
    let owner = if a.owner.is_empty() {
        signer
    } else {
        a.owner.as_str()
    };
    rule!(require_member(genesis, owner, "owner"));
    let mut devices: Vec<String> = Vec::with_capacity(a.device_ids.len());
    for device_id in &a.device_ids {
        rule!(owned_device(st, signer, device_id)?);
        if devices.contains(device_id) {
            return Ok(reject(
                Code::InvalidArgument,
                format!("device {device_id} is listed twice"),
            ));
        }
        devices.push(device_id.clone());
    }
    let mut t = pb::ShipmentTwin {
        shipment_id: a.shipment_id.clone(),
        products: a.products.clone(),
        policy: a.policy,
        creator: signer.to_string(),
        owner: owner.to_string(),
        custodian: signer.to_string(),
        status: pb::ShipmentStatus::Created as i32,
        customs: pb::CustomsStatus::None as i32,
        last_location: a.origin_location.clone(),
        attached_devices: devices,
        created_height: ctx.height,
        event_count: 1,
        ..Default::default()
    };
    twin::recompute_verdict(&mut t);
    let history = shipment_event(&t);
    st.write(state::shipment_key(&a.shipment_id), t);
    if genesis.containment() == ContainmentRule::Tracked {
        rule!(containment::fill_shipment(st, ctx, signer, a)?);
    }
    Ok(Ok(history))
}

/// Most devices one shipment may carry.
pub const MAX_ATTACHED_DEVICES: usize = 64;

fn attach_device(
    st: &mut TxState<'_>,
    signer: &str,
    a: &pb::AttachDevice,
) -> Result<Outcome, StateError> {
    let mut s = rule!(open_shipment(st, &a.shipment_id)?);
    if s.custodian != signer && s.owner != signer {
        return Ok(reject(
            Code::NotCustodian,
            format!(
                "{signer} is neither custodian ({}) nor owner ({}) of {}",
                s.custodian, s.owner, s.shipment_id
            ),
        ));
    }
    rule!(owned_device(st, signer, &a.device_id)?);
    if s.attached_devices.contains(&a.device_id) {
        return Ok(reject(
            Code::InvalidArgument,
            format!("device {} is already attached", a.device_id),
        ));
    }
    if s.attached_devices.len() >= MAX_ATTACHED_DEVICES {
        return Ok(reject(
            Code::InvalidArgument,
            format!("a shipment carries at most {MAX_ATTACHED_DEVICES} devices"),
        ));
    }
    s.attached_devices.push(a.device_id.clone());
    Ok(Ok(record_event(st, s, "")))
}

fn ship(
    genesis: &Genesis,
    st: &mut TxState<'_>,
    signer: &str,
    a: &pb::ShipShipment,
) -> Result<Outcome, StateError> {
    let mut s = rule!(open_shipment(st, &a.shipment_id)?);
    rule!(not_held(&s));
    if s.custodian != signer {
        return Ok(reject(
            Code::NotCustodian,
            format!(
                "{signer} is not the custodian of {} ({} is)",
                s.shipment_id, s.custodian
            ),
        ));
    }
    if s.status == pb::ShipmentStatus::InTransit as i32 {
        return Ok(reject(
            Code::InTransit,
            format!(
                "shipment {} is already in transit to {}",
                s.shipment_id, s.consignee
            ),
        ));
    }
    rule!(require_member(genesis, &a.to_custodian, "consignee"));
    if a.to_custodian == signer {
        return Ok(reject(Code::InvalidArgument, "cannot ship to oneself"));
    }
    if !a.new_owner.is_empty() {
        rule!(require_member(genesis, &a.new_owner, "new owner"));
    }
    s.status = pb::ShipmentStatus::InTransit as i32;
    s.consignee = a.to_custodian.clone();
    s.pending_owner = a.new_owner.clone();
    Ok(Ok(record_event(st, s, &a.location)))
}

fn receive(
    genesis: &Genesis,
    st: &mut TxState<'_>,
    ctx: BlockContext,
    signer: &str,
    a: &pb::ReceiveShipment,
) -> Result<Outcome, StateError> {
    let mut s = rule!(open_shipment(st, &a.shipment_id)?);
    rule!(not_held(&s));
    if s.status != pb::ShipmentStatus::InTransit as i32 {
        return Ok(reject(
            Code::NotInTransit,
            format!("shipment {} is not in transit", s.shipment_id),
        ));
    }
    if s.consignee != signer {
        return Ok(reject(
            Code::NotConsignee,
            format!(
                "{signer} is not the consignee of {} ({} is)",
                s.shipment_id, s.consignee
            ),
        ));
    }
    s.custodian = signer.to_string();
    if !s.pending_owner.is_empty() {
        s.owner = std::mem::take(&mut s.pending_owner);
    }
    s.consignee.clear();
    s.status = if a.final_delivery {
        pb::ShipmentStatus::Delivered
    } else {
        pb::ShipmentStatus::Received
    } as i32;
    let history = record_event(st, s, &a.location);
    if a.final_delivery && genesis.containment() == ContainmentRule::Tracked {
        rule!(containment::empty_shipment(
            st,
            ctx,
            signer,
            &a.shipment_id
        )?);
    }
    Ok(Ok(history))
}

fn customs(
    genesis: &Genesis,
    st: &mut TxState<'_>,
    signer: &str,
    a: &pb::CustomsDecision,
) -> Result<Outcome, StateError> {
    if genesis.member(signer).map(|m| m.role) != Some(Role::Customs) {
        return Ok(reject(
            Code::NotCustoms,
            format!("{signer} is not a customs authority"),
        ));
    }
    let mut s = rule!(open_shipment(st, &a.shipment_id)?);
    s.customs = match pb::CustomsOutcome::try_from(a.outcome) {
        Ok(pb::CustomsOutcome::Cleared) => pb::CustomsStatus::Cleared,
        Ok(pb::CustomsOutcome::Held) => pb::CustomsStatus::Held,
        _ => {
            return Ok(reject(
                Code::InvalidArgument,
                "customs outcome is not specified",
            ));
        }
    } as i32;
    Ok(Ok(record_event(st, s, &a.location)))
}

fn sensor_report(
    genesis: &Genesis,
    st: &mut TxState<'_>,
    ctx: BlockContext,
    device_id: &str,
    r: &pb::SensorReport,
) -> Result<Outcome, StateError> {
    let mut s = rule!(open_shipment(st, &r.shipment_id)?);
    if !s.attached_devices.iter().any(|d| d == device_id) {
        return Ok(reject(
            Code::DeviceNotAttached,
            format!(
                "device {device_id} does not monitor shipment {}",
                s.shipment_id
            ),
        ));
    }
    let skew = i64::try_from(genesis.file.max_clock_skew_ms).unwrap_or(i64::MAX);
    if r.observed_at_ms > ctx.time_ms.saturating_add(skew) {
        return Ok(reject(
            Code::BadTimestamp,
            format!(
                "reading time {} is more than {} ms after block time {}",
                r.observed_at_ms, skew, ctx.time_ms
            ),
        ));
    }
    if let Some(track) = s.tracks.iter().find(|t| t.device_id == device_id)
        && track.readings > 0
        && r.observed_at_ms < track.last_observed_ms
    {
        return Ok(reject(
            Code::BadTimestamp,
            format!(
                "reading time {} is before the device's previous reading at {}",
                r.observed_at_ms, track.last_observed_ms
            ),
        ));
    }
    twin::apply_reading(
        &mut s,
        &twin::Reading {
            device_id,
            observed_at_ms: r.observed_at_ms,
            milli_c: r.temperature_milli_c,
            location: r.location,
        },
        genesis.mkt_rule(),
    );
    Ok(Ok(record_event(st, s, "")))
}

// ---- EPCIS -----------------------------------------------------------------------

/// Records an imported EPCIS event. It joins the history of every shipment it names in
/// which the signer has a part (creator, owner, custodian, consignee): anyone else could
/// otherwise write into a shipment's history. A delivered shipment's history is closed
/// (an auditor relies on that, docs/AUDIT.md), so it is not extended. The event is kept
/// in its block either way; its sensor readings are the member's statement and do not
/// enter the twin, whose verdict rests on device-signed readings.
///
/// Under the genesis rule [`EventIdentity::Cbv2Hash`] the event is identified by its
/// EPCIS Event Hash ID, computed here from its JSON (never taken from the sender, who
/// could otherwise claim another member's event's hash): an event already recorded, by
/// any member, is refused with the height and transaction that recorded it, and nothing
/// changes, so a retried import records every event once.
///
/// Under [`ContainmentRule::Tracked`] an AggregationEvent ADD or DELETE moves things in
/// and out of containers ([`containment`]); under [`LineageRule::Tracked`] a
/// TransformationEvent's outputs are made from its inputs ([`lineage`]). Either refuses
/// a contradiction, and the whole event with it.
fn record_epcis_event(
    genesis: &Genesis,
    ctx: BlockContext,
    st: &mut TxState<'_>,
    tx: &CheckedTx,
    a: &pb::RecordEpcisEvent,
) -> Result<Outcome, StateError> {
    let signer = tx.signer.id.as_str();
    // The event's JSON, parsed once for every rule that reads it.
    let parsed = serde_json::from_str::<serde_json::Value>(&a.event_json);
    let event = parsed.as_ref().ok();
    if genesis.epcis_event_identity() == EventIdentity::Cbv2Hash {
        let hashed = match &parsed {
            Ok(v) => hash::recorded_event_hash_of(v),
            Err(e) => Err(hash::HashError::NotJson(e.to_string())),
        };
        let event_hash = match hashed {
            Ok(h) => h,
            Err(e) => {
                return Ok(reject(
                    Code::InvalidArgument,
                    format!("the event has no EPCIS Event Hash ID: {e}"),
                ));
            }
        };
        let key = state::epcis_event_key(&event_hash);
        if let Some(first) = st.read::<pb::EpcisEventRecord>(&key)? {
            return Ok(reject(
                Code::DuplicateEvent,
                format!(
                    "event {event_hash} is already recorded, at height {} by transaction {} ({})",
                    first.height,
                    hex::encode(&first.tx_id),
                    first.recorded_by
                ),
            ));
        }
        st.write(
            key,
            pb::EpcisEventRecord {
                event_hash,
                height: ctx.height,
                tx_id: tx.id.0.to_vec(),
                recorded_by: signer.to_string(),
            },
        );
    }
    if genesis.containment() == ContainmentRule::Tracked
        && let Some(change) = rule!(containment::change(a, event, ctx.time_ms))
    {
        rule!(containment::apply(st, ctx, signer, &change)?);
    }
    if genesis.lineage() == LineageRule::Tracked
        && let Some(t) = lineage::of_json(a, event)
    {
        rule!(lineage::apply(st, &t)?);
    }
    // Shipments this event changes besides those it names as written: the one a logger
    // is tied to, those its readings count for (docs/API.md).
    let mut changed: Vec<String> = Vec::new();
    if genesis.attestation() == AttestationRule::Twin {
        changed.extend(rule!(attestation::associate(st, ctx, signer, a, event)?));
        changed.extend(attestation::attest(genesis, st, signer, a)?);
    }
    let mut history = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for id in a.epcs.iter().chain(&changed) {
        let Some(s) = state::shipment(st, id)? else {
            continue;
        };
        if !seen.insert(s.shipment_id.clone()) {
            continue;
        }
        if !attestation::party(&s, signer) || s.status == pb::ShipmentStatus::Delivered as i32 {
            continue;
        }
        history.extend(record_event(st, s, ""));
    }
    Ok(Ok(history))
}
