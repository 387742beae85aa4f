//! EPCIS 2.0: import of JSON / JSON-LD capture documents as signed ledger transactions,
//! and export of a shipment's events as an EPCIS 2.0 document.
//!
//! `parse` checks a document (structure, required fields per event type, CBV 2.0
//! vocabularies from `vocab`, UN/ECE Rec 20 units, times with zones) and turns each
//! event into a typed [`pb::RecordEpcisEvent`]; it reports every rejected event with its
//! position and reason, and a document with any rejected event yields nothing. `import`
//! signs the events; `export` writes a shipment's history back out. See docs/EPCIS.md.

pub mod dl;
pub mod export;
pub mod hash;
pub mod import;
pub mod parse;
pub mod query;
pub mod vocab;

use tracechain_proto::v1 as pb;

/// One rejected event: its position in `epcisBody.eventList` (from 0) and every reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RejectedEvent {
    /// Index in the event list.
    pub index: usize,
    /// The event's type, if it had a readable one.
    pub event_type: String,
    /// What is wrong, one line each.
    pub reasons: Vec<String>,
}

/// Why a document is not imported.
#[derive(Debug, thiserror::Error)]
pub enum EpcisError {
    /// The input is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The document itself is malformed (no context, wrong type, no event list, ...).
    #[error("not an EPCIS 2.0 document: {0}")]
    Document(String),
    /// Some events are invalid; nothing is imported.
    #[error("{} of {total} events rejected; nothing imported{}", rejected.len(), first(rejected))]
    Rejected {
        /// Events in the document.
        total: usize,
        /// Every rejected event.
        rejected: Vec<RejectedEvent>,
    },
    /// Exporting failed.
    #[error("export: {0}")]
    Export(String),
}

fn first(r: &[RejectedEvent]) -> String {
    r.first()
        .map(|e| format!(" (event {}: {})", e.index, e.reasons.join("; ")))
        .unwrap_or_default()
}

/// The EPCIS events of a document, ready to sign.
pub type Events = Vec<pb::RecordEpcisEvent>;
