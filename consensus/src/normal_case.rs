//! The normal case of PBFT (Castro & Liskov §4.2): pre-prepare, prepare, commit,
//! the primary's proposals and the host's verdicts.
//!
//! | mode | input | rule |
//! |---|---|---|
//! | Normal(v), primary | round starts | `NeedProposal` (or re-propose the new-view mandate, §4.4) |
//! | Normal(v), primary | `Propose` | persist, broadcast pre-prepare |
//! | Normal(v) | pre-prepare(v, h) | `RequestValidation` (§4.2 acceptance + host validity) |
//! | Normal(v) | valid verdict | persist, broadcast prepare |
//! | Normal(v) | invalid verdict | view change to v+1 (§4.4: the primary is faulty) |
//! | Normal(v) | 2f+1 prepares + valid | persist prepared certificate, broadcast commit |
//! | any | 2f+1 commits, block known | `Commit` (§4.2 committed-local) |

use crate::certificate::{BlockHash, CommitCertificate, sign_commit_vote};
use crate::fault::{MessageKind, PeerFault};
use crate::io::{Output, TimerId};
use crate::log::{HeightLog, Kind, Proposal, Verdict};
use crate::messages::{Message, PrePrepare, PreparedCertificate, Vote};
use crate::replica::{Mode, Placement, Replica, VoteKind};
use crate::signing::{self, pre_prepare_bytes, prepare_bytes};
use crate::state::VoteRecord;

impl Replica {
    /// §4.2: a backup accepts a pre-prepare for (v, h) if it is signed by the primary
    /// of v, it is in view v, and it has not accepted another one for (v, h).
    pub(crate) fn on_pre_prepare(&mut self, m: PrePrepare, out: &mut Vec<Output>) {
        if m.from != self.cfg.validators.primary(m.view) {
            let fault = PeerFault::NotPrimary { view: m.view };
            return self.fault(m.from, fault, out);
        }
        if m.view < self.view() {
            self.help_stale_view(m.from, out);
        }
        let placement = self.place(m.view, m.height);
        match placement {
            Placement::Drop => return,
            Placement::Stale => return self.help_lagging(m.from, out),
            Placement::Now if self.log.proposals.contains_key(&m.view) => return,
            Placement::Buffer
                if self
                    .future
                    .contains(m.height, m.view, m.from, Kind::PrePrepare) =>
            {
                return;
            }
            _ => {}
        }
        if placement == Placement::Ahead && self.catch_up.in_flight.is_some() {
            return;
        }
        if let Err(fault) = self.check_pre_prepare(&m) {
            return self.fault(m.from, fault, out);
        }
        match placement {
            Placement::Ahead => self.saw_height(m.height.saturating_sub(1), m.from, out),
            Placement::Buffer => self.future.insert(
                m.height,
                m.view,
                m.from,
                Kind::PrePrepare,
                Message::PrePrepare(m),
            ),
            _ => self.apply_pre_prepare(m, out),
        }
    }

    /// The size, hash and signature checks of a pre-prepare, cheapest first.
    pub(crate) fn check_pre_prepare(&self, m: &PrePrepare) -> Result<(), PeerFault> {
        let kind = MessageKind::PrePrepare;
        let limit = self.cfg.limits.max_block_bytes;
        if m.block.len() > limit {
            let bytes = m.block.len();
            return Err(PeerFault::OversizedBlock { kind, bytes, limit });
        }
        // The block must be the one the signature is for (else a faulty primary could
        // get a hash prepared whose bytes nobody has).
        if (self.cfg.block_hasher)(&m.block) != Some(m.block_hash) {
            return Err(PeerFault::BlockMismatch { kind });
        }
        let bytes = pre_prepare_bytes(
            self.cfg.validators.chain_id(),
            m.height,
            m.view,
            &m.block_hash,
        );
        if !signing::verify(&self.cfg.validators, m.from, &bytes, &m.signature) {
            return Err(PeerFault::BadSignature { kind });
        }
        Ok(())
    }

    /// Logs a verified pre-prepare for the height being decided.
    pub(crate) fn apply_pre_prepare(&mut self, m: PrePrepare, out: &mut Vec<Output>) {
        if m.height != self.next_height() || self.log.proposals.contains_key(&m.view) {
            return;
        }
        self.log.proposals.insert(
            m.view,
            Proposal {
                block_hash: m.block_hash,
                block: m.block,
                verdict: Verdict::Unasked,
            },
        );
        self.consider_proposal(out);
        // The block may complete a commit certificate that was waiting for its bytes.
        self.check_committed(out);
    }

    /// If the current view's proposal is not yet validated and the view's rule
    /// allows it, asks the host to validate it (§4.2: accept, then prepare only a
    /// block the ledger accepts).
    pub(crate) fn consider_proposal(&mut self, out: &mut Vec<Output>) {
        let Mode::Normal { view } = self.mode else {
            return;
        };
        let height = self.next_height();
        let Some(p) = self.log.proposals.get(&view) else {
            return;
        };
        if p.verdict != Verdict::Unasked {
            return;
        }
        if !self.view_start_allows(view, height, &p.block_hash) {
            // §4.4: in a new view, the start height must carry the block of the
            // highest prepared certificate, and lower heights are not re-decided.
            self.log.proposals.remove(&view);
            return;
        }
        let (block_hash, block) = (p.block_hash, p.block.clone());
        if let Some(p) = self.log.proposals.get_mut(&view) {
            p.verdict = Verdict::Pending;
        }
        out.push(Output::RequestValidation {
            height,
            view,
            block_hash,
            block,
        });
    }

    pub(crate) fn view_start_allows(&self, view: u64, height: u64, hash: &BlockHash) -> bool {
        match &self.view_start {
            Some(vs) if vs.view == view => {
                height > vs.start_height
                    || (height == vs.start_height
                        && vs.mandate.as_ref().is_none_or(|(h, _)| h == hash))
            }
            _ => true,
        }
    }

    pub(crate) fn on_vote(&mut self, kind: Kind, v: Vote, out: &mut Vec<Output>) {
        if v.view < self.view() {
            self.help_stale_view(v.from, out);
        }
        let placement = self.place(v.view, v.height);
        let table = match kind {
            Kind::Commit => &self.log.commits,
            _ => &self.log.prepares,
        };
        let logged = table.get(&(v.view, v.from)).map(|(hash, _)| *hash);
        match placement {
            Placement::Drop => return,
            Placement::Stale => return self.help_lagging(v.from, out),
            // One vote per sender and view: a duplicate costs no signature check; a
            // second, different one is equivocation if its signature holds, and is
            // ignored either way (the first one counts).
            Placement::Now if logged == Some(v.block_hash) => return,
            Placement::Now if logged.is_some() => return self.report_equivocation(kind, &v, out),
            // A prepare for an earlier view can no longer matter (§4.2 is per view).
            Placement::Now if kind == Kind::Prepare && v.view < self.view() => return,
            Placement::Buffer if self.future.contains(v.height, v.view, v.from, kind) => return,
            Placement::Ahead if self.catch_up.in_flight.is_some() => return,
            _ => {}
        }
        if !self.vote_signature_holds(kind, &v) {
            let kind = message_kind(kind);
            return self.fault(v.from, PeerFault::BadSignature { kind }, out);
        }
        match placement {
            Placement::Ahead => self.saw_height(v.height.saturating_sub(1), v.from, out),
            Placement::Buffer => {
                let message = match kind {
                    Kind::Commit => Message::Commit(v.clone()),
                    _ => Message::Prepare(v.clone()),
                };
                self.future.insert(v.height, v.view, v.from, kind, message);
            }
            _ => self.apply_vote(kind, v, out),
        }
    }

    fn vote_signature_holds(&self, kind: Kind, v: &Vote) -> bool {
        let chain = self.cfg.validators.chain_id();
        let bytes = match kind {
            Kind::Commit => {
                crate::certificate::commit_vote_bytes(chain, v.height, v.view, &v.block_hash)
            }
            _ => prepare_bytes(chain, v.height, v.view, &v.block_hash),
        };
        signing::verify(&self.cfg.validators, v.from, &bytes, &v.signature)
    }

    /// A second vote of `kind` from one replica for one (view, height) with another
    /// block: proof of equivocation if signed, a forgery otherwise.
    fn report_equivocation(&self, kind: Kind, v: &Vote, out: &mut Vec<Output>) {
        let message = message_kind(kind);
        let fault = if self.vote_signature_holds(kind, v) {
            PeerFault::Equivocation {
                kind: message,
                view: v.view,
                height: v.height,
            }
        } else {
            PeerFault::BadSignature { kind: message }
        };
        self.fault(v.from, fault, out);
    }

    /// Logs a verified vote for the height being decided.
    pub(crate) fn apply_vote(&mut self, kind: Kind, v: Vote, out: &mut Vec<Output>) {
        if v.height != self.log.height {
            return;
        }
        match kind {
            Kind::Commit => {
                self.log
                    .commits
                    .entry((v.view, v.from))
                    .or_insert((v.block_hash, v.signature));
                self.check_committed(out);
            }
            _ => {
                self.log
                    .prepares
                    .entry((v.view, v.from))
                    .or_insert((v.block_hash, v.signature));
                self.check_prepared(out);
            }
        }
    }

    /// Re-applies buffered messages that are now for the height being decided.
    pub(crate) fn replay_future(&mut self, out: &mut Vec<Output>) {
        let height = self.next_height();
        for message in self.future.take_height(height) {
            if self.next_height() != height {
                break; // a replayed message committed the height; the rest are stale
            }
            match message {
                Message::PrePrepare(m) => self.apply_pre_prepare(m, out),
                Message::Prepare(v) => self.apply_vote(Kind::Prepare, v, out),
                Message::Commit(v) => self.apply_vote(Kind::Commit, v, out),
                _ => {}
            }
        }
    }

    /// Starts deciding the next height in the current view: arm the progress timer
    /// (§4.4) and, as primary, ask for a proposal or re-propose the mandate.
    pub(crate) fn enter_round(&mut self, out: &mut Vec<Output>) {
        let Mode::Normal { view } = self.mode else {
            return;
        };
        let height = self.next_height();
        out.push(Output::SetTimer {
            timer: TimerId::Progress { view, height },
            after_ms: self.view_timeout(),
        });
        let may_propose = self
            .view_start
            .as_ref()
            .is_none_or(|vs| vs.view != view || height >= vs.start_height);
        if self.is_primary(view) && may_propose && !self.log.proposals.contains_key(&view) {
            let mandate = self
                .view_start
                .as_ref()
                .filter(|vs| vs.view == view && vs.start_height == height)
                .and_then(|vs| vs.mandate.clone());
            match mandate {
                // §4.4: the new primary re-proposes the highest prepared block.
                Some((hash, block)) => self.propose(hash, block, out),
                None => out.push(Output::NeedProposal { height, view }),
            }
        }
        self.consider_proposal(out);
    }

    pub(crate) fn on_propose(
        &mut self,
        height: u64,
        view: u64,
        block: Vec<u8>,
        hash: BlockHash,
        out: &mut Vec<Output>,
    ) {
        let current = self.mode == Mode::Normal { view } && height == self.next_height();
        let mandated = self.view_start.as_ref().is_some_and(|vs| {
            vs.view == view
                && (height < vs.start_height || (vs.start_height == height && vs.mandate.is_some()))
        });
        if !current
            || mandated
            || !self.is_primary(view)
            || self.log.proposals.contains_key(&view)
            || block.len() > self.cfg.limits.max_block_bytes
            || (self.cfg.block_hasher)(&block) != Some(hash)
        {
            return;
        }
        self.propose(hash, block, out);
    }

    /// Signs, persists and broadcasts a pre-prepare, then treats it as received.
    pub(crate) fn propose(&mut self, hash: BlockHash, block: Vec<u8>, out: &mut Vec<Output>) {
        let Mode::Normal { view } = self.mode else {
            return;
        };
        let height = self.next_height();
        if !self.record_vote(VoteKind::PrePrepare, view, height, hash) {
            return;
        }
        let signature = signing::sign(
            &self.cfg.key,
            &pre_prepare_bytes(self.cfg.validators.chain_id(), height, view, &hash),
        );
        let m = PrePrepare {
            view,
            height,
            block_hash: hash,
            block,
            from: self.cfg.me,
            signature,
        };
        self.persist(out);
        out.push(Output::Broadcast(Message::PrePrepare(m.clone())));
        self.log.own_pre_prepare = Some(m.clone());
        self.apply_pre_prepare(m, out);
    }

    /// Records that this replica signs `kind` for (view, height, hash), unless it
    /// already signed a different one there (or something later): the rule that a
    /// restarted replica never signs two different votes for the same (view, height).
    pub(crate) fn record_vote(
        &mut self,
        kind: VoteKind,
        view: u64,
        height: u64,
        hash: BlockHash,
    ) -> bool {
        let slot = match kind {
            VoteKind::PrePrepare => &mut self.signed_pre_prepare,
            VoteKind::Prepare => &mut self.signed_prepare,
            VoteKind::Commit => &mut self.signed_commit,
        };
        if let Some(r) = slot
            && ((r.view, r.height) > (view, height)
                || ((r.view, r.height) == (view, height) && r.block_hash != hash))
        {
            return false;
        }
        *slot = Some(VoteRecord {
            view,
            height,
            block_hash: hash,
        });
        true
    }

    pub(crate) fn on_validation(
        &mut self,
        height: u64,
        view: u64,
        hash: BlockHash,
        valid: bool,
        out: &mut Vec<Output>,
    ) {
        if height != self.next_height() {
            return;
        }
        let Some(p) = self.log.proposals.get_mut(&view) else {
            return;
        };
        if p.block_hash != hash || p.verdict != Verdict::Pending {
            return;
        }
        p.verdict = if valid {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        if self.mode != (Mode::Normal { view }) {
            return;
        }
        if valid {
            self.send_prepare(view, height, hash, out);
            self.check_prepared(out);
        } else {
            // A correct primary never proposes an invalid block (§4.4: suspect it).
            self.start_view_change(view.saturating_add(1), out);
        }
    }

    /// §4.2: a backup that accepted the pre-prepare multicasts a prepare. Here the
    /// primary prepares too, so that 2f+1 prepares alone prove "prepared".
    pub(crate) fn send_prepare(
        &mut self,
        view: u64,
        height: u64,
        hash: BlockHash,
        out: &mut Vec<Output>,
    ) {
        if !self.record_vote(VoteKind::Prepare, view, height, hash) {
            return;
        }
        let signature = signing::sign(
            &self.cfg.key,
            &prepare_bytes(self.cfg.validators.chain_id(), height, view, &hash),
        );
        self.log
            .prepares
            .insert((view, self.cfg.me), (hash, signature));
        self.persist(out);
        out.push(Output::Broadcast(Message::Prepare(Vote {
            view,
            height,
            block_hash: hash,
            from: self.cfg.me,
            signature,
        })));
    }

    /// §4.2 prepared(m, v, n, i): the validated pre-prepare and 2f+1 matching
    /// prepares. Then persist the prepared certificate and multicast a commit.
    pub(crate) fn check_prepared(&mut self, out: &mut Vec<Output>) {
        let Mode::Normal { view } = self.mode else {
            return;
        };
        if self.log.commit_sent_in == Some(view) {
            return;
        }
        let Some(p) = self.log.proposals.get(&view) else {
            return;
        };
        if p.verdict != Verdict::Valid {
            return;
        }
        let (hash, block) = (p.block_hash, p.block.clone());
        let prepares = self.log.prepares_for(view, &hash);
        if prepares.len() < self.cfg.validators.quorum() {
            return;
        }
        let height = self.next_height();
        if !self.record_vote(VoteKind::Commit, view, height, hash) {
            return;
        }
        self.log.commit_sent_in = Some(view);
        self.prepared = Some(PreparedCertificate {
            view,
            height,
            block_hash: hash,
            block,
            prepares,
        });
        let signature = sign_commit_vote(
            &self.cfg.key,
            self.cfg.validators.chain_id(),
            height,
            view,
            &hash,
        );
        self.persist(out);
        out.push(Output::Broadcast(Message::Commit(Vote {
            view,
            height,
            block_hash: hash,
            from: self.cfg.me,
            signature,
        })));
        self.log
            .commits
            .insert((view, self.cfg.me), (hash, signature));
        self.check_committed(out);
    }

    /// §4.2 committed-local: 2f+1 matching commits (in any view) are a commit
    /// certificate; the block commits once its bytes are known.
    pub(crate) fn check_committed(&mut self, out: &mut Vec<Output>) {
        let Some((view, hash, signatures)) = self.log.commit_quorum(self.cfg.validators.quorum())
        else {
            return;
        };
        let certificate = CommitCertificate {
            height: self.next_height(),
            view,
            block_hash: hash,
            signatures,
        };
        match self.log.block(&hash).cloned() {
            Some(block) => self.commit_block(block, certificate, out),
            None => {
                // Decided, but the pre-prepare never reached us: fetch the block.
                let peer = certificate
                    .signatures
                    .iter()
                    .map(|(r, _)| *r)
                    .find(|r| *r != self.cfg.me)
                    .unwrap_or(self.cfg.me);
                self.request_blocks(certificate.height, peer, out);
            }
        }
    }

    /// Emits the commit and moves to the next height.
    pub(crate) fn commit_block(
        &mut self,
        block: Vec<u8>,
        certificate: CommitCertificate,
        out: &mut Vec<Output>,
    ) {
        let height = certificate.height;
        debug_assert_eq!(height, self.next_height());
        out.push(Output::Commit {
            block,
            certificate: certificate.clone(),
        });
        self.committed = height;
        self.last_commit = Some(certificate);
        if self.prepared.as_ref().is_some_and(|p| p.height <= height) {
            self.prepared = None;
        }
        // Progress: the timeout backoff resets (§4.5.2).
        self.failures = 0;
        self.log = HeightLog::new(height.saturating_add(1));
        if self.catch_up.in_flight.is_some_and(|(to, _)| to <= height) {
            self.catch_up.in_flight = None;
        }
        if let Some(vs) = &self.view_start
            && vs.view == self.view()
            && vs.start_height == self.next_height()
        {
            self.log.mandated_block = vs.mandate.clone();
        }
        self.enter_round(out);
        self.replay_future(out);
    }
}

/// The message kind of a vote kind.
fn message_kind(kind: Kind) -> MessageKind {
    match kind {
        Kind::PrePrepare => MessageKind::PrePrepare,
        Kind::Prepare => MessageKind::Prepare,
        Kind::Commit => MessageKind::Commit,
    }
}
