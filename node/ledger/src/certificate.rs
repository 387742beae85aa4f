//! Commit certificates in protobuf: the one decode point for both of their forms.
//!
//! - [`pb::CommitCertificate`] names each signer by member id and carries the chain id:
//!   blocks as stored and served, audit bundles.
//! - [`pb::ReplicaCertificate`] names each signer by its replica index: consensus
//!   messages and the replica's persisted state, inside one chain.
//!
//! Decoding checks shapes (a 32-byte block hash, 64-byte signatures, a bounded number of
//! them, signers that are validators) and returns a typed [`CertificateError`]; it never
//! panics on peer bytes. Whether the signatures prove a block is
//! [`CommitCertificate::verify_for`]'s job, against the validator set.

use ed25519_dalek::Signature;
use tracechain_consensus::{CommitCertificate, ReplicaId};
use tracechain_proto::v1 as pb;

use crate::genesis::Genesis;

/// Whether a certificate of `certificate_view` may commit a block whose header names
/// `header_view`. A block is proposed in its header's view and committed there or, when a
/// view change carried it forward, in a later view: PBFT (§4.4) has the new primary
/// re-propose the highest prepared block unchanged, header and all, so its certificate
/// names the later view. A certificate of an earlier view than the header is impossible
/// for an honest run (the block did not exist yet) and is refused, by the node when it
/// commits and by the auditor.
pub fn view_commits_header(certificate_view: u64, header_view: u64) -> bool {
    certificate_view >= header_view
}

/// More signatures than any consortium could need: a bound on what one certificate can
/// make the decoder allocate.
pub const MAX_SIGNATURES: usize = 1_024;

/// Why protobuf is not a commit certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The certificate is for another chain.
    #[error("certificate is for chain {got:?}, this is chain {expected:?}")]
    WrongChain {
        /// This chain's id.
        expected: String,
        /// The certificate's.
        got: String,
    },
    /// The block hash is not 32 bytes.
    #[error("certificate block hash must be 32 bytes, got {got}")]
    BlockHashLength {
        /// Its length.
        got: usize,
    },
    /// A signer named by member id is not a validator of the genesis.
    #[error("{member} is not a validator")]
    NotAValidator {
        /// The member id given.
        member: String,
    },
    /// A signature is not 64 bytes.
    #[error("signature of {signer} must be 64 bytes, got {got}")]
    SignatureLength {
        /// The signer, as the certificate names it.
        signer: String,
        /// The signature's length.
        got: usize,
    },
    /// More signatures than [`MAX_SIGNATURES`].
    #[error("certificate has {got} signatures, at most {max}")]
    TooManySignatures {
        /// Signatures present.
        got: usize,
        /// The bound.
        max: usize,
    },
}

/// The shared shape checks: hash length, signature count and lengths. `name` says how
/// the certificate named a signer, for an error.
fn decode<'a>(
    height: u64,
    view: u64,
    block_hash: &[u8],
    signatures: impl ExactSizeIterator<Item = Result<(ReplicaId, &'a [u8]), CertificateError>>,
    name: impl Fn(ReplicaId) -> String,
) -> Result<CommitCertificate, CertificateError> {
    let block_hash = block_hash
        .try_into()
        .map_err(|_| CertificateError::BlockHashLength {
            got: block_hash.len(),
        })?;
    if signatures.len() > MAX_SIGNATURES {
        return Err(CertificateError::TooManySignatures {
            got: signatures.len(),
            max: MAX_SIGNATURES,
        });
    }
    let signatures = signatures
        .map(|signer| {
            let (replica, bytes) = signer?;
            let bytes: [u8; 64] =
                bytes
                    .try_into()
                    .map_err(|_| CertificateError::SignatureLength {
                        signer: name(replica),
                        got: bytes.len(),
                    })?;
            Ok((replica, Signature::from_bytes(&bytes)))
        })
        .collect::<Result<_, CertificateError>>()?;
    Ok(CommitCertificate {
        height,
        view,
        block_hash,
        signatures,
    })
}

/// A certificate of this chain, signers named by member id: replica ids come from the
/// genesis, and a signer that is not one of its validators is an error.
pub fn from_proto(
    cert: &pb::CommitCertificate,
    genesis: &Genesis,
) -> Result<CommitCertificate, CertificateError> {
    if cert.chain_id != genesis.chain_id() {
        return Err(CertificateError::WrongChain {
            expected: genesis.chain_id().to_owned(),
            got: cert.chain_id.clone(),
        });
    }
    let signers = cert.signatures.iter().map(|s| {
        let replica = genesis
            .member(&s.member_id)
            .and_then(|m| m.replica)
            .ok_or_else(|| CertificateError::NotAValidator {
                member: s.member_id.clone(),
            })?;
        Ok((replica, s.signature.as_slice()))
    });
    let name = |r: ReplicaId| {
        genesis
            .validator(r)
            .map(|m| m.id.clone())
            .unwrap_or_default()
    };
    decode(cert.height, cert.view, &cert.block_hash, signers, name)
}

/// A certificate as protobuf, signers named by member id.
pub fn to_proto(cert: &CommitCertificate, genesis: &Genesis) -> pb::CommitCertificate {
    pb::CommitCertificate {
        chain_id: genesis.chain_id().to_string(),
        height: cert.height,
        view: cert.view,
        block_hash: cert.block_hash.to_vec(),
        signatures: cert
            .signatures
            .iter()
            .map(|(r, s)| pb::CommitSignature {
                member_id: genesis
                    .validator(*r)
                    .map(|m| m.id.clone())
                    .unwrap_or_default(),
                signature: s.to_bytes().to_vec(),
            })
            .collect(),
    }
}

/// A certificate whose signers are named by replica index (consensus messages).
pub fn from_replica_proto(
    cert: &pb::ReplicaCertificate,
) -> Result<CommitCertificate, CertificateError> {
    let signers = cert
        .signatures
        .iter()
        .map(|s| Ok((ReplicaId(s.replica), s.signature.as_slice())));
    let name = |r: ReplicaId| format!("replica {}", r.0);
    decode(cert.height, cert.view, &cert.block_hash, signers, name)
}

/// A certificate as protobuf, signers named by replica index.
pub fn to_replica_proto(cert: &CommitCertificate) -> pb::ReplicaCertificate {
    pb::ReplicaCertificate {
        height: cert.height,
        view: cert.view,
        block_hash: cert.block_hash.to_vec(),
        signatures: cert
            .signatures
            .iter()
            .map(|(r, s)| pb::ReplicaSignature {
                replica: r.0,
                signature: s.to_bytes().to_vec(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::genesis::GenesisFile;

    fn genesis() -> Genesis {
        let node = SigningKey::from_bytes(&[3; 32]);
        let admin = SigningKey::from_bytes(&[4; 32]);
        Genesis::from_file(GenesisFile::single_member(
            "cert-chain",
            1_700_000_000_000,
            &node.verifying_key(),
            admin.verifying_key().as_bytes(),
        ))
        .expect("genesis")
    }

    fn certificate() -> CommitCertificate {
        CommitCertificate {
            height: 7,
            view: 2,
            block_hash: [9; 32],
            signatures: vec![(ReplicaId(0), Signature::from_bytes(&[5; 64]))],
        }
    }

    #[test]
    fn both_forms_round_trip() {
        let g = genesis();
        let cert = certificate();
        let by_member = to_proto(&cert, &g);
        assert_eq!(by_member.signatures[0].member_id, "farm");
        assert_eq!(from_proto(&by_member, &g), Ok(cert.clone()));
        assert_eq!(from_replica_proto(&to_replica_proto(&cert)), Ok(cert));
    }

    #[test]
    fn malformed_certificates_are_typed_errors() {
        let g = genesis();
        let good = to_proto(&certificate(), &g);

        let mut other_chain = good.clone();
        other_chain.chain_id = "other".into();
        assert_eq!(
            from_proto(&other_chain, &g),
            Err(CertificateError::WrongChain {
                expected: "cert-chain".into(),
                got: "other".into()
            })
        );

        let mut short_hash = good.clone();
        short_hash.block_hash.pop();
        assert_eq!(
            from_proto(&short_hash, &g),
            Err(CertificateError::BlockHashLength { got: 31 })
        );

        let mut stranger = good.clone();
        stranger.signatures[0].member_id = "mallory".into();
        assert_eq!(
            from_proto(&stranger, &g),
            Err(CertificateError::NotAValidator {
                member: "mallory".into()
            })
        );

        let mut short_signature = good.clone();
        short_signature.signatures[0].signature.truncate(63);
        assert_eq!(
            from_proto(&short_signature, &g),
            Err(CertificateError::SignatureLength {
                signer: "farm".into(),
                got: 63
            })
        );

        let mut replica_form = to_replica_proto(&certificate());
        replica_form.signatures[0].signature.push(0);
        assert_eq!(
            from_replica_proto(&replica_form),
            Err(CertificateError::SignatureLength {
                signer: "replica 0".into(),
                got: 65
            })
        );
        let one = replica_form.signatures[0].clone();
        replica_form.signatures = vec![one; MAX_SIGNATURES + 1];
        assert_eq!(
            from_replica_proto(&replica_form),
            Err(CertificateError::TooManySignatures {
                got: MAX_SIGNATURES + 1,
                max: MAX_SIGNATURES
            })
        );
    }
}
