//! Timers: the view timeout with its backoff (§4.5.2), and what each timer does.
//!
//! | timer | rule |
//! |---|---|
//! | Progress(v, h), still Normal(v) at h | view change to v+1 (§4.4) |
//! | ViewChange(t), still ViewChanging(t) | view change to t+1, timeout doubled (§4.5.2) |
//! | Retransmit | re-send this replica's messages if nothing moved since last tick |
//! | Censorship | a transaction overdue → view change (§4.4 request timer) |
//! | Fetch | retry the fetch from another peer |

use crate::io::{Output, TimerId};
use crate::messages::{Message, Vote};
use crate::replica::{Mode, Replica};

impl Replica {
    /// The view timeout: base × 2^(consecutive failed views), capped (§4.5.2);
    /// `failures` resets to zero on every commit.
    pub(crate) fn view_timeout(&self) -> u64 {
        let t = &self.cfg.timeouts;
        let factor = 1u64 << self.failures.min(20);
        t.view_base_ms.saturating_mul(factor).min(t.view_max_ms)
    }

    pub(crate) fn arm_periodic_timers(&self, out: &mut Vec<Output>) {
        out.push(Output::SetTimer {
            timer: TimerId::Retransmit,
            after_ms: self.cfg.timeouts.retransmit_ms,
        });
        out.push(Output::SetTimer {
            timer: TimerId::Censorship,
            after_ms: self.cfg.timeouts.censorship_ms,
        });
    }

    pub(crate) fn on_timer(&mut self, timer: TimerId, out: &mut Vec<Output>) {
        match timer {
            TimerId::Progress { view, height } => {
                if self.mode == (Mode::Normal { view }) && self.next_height() == height {
                    self.start_view_change(view.saturating_add(1), out);
                }
            }
            TimerId::ViewChange { view } => {
                if matches!(self.mode, Mode::ViewChanging { target, .. } if target == view) {
                    self.start_view_change(view.saturating_add(1), out);
                }
            }
            TimerId::Retransmit => {
                self.retransmit(out);
                out.push(Output::SetTimer {
                    timer: TimerId::Retransmit,
                    after_ms: self.cfg.timeouts.retransmit_ms,
                });
            }
            TimerId::Censorship => {
                if self.txs.tick()
                    && let Mode::Normal { view } = self.mode
                {
                    self.start_view_change(view.saturating_add(1), out);
                }
                out.push(Output::SetTimer {
                    timer: TimerId::Censorship,
                    after_ms: self.cfg.timeouts.censorship_ms,
                });
            }
            TimerId::Fetch => self.on_fetch_timer(out),
        }
    }

    /// Re-sends this replica's current messages when nothing moved for a whole
    /// interval (lost messages would otherwise cost a view change), and re-opens the
    /// rate limits on helping lagging peers.
    fn retransmit(&mut self, out: &mut Vec<Output>) {
        self.helped_status.clear();
        self.helped_view.clear();
        let changing = matches!(self.mode, Mode::ViewChanging { .. });
        let mark = (self.view(), self.next_height(), changing);
        let stalled = self.retransmit_mark == Some(mark);
        self.retransmit_mark = Some(mark);
        if !stalled {
            return;
        }
        match self.mode {
            Mode::Normal { view } => {
                let height = self.next_height();
                if let Some(pp) = self
                    .log
                    .own_pre_prepare
                    .clone()
                    .filter(|pp| pp.view == view)
                {
                    out.push(Output::Broadcast(Message::PrePrepare(pp)));
                }
                let me = self.cfg.me;
                if let Some((hash, sig)) = self.log.prepares.get(&(view, me)) {
                    out.push(Output::Broadcast(Message::Prepare(Vote {
                        view,
                        height,
                        block_hash: *hash,
                        from: me,
                        signature: *sig,
                    })));
                }
                if let Some((hash, sig)) = self.log.commits.get(&(view, me)) {
                    out.push(Output::Broadcast(Message::Commit(Vote {
                        view,
                        height,
                        block_hash: *hash,
                        from: me,
                        signature: *sig,
                    })));
                }
            }
            Mode::ViewChanging { .. } => {
                if let Some(vc) = self.view_changes.get(&self.cfg.me).cloned() {
                    out.push(Output::Broadcast(Message::ViewChange(vc)));
                }
            }
        }
    }
}
