//! blake3 binary Merkle trees over 32-byte leaves (transaction ids, result hashes).
//!
//! Leaves and inner nodes are domain-separated (`0x00 || leaf`, `0x01 || left || right`)
//! so that an inner node can never pass for a leaf. An odd node at the end of a level
//! is promoted unchanged rather than paired with a copy of itself, so no two different
//! lists of leaves share a root (the duplication flaw of Bitcoin's tree). The root of
//! no leaves is 32 zero bytes.

/// A 32-byte hash.
pub type Hash = [u8; 32];

fn leaf_hash(leaf: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(leaf);
    *h.finalize().as_bytes()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// The Merkle root of `leaves`, in order.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return [0; 32];
    }
    let mut level: Vec<Hash> = leaves.iter().map(leaf_hash).collect();
    while level.len() > 1 {
        level = parent_level(&level);
    }
    level[0]
}

/// The level above `level`: pairs hashed together, an odd last node promoted.
fn parent_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [odd] => *odd,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// One step of an inclusion proof: the sibling hash and which side it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofStep {
    /// The sibling's hash.
    pub sibling: Hash,
    /// True if the sibling is on the left.
    pub sibling_is_left: bool,
}

/// The inclusion proof of `leaves[index]`, or `None` if out of range.
pub fn proof(leaves: &[Hash], index: usize) -> Option<Vec<ProofStep>> {
    if index >= leaves.len() {
        return None;
    }
    let mut steps = Vec::new();
    let mut level: Vec<Hash> = leaves.iter().map(leaf_hash).collect();
    let mut i = index;
    while level.len() > 1 {
        let sibling = i ^ 1;
        if sibling < level.len() {
            steps.push(ProofStep {
                sibling: level[sibling],
                sibling_is_left: sibling < i,
            });
        }
        level = parent_level(&level);
        i /= 2;
    }
    Some(steps)
}

/// Whether `steps` prove that `leaf` is under `root`.
pub fn verify(root_hash: &Hash, leaf: &Hash, steps: &[ProofStep]) -> bool {
    let mut acc = leaf_hash(leaf);
    for step in steps {
        acc = if step.sibling_is_left {
            node_hash(&step.sibling, &acc)
        } else {
            node_hash(&acc, &step.sibling)
        };
    }
    &acc == root_hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect()
    }

    #[test]
    fn every_leaf_proves_for_many_sizes() {
        for n in 1..=17 {
            let ls = leaves(n);
            let r = root(&ls);
            for i in 0..n {
                let p = proof(&ls, i).expect("in range");
                assert!(verify(&r, &ls[i], &p), "n={n} i={i}");
                let mut wrong = ls[i];
                wrong[0] ^= 1;
                assert!(!verify(&r, &wrong, &p), "n={n} i={i} tampered leaf");
            }
        }
    }

    #[test]
    fn duplicated_tail_changes_the_root() {
        let ls = leaves(3);
        let mut dup = ls.clone();
        dup.push(ls[2]);
        assert_ne!(root(&ls), root(&dup));
        assert_eq!(root(&[]), [0; 32]);
        assert_eq!(proof(&ls, 3), None);
    }
}
