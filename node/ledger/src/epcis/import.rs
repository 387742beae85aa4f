//! Turning checked EPCIS events into member-signed transactions.
//!
//! Signing happens where the member's admin key is: the CLI (`tracechain epcis import
//! --key`). A node never holds a member's key, so the gRPC method `CheckEpcisDocument`
//! only validates (the same checks, the same report) and returns the actions to sign.

use tracechain_proto::v1::{self as pb, tx_body::Action};

use super::{EpcisError, Events};
use crate::{crypto::SecretKey, tx};

/// Who signs: a member's id and admin key, the first sequence to use, the chain.
pub struct MemberSigner<'a> {
    /// Chain id.
    pub chain_id: &'a str,
    /// Member id.
    pub member_id: &'a str,
    /// The member's admin key.
    pub key: &'a SecretKey,
    /// Sequence of the first transaction; each next one adds one.
    pub first_sequence: u64,
    /// Body time, unix ms.
    pub time_ms: i64,
}

/// One signed transaction per event, in document order, with consecutive sequences.
pub fn sign_events(events: Events, signer: &MemberSigner<'_>) -> Vec<pb::SignedTx> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let body = pb::TxBody {
                chain_id: signer.chain_id.to_string(),
                signer: Some(pb::Signer {
                    kind: pb::SignerKind::Member as i32,
                    id: signer.member_id.to_string(),
                    scheme: pb::SignatureScheme::from(signer.key.scheme()) as i32,
                    public_key: signer.key.public_key(),
                }),
                sequence: signer.first_sequence + i as u64,
                time_ms: signer.time_ms,
                action: Some(Action::RecordEpcisEvent(event)),
            };
            tx::sign_body(&body, signer.key)
        })
        .collect()
}

/// The gRPC answer for a checked document.
pub fn check_response(parsed: Result<Events, EpcisError>) -> pb::CheckEpcisDocumentResponse {
    match parsed {
        Ok(events) => pb::CheckEpcisDocumentResponse {
            accepted: true,
            document_error: String::new(),
            total_events: events.len() as u32,
            rejected: Vec::new(),
            events,
        },
        Err(EpcisError::Rejected { total, rejected }) => pb::CheckEpcisDocumentResponse {
            accepted: false,
            document_error: String::new(),
            total_events: total as u32,
            rejected: rejected
                .into_iter()
                .map(|r| pb::EpcisRejection {
                    index: r.index as u32,
                    event_type: r.event_type,
                    reasons: r.reasons,
                })
                .collect(),
            events: Vec::new(),
        },
        Err(e) => pb::CheckEpcisDocumentResponse {
            accepted: false,
            document_error: e.to_string(),
            ..Default::default()
        },
    }
}
