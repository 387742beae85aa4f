//! Fixed-layout signing bytes of every signed consensus message, and their checks.
//!
//! No serialization library: each layout is a domain prefix and big-endian fields,
//! so a verifier in any language can rebuild it. The commit vote layout lives in
//! [`crate::certificate`] and is shared with commit certificates.
//!
//! ```text
//! pre-prepare: "tracechain/pre-prepare/v1\0" || u32be(len(chain_id)) || chain_id
//!              || u64be(height) || u64be(view) || block_hash
//! prepare:     "tracechain/prepare/v1\0"     || (same fields)
//! view-change: "tracechain/view-change/v1\0" || u32be(len(chain_id)) || chain_id
//!              || u64be(view) || u64be(committed_height) || committed_hash (32 zero bytes at 0)
//!              || u8(0)  |  u8(1) || u64be(prepared_height) || u64be(prepared_view) || prepared_hash
//! new-view:    "tracechain/new-view/v1\0"    || u32be(len(chain_id)) || chain_id
//!              || u64be(view) || u32be(count) || count × (u32be(replica) || signature(64))
//! ```
//! The view-change signature covers the certificates' summaries; the certificates
//! carry their own signatures. The new-view signature binds the exact view changes.

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, Signer, SigningKey};

use crate::certificate::{BlockHash, CommitCertificate};
use crate::messages::{NewView, PreparedCertificate, ViewChange};
use crate::validators::{ReplicaId, ValidatorSet};

/// Domain prefix of pre-prepares.
pub const PRE_PREPARE_DOMAIN: &[u8] = b"tracechain/pre-prepare/v1\0";
/// Domain prefix of prepares.
pub const PREPARE_DOMAIN: &[u8] = b"tracechain/prepare/v1\0";
/// Domain prefix of view changes.
pub const VIEW_CHANGE_DOMAIN: &[u8] = b"tracechain/view-change/v1\0";
/// Domain prefix of new views.
pub const NEW_VIEW_DOMAIN: &[u8] = b"tracechain/new-view/v1\0";

/// The host's rule to hash a block; pure (e.g. decode, then blake3 of the header).
/// `None` when the bytes are not a block.
pub type BlockHasher = fn(&[u8]) -> Option<BlockHash>;

fn with_chain(domain: &[u8], chain_id: &str, extra: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 4 + chain_id.len() + extra);
    out.extend_from_slice(domain);
    out.extend_from_slice(&(chain_id.len() as u32).to_be_bytes());
    out.extend_from_slice(chain_id.as_bytes());
    out
}

fn vote_layout(domain: &[u8], chain_id: &str, height: u64, view: u64, hash: &BlockHash) -> Vec<u8> {
    let mut out = with_chain(domain, chain_id, 48);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&view.to_be_bytes());
    out.extend_from_slice(hash);
    out
}

/// The bytes the primary signs to propose `block_hash` at (height, view).
pub fn pre_prepare_bytes(chain_id: &str, height: u64, view: u64, hash: &BlockHash) -> Vec<u8> {
    vote_layout(PRE_PREPARE_DOMAIN, chain_id, height, view, hash)
}

/// The bytes a replica signs to prepare `block_hash` at (height, view).
pub fn prepare_bytes(chain_id: &str, height: u64, view: u64, hash: &BlockHash) -> Vec<u8> {
    vote_layout(PREPARE_DOMAIN, chain_id, height, view, hash)
}

/// The bytes a replica signs to ask for `view`.
pub fn view_change_bytes(
    chain_id: &str,
    view: u64,
    committed_height: u64,
    committed_hash: &BlockHash,
    prepared: Option<(u64, u64, &BlockHash)>,
) -> Vec<u8> {
    let mut out = with_chain(VIEW_CHANGE_DOMAIN, chain_id, 16 + 32 + 1 + 48);
    out.extend_from_slice(&view.to_be_bytes());
    out.extend_from_slice(&committed_height.to_be_bytes());
    out.extend_from_slice(committed_hash);
    match prepared {
        None => out.push(0),
        Some((height, pview, hash)) => {
            out.push(1);
            out.extend_from_slice(&height.to_be_bytes());
            out.extend_from_slice(&pview.to_be_bytes());
            out.extend_from_slice(hash);
        }
    }
    out
}

/// The bytes of a [`ViewChange`] message's signature.
pub fn view_change_message_bytes(chain_id: &str, vc: &ViewChange) -> Vec<u8> {
    let committed_hash = vc
        .committed
        .as_ref()
        .map(|c| c.block_hash)
        .unwrap_or([0; 32]);
    view_change_bytes(
        chain_id,
        vc.view,
        vc.committed_height,
        &committed_hash,
        vc.prepared
            .as_ref()
            .map(|p| (p.height, p.view, &p.block_hash)),
    )
}

/// The bytes the new primary signs to announce `view` with these view changes.
pub fn new_view_bytes(chain_id: &str, view: u64, view_changes: &[ViewChange]) -> Vec<u8> {
    let mut out = with_chain(NEW_VIEW_DOMAIN, chain_id, 12 + view_changes.len() * 68);
    out.extend_from_slice(&view.to_be_bytes());
    out.extend_from_slice(&(view_changes.len() as u32).to_be_bytes());
    for vc in view_changes {
        out.extend_from_slice(&vc.from.0.to_be_bytes());
        out.extend_from_slice(&vc.signature.to_bytes());
    }
    out
}

/// Signs `bytes` with the node key.
pub fn sign(key: &SigningKey, bytes: &[u8]) -> Signature {
    key.sign(bytes)
}

/// Whether `signature` by member `from` over `bytes` verifies strictly.
pub fn verify(
    validators: &ValidatorSet,
    from: ReplicaId,
    bytes: &[u8],
    signature: &Signature,
) -> bool {
    validators
        .key(from)
        .is_some_and(|key| key.verify_strict(bytes, signature).is_ok())
}

/// Whether `cert` proves that its block prepared: the block hashes to its hash, and
/// a quorum of distinct members signed the prepare.
pub fn prepared_certificate_is_valid(
    validators: &ValidatorSet,
    hasher: BlockHasher,
    cert: &PreparedCertificate,
) -> bool {
    if hasher(&cert.block) != Some(cert.block_hash) {
        return false;
    }
    let bytes = prepare_bytes(
        validators.chain_id(),
        cert.height,
        cert.view,
        &cert.block_hash,
    );
    let mut seen = BTreeSet::new();
    for (replica, signature) in &cert.prepares {
        // A repeated or foreign signer invalidates the certificate: a correct replica
        // never builds one like that.
        if !seen.insert(*replica) || !verify(validators, *replica, &bytes, signature) {
            return false;
        }
    }
    seen.len() >= validators.quorum()
}

/// Whether a commit certificate proves `height` (any block).
pub fn commit_certificate_is_valid(validators: &ValidatorSet, cert: &CommitCertificate) -> bool {
    cert.verify(validators).is_ok()
}

/// Whether `vc` is well formed and fully signed: its own signature, its committed
/// certificate (required above height 0), and its prepared certificate, which must be
/// for the next height and an earlier view.
pub fn view_change_is_valid(
    validators: &ValidatorSet,
    hasher: BlockHasher,
    vc: &ViewChange,
) -> bool {
    match &vc.committed {
        None if vc.committed_height != 0 => return false,
        Some(cert) if cert.height != vc.committed_height => return false,
        _ => {}
    }
    if let Some(p) = &vc.prepared
        && (Some(p.height) != vc.committed_height.checked_add(1) || p.view >= vc.view)
    {
        return false;
    }
    let bytes = view_change_message_bytes(validators.chain_id(), vc);
    verify(validators, vc.from, &bytes, &vc.signature)
        && vc
            .committed
            .as_ref()
            .is_none_or(|c| commit_certificate_is_valid(validators, c))
        && vc
            .prepared
            .as_ref()
            .is_none_or(|p| prepared_certificate_is_valid(validators, hasher, p))
}

/// Whether `nv` is signed by the primary of its view and carries a quorum of view
/// changes for that view from distinct members. `known` says whether a view change is
/// already verified (so it is not checked twice); the others are checked here.
pub fn new_view_is_valid(
    validators: &ValidatorSet,
    hasher: BlockHasher,
    nv: &NewView,
    known: impl Fn(&ViewChange) -> bool,
) -> bool {
    if nv.from != validators.primary(nv.view)
        || nv.view_changes.len() < validators.quorum()
        || nv.view_changes.len() > validators.n()
    {
        return false;
    }
    let bytes = new_view_bytes(validators.chain_id(), nv.view, &nv.view_changes);
    if !verify(validators, nv.from, &bytes, &nv.signature) {
        return false;
    }
    let mut seen = BTreeSet::new();
    nv.view_changes.iter().all(|vc| {
        vc.view == nv.view
            && seen.insert(vc.from)
            && (known(vc) || view_change_is_valid(validators, hasher, vc))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(domain: &[u8]) -> Vec<u8> {
        let mut v = domain.to_vec();
        v.extend_from_slice(&[0, 0, 0, 1, b'c']);
        v
    }

    /// The layouts are a contract with other languages: pin them byte for byte.
    #[test]
    fn layouts_are_fixed() {
        let hash = [0xAB; 32];
        let mut vote = vec![0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2];
        vote.extend_from_slice(&hash);
        // (bytes, expected)
        let rows: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (
                pre_prepare_bytes("c", 7, 2, &hash),
                [chain(b"tracechain/pre-prepare/v1\0"), vote.clone()].concat(),
            ),
            (
                prepare_bytes("c", 7, 2, &hash),
                [chain(b"tracechain/prepare/v1\0"), vote.clone()].concat(),
            ),
            (
                crate::commit_vote_bytes("c", 7, 2, &hash),
                [chain(b"tracechain/commit/v1\0"), vote].concat(),
            ),
            (
                view_change_bytes("c", 9, 6, &[1; 32], None),
                [
                    chain(b"tracechain/view-change/v1\0"),
                    vec![0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 6],
                    vec![1; 32],
                    vec![0],
                ]
                .concat(),
            ),
            (
                view_change_bytes("c", 9, 6, &[1; 32], Some((7, 8, &hash))),
                [
                    chain(b"tracechain/view-change/v1\0"),
                    vec![0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 6],
                    vec![1; 32],
                    vec![1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 8],
                    hash.to_vec(),
                ]
                .concat(),
            ),
            (
                new_view_bytes("c", 3, &[]),
                [
                    chain(b"tracechain/new-view/v1\0"),
                    vec![0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0],
                ]
                .concat(),
            ),
        ];
        for (i, (got, want)) in rows.into_iter().enumerate() {
            assert_eq!(got, want, "row {i}");
        }
    }

    #[test]
    fn domains_differ() {
        let hash = [1; 32];
        let a = pre_prepare_bytes("c", 1, 1, &hash);
        let b = prepare_bytes("c", 1, 1, &hash);
        let c = crate::commit_vote_bytes("c", 1, 1, &hash);
        assert!(a != b && b != c && a != c);
    }
}
