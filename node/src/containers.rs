//! A thing's containers over time, read from committed state, with what it inherited in
//! each: a case in a pallet in a shipment was in that shipment's custody and cold chain
//! while it was there (docs/API.md).

use std::collections::BTreeMap;

use tracechain_proto::v1 as pb;

use crate::{
    ledger::{containment::MAX_NESTING, provenance},
    node::{HistoryError, Node},
};

/// Most stays one answer lists (a thing's own, and those of the containers around it).
pub const MAX_STAYS: usize = 1_000;

/// A thing's stays, as a provenance answer carries them.
#[derive(Debug, Default)]
pub struct Stays {
    /// Direct stays oldest first, each followed by the stays of its container that
    /// overlap it (depth 2, 3, ...).
    pub stays: Vec<pb::ProvenanceStay>,
    /// Older stays of its own the ledger no longer keeps.
    pub dropped: u64,
    /// More stays than one answer lists: the list stops at [`MAX_STAYS`].
    pub truncated: bool,
}

/// A stay as the walk carries it: the container, from, until (`None`: still there).
#[derive(Debug, Clone)]
struct Window {
    period: pb::ContainmentPeriod,
    depth: u32,
}

impl Window {
    fn end_ms(&self) -> Option<i64> {
        (self.period.to_height != 0).then_some(self.period.to_ms)
    }

    /// The part of `outer` (a stay of this window's container) that overlaps this
    /// window, if any.
    fn overlap(&self, outer: &pb::ContainmentPeriod) -> Option<Window> {
        let p = &self.period;
        let outer_open = outer.to_height == 0;
        let starts_before_end = self.end_ms().is_none_or(|end| outer.from_ms < end);
        let ends_after_start = outer_open || outer.to_ms > p.from_ms;
        if !(starts_before_end && ends_after_start) {
            return None;
        }
        let mut period = pb::ContainmentPeriod {
            parent: outer.parent.clone(),
            from_height: p.from_height.max(outer.from_height),
            from_ms: p.from_ms.max(outer.from_ms),
            added_by: outer.added_by.clone(),
            ..Default::default()
        };
        // It ends with whichever ends first.
        let inner_ends_first = match (self.end_ms(), outer_open) {
            (None, _) => false,
            (Some(_), true) => true,
            (Some(end), false) => end <= outer.to_ms,
        };
        let ended = if inner_ends_first {
            Some(p)
        } else {
            (!outer_open).then_some(outer)
        };
        if let Some(e) = ended {
            period.to_height = e.to_height;
            period.to_ms = e.to_ms;
            period.removed_by = e.removed_by.clone();
        }
        Some(Window {
            period,
            depth: self.depth + 1,
        })
    }
}

/// The stays of the thing `identifier` names, with the custody and cold chain of the
/// shipments among its containers during each stay. Reads at most `max_events`
/// transactions of each shipment's history.
pub async fn stays(
    node: &Node,
    identifier: &str,
    max_events: usize,
) -> Result<Stays, HistoryError> {
    let mut out = Stays::default();
    let Some(own) = node.containment(identifier).await? else {
        return Ok(out);
    };
    out.dropped = own.periods_dropped;
    let mut stack: Vec<Window> = own
        .periods
        .iter()
        .rev()
        .map(|p| Window {
            period: p.clone(),
            depth: 1,
        })
        .collect();
    let mut windows = Vec::new();
    while let Some(w) = stack.pop() {
        if windows.len() == MAX_STAYS {
            out.truncated = true;
            break;
        }
        if (w.depth as usize) < MAX_NESTING
            && let Some(outer) = node.containment(&w.period.parent).await?
        {
            let mut around: Vec<Window> =
                outer.periods.iter().filter_map(|q| w.overlap(q)).collect();
            around.reverse();
            stack.extend(around);
        }
        windows.push(w);
    }
    // The shipments among the containers, each read once.
    type Inherited = (pb::ShipmentTwin, Vec<provenance::Recorded>, Vec<String>);
    let mut shipments: BTreeMap<String, Option<Inherited>> = BTreeMap::new();
    for w in windows {
        let p = w.period;
        let mut stay = pb::ProvenanceStay {
            container: p.parent.clone(),
            depth: w.depth,
            from_height: p.from_height,
            from_ms: p.from_ms,
            packed_by: p.added_by,
            to_height: p.to_height,
            to_ms: p.to_ms,
            unpacked_by: p.removed_by,
            ..Default::default()
        };
        if !shipments.contains_key(&p.parent) {
            let found = match node.contents(&p.parent).await? {
                Some(c) if !c.shipment_id.is_empty() => {
                    match node.shipment(&c.shipment_id).await? {
                        Some(twin) => {
                            let history = node.recorded(&c.shipment_id, max_events).await?;
                            let flags = node.device_flags(&twin).await?;
                            Some((twin, history, flags))
                        }
                        None => None,
                    }
                }
                _ => None,
            };
            shipments.insert(p.parent.clone(), found);
        }
        if let Some(Some((twin, history, flags))) = shipments.get(&p.parent) {
            let until = (stay.to_height != 0).then_some(stay.to_ms);
            let got = provenance::inherited(twin, history, stay.from_ms, until);
            stay.shipment_id = twin.shipment_id.clone();
            stay.custody = got.custody;
            stay.excursions = got.excursions;
            stay.cold_chain = twin.verdict;
            // The verdict rests on the shipment's device-signed readings: a device
            // flagged as cloned is said next to it.
            stay.cold_chain_reasons = twin.reasons.iter().chain(flags).cloned().collect();
            stay.mkt_milli_c = twin.mkt_milli_c;
        }
        out.stays.push(stay);
    }
    Ok(out)
}

/// One line per shipment stay, for a provenance answer's reasons: where it was, in whose
/// custody, and the cold chain there.
pub fn reasons(stays: &Stays) -> Vec<String> {
    let mut lines: Vec<String> = stays
        .stays
        .iter()
        .filter(|s| !s.shipment_id.is_empty())
        .map(|s| {
            let verdict = match pb::Verdict::try_from(s.cold_chain) {
                Ok(pb::Verdict::Conformant) if s.cold_chain_reasons.is_empty() => {
                    "conformant".to_string()
                }
                Ok(pb::Verdict::Conformant) => {
                    format!("conformant, but {}", s.cold_chain_reasons.join("; "))
                }
                Ok(pb::Verdict::NonConformant) => {
                    format!("non-conformant ({})", s.cold_chain_reasons.join("; "))
                }
                _ => "no verdict".to_string(),
            };
            format!(
                "in shipment {} (custody {}): cold chain {verdict}, {} excursion(s) while it was inside",
                s.shipment_id,
                s.custody.join(", "),
                s.excursions.len()
            )
        })
        .collect();
    if stays.truncated {
        lines.push(format!(
            "more than {MAX_STAYS} stays in containers: the list stops there"
        ));
    }
    lines
}
