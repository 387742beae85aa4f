//! The provenance of one thing (an item, a lot, a container) from the transactions that
//! name it, and an authenticity verdict with its reasons.
//!
//! The node gathers the committed transactions that name an identifier (its index,
//! [`crate::identifiers`]); this module reads them in chain order: which commissioned
//! the thing (an EPCIS ObjectEvent ADD, a TransformationEvent's outputs, a shipment's
//! creation), which decommissioned or destroyed it (an ObjectEvent DELETE, the
//! decommissioning or destroying business steps, the destroyed or disposed dispositions),
//! and every other event that observed it. The verdict:
//! - **genuine**: commissioned exactly once, by the member whose GS1 company prefix its
//!   key carries (when the genesis assigns prefixes), and not decommissioned or destroyed;
//! - **suspect**, with each reason: never commissioned, commissioned more than once,
//!   commissioned by a member that does not hold its prefix, decommissioned or destroyed
//!   (and anything seen of it after that);
//! - **unknown**: no transaction names it: not known to the consortium (not an error).
//!
//! What a thing inherited from a shipment it was packed in (custody, excursions) is
//! [`inherited`]; its containers over time come from state ([`crate::containment`]).

use serde_json::Value;
use tracechain_proto::v1::{self as pb, tx_body::Action};

use crate::{genesis::Genesis, identifiers};

/// A committed transaction that names the thing.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Block time, unix ms.
    pub block_time_ms: i64,
    /// The signer (member or device id).
    pub signer: String,
    /// What it did.
    pub action: Action,
}

/// What a step did to the thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// Brought it into being on the chain.
    Commissioned,
    /// Took it out of use, or destroyed it.
    Decommissioned,
    /// Anything else that names it: observed, shipped, received, packed, ...
    Observed,
}

/// One step of the thing's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Block height and position.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// When it happened: the event's time, else the block's.
    pub time_ms: i64,
    /// Who signed it.
    pub member: String,
    /// What it did to the thing.
    pub kind: StepKind,
    /// What it was: the action, and for EPCIS events the type, action and business step.
    pub what: String,
    /// Where, if it says (read point, else business location, else location).
    pub place: String,
    /// The business step: the event's (a CBV word or URI), or `shipping` / `receiving`
    /// for a shipment's own handovers; empty otherwise.
    pub biz_step: String,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Commissioned once, by the holder of its prefix, still in use.
    Genuine,
    /// Something is wrong: see the reasons.
    Suspect,
    /// No transaction names it.
    Unknown,
}

/// A thing's provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The identifier's index key.
    pub key: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why: one line each, the problems first.
    pub reasons: Vec<String>,
    /// Who commissioned it (the first commissioning), if anyone did.
    pub commissioned_by: Option<String>,
    /// The member whose GS1 company prefix its key carries, and the prefix.
    pub prefix_holder: Option<(String, String)>,
    /// Its history, in chain order.
    pub steps: Vec<Step>,
}

/// The digits of a canonical Digital Link key that start with the GS1 company prefix:
/// after the indicator digit of a GTIN, SSCC, GRAI or ITIP; from the start otherwise.
fn prefixed_digits(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("https://id.gs1.org/")?;
    let (ai, value) = rest.split_once('/')?;
    let value = value.split('/').next().unwrap_or(value);
    match ai {
        "01" | "00" | "8003" | "8006" => value.get(1..),
        "414" | "417" | "253" | "255" | "401" | "402" | "8004" | "8010" | "8017" | "8018" => {
            Some(value)
        }
        _ => None,
    }
}

/// EPCIS business steps and dispositions that end a thing's use.
const ENDING_STEPS: &[&str] = &["decommissioning", "destroying"];
const ENDING_DISPOSITIONS: &[&str] = &["destroyed", "disposed"];

/// Whether any member of `list` in `event` is the thing.
fn names(event: &Value, list: &str, key: &str) -> bool {
    event[list].as_array().is_some_and(|items| {
        items.iter().any(|i| {
            let id = i.as_str().or_else(|| i["epcClass"].as_str());
            id.is_some_and(|id| identifiers::key(id) == key)
        })
    })
}

fn step_of(key: &str, r: &Recorded) -> Step {
    let mut step = Step {
        height: r.height,
        index: r.index,
        time_ms: r.block_time_ms,
        member: r.signer.clone(),
        kind: StepKind::Observed,
        what: String::new(),
        place: String::new(),
        biz_step: String::new(),
    };
    match &r.action {
        Action::CreateShipment(a) => {
            step.what = "create shipment".into();
            step.place = a.origin_location.clone();
            if identifiers::key(&a.shipment_id) == key {
                step.kind = StepKind::Commissioned;
            }
        }
        Action::Ship(a) => {
            step.what = format!("ship to {}", a.to_custodian);
            step.place = a.location.clone();
            if identifiers::key(&a.shipment_id) == key {
                step.biz_step = "shipping".into();
            }
        }
        Action::Receive(a) => {
            step.what = if a.final_delivery {
                "receive (delivered)"
            } else {
                "receive"
            }
            .into();
            step.place = a.location.clone();
            if identifiers::key(&a.shipment_id) == key {
                step.biz_step = "receiving".into();
            }
        }
        Action::Customs(a) => {
            step.what = "customs".into();
            step.place = a.location.clone();
        }
        Action::AttachDevice(_) => step.what = "attach device".into(),
        Action::RegisterDevice(_) => step.what = "register device".into(),
        Action::RotateDeviceKey(_) => step.what = "rotate device key".into(),
        Action::RevokeDevice(_) => {
            step.what = "revoke device".into();
            step.kind = StepKind::Decommissioned;
        }
        Action::SensorReport(_) => step.what = "sensor report".into(),
        Action::ReportDeviceConflict(_) => {
            step.what = "proof of conflicting readings (device flagged as cloned)".into()
        }
        Action::RecordEpcisEvent(e) => {
            if e.event_time_ms > 0 {
                step.time_ms = e.event_time_ms;
            }
            step.place = if e.read_point.is_empty() {
                e.biz_location.clone()
            } else {
                e.read_point.clone()
            };
            let event_type = pb::EpcisEventType::try_from(e.event_type)
                .map(|t| {
                    t.as_str_name()
                        .trim_start_matches("EPCIS_EVENT_TYPE_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            step.biz_step = e.biz_step.clone();
            step.what = format!("EPCIS {event_type} {} {}", e.action, e.biz_step)
                .trim_end()
                .to_string();
            let event: Value = serde_json::from_str(&e.event_json).unwrap_or_default();
            let object = e.event_type == pb::EpcisEventType::Object as i32;
            let transformation = e.event_type == pb::EpcisEventType::Transformation as i32;
            let in_object = names(&event, "epcList", key) || names(&event, "quantityList", key);
            let is_output =
                names(&event, "outputEPCList", key) || names(&event, "outputQuantityList", key);
            if (object && e.action == "ADD" && in_object) || (transformation && is_output) {
                step.kind = StepKind::Commissioned;
            }
            let ending = ENDING_STEPS.contains(&e.biz_step.as_str())
                || ENDING_DISPOSITIONS.contains(&e.disposition.as_str())
                || (object && e.action == "DELETE" && in_object);
            if ending && !(transformation && is_output) {
                step.kind = StepKind::Decommissioned;
            }
        }
    }
    step
}

/// Events at two different places closer in time than this saw the thing at two places
/// at once.
pub const AT_ONCE_MS: i64 = 60_000;

/// What the steps say that cannot all be true of one thing: seen at two places at once,
/// seen elsewhere after being received somewhere and before being shipped on, received
/// by a member other than the one that held it without a shipping event in between (the
/// custody chain broken).
fn whereabouts(steps: &[Step]) -> Vec<String> {
    let mut problems = Vec::new();
    let at = |s: &Step| {
        format!(
            "{} by {} (height {})",
            crate::units::fmt_time_ms(s.time_ms),
            s.member,
            s.height
        )
    };
    // Places, in event time.
    let mut placed: Vec<(&Step, String)> = steps
        .iter()
        .filter(|s| !s.place.is_empty())
        .map(|s| (s, identifiers::key(&s.place)))
        .collect();
    placed.sort_by_key(|(s, _)| s.time_ms);
    for pair in placed.windows(2) {
        let ((a, place_a), (b, place_b)) = (&pair[0], &pair[1]);
        if place_a != place_b && b.time_ms - a.time_ms < AT_ONCE_MS {
            problems.push(format!(
                "seen at two places at once: {place_a} at {} and {place_b} at {}",
                at(a),
                at(b)
            ));
        }
    }
    let mut received: Option<(&String, &Step)> = None;
    for (s, place) in &placed {
        match s.biz_step.as_str() {
            "receiving" | "arriving" => received = Some((place, s)),
            "shipping" | "departing" => received = None,
            _ => {
                if let Some((there, r)) = received
                    && there != place
                {
                    problems.push(format!(
                        "seen at {place} at {} after being received at {there} at {}, and \
                         not shipped in between",
                        at(s),
                        at(r)
                    ));
                    received = None;
                }
            }
        }
    }
    // Custody, in chain order.
    let mut holder: Option<&str> = None;
    let mut in_transit = false;
    for s in steps {
        if s.kind == StepKind::Commissioned {
            holder = Some(&s.member);
            in_transit = false;
        }
        match s.biz_step.as_str() {
            // A carrier may record the shipping of what its shipper holds: a shipping
            // event by anyone starts the handover.
            "shipping" => in_transit = true,
            "receiving" => {
                if let Some(h) = holder
                    && !in_transit
                    && h != s.member
                {
                    problems.push(format!(
                        "received by {} at height {} without being shipped by {h}, who held it",
                        s.member, s.height
                    ));
                }
                holder = Some(&s.member);
                in_transit = false;
            }
            _ => {}
        }
    }
    problems
}

/// The provenance of the thing `identifier` names (in any form), from the transactions
/// that name it, in chain order.
pub fn assess(genesis: &Genesis, identifier: &str, recorded: &[Recorded]) -> Provenance {
    let key = identifiers::key(identifier);
    let steps: Vec<Step> = recorded.iter().map(|r| step_of(&key, r)).collect();
    let prefix_holder = prefixed_digits(&key)
        .and_then(|digits| genesis.prefix_holder(digits))
        .map(|(m, p)| (m.id.clone(), p.to_string()));
    let mut out = Provenance {
        key,
        verdict: Verdict::Unknown,
        reasons: Vec::new(),
        commissioned_by: None,
        prefix_holder,
        steps,
    };
    if out.steps.is_empty() {
        out.reasons
            .push("not known to the consortium: no transaction names it".into());
        return out;
    }
    let mut problems = Vec::new();
    let mut facts = Vec::new();
    let commissions: Vec<&Step> = out
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Commissioned)
        .collect();
    match commissions.as_slice() {
        [] => problems.push("never commissioned on the chain".to_string()),
        [one] => facts.push(format!(
            "commissioned once, by {} at height {}",
            one.member, one.height
        )),
        many => problems.push(format!(
            "commissioned {} times: {}",
            many.len(),
            many.iter()
                .map(|s| format!("by {} at height {}", s.member, s.height))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    out.commissioned_by = commissions.first().map(|s| s.member.clone());
    if let Some(first) = commissions.first() {
        match (&out.prefix_holder, prefixed_digits(&out.key)) {
            (Some((holder, prefix)), _) if *holder != first.member => problems.push(format!(
                "commissioned by {}, but its GS1 company prefix {prefix} is {holder}'s",
                first.member
            )),
            (Some((holder, prefix)), _) => facts.push(format!(
                "by the holder of its GS1 company prefix {prefix} ({holder})"
            )),
            (None, Some(_)) if genesis.assigns_prefixes() => problems.push(format!(
                "commissioned by {}, but no member holds its GS1 company prefix",
                first.member
            )),
            (None, Some(_)) => facts.push(
                "the genesis assigns no GS1 company prefixes: who may commission it is not checked"
                    .into(),
            ),
            (None, None) => {}
        }
    }
    if let Some(end) = out
        .steps
        .iter()
        .position(|s| s.kind == StepKind::Decommissioned)
    {
        let ended = &out.steps[end];
        problems.push(format!(
            "decommissioned or destroyed by {} at height {} ({})",
            ended.member, ended.height, ended.what
        ));
        let after = out.steps.len() - end - 1;
        if after > 0 {
            problems.push(format!("{after} events name it after that"));
        }
    }
    problems.extend(whereabouts(&out.steps));
    out.verdict = if problems.is_empty() {
        Verdict::Genuine
    } else {
        Verdict::Suspect
    };
    out.reasons = problems.into_iter().chain(facts).collect();
    out
}

/// What a thing inherited from a shipment it was in, during its stay there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inherited {
    /// The shipment's custody during the stay, in order: a member, or
    /// "in transit A -> B".
    pub custody: Vec<String>,
    /// The shipment's excursions that overlap the stay.
    pub excursions: Vec<pb::Excursion>,
}

/// What a thing inside `twin` from `from_ms` to `to_ms` (`None`: still inside) inherited
/// from it: the custody of the shipment in that window (from its history, `history`, the
/// transactions that name it, in chain order) and its excursions then. Times are block
/// times for the shipment's own events.
pub fn inherited(
    twin: &pb::ShipmentTwin,
    history: &[Recorded],
    from_ms: i64,
    to_ms: Option<i64>,
) -> Inherited {
    let shipment = identifiers::key(&twin.shipment_id);
    // (start, custody) segments, each until the next one starts.
    let mut segments: Vec<(i64, String)> = Vec::new();
    let mut custodian = String::new();
    for r in history {
        let ours = |id: &str| identifiers::key(id) == shipment;
        match &r.action {
            Action::CreateShipment(a) if ours(&a.shipment_id) => {
                custodian = r.signer.clone();
                segments.push((r.block_time_ms, custodian.clone()));
            }
            Action::Ship(a) if ours(&a.shipment_id) => segments.push((
                r.block_time_ms,
                format!("in transit {custodian} -> {}", a.to_custodian),
            )),
            Action::Receive(a) if ours(&a.shipment_id) => {
                custodian = r.signer.clone();
                segments.push((r.block_time_ms, custodian.clone()));
            }
            _ => {}
        }
    }
    let before_end = |t: i64| to_ms.is_none_or(|end| t < end);
    let custody = segments
        .iter()
        .enumerate()
        .filter(|(i, (start, _))| {
            let end = segments.get(i + 1).map_or(i64::MAX, |(next, _)| *next);
            before_end(*start) && end > from_ms
        })
        .map(|(_, (_, who))| who.clone())
        .collect();
    let excursions = twin
        .excursions
        .iter()
        .filter(|e| before_end(e.start_ms) && (e.open || e.end_ms > from_ms))
        .cloned()
        .collect();
    Inherited {
        custody,
        excursions,
    }
}

/// A product verification's answer (DSCSA-style: is this GTIN, serial, lot and expiry a
/// product the consortium knows as genuine?).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductCheck {
    /// The product identifier's index key.
    pub key: String,
    /// Verified: genuine, and the lot and expiry are those its commissioning recorded.
    pub verified: bool,
    /// Why not (or what was checked), one line each.
    pub reasons: Vec<String>,
}

/// The Digital Link of a product's item: its GTIN (8, 12, 13 or 14 digits, padded to 14)
/// and serial number; the error says what is malformed.
pub fn product_identifier(gtin: &str, serial: &str) -> Result<String, String> {
    if !(matches!(gtin.len(), 8 | 12 | 13 | 14) && gtin.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("GTIN {gtin:?} is not 8, 12, 13 or 14 digits"));
    }
    if serial.is_empty() {
        return Err("a serial number is needed".into());
    }
    Ok(format!("https://id.gs1.org/01/{gtin:0>14}/21/{serial}"))
}

/// An expiry as `YYYY-MM-DD`, from that form or GS1's AI 17 `YYMMDD` (years 2000-2099).
fn expiry_date(expiry: &str) -> Option<String> {
    let b = expiry.as_bytes();
    match b.len() {
        10 if b[4] == b'-' && b[7] == b'-' => Some(expiry.to_string()),
        6 if b.iter().all(u8::is_ascii_digit) => Some(format!(
            "20{}-{}-{}",
            &expiry[..2],
            &expiry[2..4],
            &expiry[4..]
        )),
        _ => None,
    }
}

/// The ILMD value of a CBV master-data attribute (`cbvmda:<name>`, or its expanded form)
/// in an EPCIS event.
fn ilmd(event: &Value, name: &str) -> Option<String> {
    let ilmd = event["ilmd"].as_object()?;
    ilmd.iter().find_map(|(k, v)| {
        let matches = k == &format!("cbvmda:{name}")
            || k == &format!("urn:epcglobal:cbv:mda:{name}")
            || k == &format!("urn:epcglobal:cbv:mda#{name}");
        matches.then(|| v.as_str().map(str::to_string)).flatten()
    })
}

/// Verifies a product identifier (GTIN, serial, lot, expiry) against the transactions
/// that name its item: verified when the item is genuine ([`assess`]) and its
/// commissioning event's ILMD records this lot (`cbvmda:lotNumber`) and expiry
/// (`cbvmda:itemExpirationDate`).
pub fn verify_product(
    genesis: &Genesis,
    gtin: &str,
    serial: &str,
    lot: &str,
    expiry: &str,
    recorded: &[Recorded],
) -> Result<ProductCheck, String> {
    let id = product_identifier(gtin, serial)?;
    let wanted_expiry = expiry_date(expiry)
        .ok_or_else(|| format!("expiry {expiry:?} is neither YYMMDD nor YYYY-MM-DD"))?;
    if lot.is_empty() {
        return Err("a lot is needed".into());
    }
    let p = assess(genesis, &id, recorded);
    let mut reasons = Vec::new();
    match p.verdict {
        Verdict::Unknown => {
            reasons.push("no product with this GTIN and serial number is known".into())
        }
        Verdict::Suspect => reasons.extend(p.reasons.iter().cloned()),
        Verdict::Genuine => {}
    }
    if p.verdict != Verdict::Unknown {
        // Steps and transactions are one to one: the first commissioning step's.
        let commissioning = p
            .steps
            .iter()
            .position(|s| s.kind == StepKind::Commissioned)
            .and_then(|i| match &recorded[i].action {
                Action::RecordEpcisEvent(e) => serde_json::from_str::<Value>(&e.event_json).ok(),
                _ => None,
            });
        match commissioning {
            None => reasons.push("no commissioning event records its lot and expiry".into()),
            Some(event) => {
                match ilmd(&event, "lotNumber") {
                    Some(l) if l == lot => {}
                    Some(l) => {
                        reasons.push(format!("lot {lot} does not match: commissioned in lot {l}"))
                    }
                    None => reasons.push("its commissioning event records no lot".into()),
                }
                match ilmd(&event, "itemExpirationDate") {
                    Some(e) if e == wanted_expiry => {}
                    Some(e) => reasons.push(format!(
                        "expiry {wanted_expiry} does not match: commissioned with expiry {e}"
                    )),
                    None => reasons.push("its commissioning event records no expiry".into()),
                }
            }
        }
    }
    let verified = reasons.is_empty();
    if verified {
        reasons.push(format!(
            "genuine, lot {lot} and expiry {wanted_expiry} as commissioned by {}",
            p.commissioned_by.as_deref().unwrap_or_default()
        ));
    }
    Ok(ProductCheck {
        key: p.key,
        verified,
        reasons,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::genesis::{
        AttestationRule, ContainmentRule, DeviceConflictRule, EventIdentity, GenesisFile,
        LineageRule, MemberEntry, MktRule, Role,
    };

    fn genesis(prefixes: &[(&str, &[&str])]) -> Genesis {
        let members = prefixes
            .iter()
            .enumerate()
            .map(|(i, (id, p))| MemberEntry {
                id: id.to_string(),
                name: id.to_string(),
                role: Role::Producer,
                node_key: hex::encode(
                    ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 1; 32])
                        .verifying_key()
                        .as_bytes(),
                ),
                admin_key: hex::encode(
                    ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 50; 32])
                        .verifying_key()
                        .as_bytes(),
                ),
                address: String::new(),
                validator: i == 0,
                gs1_company_prefixes: p.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        Genesis::from_file(GenesisFile {
            chain_id: "prov".into(),
            genesis_time_ms: 0,
            max_clock_skew_ms: 0,
            members,
            mkt_rule: MktRule::CURRENT,
            epcis_event_identity: EventIdentity::CURRENT,
            containment: ContainmentRule::CURRENT,
            lineage: LineageRule::CURRENT,
            attestation: AttestationRule::CURRENT,
            device_conflicts: DeviceConflictRule::CURRENT,
        })
        .expect("genesis")
    }

    const ITEM: &str = "urn:epc:id:sgtin:4012345.011111.7";

    fn event(height: u64, signer: &str, event_type: pb::EpcisEventType, v: Value) -> Recorded {
        let action = v["action"].as_str().unwrap_or_default().to_string();
        let biz_step = v["bizStep"].as_str().unwrap_or_default().to_string();
        let disposition = v["disposition"].as_str().unwrap_or_default().to_string();
        Recorded {
            height,
            index: 0,
            block_time_ms: 1_000 * height as i64,
            signer: signer.into(),
            action: Action::RecordEpcisEvent(pb::RecordEpcisEvent {
                event_type: event_type as i32,
                action,
                biz_step,
                disposition,
                event_json: v.to_string(),
                ..Default::default()
            }),
        }
    }

    fn commission(height: u64, signer: &str, epc: &str) -> Recorded {
        event(
            height,
            signer,
            pb::EpcisEventType::Object,
            json!({"action": "ADD", "bizStep": "commissioning", "epcList": [epc]}),
        )
    }

    fn observe(height: u64, signer: &str, epc: &str) -> Recorded {
        event(
            height,
            signer,
            pb::EpcisEventType::Object,
            json!({"action": "OBSERVE", "bizStep": "shipping", "epcList": [epc]}),
        )
    }

    #[test]
    fn a_genuine_item() {
        let g = genesis(&[("farm", &["4012345"]), ("carrier", &[])]);
        // Commissioned by its URN, observed by its Digital Link.
        let link = "https://brand.example/01/04012345111118/21/7";
        let p = assess(
            &g,
            link,
            &[commission(2, "farm", ITEM), observe(3, "carrier", link)],
        );
        assert_eq!(p.verdict, Verdict::Genuine, "{:?}", p.reasons);
        assert_eq!(p.commissioned_by.as_deref(), Some("farm"));
        assert_eq!(p.prefix_holder, Some(("farm".into(), "4012345".into())));
        assert_eq!(
            p.steps.iter().map(|s| s.kind).collect::<Vec<_>>(),
            [StepKind::Commissioned, StepKind::Observed]
        );
        assert!(
            p.reasons
                .iter()
                .any(|r| r.contains("commissioned once, by farm"))
        );
    }

    #[test]
    fn a_clone_a_foreign_commissioning_and_a_destroyed_item_are_suspect() {
        let g = genesis(&[("farm", &["4012345"]), ("carrier", &["0614141"])]);
        let twice = assess(
            &g,
            ITEM,
            &[commission(2, "farm", ITEM), commission(5, "farm", ITEM)],
        );
        assert_eq!(twice.verdict, Verdict::Suspect);
        assert!(
            twice.reasons[0].contains("commissioned 2 times"),
            "{:?}",
            twice.reasons
        );

        let foreign = assess(&g, ITEM, &[commission(2, "carrier", ITEM)]);
        assert_eq!(foreign.verdict, Verdict::Suspect);
        assert!(
            foreign.reasons[0].contains("but its GS1 company prefix 4012345 is farm's"),
            "{:?}",
            foreign.reasons
        );

        let destroyed = event(
            4,
            "farm",
            pb::EpcisEventType::Object,
            json!({"action": "OBSERVE", "bizStep": "destroying", "disposition": "destroyed", "epcList": [ITEM]}),
        );
        let p = assess(
            &g,
            ITEM,
            &[
                commission(2, "farm", ITEM),
                destroyed,
                observe(6, "carrier", ITEM),
            ],
        );
        assert_eq!(p.verdict, Verdict::Suspect);
        assert!(
            p.reasons
                .iter()
                .any(|r| r.contains("destroyed by farm at height 4"))
        );
        assert!(
            p.reasons
                .iter()
                .any(|r| r.contains("1 events name it after that"))
        );

        let never = assess(&g, ITEM, &[observe(3, "carrier", ITEM)]);
        assert_eq!(never.reasons, ["never commissioned on the chain"]);

        let orphan = "urn:epc:id:sgtin:9999999.011111.1";
        let p = assess(&g, orphan, &[commission(2, "farm", orphan)]);
        assert!(p.reasons[0].contains("no member holds its GS1 company prefix"));
    }

    #[test]
    fn a_transformation_commissions_its_outputs_and_an_unknown_item_is_unknown() {
        let g = genesis(&[("farm", &[])]);
        let lot = "urn:epc:class:lgtin:4012345.011111.MIX1";
        let t = event(
            3,
            "farm",
            pb::EpcisEventType::Transformation,
            json!({"inputQuantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.011111.A"}],
                   "outputQuantityList": [{"epcClass": lot}]}),
        );
        let p = assess(&g, lot, &[t]);
        assert_eq!(p.verdict, Verdict::Genuine, "{:?}", p.reasons);
        assert!(
            p.reasons
                .iter()
                .any(|r| r.contains("assigns no GS1 company prefixes"))
        );
        let unknown = assess(&g, ITEM, &[]);
        assert_eq!(unknown.verdict, Verdict::Unknown);
        assert!(unknown.reasons[0].contains("not known to the consortium"));
    }

    /// An ObjectEvent OBSERVE of ITEM with `biz_step` at `place`, at `minute`.
    fn seen(height: u64, signer: &str, biz_step: &str, place: &str, minute: i64) -> Recorded {
        let mut r = event(
            height,
            signer,
            pb::EpcisEventType::Object,
            json!({"action": "OBSERVE", "bizStep": biz_step, "epcList": [ITEM]}),
        );
        if let Action::RecordEpcisEvent(e) = &mut r.action {
            e.read_point = place.into();
            e.event_time_ms = 1_700_000_000_000 + minute * 60_000;
        }
        r
    }

    /// Whereabouts that cannot all be true make an item suspect, each with its reason:
    /// two places at once, seen elsewhere after a receipt without a shipping in between,
    /// and a receipt by a member other than the holder without a shipping event.
    #[test]
    fn conflicting_whereabouts_and_a_broken_custody_chain_are_suspect() {
        let g = genesis(&[("farm", &["4012345"]), ("carrier", &[]), ("shop", &[])]);
        let (dock, store) = (
            "urn:epc:id:sgln:4012345.00001.0",
            "urn:epc:id:sgln:4012345.00002.0",
        );
        let mut made = commission(2, "farm", ITEM);
        if let Action::RecordEpcisEvent(e) = &mut made.action {
            e.read_point = dock.into();
            e.event_time_ms = 1_700_000_000_000;
        }
        // A journey that holds together: shipped by the carrier, received at the store.
        let good = [
            made.clone(),
            seen(3, "carrier", "shipping", dock, 60),
            seen(4, "shop", "receiving", store, 600),
            seen(5, "shop", "inspecting", store, 700),
        ];
        let p = assess(&g, ITEM, &good);
        assert_eq!(p.verdict, Verdict::Genuine, "{:?}", p.reasons);

        let twice = [made.clone(), seen(3, "carrier", "inspecting", store, 0)];
        let p = assess(&g, ITEM, &twice);
        assert_eq!(p.verdict, Verdict::Suspect);
        assert!(
            p.reasons[0].starts_with("seen at two places at once: https://id.gs1.org/414/"),
            "{:?}",
            p.reasons
        );

        let elsewhere = [
            made.clone(),
            seen(3, "carrier", "shipping", dock, 60),
            seen(4, "shop", "receiving", store, 600),
            seen(5, "carrier", "inspecting", dock, 700),
        ];
        let p = assess(&g, ITEM, &elsewhere);
        assert_eq!(p.verdict, Verdict::Suspect);
        assert!(
            p.reasons[0].contains("after being received at https://id.gs1.org/414/")
                && p.reasons[0].contains("not shipped in between"),
            "{:?}",
            p.reasons
        );

        let unshipped = [made, seen(3, "shop", "receiving", store, 600)];
        let p = assess(&g, ITEM, &unshipped);
        assert_eq!(p.verdict, Verdict::Suspect);
        assert_eq!(
            p.reasons[0],
            "received by shop at height 3 without being shipped by farm, who held it"
        );
    }

    /// A thing inherits the custody and excursions of a shipment only for the time it
    /// was inside.
    #[test]
    fn a_stay_inherits_the_custody_and_excursions_of_its_window() {
        let s = "urn:epc:id:sscc:4012345.0000000001";
        let native = |t: i64, signer: &str, action: Action| Recorded {
            height: t as u64,
            index: 0,
            block_time_ms: t,
            signer: signer.into(),
            action,
        };
        let history = [
            native(
                10,
                "farm",
                Action::CreateShipment(pb::CreateShipment {
                    shipment_id: s.into(),
                    ..Default::default()
                }),
            ),
            native(
                20,
                "farm",
                Action::Ship(pb::ShipShipment {
                    shipment_id: s.into(),
                    to_custodian: "carrier".into(),
                    ..Default::default()
                }),
            ),
            native(
                30,
                "carrier",
                Action::Receive(pb::ReceiveShipment {
                    shipment_id: s.into(),
                    ..Default::default()
                }),
            ),
        ];
        let excursion = |start_ms, end_ms| pb::Excursion {
            start_ms,
            end_ms,
            ..Default::default()
        };
        let twin = pb::ShipmentTwin {
            shipment_id: s.into(),
            excursions: vec![excursion(12, 15), excursion(32, 35)],
            ..Default::default()
        };
        let whole = inherited(&twin, &history, 10, None);
        assert_eq!(
            whole.custody,
            ["farm", "in transit farm -> carrier", "carrier"]
        );
        assert_eq!(whole.excursions.len(), 2);
        let early = inherited(&twin, &history, 10, Some(20));
        assert_eq!(early.custody, ["farm"]);
        assert_eq!(early.excursions, [excursion(12, 15)]);
        let late = inherited(&twin, &history, 25, None);
        assert_eq!(late.custody, ["in transit farm -> carrier", "carrier"]);
        assert_eq!(late.excursions, [excursion(32, 35)]);
    }

    #[test]
    fn overlapping_or_malformed_prefixes_are_refused() {
        for bad in [
            vec![("farm", vec!["4012345"]), ("carrier", vec!["40123"])],
            vec![("farm", vec!["4012345", "401234567"])],
            vec![("farm", vec!["12a4"])],
            vec![("farm", vec!["123"])],
        ] {
            let refs: Vec<(&str, &[&str])> = bad.iter().map(|(m, p)| (*m, p.as_slice())).collect();
            let result = std::panic::catch_unwind(|| genesis(&refs));
            assert!(result.is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod product_tests {
    use serde_json::json;

    use super::*;
    use crate::genesis::{
        AttestationRule, ContainmentRule, DeviceConflictRule, EventIdentity, GenesisFile,
        LineageRule, MemberEntry, MktRule, Role,
    };

    fn genesis() -> Genesis {
        let key = |seed: u8| {
            hex::encode(
                ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
                    .verifying_key()
                    .as_bytes(),
            )
        };
        Genesis::from_file(GenesisFile {
            chain_id: "dscsa".into(),
            genesis_time_ms: 0,
            max_clock_skew_ms: 0,
            members: vec![MemberEntry {
                id: "maker".into(),
                name: "maker".into(),
                role: Role::Producer,
                node_key: key(1),
                admin_key: key(2),
                address: String::new(),
                validator: true,
                gs1_company_prefixes: vec!["0614141".into()],
            }],
            mkt_rule: MktRule::CURRENT,
            epcis_event_identity: EventIdentity::CURRENT,
            containment: ContainmentRule::CURRENT,
            lineage: LineageRule::CURRENT,
            attestation: AttestationRule::CURRENT,
            device_conflicts: DeviceConflictRule::CURRENT,
        })
        .expect("genesis")
    }

    fn commissioned(epc: &str, lot: &str, expiry: &str) -> Recorded {
        let event = json!({
            "type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning", "epcList": [epc],
            "ilmd": {"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": expiry},
        });
        Recorded {
            height: 2,
            index: 0,
            block_time_ms: 0,
            signer: "maker".into(),
            action: Action::RecordEpcisEvent(pb::RecordEpcisEvent {
                event_type: pb::EpcisEventType::Object as i32,
                action: "ADD".into(),
                biz_step: "commissioning".into(),
                event_json: event.to_string(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_product_is_verified_by_gtin_serial_lot_and_expiry() {
        let g = genesis();
        let vial = "urn:epc:id:sgtin:0614141.712345.S1";
        let history = [commissioned(vial, "L7", "2027-06-30")];
        let ok = verify_product(&g, "70614141123451", "S1", "L7", "270630", &history).unwrap();
        assert!(ok.verified, "{:?}", ok.reasons);
        assert!(ok.reasons[0].contains("as commissioned by maker"));
        let wrong_lot =
            verify_product(&g, "70614141123451", "S1", "L8", "2027-06-30", &history).unwrap();
        assert!(!wrong_lot.verified);
        assert_eq!(
            wrong_lot.reasons,
            ["lot L8 does not match: commissioned in lot L7"]
        );
        let wrong_expiry =
            verify_product(&g, "70614141123451", "S1", "L7", "280630", &history).unwrap();
        assert!(wrong_expiry.reasons[0].contains("expiry 2028-06-30 does not match"));
        // The node hands over the transactions that name the item: none for S2.
        let unknown = verify_product(&g, "70614141123451", "S2", "L7", "270630", &[]).unwrap();
        assert!(!unknown.verified);
        assert!(unknown.reasons[0].contains("no product with this GTIN and serial"));
        assert!(verify_product(&g, "7061414112345x", "S1", "L7", "270630", &history).is_err());
        assert!(verify_product(&g, "70614141123451", "S1", "L7", "30 June", &history).is_err());
    }
}
