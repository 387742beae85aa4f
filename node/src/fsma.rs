//! FSMA 204 records of a traceability lot from committed state: the lot and the lots
//! linked to it by transformations (to a depth), every critical tracking event that
//! names them, and the shipping and receiving of the native shipments that carry them.
//! The rows are `tracechain-ledger`'s `fsma` (docs/API.md).

use std::collections::BTreeSet;

use serde_json::Value;
use tracechain_proto::v1::{self as pb, tx_body::Action};

use crate::{
    ledger::{
        epcis::export,
        fsma::{self, LotEvent, Row},
        identifiers,
    },
    lineage::{self, LineageError},
    node::{HistoryError, Node, ReadError},
    tx,
};

/// Most lots one answer covers.
pub const MAX_LOTS: usize = 100;
/// Most transactions read for one lot or shipment.
pub const MAX_EVENTS: usize = 10_000;

/// Why the records were not answered.
#[derive(Debug, thiserror::Error)]
pub enum FsmaError {
    /// The lineage could not be read or is too large.
    #[error(transparent)]
    Lineage(#[from] LineageError),
    /// A history could not be read or is too long.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// More lots than one answer covers.
    #[error("the lineage of {lot} links more than {MAX_LOTS} lots: ask for a smaller depth")]
    TooManyLots {
        /// The lot asked for.
        lot: String,
    },
}

/// An event as the rows read it.
struct Owned {
    event: Value,
    member: String,
    height: u64,
    quantity: Option<(String, String)>,
}

/// The committed transactions that name `identifier`, checked, with their block facts.
async fn checked(
    node: &Node,
    identifier: &str,
) -> Result<Vec<(tx::CheckedTx, u64, i64)>, HistoryError> {
    let (events, total) = node.identifier_events(identifier, 0, MAX_EVENTS).await?;
    if total as usize > MAX_EVENTS {
        return Err(HistoryError::TooLong {
            total,
            max: MAX_EVENTS,
        });
    }
    let chain_id = node.genesis().chain_id().to_string();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let corrupt = |reason: String| {
            HistoryError::Read(ReadError::Chain(crate::chain::ChainError::Corrupt {
                what: "indexed transaction",
                reason,
            }))
        };
        let signed = e.tx.ok_or_else(|| corrupt("no transaction".into()))?;
        // From this node's own blocks: verified before commit.
        let checked = tx::committed(signed, &chain_id).map_err(|err| corrupt(err.to_string()))?;
        out.push((checked, e.height, e.block_time_ms));
    }
    Ok(out)
}

fn json_of(t: &tx::CheckedTx, block_time_ms: i64) -> Option<Value> {
    export::any_event(&export::ExportEvent {
        block_time_ms,
        tx: t,
    })
    .ok()
    .flatten()
}

/// The events about the lot `key`: what names it, and the handovers of the native
/// shipments it is a product of (with its quantity on them).
async fn lot_events(node: &Node, key: &str) -> Result<Vec<Owned>, HistoryError> {
    let mut out = Vec::new();
    for (t, height, time) in checked(node, key).await? {
        match &t.action {
            Action::CreateShipment(a) => {
                let Some(p) = a.products.iter().find(|p| identifiers::key(&p.epc) == key) else {
                    continue;
                };
                let quantity = Some((p.quantity.to_string(), p.uom.clone()));
                for (s, h, st) in checked(node, &a.shipment_id).await? {
                    let ours = match &s.action {
                        Action::Ship(x) => x.shipment_id == a.shipment_id,
                        Action::Receive(x) => x.shipment_id == a.shipment_id,
                        _ => false,
                    };
                    if let (true, Some(event)) = (ours, json_of(&s, st)) {
                        out.push(Owned {
                            event,
                            member: s.signer.id.clone(),
                            height: h,
                            quantity: quantity.clone(),
                        });
                    }
                }
            }
            Action::RecordEpcisEvent(_) => {
                if let Some(event) = json_of(&t, time) {
                    out.push(Owned {
                        event,
                        member: t.signer.id.clone(),
                        height,
                        quantity: None,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The records of `lot` and the lots transformations link to it within `depth`, with
/// event times in `[from_ms, to_ms)`, sorted by time; and the lots covered.
pub async fn records(
    node: &Node,
    lot: &str,
    from_ms: i64,
    to_ms: i64,
    depth: u32,
) -> Result<(Vec<String>, Vec<Row>), FsmaError> {
    let line = lineage::lineage(node, lot, depth).await?;
    let mut lots: BTreeSet<String> = BTreeSet::from([line.key.clone()]);
    for link in line.upstream.iter().chain(&line.downstream) {
        lots.extend(link.inputs.iter().cloned());
        lots.extend(link.outputs.iter().cloned());
    }
    if lots.len() > MAX_LOTS {
        return Err(FsmaError::TooManyLots {
            lot: lot.to_string(),
        });
    }
    let mut rows = Vec::new();
    for key in &lots {
        let owned = lot_events(node, key).await?;
        let events: Vec<LotEvent<'_>> = owned
            .iter()
            .map(|o| LotEvent {
                event: &o.event,
                member: &o.member,
                height: o.height,
                quantity: o.quantity.clone(),
            })
            .collect();
        let source = fsma::tlc_source(key, &events);
        rows.extend(fsma::rows(key, &events, from_ms, to_ms, &source));
    }
    rows.sort_by(|a, b| (a.time_ms, &a.cells).cmp(&(b.time_ms, &b.cells)));
    Ok((lots.into_iter().collect(), rows))
}

/// A row as the API carries it.
pub fn to_proto(row: Row) -> pb::FsmaRow {
    pb::FsmaRow { cells: row.cells }
}
