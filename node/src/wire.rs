//! The one decode point for consensus messages and persisted consensus state:
//! protobuf (`tracechain.v1.ConsensusMessage`, `PersistentConsensusState`) to and from
//! the consensus crate's plain types.
//!
//! Decoding checks shapes only — hashes are 32 bytes, signatures 64, required parts
//! present — and returns a typed [`WireError`] for anything else; it never panics on
//! peer bytes. Whether a sender is a member and its signatures verify is the replica's
//! job (it has the validator set), so nothing here trusts a message.

use ed25519_dalek::Signature;
use prost::Message as _;
use tracechain_consensus::{
    Message, NewView, PersistentState, PrePrepare, PreparedCertificate, ReplicaId, Status,
    ViewChange, ViewStart, Vote, VoteRecord,
};
use tracechain_ledger::certificate::{self, CertificateError};
use tracechain_proto::v1 as pb;

/// Why bytes from a peer (or the store) are not a consensus message (or state).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not protobuf of the expected message.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// A required part is missing.
    #[error("{what} is missing")]
    Missing {
        /// The missing part.
        what: &'static str,
    },
    /// A fixed-size field has the wrong length.
    #[error("{what} must be {expected} bytes, got {got}")]
    Length {
        /// The field.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A commit certificate is malformed.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// Too many nested items (e.g. view changes in a new view).
    #[error("{what}: {got} items, at most {max}")]
    TooMany {
        /// The list.
        what: &'static str,
        /// Items present.
        got: usize,
        /// Bound.
        max: usize,
    },
}

/// More signatures or view changes than any consortium this node runs could need; a
/// bound on what one message can make the decoder allocate.
pub const MAX_LIST_ITEMS: usize = 1_024;

fn hash(what: &'static str, bytes: &[u8]) -> Result<[u8; 32], WireError> {
    bytes.try_into().map_err(|_| WireError::Length {
        what,
        expected: 32,
        got: bytes.len(),
    })
}

fn signature(what: &'static str, bytes: &[u8]) -> Result<Signature, WireError> {
    let b: [u8; 64] = bytes.try_into().map_err(|_| WireError::Length {
        what,
        expected: 64,
        got: bytes.len(),
    })?;
    Ok(Signature::from_bytes(&b))
}

fn bounded<T>(what: &'static str, items: &[T]) -> Result<(), WireError> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(WireError::TooMany {
            what,
            got: items.len(),
            max: MAX_LIST_ITEMS,
        });
    }
    Ok(())
}

fn signatures(
    what: &'static str,
    sigs: &[pb::ReplicaSignature],
) -> Result<Vec<(ReplicaId, Signature)>, WireError> {
    bounded(what, sigs)?;
    sigs.iter()
        .map(|s| Ok((ReplicaId(s.replica), signature(what, &s.signature)?)))
        .collect()
}

fn signatures_to_proto(sigs: &[(ReplicaId, Signature)]) -> Vec<pb::ReplicaSignature> {
    sigs.iter()
        .map(|(r, s)| pb::ReplicaSignature {
            replica: r.0,
            signature: s.to_bytes().to_vec(),
        })
        .collect()
}

// ---- certificates ------------------------------------------------------------------

fn prepared_to_proto(p: &PreparedCertificate) -> pb::PreparedCertificate {
    pb::PreparedCertificate {
        view: p.view,
        height: p.height,
        block_hash: p.block_hash.to_vec(),
        block: p.block.clone(),
        prepares: signatures_to_proto(&p.prepares),
    }
}

fn prepared_from_proto(p: &pb::PreparedCertificate) -> Result<PreparedCertificate, WireError> {
    Ok(PreparedCertificate {
        view: p.view,
        height: p.height,
        block_hash: hash("prepared block_hash", &p.block_hash)?,
        block: p.block.clone(),
        prepares: signatures("prepared signatures", &p.prepares)?,
    })
}

// ---- messages ----------------------------------------------------------------------

fn vote_to_proto(v: &Vote) -> pb::ConsensusVote {
    pb::ConsensusVote {
        view: v.view,
        height: v.height,
        block_hash: v.block_hash.to_vec(),
        sender: v.from.0,
        signature: v.signature.to_bytes().to_vec(),
    }
}

fn vote_from_proto(v: &pb::ConsensusVote) -> Result<Vote, WireError> {
    Ok(Vote {
        view: v.view,
        height: v.height,
        block_hash: hash("vote block_hash", &v.block_hash)?,
        from: ReplicaId(v.sender),
        signature: signature("vote signature", &v.signature)?,
    })
}

fn view_change_to_proto(v: &ViewChange) -> pb::ViewChange {
    pb::ViewChange {
        view: v.view,
        committed_height: v.committed_height,
        committed: v.committed.as_ref().map(certificate::to_replica_proto),
        prepared: v.prepared.as_ref().map(prepared_to_proto),
        sender: v.from.0,
        signature: v.signature.to_bytes().to_vec(),
    }
}

fn view_change_from_proto(v: &pb::ViewChange) -> Result<ViewChange, WireError> {
    Ok(ViewChange {
        view: v.view,
        committed_height: v.committed_height,
        committed: v
            .committed
            .as_ref()
            .map(certificate::from_replica_proto)
            .transpose()?,
        prepared: v.prepared.as_ref().map(prepared_from_proto).transpose()?,
        from: ReplicaId(v.sender),
        signature: signature("view-change signature", &v.signature)?,
    })
}

/// A consensus message as protobuf.
pub fn message_to_proto(m: &Message) -> pb::ConsensusMessage {
    use pb::consensus_message::Kind;
    let kind = match m {
        Message::PrePrepare(p) => Kind::PrePrepare(pb::PrePrepare {
            view: p.view,
            height: p.height,
            block_hash: p.block_hash.to_vec(),
            block: p.block.clone(),
            sender: p.from.0,
            signature: p.signature.to_bytes().to_vec(),
        }),
        Message::Prepare(v) => Kind::Prepare(vote_to_proto(v)),
        Message::Commit(v) => Kind::Commit(vote_to_proto(v)),
        Message::ViewChange(v) => Kind::ViewChange(view_change_to_proto(v)),
        Message::NewView(n) => Kind::NewView(pb::NewView {
            view: n.view,
            view_changes: n.view_changes.iter().map(view_change_to_proto).collect(),
            sender: n.from.0,
            signature: n.signature.to_bytes().to_vec(),
        }),
        Message::Status(s) => Kind::Status(pb::ConsensusStatus {
            sender: s.from.0,
            certificate: Some(certificate::to_replica_proto(&s.certificate)),
        }),
    };
    pb::ConsensusMessage { kind: Some(kind) }
}

/// A consensus message from protobuf, shape-checked.
pub fn message_from_proto(m: &pb::ConsensusMessage) -> Result<Message, WireError> {
    use pb::consensus_message::Kind;
    Ok(
        match m.kind.as_ref().ok_or(WireError::Missing {
            what: "message kind",
        })? {
            Kind::PrePrepare(p) => Message::PrePrepare(PrePrepare {
                view: p.view,
                height: p.height,
                block_hash: hash("pre-prepare block_hash", &p.block_hash)?,
                block: p.block.clone(),
                from: ReplicaId(p.sender),
                signature: signature("pre-prepare signature", &p.signature)?,
            }),
            Kind::Prepare(v) => Message::Prepare(vote_from_proto(v)?),
            Kind::Commit(v) => Message::Commit(vote_from_proto(v)?),
            Kind::ViewChange(v) => Message::ViewChange(view_change_from_proto(v)?),
            Kind::NewView(n) => {
                bounded("new-view view changes", &n.view_changes)?;
                Message::NewView(NewView {
                    view: n.view,
                    view_changes: n
                        .view_changes
                        .iter()
                        .map(view_change_from_proto)
                        .collect::<Result<_, _>>()?,
                    from: ReplicaId(n.sender),
                    signature: signature("new-view signature", &n.signature)?,
                })
            }
            Kind::Status(s) => Message::Status(Status {
                from: ReplicaId(s.sender),
                certificate: certificate::from_replica_proto(s.certificate.as_ref().ok_or(
                    WireError::Missing {
                        what: "status certificate",
                    },
                )?)?,
            }),
        },
    )
}

/// Encodes a message for the network.
pub fn encode_message(m: &Message) -> Vec<u8> {
    message_to_proto(m).encode_to_vec()
}

/// Decodes a message from a peer.
pub fn decode_message(bytes: &[u8]) -> Result<Message, WireError> {
    let m = pb::ConsensusMessage::decode(bytes).map_err(|e| WireError::Malformed {
        what: "consensus message",
        reason: e.to_string(),
    })?;
    message_from_proto(&m)
}

// ---- persisted state ---------------------------------------------------------------

fn record_to_proto(r: &VoteRecord) -> pb::VoteRecord {
    pb::VoteRecord {
        view: r.view,
        height: r.height,
        block_hash: r.block_hash.to_vec(),
    }
}

fn record_from_proto(r: &pb::VoteRecord) -> Result<VoteRecord, WireError> {
    Ok(VoteRecord {
        view: r.view,
        height: r.height,
        block_hash: hash("vote record block_hash", &r.block_hash)?,
    })
}

/// Encodes the state a replica persists before it sends.
pub fn encode_state(s: &PersistentState) -> Vec<u8> {
    pb::PersistentConsensusState {
        view: s.view,
        view_changing: s.view_changing,
        view_start: s.view_start.as_ref().map(|v| pb::ViewStart {
            view: v.view,
            start_height: v.start_height,
            mandate_hash: v.mandate.as_ref().map(|(h, _)| h.to_vec()),
            mandate_block: v
                .mandate
                .as_ref()
                .map(|(_, b)| b.clone())
                .unwrap_or_default(),
        }),
        prepared: s.prepared.as_ref().map(prepared_to_proto),
        signed_pre_prepare: s.signed_pre_prepare.as_ref().map(record_to_proto),
        signed_prepare: s.signed_prepare.as_ref().map(record_to_proto),
        signed_commit: s.signed_commit.as_ref().map(record_to_proto),
    }
    .encode_to_vec()
}

/// Decodes persisted consensus state; a corrupt record is an error, never a default
/// (a replica that forgot its votes could sign twice).
pub fn decode_state(bytes: &[u8]) -> Result<PersistentState, WireError> {
    let s = pb::PersistentConsensusState::decode(bytes).map_err(|e| WireError::Malformed {
        what: "persisted consensus state",
        reason: e.to_string(),
    })?;
    Ok(PersistentState {
        view: s.view,
        view_changing: s.view_changing,
        view_start: s
            .view_start
            .as_ref()
            .map(|v| {
                Ok::<_, WireError>(ViewStart {
                    view: v.view,
                    start_height: v.start_height,
                    mandate: v
                        .mandate_hash
                        .as_ref()
                        .map(|h| {
                            Ok::<_, WireError>((hash("mandate hash", h)?, v.mandate_block.clone()))
                        })
                        .transpose()?,
                })
            })
            .transpose()?,
        prepared: s.prepared.as_ref().map(prepared_from_proto).transpose()?,
        signed_pre_prepare: s
            .signed_pre_prepare
            .as_ref()
            .map(record_from_proto)
            .transpose()?,
        signed_prepare: s
            .signed_prepare
            .as_ref()
            .map(record_from_proto)
            .transpose()?,
        signed_commit: s
            .signed_commit
            .as_ref()
            .map(record_from_proto)
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use tracechain_consensus::CommitCertificate;

    use super::*;

    fn sig(b: u8) -> Signature {
        Signature::from_bytes(&[b; 64])
    }

    fn cert(h: u64) -> CommitCertificate {
        CommitCertificate {
            height: h,
            view: 2,
            block_hash: [h as u8; 32],
            signatures: vec![(ReplicaId(0), sig(1)), (ReplicaId(3), sig(2))],
        }
    }

    fn prepared() -> PreparedCertificate {
        PreparedCertificate {
            view: 3,
            height: 8,
            block_hash: [8; 32],
            block: b"block bytes".to_vec(),
            prepares: vec![(ReplicaId(1), sig(4)), (ReplicaId(2), sig(5))],
        }
    }

    fn view_change(from: u32, with_prepared: bool) -> ViewChange {
        ViewChange {
            view: 4,
            committed_height: 7,
            committed: Some(cert(7)),
            prepared: with_prepared.then(prepared),
            from: ReplicaId(from),
            signature: sig(6),
        }
    }

    fn every_message() -> Vec<Message> {
        let vote = Vote {
            view: 1,
            height: 5,
            block_hash: [5; 32],
            from: ReplicaId(2),
            signature: sig(9),
        };
        vec![
            Message::PrePrepare(PrePrepare {
                view: 1,
                height: 5,
                block_hash: [5; 32],
                block: vec![1, 2, 3],
                from: ReplicaId(1),
                signature: sig(7),
            }),
            Message::Prepare(vote.clone()),
            Message::Commit(vote),
            Message::ViewChange(view_change(1, true)),
            Message::ViewChange(ViewChange {
                committed: None,
                committed_height: 0,
                ..view_change(2, false)
            }),
            Message::NewView(NewView {
                view: 4,
                view_changes: vec![
                    view_change(0, true),
                    view_change(1, false),
                    view_change(2, true),
                ],
                from: ReplicaId(0),
                signature: sig(3),
            }),
            Message::Status(Status {
                from: ReplicaId(3),
                certificate: cert(9),
            }),
        ]
    }

    #[test]
    fn every_message_roundtrips() {
        for m in every_message() {
            assert_eq!(decode_message(&encode_message(&m)), Ok(m));
        }
    }

    #[test]
    fn prepare_and_commit_stay_distinct() {
        let msgs = every_message();
        let (prepare, commit) = (&msgs[1], &msgs[2]);
        assert_ne!(encode_message(prepare), encode_message(commit));
        assert!(matches!(
            decode_message(&encode_message(commit)),
            Ok(Message::Commit(_))
        ));
    }

    #[test]
    fn malformed_peer_bytes_are_typed_errors() {
        assert!(matches!(
            decode_message(&[0xff, 0xff, 0xff]),
            Err(WireError::Malformed { .. })
        ));
        assert_eq!(
            decode_message(&pb::ConsensusMessage { kind: None }.encode_to_vec()),
            Err(WireError::Missing {
                what: "message kind"
            })
        );
        let mut short = message_to_proto(&every_message()[1]);
        if let Some(pb::consensus_message::Kind::Prepare(v)) = short.kind.as_mut() {
            v.block_hash.pop();
        }
        assert!(matches!(
            message_from_proto(&short),
            Err(WireError::Length { expected: 32, .. })
        ));
        let mut bad_sig = message_to_proto(&every_message()[0]);
        if let Some(pb::consensus_message::Kind::PrePrepare(p)) = bad_sig.kind.as_mut() {
            p.signature = vec![0; 63];
        }
        assert!(matches!(
            message_from_proto(&bad_sig),
            Err(WireError::Length { expected: 64, .. })
        ));
        let status = pb::ConsensusMessage {
            kind: Some(pb::consensus_message::Kind::Status(pb::ConsensusStatus {
                sender: 1,
                certificate: None,
            })),
        };
        assert!(matches!(
            message_from_proto(&status),
            Err(WireError::Missing { .. })
        ));
    }

    #[test]
    fn huge_lists_are_refused() {
        let mut m = message_to_proto(&every_message()[5]);
        if let Some(pb::consensus_message::Kind::NewView(n)) = m.kind.as_mut() {
            let one = n.view_changes[0].clone();
            n.view_changes = vec![one; MAX_LIST_ITEMS + 1];
        }
        assert!(matches!(
            message_from_proto(&m),
            Err(WireError::TooMany { .. })
        ));
    }

    #[test]
    fn persisted_state_roundtrips_and_corruption_is_an_error() {
        let record = |v| VoteRecord {
            view: v,
            height: 8,
            block_hash: [8; 32],
        };
        let states = [
            PersistentState::default(),
            PersistentState {
                view: 4,
                view_changing: true,
                view_start: Some(ViewStart {
                    view: 4,
                    start_height: 8,
                    mandate: Some(([8; 32], b"block".to_vec())),
                }),
                prepared: Some(prepared()),
                signed_pre_prepare: Some(record(3)),
                signed_prepare: Some(record(3)),
                signed_commit: Some(record(4)),
            },
            PersistentState {
                view_start: Some(ViewStart {
                    view: 2,
                    start_height: 3,
                    mandate: None,
                }),
                ..Default::default()
            },
        ];
        for s in states {
            assert_eq!(decode_state(&encode_state(&s)), Ok(s));
        }
        assert!(decode_state(&[0x0a, 0xff]).is_err());
    }
}
