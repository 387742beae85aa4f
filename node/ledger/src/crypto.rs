//! Keys, signing and signature verification for the two schemes tracechain accepts:
//! Ed25519 (members, nodes, devices) and ECDSA P-256 with SHA-256 (devices whose secure
//! element only speaks P-256, e.g. the ATECC608).
//!
//! What lives here: [`Scheme`], [`SecretKey`] (generation and signing, for tools and
//! tests), [`verify`] and [`verify_ed25519_all`] (the hot path every node runs on every
//! transaction), [`validate_public_key`] (full checks for keys that get registered) and
//! [`KeyFile`] (the CLI's JSON key file). It depends on no other module of the node, and
//! `tx` builds on it.
//!
//! # Verification rules
//! * **Ed25519** (RFC 8032 signatures, checked as ZIP-215 specifies, plus encoding checks):
//!   `s` must be canonical (`s < l`); the public key `A` and the signature's `R` must be
//!   canonical encodings and must not be points of small order; and the **cofactored**
//!   equation `[8][s]B == [8]R + [8][H(R||A||M)]A` must hold. Every signature an honest
//!   RFC 8032 signer makes passes; the encoding checks are what `verify_strict` checks too.
//! * **P-256**: `ring`'s `ECDSA_P256_SHA256_FIXED` (RustCrypto `p256` is ~6x slower to
//!   verify, see DESIGN.md) over the 64-byte `r || s`, **plus** low-S: `s <= n/2`.
//!   ECDSA signatures are malleable (`(r, n - s)` is also valid); requiring low-S gives
//!   every message exactly one acceptable signature.
//!
//! # Why the cofactored equation: batches that agree with single checks
//! Every node checks every device signature, so Ed25519 throughput sets the ceiling of
//! the chain, and batch verification (one multiscalar multiplication for many
//! signatures) roughly doubles it. But a batch must give each signature the verdict a
//! single check gives it, on every node, whatever its neighbours: a replica that
//! disagrees with the primary about one signature refuses the whole proposal.
//!
//! The cofactorless equation that `ed25519_dalek::verify_strict` uses cannot be batched
//! that way. `ed25519_dalek::verify_batch` checks a random linear combination
//! `sum z_i (R_i + h_i A_i - s_i B) == 0` without the cofactor; when `R` carries a
//! torsion component, the per-signature error is a torsion point and `z_i` times it
//! vanishes whenever `z_i` is a multiple of its order (probability 1/2 for an order-2
//! component). Since `z_i` depends on the batch, two nodes batching the same transaction
//! with different neighbours reach different verdicts on it (the test
//! `cofactorless_batches_disagree_cofactored_batches_agree` builds such signatures).
//! Making the cofactorless check exact in batches needs a torsion check per `R` (a full
//! scalar multiplication), which measured slower than checking one by one.
//!
//! Multiplying by the cofactor 8 removes every torsion component, so a signature's
//! error is either zero or a point of prime order, and the batch equation holds exactly
//! when every single equation holds (up to a 2^-128 chance of a false accept, never a
//! false reject). ZIP-215 (Zcash) specifies this rule and `ed25519-zebra` implements it,
//! single and batched; we add the encoding checks above, which are byte comparisons.
//! The two equations differ only for signatures whose `R` or `A` has a torsion
//! component, which no honest signer produces, and registered keys are refused if they
//! have one ([`validate_public_key`]). docs/SIGNING.md states the rule for other
//! implementations; docs/PERFORMANCE.md has the measurements.
//!
//! Node and member signatures on consensus messages and certificates are few; the
//! consensus crate checks them with `verify_strict`.

use std::fmt;
use std::path::PathBuf;

use p256::ecdsa::signature::Signer as _;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use tracechain_proto::v1 as pb;

mod ed25519;
mod keyfile;
#[cfg(test)]
mod tests;

pub use ed25519::{ED25519_BATCH, Ed25519Item, verify_ed25519_all};
use ed25519::{ed25519_equation_failed, ed25519_precheck, zebra_key};
pub use keyfile::{KeyFile, KeyKind};

/// Length of an Ed25519 public key.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Length of a P-256 public key: uncompressed SEC1, `0x04 || x || y`.
pub const P256_PUBLIC_KEY_LEN: usize = 65;
/// Length of a secret key of either scheme (Ed25519 seed, P-256 scalar).
pub const SECRET_KEY_LEN: usize = 32;
/// Length of a signature of either scheme (Ed25519 `R || s`, P-256 `r || s`).
pub const SIGNATURE_LEN: usize = 64;

/// Half the order of the P-256 group, `floor(n / 2)`, big-endian. A signature is low-S
/// when `s <= P256_HALF_ORDER`.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// A signature scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Ed25519 (RFC 8032), verified with the cofactored equation (see the module docs).
    Ed25519,
    /// ECDSA over P-256 with SHA-256 (JOSE ES256), fixed-width `r || s`, low-S.
    P256,
}

impl Scheme {
    /// Length of a public key of this scheme.
    pub fn public_key_len(self) -> usize {
        match self {
            Scheme::Ed25519 => ED25519_PUBLIC_KEY_LEN,
            Scheme::P256 => P256_PUBLIC_KEY_LEN,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::P256 => "p256",
        })
    }
}

impl From<Scheme> for pb::SignatureScheme {
    fn from(scheme: Scheme) -> Self {
        match scheme {
            Scheme::Ed25519 => pb::SignatureScheme::Ed25519,
            Scheme::P256 => pb::SignatureScheme::EcdsaP256Sha256,
        }
    }
}

impl TryFrom<pb::SignatureScheme> for Scheme {
    type Error = CryptoError;

    fn try_from(scheme: pb::SignatureScheme) -> Result<Self, Self::Error> {
        match scheme {
            pb::SignatureScheme::Ed25519 => Ok(Scheme::Ed25519),
            pb::SignatureScheme::EcdsaP256Sha256 => Ok(Scheme::P256),
            pb::SignatureScheme::Unspecified => Err(CryptoError::UnknownScheme { value: 0 }),
        }
    }
}

impl TryFrom<i32> for Scheme {
    type Error = CryptoError;

    /// Converts the raw `SignatureScheme` value of a protobuf field.
    fn try_from(value: i32) -> Result<Self, Self::Error> {
        pb::SignatureScheme::try_from(value)
            .map_err(|_| CryptoError::UnknownScheme { value })
            .and_then(Scheme::try_from)
    }
}

/// Everything that can go wrong with keys, signatures and key files.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A scheme value that is unspecified (0) or not known to this version.
    #[error("unknown signature scheme {value} (expected 1 = ed25519 or 2 = ecdsa-p256-sha256)")]
    UnknownScheme {
        /// The raw protobuf enum value.
        value: i32,
    },
    /// A public key of the wrong length for its scheme.
    #[error("{scheme} public key must be {expected} bytes, got {got}")]
    PublicKeyLength {
        /// The key's scheme.
        scheme: Scheme,
        /// The required length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A public key of the right length that is not a usable point.
    #[error("invalid {scheme} public key: {reason}")]
    InvalidPublicKey {
        /// The key's scheme.
        scheme: Scheme,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An Ed25519 public key of small order: it "verifies" signatures nobody made.
    #[error("weak ed25519 public key (small order): rejected")]
    WeakPublicKey,
    /// A signature of the wrong length.
    #[error("signature must be {expected} bytes, got {got}")]
    SignatureLength {
        /// The required length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A P-256 signature whose `s` is above `n/2`: the malleated twin of a valid
    /// signature. Signers must normalise `s` to `n - s`.
    #[error("ecdsa-p256 signature ({encoding}) has high s (s > n/2); normalise s to n - s (low-S)")]
    HighS {
        /// How the signature was encoded.
        encoding: SignatureEncoding,
    },
    /// A P-256 signature of neither 64 bytes (`r || s`) nor strict ASN.1 DER.
    #[error(
        "ecdsa-p256 signature of {got} bytes is neither r || s (64 bytes) nor strict DER: {reason}"
    )]
    NotDer {
        /// The length received.
        got: usize,
        /// What the DER decoder said.
        reason: String,
    },
    /// The signature does not verify under the key.
    #[error("{scheme} signature does not verify: {reason}")]
    BadSignature {
        /// The scheme the signature was checked with.
        scheme: Scheme,
        /// Which check failed.
        reason: &'static str,
    },
    /// A secret key of the wrong length or out of range.
    #[error("invalid {scheme} secret key: {reason}")]
    InvalidSecretKey {
        /// The key's scheme.
        scheme: Scheme,
        /// What is wrong with it.
        reason: String,
    },
    /// A key file could not be read or written.
    #[error("key file {path}: {source}")]
    KeyFileIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key file is not valid JSON of the expected shape.
    #[error("key file {path}: {source}")]
    KeyFileFormat {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A hex field of a key file does not decode.
    #[error("key file field {field} is not valid hex: {source}")]
    KeyFileHex {
        /// The field.
        field: &'static str,
        /// The decode error.
        #[source]
        source: hex::FromHexError,
    },
    /// A key file's public key is not the public key of its secret key.
    #[error("key file public key {stored} does not match its secret key (derived {derived})")]
    KeyFileMismatch {
        /// The public key stored in the file, hex.
        stored: String,
        /// The public key derived from the secret key, hex.
        derived: String,
    },
}

/// A secret key of either scheme. Its `Debug` output shows only the public key.
#[derive(Clone)]
pub enum SecretKey {
    /// An Ed25519 signing key (32-byte seed).
    Ed25519(ed25519_dalek::SigningKey),
    /// A P-256 ECDSA signing key (32-byte scalar).
    P256(p256::ecdsa::SigningKey),
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secret material, not even in debug logs.
        f.debug_struct("SecretKey")
            .field("scheme", &self.scheme())
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// Generates a fresh key from the operating system's random number generator.
    pub fn generate(scheme: Scheme) -> Self {
        match scheme {
            Scheme::Ed25519 => SecretKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
            Scheme::P256 => SecretKey::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
        }
    }

    /// Reads a 32-byte secret key: the Ed25519 seed, or the big-endian P-256 scalar
    /// (which must be in `1..n`).
    pub fn from_bytes(scheme: Scheme, bytes: &[u8]) -> Result<Self, CryptoError> {
        let Ok(array) = <[u8; SECRET_KEY_LEN]>::try_from(bytes) else {
            return Err(CryptoError::InvalidSecretKey {
                scheme,
                reason: format!("must be {SECRET_KEY_LEN} bytes, got {}", bytes.len()),
            });
        };
        match scheme {
            Scheme::Ed25519 => Ok(SecretKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                &array,
            ))),
            Scheme::P256 => p256::ecdsa::SigningKey::from_slice(&array)
                .map(SecretKey::P256)
                .map_err(|_| CryptoError::InvalidSecretKey {
                    scheme,
                    reason: "scalar is zero or not below the group order".to_owned(),
                }),
        }
    }

    /// The 32 secret bytes, as [`SecretKey::from_bytes`] reads them.
    pub fn to_bytes(&self) -> [u8; SECRET_KEY_LEN] {
        match self {
            SecretKey::Ed25519(key) => key.to_bytes(),
            SecretKey::P256(key) => {
                let mut out = [0u8; SECRET_KEY_LEN];
                out.copy_from_slice(&key.to_bytes());
                out
            }
        }
    }

    /// This key's scheme.
    pub fn scheme(&self) -> Scheme {
        match self {
            SecretKey::Ed25519(_) => Scheme::Ed25519,
            SecretKey::P256(_) => Scheme::P256,
        }
    }

    /// The public key: 32 bytes for Ed25519, 65-byte uncompressed SEC1 for P-256.
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            SecretKey::Ed25519(key) => key.verifying_key().to_bytes().to_vec(),
            SecretKey::P256(key) => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    /// Signs `msg`; always 64 bytes. Both schemes are deterministic: Ed25519 by
    /// construction, P-256 by RFC 6979 nonces (SHA-256). P-256 signatures are normalised
    /// to low-S, because [`verify`] rejects the high-S twin.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            SecretKey::Ed25519(key) => {
                let signature: ed25519_dalek::Signature = ed25519_dalek::Signer::sign(key, msg);
                signature.to_bytes().to_vec()
            }
            SecretKey::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(msg);
                let signature = signature.normalize_s().unwrap_or(signature);
                signature.to_bytes().to_vec()
            }
        }
    }
}

/// Checks the length (and, for P-256, the `0x04` prefix) of a public key without
/// decoding the point. Cheap; [`verify`] decodes the point.
pub fn check_public_key_format(scheme: Scheme, public_key: &[u8]) -> Result<(), CryptoError> {
    let expected = scheme.public_key_len();
    if public_key.len() != expected {
        return Err(CryptoError::PublicKeyLength {
            scheme,
            expected,
            got: public_key.len(),
        });
    }
    if scheme == Scheme::P256 && public_key.first() != Some(&0x04) {
        return Err(CryptoError::InvalidPublicKey {
            scheme,
            reason: "must be an uncompressed SEC1 point starting with 0x04",
        });
    }
    Ok(())
}

/// Fully validates a public key that is about to be registered (a device key, a genesis
/// key): the format, that the point decodes and, for Ed25519, that it is neither of small
/// order nor has a torsion component. Keys generated honestly always pass; refusing the
/// rest at registration keeps odd points away from the signature checks. Costs a scalar
/// multiplication, so it is meant for registrations, not for every transaction.
pub fn validate_public_key(scheme: Scheme, public_key: &[u8]) -> Result<(), CryptoError> {
    check_public_key_format(scheme, public_key)?;
    match scheme {
        Scheme::Ed25519 => {
            let key = ed25519_key(public_key)?;
            if key.is_weak() {
                return Err(CryptoError::WeakPublicKey);
            }
            if !key.to_edwards().is_torsion_free() {
                return Err(CryptoError::InvalidPublicKey {
                    scheme,
                    reason: "point has a torsion component (not in the prime-order subgroup)",
                });
            }
            Ok(())
        }
        Scheme::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
            .map(|_| ())
            .map_err(|_| CryptoError::InvalidPublicKey {
                scheme,
                reason: "not a point on the P-256 curve",
            }),
    }
}

/// How a P-256 signature was encoded: secure elements such as NXP's SE050 and
/// Infineon's OPTIGA emit DER, others (and this project's signers) `r || s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// Fixed width: `r || s`, 32 big-endian bytes each.
    Fixed,
    /// ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`, strictly (minimal lengths and
    /// integers, nothing after it).
    Der,
}

impl fmt::Display for SignatureEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureEncoding::Fixed => "r || s",
            SignatureEncoding::Der => "DER",
        })
    }
}

/// A P-256 signature as fixed-width `r || s`, from either encoding. 64 bytes are always
/// `r || s` (a DER signature is 64 bytes only when r and s both have two leading zero
/// bytes, about once in 2^32 signatures: such a signer must send `r || s`).
pub fn p256_fixed(sig: &[u8]) -> Result<([u8; SIGNATURE_LEN], SignatureEncoding), CryptoError> {
    if let Ok(fixed) = <[u8; SIGNATURE_LEN]>::try_from(sig) {
        return Ok((fixed, SignatureEncoding::Fixed));
    }
    let parsed = p256::ecdsa::Signature::from_der(sig).map_err(|e| CryptoError::NotDer {
        got: sig.len(),
        reason: e.to_string(),
    })?;
    let mut fixed = [0u8; SIGNATURE_LEN];
    fixed.copy_from_slice(&parsed.to_bytes());
    Ok((fixed, SignatureEncoding::Der))
}

/// Verifies `sig` over `msg` under `public_key`.
///
/// Ed25519: `verify_strict`, small-order keys rejected. P-256: `ring` (SHA-256; `r || s`
/// or strict DER, [`p256_fixed`]) and low-S; a high-S signature is reported as
/// [`CryptoError::HighS`], naming the encoding seen, so that a client can be told what
/// to fix.
pub fn verify(
    scheme: Scheme,
    public_key: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    check_public_key_format(scheme, public_key)?;
    match scheme {
        Scheme::Ed25519 => {
            let Ok(sig) = <&[u8; SIGNATURE_LEN]>::try_from(sig) else {
                return Err(CryptoError::SignatureLength {
                    expected: SIGNATURE_LEN,
                    got: sig.len(),
                });
            };
            let (key, signature) = ed25519_precheck(public_key, sig)?;
            zebra_key(key)?
                .verify(&signature, msg)
                .map_err(|_| ed25519_equation_failed())
        }
        Scheme::P256 => {
            let (fixed, encoding) = p256_fixed(sig)?;
            p256_verify(public_key, msg, &fixed, encoding)
        }
    }
}

fn ed25519_key(public_key: &[u8]) -> Result<ed25519_dalek::VerifyingKey, CryptoError> {
    let bytes = <&[u8; ED25519_PUBLIC_KEY_LEN]>::try_from(public_key).map_err(|_| {
        CryptoError::PublicKeyLength {
            scheme: Scheme::Ed25519,
            expected: ED25519_PUBLIC_KEY_LEN,
            got: public_key.len(),
        }
    })?;
    ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidPublicKey {
        scheme: Scheme::Ed25519,
        reason: "not a point on the curve",
    })
}

fn p256_verify(
    public_key: &[u8],
    msg: &[u8],
    sig: &[u8; SIGNATURE_LEN],
    encoding: SignatureEncoding,
) -> Result<(), CryptoError> {
    let s: &[u8] = &sig[32..];
    // s = 0 is never a valid ECDSA signature; ring rejects it too, but say so plainly.
    if s.iter().all(|&b| b == 0) {
        return Err(CryptoError::BadSignature {
            scheme: Scheme::P256,
            reason: "s is zero",
        });
    }
    // Low-S before the expensive check: equal-length big-endian byte strings compare
    // like the numbers they encode.
    if s > &P256_HALF_ORDER[..] {
        return Err(CryptoError::HighS { encoding });
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, public_key)
        .verify(msg, sig)
        .map_err(|_| CryptoError::BadSignature {
            scheme: Scheme::P256,
            reason: "ecdsa verification failed (or the key is not a point on the curve)",
        })
}

/// Helpers shared by the tests of this crate.
#[cfg(test)]
pub(crate) mod tests_support {
    /// n - s for 32-byte big-endian numbers (P-256 group order n).
    pub fn p256_negate_s(s: &[u8]) -> [u8; 32] {
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2,
            0xfc, 0x63, 0x25, 0x51,
        ];
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for ((o, &n), &x) in out.iter_mut().zip(N.iter()).zip(s.iter()).rev() {
            let mut d = i16::from(n) - i16::from(x) - borrow;
            borrow = 0;
            if d < 0 {
                d += 256;
                borrow = 1;
            }
            *o = d as u8;
        }
        out
    }
}
