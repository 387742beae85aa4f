//! View change and new view (Castro & Liskov §4.4, liveness rules §4.5.2).
//!
//! | mode | input | rule |
//! |---|---|---|
//! | any | progress / view-change timer, invalid proposal, censorship | persist, broadcast view-change(v+1) |
//! | any | f+1 view changes for views above ours | join: view-change to the (f+1)-th highest (§4.5.2) |
//! | ViewChanging(t) | 2f+1 view changes for t | arm the view-change timer; as primary of t, broadcast new-view |
//! | any below v' | valid new-view(v') | enter v': persist its rule, re-propose (primary) the highest prepared block |
//! | Normal(v) | message from a view below v | hand the sender our new-view(v) |
//!
//! With one block decided at a time, a view change carries the sender's committed
//! height (with its certificate) and its prepared certificate for the next height.
//! The new view starts at H+1, H the highest committed height in the quorum; if some
//! view change has a prepared certificate for H+1, the one of the highest view fixes
//! the block at H+1. Safety: a block committed at H+1 was prepared by f+1 correct
//! replicas, one of which is in any quorum of view changes, and reports either a
//! commit of H+1 (then H is not the maximum) or that prepared certificate.

use crate::certificate::{BlockHash, CommitCertificate};
use crate::fault::{MessageKind, PeerFault};
use crate::io::{Output, TimerId};
use crate::messages::{Message, NewView, ViewChange};
use crate::replica::{Mode, Replica};
use crate::signing::{
    self, new_view_bytes, new_view_is_valid, view_change_is_valid, view_change_message_bytes,
};
use crate::state::ViewStart;
use crate::validators::ReplicaId;

/// Where a new view starts, recomputed by every replica from the view changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Highest committed height in the quorum, plus one.
    pub start_height: u64,
    /// The certificate of that highest height and who reported it.
    pub highest_commit: Option<(CommitCertificate, ReplicaId)>,
    /// The block of the highest-view prepared certificate for `start_height`.
    pub mandate: Option<(BlockHash, Vec<u8>)>,
}

/// The new-view rule (§4.4, adapted to one height at a time); deterministic.
pub(crate) fn decide(view_changes: &[ViewChange]) -> Decision {
    let highest = view_changes
        .iter()
        .map(|vc| vc.committed_height)
        .max()
        .unwrap_or(0);
    let highest_commit = view_changes
        .iter()
        .filter(|vc| vc.committed_height == highest)
        .find_map(|vc| vc.committed.clone().map(|c| (c, vc.from)));
    let start_height = highest.saturating_add(1);
    let mandate = view_changes
        .iter()
        .filter_map(|vc| vc.prepared.as_ref())
        .filter(|p| p.height == start_height)
        .max_by_key(|p| (p.view, p.block_hash))
        .map(|p| (p.block_hash, p.block.clone()));
    Decision {
        start_height,
        highest_commit,
        mandate,
    }
}

impl Replica {
    /// §4.4: stop accepting messages of the current view, persist that promise, and
    /// multicast view-change(target).
    pub(crate) fn start_view_change(&mut self, target: u64, out: &mut Vec<Output>) {
        // Views only move forward (Normal(v) → ViewChanging(t > v); ViewChanging(t) → t' > t).
        if target <= self.view() {
            return;
        }
        self.failures = self.failures.saturating_add(1);
        self.mode = Mode::ViewChanging {
            target,
            timer_armed: false,
        };
        // A new primary gets a full censorship timeout.
        self.txs.restart_clock();
        self.prune_views();
        self.persist(out);
        self.rebroadcast_view_change(target, out);
    }

    /// Signs and broadcasts this replica's view change for `target` (again, after a
    /// restart or on retransmission; Ed25519 signatures are deterministic).
    pub(crate) fn rebroadcast_view_change(&mut self, target: u64, out: &mut Vec<Output>) {
        let next = self.next_height();
        let mut vc = ViewChange {
            view: target,
            committed_height: self.committed,
            committed: self.last_commit.clone(),
            prepared: self
                .prepared
                .clone()
                .filter(|p| p.height == next && p.view < target),
            from: self.cfg.me,
            signature: ed25519_dalek::Signature::from_bytes(&[0; 64]),
        };
        vc.signature = signing::sign(
            &self.cfg.key,
            &view_change_message_bytes(self.cfg.validators.chain_id(), &vc),
        );
        self.view_changes.insert(self.cfg.me, vc.clone());
        out.push(Output::Broadcast(Message::ViewChange(vc)));
        self.after_view_change(out);
    }

    pub(crate) fn on_view_change(&mut self, vc: ViewChange, out: &mut Vec<Output>) {
        let from = vc.from;
        let view = self.view();
        if vc.view <= view {
            // The sender is behind us in views: hand it our new-view.
            if vc.view < view || matches!(self.mode, Mode::Normal { .. }) {
                self.help_stale_view(from, out);
            }
            if !(vc.view == view && matches!(self.mode, Mode::ViewChanging { .. })) {
                return;
            }
        }
        if vc.view > view.saturating_add(self.cfg.limits.max_view_jump) {
            return;
        }
        if self
            .view_changes
            .get(&from)
            .is_some_and(|old| old.view >= vc.view)
        {
            return;
        }
        if let Err(fault) = self.check_view_change(&vc) {
            return self.fault(from, fault, out);
        }
        if vc.committed_height < self.committed {
            self.help_lagging(from, out);
        }
        let cert = vc.committed.clone();
        self.view_changes.insert(from, vc);
        if let Some(cert) = cert
            && cert.height > self.committed
        {
            self.consider_certificate(cert, from, out);
        }
        self.maybe_join(out);
        self.after_view_change(out);
    }

    /// §4.5.2: f+1 view changes for views above ours prove that a correct replica
    /// wants to move; join the highest view that f+1 of them reach.
    fn maybe_join(&mut self, out: &mut Vec<Output>) {
        let view = self.view();
        let mut views: Vec<u64> = self
            .view_changes
            .iter()
            .filter(|(r, vc)| **r != self.cfg.me && vc.view > view)
            .map(|(_, vc)| vc.view)
            .collect();
        let f = self.cfg.validators.f();
        if views.len() > f {
            views.sort_unstable_by(|a, b| b.cmp(a));
            self.start_view_change(views[f], out);
        }
    }

    /// In ViewChanging(t) with 2f+1 replicas asking for t or later: arm the timer for
    /// t (§4.5.2). With 2f+1 asking for exactly t, the primary of t announces it (§4.4).
    fn after_view_change(&mut self, out: &mut Vec<Output>) {
        let Mode::ViewChanging {
            target,
            timer_armed,
        } = self.mode
        else {
            return;
        };
        // Counting views ≥ t, not = t: a replica that already moved past t (its timer
        // fired first) still wants to leave every view below it. Counting only = t
        // left replicas stuck unarmed at t forever (found by the simulation, chaos
        // seed 1246: four at view 1, one at view 2, n = 7).
        let at_least = self
            .view_changes
            .values()
            .filter(|vc| vc.view >= target)
            .count();
        if at_least < self.cfg.validators.quorum() {
            return;
        }
        if !timer_armed {
            self.mode = Mode::ViewChanging {
                target,
                timer_armed: true,
            };
            out.push(Output::SetTimer {
                timer: TimerId::ViewChange { view: target },
                after_ms: self.view_timeout(),
            });
        }
        let exactly = self
            .view_changes
            .values()
            .filter(|vc| vc.view == target)
            .count();
        if self.is_primary(target) && exactly >= self.cfg.validators.quorum() {
            let view_changes: Vec<ViewChange> = self
                .view_changes
                .values()
                .filter(|vc| vc.view == target)
                .cloned()
                .collect();
            let signature = signing::sign(
                &self.cfg.key,
                &new_view_bytes(self.cfg.validators.chain_id(), target, &view_changes),
            );
            let nv = NewView {
                view: target,
                view_changes,
                from: self.cfg.me,
                signature,
            };
            self.install_new_view(nv, true, out);
        }
    }

    pub(crate) fn on_new_view(&mut self, nv: NewView, out: &mut Vec<Output>) {
        let view = self.view();
        let entering =
            nv.view > view || (nv.view == view && matches!(self.mode, Mode::ViewChanging { .. }));
        if !entering || nv.view == u64::MAX {
            return;
        }
        let kind = MessageKind::NewView;
        if let Some(fault) = nv
            .view_changes
            .iter()
            .find_map(|vc| self.oversized_prepared(kind, vc))
        {
            return self.fault(nv.from, fault, out);
        }
        let known = |vc: &ViewChange| self.view_changes.get(&vc.from) == Some(vc);
        if !new_view_is_valid(&self.cfg.validators, self.cfg.block_hasher, &nv, known) {
            let fault = PeerFault::InvalidNewView { view: nv.view };
            return self.fault(nv.from, fault, out);
        }
        self.install_new_view(nv, false, out);
    }

    /// The size, form and signature checks of a view change.
    fn check_view_change(&self, vc: &ViewChange) -> Result<(), PeerFault> {
        if let Some(fault) = self.oversized_prepared(MessageKind::ViewChange, vc) {
            return Err(fault);
        }
        if !view_change_is_valid(&self.cfg.validators, self.cfg.block_hasher, vc) {
            return Err(PeerFault::InvalidViewChange { view: vc.view });
        }
        Ok(())
    }

    /// A prepared block above the size limit, carried in a view change.
    fn oversized_prepared(&self, kind: MessageKind, vc: &ViewChange) -> Option<PeerFault> {
        let limit = self.cfg.limits.max_block_bytes;
        let bytes = vc.prepared.as_ref().map_or(0, |p| p.block.len());
        (bytes > limit).then_some(PeerFault::OversizedBlock { kind, bytes, limit })
    }

    /// Enters the new view: its rule is persisted before anything is signed in it,
    /// and (as its primary, `announce`) before the new-view message leaves.
    fn install_new_view(&mut self, nv: NewView, announce: bool, out: &mut Vec<Output>) {
        let decision = decide(&nv.view_changes);
        let view = nv.view;
        self.mode = Mode::Normal { view };
        self.view_start = Some(ViewStart {
            view,
            start_height: decision.start_height,
            mandate: decision.mandate.clone(),
        });
        self.view_changes.retain(|_, vc| vc.view > view);
        self.prune_views();
        if decision.start_height == self.next_height() {
            self.log.mandated_block = decision.mandate;
        }
        self.persist(out);
        if announce {
            out.push(Output::Broadcast(Message::NewView(nv.clone())));
        }
        self.last_new_view = Some(nv);
        self.enter_round(out);
        if let Some((cert, peer)) = decision.highest_commit
            && cert.height > self.committed
        {
            self.consider_certificate(cert, peer, out);
        }
        self.check_committed(out);
    }

    /// Keeps the log and buffer within the view window around the current view.
    pub(crate) fn prune_views(&mut self) {
        let view = self.view();
        let window = self.cfg.limits.view_window;
        let (low, high) = (view.saturating_sub(window), view.saturating_add(window));
        self.log.retain_views(low, high);
        self.future.retain_views(low, high);
    }

    /// A peer is in an older view: send it the new-view of ours (once per retransmit
    /// interval), so it can join without a view change of its own.
    pub(crate) fn help_stale_view(&mut self, peer: ReplicaId, out: &mut Vec<Output>) {
        let Mode::Normal { view } = self.mode else {
            return;
        };
        let Some(nv) = self.last_new_view.as_ref().filter(|nv| nv.view == view) else {
            return;
        };
        if self.helped_view.insert(peer) {
            out.push(Output::Send {
                to: peer,
                message: Message::NewView(nv.clone()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signature;

    use super::*;
    use crate::messages::PreparedCertificate;

    fn vc(from: u32, committed: u64, prepared: Option<(u64, u64, u8)>) -> ViewChange {
        ViewChange {
            view: 9,
            committed_height: committed,
            committed: (committed > 0).then(|| CommitCertificate {
                height: committed,
                view: 0,
                block_hash: [committed as u8; 32],
                signatures: Vec::new(),
            }),
            prepared: prepared.map(|(height, view, b)| PreparedCertificate {
                view,
                height,
                block_hash: [b; 32],
                block: vec![b],
                prepares: Vec::new(),
            }),
            from: ReplicaId(from),
            signature: Signature::from_bytes(&[0; 64]),
        }
    }

    /// (view changes, start height, mandated block) — the §4.4 rule for one height
    /// at a time.
    #[test]
    fn new_view_decision() {
        let rows: Vec<(Vec<ViewChange>, u64, Option<u8>)> = vec![
            (
                vec![vc(0, 0, None), vc(1, 0, None), vc(2, 0, None)],
                1,
                None,
            ),
            // A prepared block at the next height is carried forward.
            (
                vec![vc(0, 4, None), vc(1, 4, Some((5, 2, 7))), vc(2, 3, None)],
                5,
                Some(7),
            ),
            // The highest view's prepared certificate wins.
            (
                vec![
                    vc(0, 4, Some((5, 1, 6))),
                    vc(1, 4, Some((5, 3, 8))),
                    vc(2, 4, Some((5, 2, 7))),
                ],
                5,
                Some(8),
            ),
            // A prepared certificate below the highest committed height is moot.
            (
                vec![vc(0, 5, None), vc(1, 4, Some((5, 3, 8))), vc(2, 4, None)],
                6,
                None,
            ),
        ];
        for (i, (vcs, start, mandate)) in rows.into_iter().enumerate() {
            let d = decide(&vcs);
            assert_eq!(d.start_height, start, "row {i}");
            assert_eq!(d.mandate.map(|(h, _)| h[0]), mandate, "row {i}");
            assert_eq!(
                d.highest_commit.map(|(c, _)| c.height).unwrap_or(0),
                start - 1,
                "row {i}"
            );
        }
    }
}
