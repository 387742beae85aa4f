//! Catch-up: a replica that sees evidence of heights beyond its own asks the host
//! for the blocks, and commits them only with a valid commit certificate (the role
//! of state transfer in §5.3; here certificates replace checkpoints).
//!
//! | input | rule |
//! |---|---|
//! | signed message for a height beyond the buffer window | fetch up to that height − 1 from its sender |
//! | status / view change / new view with a higher certificate | commit it if the block is known, else fetch |
//! | message for a height we committed | send the sender our status (once per interval) |
//! | fetched blocks | commit each in order while block hash and certificate verify; report the first bad one as the server's fault |
//! | fetch timer | retry from the next peer |

use crate::certificate::CommitCertificate;
use crate::fault::{MessageKind, PeerFault};
use crate::io::{FetchedBlock, Output, TimerId};
use crate::messages::{Message, Status};
use crate::replica::Replica;
use crate::validators::ReplicaId;

impl Replica {
    /// A verified message shows that `peer` committed at least `height`.
    pub(crate) fn saw_height(&mut self, height: u64, peer: ReplicaId, out: &mut Vec<Output>) {
        if height > self.committed {
            self.request_blocks(height, peer, out);
        }
    }

    /// A valid certificate for a height above ours.
    pub(crate) fn consider_certificate(
        &mut self,
        cert: CommitCertificate,
        peer: ReplicaId,
        out: &mut Vec<Output>,
    ) {
        if cert.height == self.next_height()
            && let Some(block) = self.log.block(&cert.block_hash).cloned()
        {
            return self.commit_block(block, cert, out);
        }
        self.request_blocks(cert.height, peer, out);
    }

    /// Asks `peer` for the blocks after ours up to `to` (bounded), one fetch at a time.
    pub(crate) fn request_blocks(&mut self, to: u64, peer: ReplicaId, out: &mut Vec<Output>) {
        if self.catch_up.hint.is_none_or(|(h, _)| h < to) {
            self.catch_up.hint = Some((to, peer));
        }
        if self.catch_up.in_flight.is_some() || to <= self.committed || peer == self.cfg.me {
            return;
        }
        let from = self.next_height();
        let to = to.min(from.saturating_add(self.cfg.limits.max_fetch_blocks.saturating_sub(1)));
        self.catch_up.in_flight = Some((to, peer));
        out.push(Output::FetchBlocks { from, to, peer });
        out.push(Output::SetTimer {
            timer: TimerId::Fetch,
            after_ms: self.cfg.timeouts.fetch_ms,
        });
    }

    pub(crate) fn on_status(&mut self, status: Status, out: &mut Vec<Output>) {
        let cert = status.certificate;
        // Cheap checks first: only a higher certificate is worth verifying, and only
        // when no fetch is already running.
        if cert.height <= self.committed || self.catch_up.in_flight.is_some() {
            return;
        }
        match cert.verify(&self.cfg.validators) {
            Ok(()) => self.consider_certificate(cert, status.from, out),
            Err(error) => {
                let fault = PeerFault::InvalidCertificate {
                    kind: MessageKind::Status,
                    height: cert.height,
                    error,
                };
                self.fault(status.from, fault, out);
            }
        }
    }

    /// Blocks from a peer: each must be the next height, hash to its hash, and carry
    /// a certificate of 2f+1 valid signatures from distinct members.
    pub(crate) fn on_fetched(
        &mut self,
        peer: ReplicaId,
        blocks: Vec<FetchedBlock>,
        out: &mut Vec<Output>,
    ) {
        for fetched in blocks {
            let height = fetched.certificate.height;
            if height <= self.committed {
                continue;
            }
            if let Err(fault) = self.check_fetched(&fetched) {
                self.fault(peer, fault, out);
                break;
            }
            self.commit_block(fetched.block, fetched.certificate, out);
        }
        if self.catch_up.in_flight.is_none()
            && let Some((to, peer)) = self.catch_up.hint
        {
            self.request_blocks(to, peer, out);
        }
    }

    /// A fetched block must be the next height, within the size limit, hash to its
    /// hash and carry a certificate for that hash at that height.
    fn check_fetched(&self, fetched: &FetchedBlock) -> Result<(), PeerFault> {
        let kind = MessageKind::FetchedBlocks;
        let (height, expected) = (fetched.certificate.height, self.next_height());
        if height != expected {
            return Err(PeerFault::FetchedOutOfOrder {
                expected,
                got: height,
            });
        }
        let limit = self.cfg.limits.max_block_bytes;
        if fetched.block.len() > limit {
            let bytes = fetched.block.len();
            return Err(PeerFault::OversizedBlock { kind, bytes, limit });
        }
        if (self.cfg.block_hasher)(&fetched.block) != Some(fetched.block_hash) {
            return Err(PeerFault::BlockMismatch { kind });
        }
        fetched
            .certificate
            .verify_for(&self.cfg.validators, height, &fetched.block_hash)
            .map_err(|error| PeerFault::InvalidCertificate {
                kind,
                height,
                error,
            })
    }

    /// The fetch expired: ask the next peer in turn (a faulty peer cannot stall us).
    pub(crate) fn on_fetch_timer(&mut self, out: &mut Vec<Output>) {
        let Some((_, last_peer)) = self.catch_up.in_flight.take() else {
            return;
        };
        let Some((to, _)) = self.catch_up.hint else {
            return;
        };
        let n = self.cfg.validators.n() as u32;
        let mut peer = ReplicaId((last_peer.0 + 1) % n);
        if peer == self.cfg.me {
            peer = ReplicaId((peer.0 + 1) % n);
        }
        self.request_blocks(to, peer, out);
    }

    /// A peer sent a message for a height we committed: tell it where we are.
    pub(crate) fn help_lagging(&mut self, peer: ReplicaId, out: &mut Vec<Output>) {
        let Some(cert) = &self.last_commit else {
            return;
        };
        if self.helped_status.insert(peer) {
            out.push(Output::Send {
                to: peer,
                message: Message::Status(Status {
                    from: self.cfg.me,
                    certificate: cert.clone(),
                }),
            });
        }
    }
}
