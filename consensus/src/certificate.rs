//! Commit votes and commit certificates.
//!
//! A commit certificate is 2f+1 signatures from distinct validators over the same
//! commit vote (chain id, height, view, block hash). It is what makes a block final,
//! what a lagging node checks before accepting a block from a peer, and what an
//! auditor checks offline. The signed bytes are fixed-layout, so any language can
//! rebuild them:
//!
//! ```text
//! "tracechain/commit/v1\0" || u32be(len(chain_id)) || chain_id
//!     || u64be(height) || u64be(view) || block_hash (32 bytes)
//! ```

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, Signer, SigningKey};

use crate::validators::{ReplicaId, ValidatorSet};

/// Domain-separation prefix of commit votes.
pub const COMMIT_VOTE_DOMAIN: &[u8] = b"tracechain/commit/v1\0";

/// A 32-byte blake3 block hash.
pub type BlockHash = [u8; 32];

/// The exact bytes a validator signs to vote for committing `block_hash` at `height`.
pub fn commit_vote_bytes(
    chain_id: &str,
    height: u64,
    view: u64,
    block_hash: &BlockHash,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(COMMIT_VOTE_DOMAIN.len() + 4 + chain_id.len() + 16 + 32);
    out.extend_from_slice(COMMIT_VOTE_DOMAIN);
    out.extend_from_slice(&(chain_id.len() as u32).to_be_bytes());
    out.extend_from_slice(chain_id.as_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&view.to_be_bytes());
    out.extend_from_slice(block_hash);
    out
}

/// Signs a commit vote with a validator's node key.
pub fn sign_commit_vote(
    key: &SigningKey,
    chain_id: &str,
    height: u64,
    view: u64,
    block_hash: &BlockHash,
) -> Signature {
    key.sign(&commit_vote_bytes(chain_id, height, view, block_hash))
}

/// Why a certificate does not prove a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A signature names a replica outside the validator set.
    #[error("signature from {replica}, which is not a validator")]
    NotAValidator {
        /// The named replica.
        replica: ReplicaId,
    },
    /// The same validator signed twice.
    #[error("{replica} signed twice")]
    DuplicateSigner {
        /// The repeated replica.
        replica: ReplicaId,
    },
    /// A signature does not verify under the validator's key.
    #[error("bad signature from {replica}")]
    BadSignature {
        /// The replica whose signature failed.
        replica: ReplicaId,
    },
    /// Fewer distinct valid signatures than a quorum.
    #[error("{got} signatures, quorum is {needed}")]
    TooFewSignatures {
        /// Distinct valid signatures present.
        got: usize,
        /// Quorum size, 2f+1.
        needed: usize,
    },
    /// The certificate is for another height or block than the one it accompanies.
    #[error(
        "certificate is for height {cert_height}, block {cert_hash}; expected height {height}, block {hash}"
    )]
    WrongBlock {
        /// Height in the certificate.
        cert_height: u64,
        /// Block hash in the certificate (hex).
        cert_hash: String,
        /// Expected height.
        height: u64,
        /// Expected block hash (hex).
        hash: String,
    },
}

/// Proof that a block was committed: 2f+1 distinct validator signatures over its
/// commit vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitCertificate {
    /// Height (the PBFT sequence number).
    pub height: u64,
    /// View in which the block committed.
    pub view: u64,
    /// blake3 hash of the block header.
    pub block_hash: BlockHash,
    /// Signatures, by replica.
    pub signatures: Vec<(ReplicaId, Signature)>,
}

impl CommitCertificate {
    /// Checks the certificate against the validator set: every signer is a validator,
    /// no signer appears twice, every signature verifies (strictly), and there are at
    /// least a quorum of them.
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), CertificateError> {
        let message = commit_vote_bytes(
            validators.chain_id(),
            self.height,
            self.view,
            &self.block_hash,
        );
        let mut seen = BTreeSet::new();
        for (replica, signature) in &self.signatures {
            let key = validators
                .key(*replica)
                .ok_or(CertificateError::NotAValidator { replica: *replica })?;
            if !seen.insert(*replica) {
                return Err(CertificateError::DuplicateSigner { replica: *replica });
            }
            key.verify_strict(&message, signature)
                .map_err(|_| CertificateError::BadSignature { replica: *replica })?;
        }
        if seen.len() < validators.quorum() {
            return Err(CertificateError::TooFewSignatures {
                got: seen.len(),
                needed: validators.quorum(),
            });
        }
        Ok(())
    }

    /// [`verify`](Self::verify), and that the certificate is for `height` and `block_hash`.
    pub fn verify_for(
        &self,
        validators: &ValidatorSet,
        height: u64,
        block_hash: &BlockHash,
    ) -> Result<(), CertificateError> {
        if self.height != height || &self.block_hash != block_hash {
            return Err(CertificateError::WrongBlock {
                cert_height: self.height,
                cert_hash: hex32(&self.block_hash),
                height,
                hash: hex32(block_hash),
            });
        }
        self.verify(validators)
    }
}

fn hex32(bytes: &BlockHash) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<SigningKey> {
        (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 7; 32]))
            .collect()
    }

    fn setup(n: usize) -> (Vec<SigningKey>, ValidatorSet) {
        let ks = keys(n);
        let set = ValidatorSet::new("chain", ks.iter().map(|k| k.verifying_key()).collect());
        (ks, set)
    }

    fn cert(ks: &[SigningKey], signers: &[u32]) -> CommitCertificate {
        let hash = [9u8; 32];
        CommitCertificate {
            height: 5,
            view: 2,
            block_hash: hash,
            signatures: signers
                .iter()
                .map(|&i| {
                    (
                        ReplicaId(i),
                        sign_commit_vote(&ks[i as usize], "chain", 5, 2, &hash),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn quorum_of_distinct_signatures_verifies() {
        let (ks, set) = setup(4);
        assert_eq!(cert(&ks, &[0, 2, 3]).verify(&set), Ok(()));
        assert_eq!(cert(&ks, &[0, 1, 2, 3]).verify(&set), Ok(()));
    }

    #[test]
    fn too_few_or_repeated_signers_fail() {
        let (ks, set) = setup(4);
        assert!(matches!(
            cert(&ks, &[0, 1]).verify(&set),
            Err(CertificateError::TooFewSignatures { got: 2, needed: 3 })
        ));
        assert!(matches!(
            cert(&ks, &[0, 1, 1]).verify(&set),
            Err(CertificateError::DuplicateSigner { .. })
        ));
    }

    #[test]
    fn foreign_or_forged_signatures_fail() {
        let (ks, set) = setup(4);
        let mut c = cert(&ks, &[0, 1, 2]);
        c.signatures[1].0 = ReplicaId(9);
        assert!(matches!(
            c.verify(&set),
            Err(CertificateError::NotAValidator { .. })
        ));

        let mut c = cert(&ks, &[0, 1, 2]);
        c.view = 3; // signatures were over view 2
        assert!(matches!(
            c.verify(&set),
            Err(CertificateError::BadSignature { .. })
        ));

        let other_chain =
            ValidatorSet::new("other", ks.iter().map(|k| k.verifying_key()).collect());
        assert!(cert(&ks, &[0, 1, 2]).verify(&other_chain).is_err());
    }

    #[test]
    fn certificate_must_match_the_block() {
        let (ks, set) = setup(1);
        let c = cert(&ks, &[0]);
        assert_eq!(c.verify_for(&set, 5, &[9; 32]), Ok(()));
        assert!(matches!(
            c.verify_for(&set, 6, &[9; 32]),
            Err(CertificateError::WrongBlock { .. })
        ));
    }
}
