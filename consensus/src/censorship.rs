//! The request timer against censorship (§4.4): a replica that has seen a
//! transaction which stays uncommitted for a timeout asks for a new view.
//!
//! Time is counted in ticks of the periodic [`TimerId::Censorship`](crate::TimerId)
//! timer: a transaction seen in tick `e` is overdue at tick `e + 2`, so it had at
//! least one full interval. The tracked set is bounded; once full, new transactions
//! are not tracked (the ones already tracked still expose a censoring primary).
//!
//! Gossip can deliver a transaction after the block that holds it committed; such a
//! late `TxsSeen` must not start a timer that nothing will ever stop (the simulation
//! found this: a spurious view change every censorship interval). So the tracker
//! also remembers a bounded window of recently committed ids and ignores them.
//!
//! Every transaction passes through here twice (seen, committed), so the sets are hash
//! sets: ordered trees of 32-byte ids cost ~5 % of a saturated node's CPU in profiles
//! (docs/PERFORMANCE.md). Nothing depends on their order. The ids are chosen by
//! clients (a transaction's hash), so the hasher is std's keyed SipHash, which a
//! client cannot aim collisions at.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::io::TxId;

#[derive(Debug, Clone)]
pub(crate) struct TxTracker {
    tick: u64,
    pending: HashMap<TxId, u64>,
    recently_committed: HashSet<TxId>,
    committed_order: VecDeque<TxId>,
    cap: usize,
}

impl TxTracker {
    pub fn new(cap: usize) -> Self {
        Self {
            tick: 0,
            pending: HashMap::new(),
            recently_committed: HashSet::new(),
            committed_order: VecDeque::new(),
            cap,
        }
    }

    pub fn seen(&mut self, id: TxId) {
        if self.pending.len() < self.cap && !self.recently_committed.contains(&id) {
            self.pending.entry(id).or_insert(self.tick);
        }
    }

    pub fn committed(&mut self, ids: &[TxId]) {
        for id in ids {
            self.pending.remove(id);
            if self.recently_committed.insert(*id) {
                self.committed_order.push_back(*id);
            }
        }
        while self.committed_order.len() > self.cap {
            if let Some(old) = self.committed_order.pop_front() {
                self.recently_committed.remove(&old);
            }
        }
    }

    /// Advances the clock by one tick; whether some transaction is overdue.
    pub fn tick(&mut self) -> bool {
        self.tick = self.tick.saturating_add(1);
        self.pending
            .values()
            .any(|seen| seen.saturating_add(2) <= self.tick)
    }

    /// Gives a new view a full timeout: every tracked transaction counts as just seen.
    pub fn restart_clock(&mut self) {
        let now = self.tick;
        self.pending.values_mut().for_each(|seen| *seen = now);
    }

    /// Tracked and remembered ids (for the memory bound).
    pub fn len(&self) -> usize {
        self.pending.len() + self.recently_committed.len()
    }
}
