//! The validator set: who votes, and how many votes make a quorum.
//!
//! Replicas are named by their index in the genesis member list ([`ReplicaId`]); the
//! set is fixed for the life of a chain (membership changes are out of scope).

use ed25519_dalek::VerifyingKey;

/// Index of a replica in the genesis member list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplicaId(pub u32);

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// The consortium's validators: chain id and one Ed25519 node key per member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    chain_id: String,
    keys: Vec<VerifyingKey>,
}

impl ValidatorSet {
    /// A set of `keys.len()` validators; `keys[i]` belongs to `ReplicaId(i)`.
    ///
    /// # Panics
    /// If `keys` is empty: a chain needs at least one validator (genesis checks this).
    pub fn new(chain_id: impl Into<String>, keys: Vec<VerifyingKey>) -> Self {
        assert!(!keys.is_empty(), "a validator set needs at least one key");
        Self {
            chain_id: chain_id.into(),
            keys,
        }
    }

    /// The chain id that every vote and certificate is bound to.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Number of replicas, n = 3f + 1 (or any n ≥ 1).
    pub fn n(&self) -> usize {
        self.keys.len()
    }

    /// Faults tolerated: f = ⌊(n − 1) / 3⌋.
    pub fn f(&self) -> usize {
        (self.n() - 1) / 3
    }

    /// Votes needed for a quorum certificate: n − f, which is 2f + 1 when n = 3f + 1
    /// (any two quorums intersect in at least one correct replica).
    pub fn quorum(&self) -> usize {
        self.n() - self.f()
    }

    /// Votes that guarantee at least one correct replica: f + 1.
    pub fn weak_quorum(&self) -> usize {
        self.f() + 1
    }

    /// The key of `id`, or `None` for a non-member.
    pub fn key(&self, id: ReplicaId) -> Option<&VerifyingKey> {
        self.keys.get(id.0 as usize)
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: ReplicaId) -> bool {
        (id.0 as usize) < self.keys.len()
    }

    /// All replica ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        (0..self.keys.len() as u32).map(ReplicaId)
    }

    /// The primary of `view`: replica `view mod n` (Castro & Liskov §4.1).
    pub fn primary(&self, view: u64) -> ReplicaId {
        ReplicaId((view % self.n() as u64) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn set(n: usize) -> ValidatorSet {
        let keys = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]).verifying_key())
            .collect();
        ValidatorSet::new("test", keys)
    }

    #[test]
    fn quorum_sizes() {
        // (n, f, quorum)
        for (n, f, q) in [
            (1, 0, 1),
            (2, 0, 2),
            (3, 0, 3),
            (4, 1, 3),
            (7, 2, 5),
            (10, 3, 7),
        ] {
            let s = set(n);
            assert_eq!((s.f(), s.quorum()), (f, q), "n = {n}");
        }
    }

    #[test]
    fn primary_rotates() {
        let s = set(4);
        assert_eq!(s.primary(0), ReplicaId(0));
        assert_eq!(s.primary(5), ReplicaId(1));
    }
}
