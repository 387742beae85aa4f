//! When to dial members we know an address for: at start, and again with exponential backoff
//! while they are disconnected, so that a member that restarts is found again.
//!
//! Pure state, no I/O: the swarm task asks [`Redialer::due`] on each tick and reports
//! connections and disconnections.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

#[derive(Debug)]
struct Target {
    addr: Multiaddr,
    /// Since when we are connected, if we are.
    connected_since: Option<Instant>,
    backoff: Duration,
    next_attempt: Instant,
}

/// Dial schedule of the members with a known address.
#[derive(Debug)]
pub(crate) struct Redialer {
    targets: HashMap<PeerId, Target>,
    min: Duration,
    max: Duration,
}

impl Redialer {
    /// Every target is due at `now`.
    pub fn new(
        targets: impl IntoIterator<Item = (PeerId, Multiaddr)>,
        min: Duration,
        max: Duration,
        now: Instant,
    ) -> Self {
        let targets = targets
            .into_iter()
            .map(|(peer, addr)| {
                let target = Target {
                    addr,
                    connected_since: None,
                    backoff: min,
                    next_attempt: now,
                };
                (peer, target)
            })
            .collect();
        Redialer { targets, min, max }
    }

    /// The disconnected targets whose next attempt is due; each one's next attempt is pushed
    /// back by its backoff, which then doubles up to the cap.
    pub fn due(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        let mut due = Vec::new();
        for (peer, target) in &mut self.targets {
            if target.connected_since.is_some() || target.next_attempt > now {
                continue;
            }
            due.push((*peer, target.addr.clone()));
            target.next_attempt = now + target.backoff;
            target.backoff = (target.backoff * 2).min(self.max);
        }
        due
    }

    /// A connection to `peer` is up: stop dialling it.
    pub fn on_connected(&mut self, peer: &PeerId, now: Instant) {
        if let Some(target) = self.targets.get_mut(peer) {
            target.connected_since.get_or_insert(now);
        }
    }

    /// The last connection to `peer` closed: dial it again after its backoff. The backoff
    /// restarts from the minimum only if the connection had been up for at least the maximum
    /// backoff; a peer that accepts and then drops us at once (for instance because it does
    /// not list our key) is retried ever more slowly, up to the cap, instead of in a loop.
    pub fn on_disconnected(&mut self, peer: &PeerId, now: Instant) {
        if let Some(target) = self.targets.get_mut(peer) {
            let stable = target
                .connected_since
                .take()
                .is_some_and(|since| now.saturating_duration_since(since) >= self.max);
            if stable {
                target.backoff = self.min;
            }
            target.next_attempt = now + target.backoff;
            target.backoff = (target.backoff * 2).min(self.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_millis(350);

    fn setup() -> (Redialer, PeerId, Instant) {
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().expect("literal multiaddr");
        let now = Instant::now();
        (Redialer::new([(peer, addr)], MIN, MAX, now), peer, now)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (mut r, peer, t0) = setup();
        assert_eq!(r.due(t0).len(), 1, "due at start");
        assert!(r.due(t0).is_empty(), "not twice at once");
        // Attempts at +100, then +200 later, then capped at +350 each.
        let mut t = t0;
        for gap in [100, 200, 350, 350] {
            let gap = Duration::from_millis(gap);
            assert!(r.due(t + gap - Duration::from_millis(1)).is_empty());
            t += gap;
            assert_eq!(
                r.due(t),
                vec![(peer, "/ip4/127.0.0.1/tcp/1".parse().expect("addr"))]
            );
        }
    }

    #[test]
    fn connected_peers_are_not_dialled_and_a_stable_connection_resets_backoff() {
        let (mut r, peer, t0) = setup();
        r.due(t0);
        r.due(t0 + MIN); // backoff now capped at 350 ms
        r.on_connected(&peer, t0 + MIN);
        assert!(r.due(t0 + Duration::from_secs(10)).is_empty());
        let t1 = t0 + Duration::from_secs(10);
        r.on_disconnected(&peer, t1);
        assert!(r.due(t1 + MIN - Duration::from_millis(1)).is_empty());
        assert_eq!(
            r.due(t1 + MIN).len(),
            1,
            "redialled after the minimum delay"
        );
    }

    #[test]
    fn a_peer_that_drops_us_at_once_is_retried_ever_more_slowly() {
        let (mut r, peer, mut t) = setup();
        r.due(t);
        // Each time: connect, get dropped right away, wait for the next attempt.
        let mut gaps = Vec::new();
        for _ in 0..4 {
            r.on_connected(&peer, t);
            r.on_disconnected(&peer, t);
            let start = t;
            while r.due(t).is_empty() {
                t += Duration::from_millis(10);
            }
            gaps.push((t - start).as_millis());
        }
        assert_eq!(gaps, vec![200, 350, 350, 350]);
    }
}
