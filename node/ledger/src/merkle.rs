//! blake3 binary Merkle trees over 32-byte leaves (transaction ids, result hashes).
//!
//! Leaves and inner nodes are domain-separated (`0x00 || leaf`, `0x01 || left || right`)
//! so that an inner node can never pass for a leaf. An odd node at the end of a level
//! is promoted unchanged rather than paired with a copy of itself, so no two different
//! lists of leaves share a root (the duplication flaw of Bitcoin's tree). The root of
//! no leaves is 32 zero bytes.
//!
//! What a block header's roots commit to is fixed here, once: the `tx_root` leaves are
//! transaction ids ([`tx_leaf`]), the `results_root` leaves are hashes of the encoded
//! results ([`result_leaf`]). [`verify_at`] checks a proof for a claimed position, which
//! is what every verifier needs: a path that fits another position proves nothing.

use prost::Message as _;
use tracechain_proto::v1 as pb;

use crate::tx::TxId;

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// The `tx_root` leaf of a transaction: its id ([`TxId::of_body`]).
pub fn tx_leaf(body: &[u8]) -> Hash {
    TxId::of_body(body).0
}

/// The `results_root` leaf of a transaction's result: blake3 of the encoded `TxResult`.
pub fn result_leaf(result: &pb::TxResult) -> Hash {
    *blake3::hash(&result.encode_to_vec()).as_bytes()
}

/// Why an inclusion proof does not prove a leaf at a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The position is not one of the tree's leaves.
    #[error("index {index} is outside a tree of {leaves} leaves")]
    OutOfRange {
        /// The claimed position.
        index: usize,
        /// Leaves in the tree.
        leaves: usize,
    },
    /// The path's steps do not have the sides that the position's path has.
    #[error("the proof's shape does not fit index {index} of {leaves} leaves")]
    Shape {
        /// The claimed position.
        index: usize,
        /// Leaves in the tree.
        leaves: usize,
    },
    /// The path is well shaped but does not hash to the root.
    #[error("the Merkle path does not lead to the root")]
    Mismatch,
}

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

/// The sides of the siblings on the path of leaf `index` in a tree of `leaves` leaves,
/// from the bottom (`true`: the sibling is on the left). A level where the node is the
/// promoted odd one has no sibling and no step.
fn sibling_sides(mut index: usize, mut leaves: usize) -> Vec<bool> {
    let mut sides = Vec::new();
    while leaves > 1 {
        let sibling = index ^ 1;
        if sibling < leaves {
            sides.push(sibling < index);
        }
        index /= 2;
        leaves = leaves.div_ceil(2);
    }
    sides
}

/// Whether `steps` prove that `leaf` is leaf number `index` of a tree of `leaves` leaves
/// under `root`: the path must have exactly the shape of that position's path, so that a
/// proof of one position cannot be passed off for another.
pub fn verify_at(
    root_hash: &Hash,
    leaf: &Hash,
    index: usize,
    leaves: usize,
    steps: &[ProofStep],
) -> Result<(), ProofError> {
    if index >= leaves {
        return Err(ProofError::OutOfRange { index, leaves });
    }
    let sides = sibling_sides(index, leaves);
    if steps.len() != sides.len()
        || steps
            .iter()
            .zip(&sides)
            .any(|(step, left)| step.sibling_is_left != *left)
    {
        return Err(ProofError::Shape { index, leaves });
    }
    if !verify(root_hash, leaf, steps) {
        return Err(ProofError::Mismatch);
    }
    Ok(())
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
    fn a_proof_verifies_only_at_its_own_position() {
        for n in 1..=17 {
            let ls = leaves(n);
            let r = root(&ls);
            for i in 0..n {
                let p = proof(&ls, i).expect("in range");
                assert_eq!(verify_at(&r, &ls[i], i, n, &p), Ok(()), "n={n} i={i}");
                for j in (0..n).filter(|&j| j != i) {
                    assert!(verify_at(&r, &ls[i], j, n, &p).is_err(), "n={n} {i} at {j}");
                }
                assert_eq!(
                    verify_at(&r, &ls[i], n, n, &p),
                    Err(ProofError::OutOfRange {
                        index: n,
                        leaves: n
                    })
                );
            }
        }
        // Right shape, wrong leaf.
        let ls = leaves(5);
        let p = proof(&ls, 2).expect("in range");
        assert_eq!(
            verify_at(&root(&ls), &ls[3], 2, 5, &p),
            Err(ProofError::Mismatch)
        );
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
