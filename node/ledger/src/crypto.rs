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
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use p256::ecdsa::signature::Signer as _;
use rand::rngs::OsRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracechain_proto::v1 as pb;

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
    #[error("ecdsa-p256 signature has high s (s > n/2); normalise s to n - s (low-S)")]
    HighS,
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

/// Verifies `sig` over `msg` under `public_key`.
///
/// Ed25519: `verify_strict`, small-order keys rejected. P-256: `ring` (fixed `r || s`,
/// SHA-256) and low-S; a high-S signature is reported as [`CryptoError::HighS`] so that
/// a client can be told what to fix.
pub fn verify(
    scheme: Scheme,
    public_key: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    check_public_key_format(scheme, public_key)?;
    let Ok(sig) = <&[u8; SIGNATURE_LEN]>::try_from(sig) else {
        return Err(CryptoError::SignatureLength {
            expected: SIGNATURE_LEN,
            got: sig.len(),
        });
    };
    match scheme {
        Scheme::Ed25519 => {
            let (key, signature) = ed25519_precheck(public_key, sig)?;
            zebra_key(key)?
                .verify(&signature, msg)
                .map_err(|_| ed25519_equation_failed())
        }
        Scheme::P256 => p256_verify(public_key, msg, sig),
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

/// `2^255 - 19`, little-endian: an encoded coordinate must be below it.
const FIELD_PRIME: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// The order `l` of the prime-order subgroup, little-endian: `s` must be below it.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// The encodings of the eight points of small order (the torsion subgroup) whose `y`
/// is below the field prime: the canonical ones, plus `(0, 1)` and `(0, -1)` with the
/// sign bit set (`x = 0` has no negative). Other encodings of these points have
/// `y >= p` and are refused as non-canonical. The test `small_order_encodings_are_exactly_these`
/// derives this list from curve arithmetic.
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 10] = {
    const fn with(first: u8, fill: u8, last: u8) -> [u8; 32] {
        let mut b = [fill; 32];
        b[0] = first;
        b[31] = last;
        b
    }
    const ORDER_8: [u8; 32] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    const ORDER_8_NEG_Y: [u8; 32] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ];
    const fn negated_x(mut b: [u8; 32]) -> [u8; 32] {
        b[31] |= 0x80;
        b
    }
    [
        with(0x01, 0x00, 0x00), // (0, 1), the identity
        with(0x01, 0x00, 0x80), // the identity with the sign bit
        with(0xec, 0xff, 0x7f), // (0, -1), order 2
        with(0xec, 0xff, 0xff), // order 2 with the sign bit
        with(0x00, 0x00, 0x00), // (sqrt(-1), 0), order 4
        with(0x00, 0x00, 0x80), // (-sqrt(-1), 0), order 4
        ORDER_8,
        negated_x(ORDER_8),
        ORDER_8_NEG_Y,
        negated_x(ORDER_8_NEG_Y),
    ]
};

/// Whether a little-endian 255-bit number (the top bit of byte 31 ignored when
/// `mask_top_bit`) is below `bound`.
fn below(bytes: &[u8; 32], bound: &[u8; 32], mask_top_bit: bool) -> bool {
    for i in (0..32).rev() {
        let b = if mask_top_bit && i == 31 {
            bytes[i] & 0x7f
        } else {
            bytes[i]
        };
        if b != bound[i] {
            return b < bound[i];
        }
    }
    false
}

/// Whether `point` is a canonical encoding of a point that is not of small order, by
/// byte comparisons only (no decompression). Whether it is on the curve at all is left
/// to the equation check, which decompresses it.
fn ed25519_point_acceptable(point: &[u8; 32]) -> bool {
    below(point, &FIELD_PRIME, true) && !SMALL_ORDER_ENCODINGS.contains(point)
}

/// The cheap half of the Ed25519 rule: lengths, canonical and not-small-order `A` and
/// `R`, canonical `s`. Returns the key bytes and the parsed signature.
fn ed25519_precheck(
    public_key: &[u8],
    sig: &[u8; SIGNATURE_LEN],
) -> Result<([u8; 32], ed25519_zebra::Signature), CryptoError> {
    let key = <[u8; ED25519_PUBLIC_KEY_LEN]>::try_from(public_key).map_err(|_| {
        CryptoError::PublicKeyLength {
            scheme: Scheme::Ed25519,
            expected: ED25519_PUBLIC_KEY_LEN,
            got: public_key.len(),
        }
    })?;
    if SMALL_ORDER_ENCODINGS.contains(&key) {
        return Err(CryptoError::WeakPublicKey);
    }
    if !below(&key, &FIELD_PRIME, true) {
        return Err(CryptoError::InvalidPublicKey {
            scheme: Scheme::Ed25519,
            reason: "not a canonical point encoding",
        });
    }
    let r: &[u8; 32] = sig[..32].try_into().unwrap_or(&[0; 32]);
    if !ed25519_point_acceptable(r) {
        return Err(CryptoError::BadSignature {
            scheme: Scheme::Ed25519,
            reason: "R is of small order or not canonically encoded",
        });
    }
    let s: &[u8; 32] = sig[32..].try_into().unwrap_or(&[0xff; 32]);
    if !below(s, &GROUP_ORDER, false) {
        return Err(CryptoError::BadSignature {
            scheme: Scheme::Ed25519,
            reason: "s is not canonical (s >= l)",
        });
    }
    Ok((key, ed25519_zebra::Signature::from_bytes(sig)))
}

fn zebra_key(key: [u8; 32]) -> Result<ed25519_zebra::VerificationKey, CryptoError> {
    ed25519_zebra::VerificationKey::try_from(key).map_err(|_| CryptoError::InvalidPublicKey {
        scheme: Scheme::Ed25519,
        reason: "not a point on the curve",
    })
}

fn ed25519_equation_failed() -> CryptoError {
    CryptoError::BadSignature {
        scheme: Scheme::Ed25519,
        reason: "verification equation failed (or R is not a point on the curve)",
    }
}

fn p256_verify(
    public_key: &[u8],
    msg: &[u8],
    sig: &[u8; SIGNATURE_LEN],
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
        return Err(CryptoError::HighS);
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, public_key)
        .verify(msg, sig)
        .map_err(|_| CryptoError::BadSignature {
            scheme: Scheme::P256,
            reason: "ecdsa verification failed (or the key is not a point on the curve)",
        })
}

/// One Ed25519 signature to check in [`verify_ed25519_all`].
#[derive(Clone, Copy, Debug)]
pub struct Ed25519Item<'a> {
    /// The 32-byte public key.
    pub public_key: &'a [u8],
    /// The signed message.
    pub msg: &'a [u8],
    /// The 64-byte signature.
    pub signature: &'a [u8],
}

/// Ed25519 signatures checked together in one batch equation. Measured (see
/// docs/PERFORMANCE.md): with the batch cut from key-sorted candidates, 128 checks ~4 %
/// more per second than 64; a batch holding a bad signature is checked one by one, so
/// larger batches make a bad signature dearer.
pub const ED25519_BATCH: usize = 128;

/// Verifies many Ed25519 signatures; returns one verdict per item, in order, always
/// equal to what [`verify`] says about that item alone. Items are checked in batches of
/// [`ED25519_BATCH`], batches in parallel on the rayon pool; a batch that fails is
/// checked one by one, so a bad signature costs its batch a second pass but never
/// changes a neighbour's verdict.
pub fn verify_ed25519_all(items: &[Ed25519Item<'_>]) -> Vec<Result<(), CryptoError>> {
    let mut verdicts: Vec<Result<(), CryptoError>> = Vec::with_capacity(items.len());
    // The items that pass the cheap checks go through the equation, in batches.
    let mut candidates = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let checked = <&[u8; SIGNATURE_LEN]>::try_from(item.signature)
            .map_err(|_| CryptoError::SignatureLength {
                expected: SIGNATURE_LEN,
                got: item.signature.len(),
            })
            .and_then(|sig| ed25519_precheck(item.public_key, sig));
        match checked {
            Ok((key, signature)) => {
                candidates.push((i, key, signature, item.msg));
                verdicts.push(Ok(()));
            }
            Err(e) => verdicts.push(Err(e)),
        }
    }
    // Signatures by one key share its decompressed point and one term of the batch's
    // multiscalar multiplication (ed25519-zebra groups a batch by key), so batches are
    // cut from the candidates sorted by key: a device's readings in one request cost
    // about one point decompression each instead of two (docs/PERFORMANCE.md).
    candidates.sort_unstable_by_key(|c| c.1);
    let failed: Vec<usize> = candidates
        .par_chunks(ED25519_BATCH)
        .flat_map_iter(|chunk| {
            let queued: Vec<ed25519_zebra::batch::Item> = chunk
                .iter()
                .map(|(_, key, signature, msg)| {
                    (
                        ed25519_zebra::VerificationKeyBytes::from(*key),
                        *signature,
                        *msg,
                    )
                        .into()
                })
                .collect();
            let mut batch = ed25519_zebra::batch::Verifier::new();
            for item in &queued {
                batch.queue(item.clone());
            }
            let all_good = batch.verify(rand010::rng()).is_ok();
            // A failed batch: find the culprits one by one.
            chunk
                .iter()
                .zip(queued)
                .filter(move |_| !all_good)
                .filter(|(_, item)| item.clone().verify_single().is_err())
                .map(|((i, ..), _)| *i)
                .collect::<Vec<_>>()
        })
        .collect();
    for i in failed {
        verdicts[i] = Err(ed25519_equation_failed());
    }
    verdicts
}

/// Which kind of identity a key file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A consortium member's admin key (signs transactions).
    Member,
    /// An IoT device's key (signs sensor reports).
    Device,
    /// A validator node's key (signs consensus messages).
    Node,
}

/// The CLI's key file, JSON:
/// `{ "kind", "id", "scheme", "secret_key" (hex), "public_key" (hex), "next_sequence" }`.
///
/// `next_sequence` models a device's monotonic counter: [`KeyFile::take_sequence`] hands
/// out the next value and the CLI saves the file after signing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// Member, device or node.
    pub kind: KeyKind,
    /// Member id, device id or node id.
    pub id: String,
    /// The key's scheme.
    pub scheme: Scheme,
    /// The 32 secret bytes, hex.
    pub secret_key: String,
    /// The public key, hex.
    pub public_key: String,
    /// The sequence number the next transaction signed with this key will carry.
    pub next_sequence: u64,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("scheme", &self.scheme)
            .field("public_key", &self.public_key)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

impl KeyFile {
    /// A key file for `key`, whose first transaction will carry sequence 1.
    pub fn new(kind: KeyKind, id: impl Into<String>, key: &SecretKey) -> Self {
        KeyFile {
            kind,
            id: id.into(),
            scheme: key.scheme(),
            secret_key: hex::encode(key.to_bytes()),
            public_key: hex::encode(key.public_key()),
            next_sequence: 1,
        }
    }

    /// The secret key, checked against the stored public key.
    pub fn secret_key(&self) -> Result<SecretKey, CryptoError> {
        let bytes = hex::decode(&self.secret_key).map_err(|source| CryptoError::KeyFileHex {
            field: "secret_key",
            source,
        })?;
        let key = SecretKey::from_bytes(self.scheme, &bytes)?;
        let stored = hex::decode(&self.public_key).map_err(|source| CryptoError::KeyFileHex {
            field: "public_key",
            source,
        })?;
        let derived = key.public_key();
        if stored != derived {
            return Err(CryptoError::KeyFileMismatch {
                stored: self.public_key.clone(),
                derived: hex::encode(derived),
            });
        }
        Ok(key)
    }

    /// The public key bytes.
    pub fn public_key_bytes(&self) -> Result<Vec<u8>, CryptoError> {
        hex::decode(&self.public_key).map_err(|source| CryptoError::KeyFileHex {
            field: "public_key",
            source,
        })
    }

    /// Returns the sequence number for the next transaction and advances the counter.
    /// Sequences start at 1 (0 is never valid on the chain). The caller must
    /// [`save`](KeyFile::save) the file before it publishes the transaction, or a crash
    /// could hand out the same number twice.
    pub fn take_sequence(&mut self) -> u64 {
        let sequence = self.next_sequence.max(1);
        self.next_sequence = sequence.saturating_add(1);
        sequence
    }

    /// Reads a key file and checks that its keys match.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let text = fs::read_to_string(path).map_err(|source| CryptoError::KeyFileIo {
            path: path.to_owned(),
            source,
        })?;
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|source| CryptoError::KeyFileFormat {
                path: path.to_owned(),
                source,
            })?;
        file.secret_key()?;
        Ok(file)
    }

    /// Writes the key file atomically: to a temporary file next to it (mode 0600 on
    /// Unix, so the secret is never readable by others, even briefly), synced, then
    /// renamed over `path`. A crash leaves either the old or the new file, never half
    /// of one: losing `next_sequence` would make a device replay sequence numbers.
    pub fn save(&self, path: &Path) -> Result<(), CryptoError> {
        let io_error = |source| CryptoError::KeyFileIo {
            path: path.to_owned(),
            source,
        };
        let json =
            serde_json::to_string_pretty(self).map_err(|source| CryptoError::KeyFileFormat {
                path: path.to_owned(),
                source,
            })?;
        let file_name = path
            .file_name()
            .ok_or_else(|| io_error(std::io::Error::other("path has no file name")))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        // A stale temp file from a crash may have other permissions; start afresh so
        // the mode below applies (it only applies when the file is created).
        if let Err(e) = fs::remove_file(&tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(io_error(e));
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&tmp).and_then(|mut file| {
            file.write_all(json.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(e));
        }
        // Make the rename itself durable (best effort: not every platform can open a
        // directory).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = fs::File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::tests_support::p256_negate_s;
    use super::*;

    fn high_s(sig: &[u8]) -> Vec<u8> {
        let mut out = sig[..32].to_vec();
        out.extend_from_slice(&p256_negate_s(&sig[32..]));
        out
    }

    #[test]
    fn half_order_is_n_minus_1_over_2() {
        // n - half = half + 1 because n is odd.
        let twin = p256_negate_s(&P256_HALF_ORDER);
        let mut expected = P256_HALF_ORDER;
        expected[31] += 1;
        assert_eq!(twin, expected);
    }

    #[test]
    fn sign_and_verify_both_schemes() {
        for scheme in [Scheme::Ed25519, Scheme::P256] {
            let key = SecretKey::generate(scheme);
            let pk = key.public_key();
            assert_eq!(pk.len(), scheme.public_key_len());
            let sig = key.sign(b"hello");
            assert_eq!(sig.len(), SIGNATURE_LEN);
            verify(scheme, &pk, b"hello", &sig).expect("valid signature");
            assert!(matches!(
                verify(scheme, &pk, b"hellO", &sig),
                Err(CryptoError::BadSignature { .. })
            ));
            validate_public_key(scheme, &pk).expect("honest key is valid");
        }
    }

    #[test]
    fn p256_public_key_is_uncompressed_sec1() {
        let key = SecretKey::generate(Scheme::P256);
        let pk = key.public_key();
        assert_eq!(pk.len(), 65);
        assert_eq!(pk[0], 0x04);
    }

    #[test]
    fn secret_key_roundtrip() {
        for scheme in [Scheme::Ed25519, Scheme::P256] {
            let key = SecretKey::generate(scheme);
            let again = SecretKey::from_bytes(scheme, &key.to_bytes()).expect("roundtrip");
            assert_eq!(again.public_key(), key.public_key());
            assert_eq!(again.scheme(), scheme);
        }
        assert!(matches!(
            SecretKey::from_bytes(Scheme::Ed25519, &[1u8; 31]),
            Err(CryptoError::InvalidSecretKey { .. })
        ));
        assert!(matches!(
            SecretKey::from_bytes(Scheme::P256, &[0u8; 32]),
            Err(CryptoError::InvalidSecretKey { .. })
        ));
        assert!(matches!(
            SecretKey::from_bytes(Scheme::P256, &[0xffu8; 32]),
            Err(CryptoError::InvalidSecretKey { .. })
        ));
    }

    #[test]
    fn secret_key_debug_hides_secret() {
        let key = SecretKey::from_bytes(Scheme::Ed25519, &[7u8; 32]).expect("key");
        let debug = format!("{key:?}");
        assert!(!debug.contains(&hex::encode([7u8; 32])));
        assert!(debug.contains(&hex::encode(key.public_key())));
    }

    #[test]
    fn p256_signatures_are_low_s_and_deterministic() {
        let key = SecretKey::generate(Scheme::P256);
        for i in 0..200u32 {
            let msg = i.to_be_bytes();
            let sig = key.sign(&msg);
            assert!(sig[32..] <= P256_HALF_ORDER[..], "signature {i} is high-S");
            assert_eq!(sig, key.sign(&msg), "RFC 6979 is deterministic");
        }
    }

    #[test]
    fn p256_high_s_is_rejected_as_high_s() {
        let key = SecretKey::generate(Scheme::P256);
        let pk = key.public_key();
        let sig = key.sign(b"msg");
        let twin = high_s(&sig);
        // ring alone accepts the malleated twin: that is why the low-S check exists.
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &pk)
            .verify(b"msg", &twin)
            .expect("ring accepts high-S");
        assert!(matches!(
            verify(Scheme::P256, &pk, b"msg", &twin),
            Err(CryptoError::HighS)
        ));
    }

    #[test]
    fn p256_zero_s_and_garbage_rejected() {
        let key = SecretKey::generate(Scheme::P256);
        let pk = key.public_key();
        let mut sig = key.sign(b"msg");
        sig[32..].fill(0);
        assert!(matches!(
            verify(Scheme::P256, &pk, b"msg", &sig),
            Err(CryptoError::BadSignature {
                reason: "s is zero",
                ..
            })
        ));
        let mut sig = key.sign(b"msg");
        sig[..32].fill(0);
        assert!(matches!(
            verify(Scheme::P256, &pk, b"msg", &sig),
            Err(CryptoError::BadSignature { .. })
        ));
    }

    #[test]
    fn wrong_lengths_are_typed() {
        let key = SecretKey::generate(Scheme::Ed25519);
        let pk = key.public_key();
        let sig = key.sign(b"m");
        assert!(matches!(
            verify(Scheme::Ed25519, &pk[..31], b"m", &sig),
            Err(CryptoError::PublicKeyLength {
                expected: 32,
                got: 31,
                ..
            })
        ));
        assert!(matches!(
            verify(Scheme::Ed25519, &pk, b"m", &sig[..63]),
            Err(CryptoError::SignatureLength {
                expected: 64,
                got: 63
            })
        ));
        let p = SecretKey::generate(Scheme::P256);
        let ppk = p.public_key();
        assert!(matches!(
            verify(Scheme::P256, &pk, b"m", &sig),
            Err(CryptoError::PublicKeyLength {
                expected: 65,
                got: 32,
                ..
            })
        ));
        let mut compressed_marker = ppk.clone();
        compressed_marker[0] = 0x02;
        assert!(matches!(
            verify(Scheme::P256, &compressed_marker, b"m", &p.sign(b"m")),
            Err(CryptoError::InvalidPublicKey { .. })
        ));
        let mut off_curve = ppk;
        off_curve[64] ^= 1;
        assert!(matches!(
            verify(Scheme::P256, &off_curve, b"m", &p.sign(b"m")),
            Err(CryptoError::BadSignature { .. })
        ));
        assert!(matches!(
            validate_public_key(Scheme::P256, &off_curve),
            Err(CryptoError::InvalidPublicKey { .. })
        ));
    }

    #[test]
    fn scheme_conversions() {
        assert_eq!(Scheme::try_from(1).ok(), Some(Scheme::Ed25519));
        assert_eq!(Scheme::try_from(2).ok(), Some(Scheme::P256));
        assert!(matches!(
            Scheme::try_from(0),
            Err(CryptoError::UnknownScheme { value: 0 })
        ));
        assert!(matches!(
            Scheme::try_from(9),
            Err(CryptoError::UnknownScheme { value: 9 })
        ));
        for s in [Scheme::Ed25519, Scheme::P256] {
            assert_eq!(Scheme::try_from(pb::SignatureScheme::from(s)).ok(), Some(s));
        }
    }

    /// The identity point (0, 1): small order, and a valid encoding.
    const IDENTITY: [u8; 32] = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };

    #[test]
    fn weak_ed25519_key_rejected_everywhere() {
        // With A = identity and R = identity, s = 0 satisfies the equation for every
        // message: the classic forgery that rejecting small-order keys stops.
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&IDENTITY);
        assert!(matches!(
            verify(Scheme::Ed25519, &IDENTITY, b"anything", &sig),
            Err(CryptoError::WeakPublicKey)
        ));
        assert!(matches!(
            validate_public_key(Scheme::Ed25519, &IDENTITY),
            Err(CryptoError::WeakPublicKey)
        ));
        let item = Ed25519Item {
            public_key: &IDENTITY,
            msg: b"anything",
            signature: &sig,
        };
        // verify_batch alone accepts it: the reason for the pre-check.
        let key = ed25519_dalek::VerifyingKey::from_bytes(&IDENTITY).expect("decodes");
        ed25519_dalek::verify_batch(
            &[b"anything".as_slice()],
            &[ed25519_dalek::Signature::from_bytes(&sig)],
            &[key],
        )
        .expect("verify_batch accepts a weak key");
        let verdicts = verify_ed25519_all(&[item]);
        assert!(matches!(verdicts[0], Err(CryptoError::WeakPublicKey)));
    }

    #[test]
    fn small_order_r_rejected() {
        let key = SecretKey::generate(Scheme::Ed25519);
        let pk = key.public_key();
        let mut sig = key.sign(b"m");
        sig[..32].copy_from_slice(&IDENTITY);
        let verdicts = verify_ed25519_all(&[Ed25519Item {
            public_key: &pk,
            msg: b"m",
            signature: &sig,
        }]);
        // verify_strict refuses a small-order R.
        assert!(matches!(verdicts[0], Err(CryptoError::BadSignature { .. })));
    }

    #[test]
    fn non_canonical_s_rejected() {
        let key = SecretKey::generate(Scheme::Ed25519);
        let pk = key.public_key();
        let mut sig = key.sign(b"m");
        sig[63] |= 0xf0; // s >= l
        assert!(verify(Scheme::Ed25519, &pk, b"m", &sig).is_err());
        let verdicts = verify_ed25519_all(&[Ed25519Item {
            public_key: &pk,
            msg: b"m",
            signature: &sig,
        }]);
        assert!(verdicts[0].is_err());
    }

    /// Public keys, messages and signatures, one column each.
    type Columns = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<Vec<u8>>);

    fn make_items(n: usize) -> Columns {
        let keys: Vec<SecretKey> = (0..8)
            .map(|_| SecretKey::generate(Scheme::Ed25519))
            .collect();
        let mut pks = Vec::new();
        let mut msgs = Vec::new();
        let mut sigs = Vec::new();
        for i in 0..n {
            let key = &keys[i % keys.len()];
            let msg = format!("message {i}").into_bytes();
            sigs.push(key.sign(&msg));
            pks.push(key.public_key());
            msgs.push(msg);
        }
        (pks, msgs, sigs)
    }

    fn items<'a>(
        pks: &'a [Vec<u8>],
        msgs: &'a [Vec<u8>],
        sigs: &'a [Vec<u8>],
    ) -> Vec<Ed25519Item<'a>> {
        (0..pks.len())
            .map(|i| Ed25519Item {
                public_key: &pks[i],
                msg: &msgs[i],
                signature: &sigs[i],
            })
            .collect()
    }

    #[test]
    fn batch_all_good() {
        let (pks, msgs, sigs) = make_items(150);
        let verdicts = verify_ed25519_all(&items(&pks, &msgs, &sigs));
        assert_eq!(verdicts.len(), 150);
        assert!(verdicts.iter().all(Result::is_ok));
    }

    #[test]
    fn batch_one_bad_in_the_middle_gets_its_own_verdict() {
        let (pks, msgs, mut sigs) = make_items(150);
        sigs[75][40] ^= 0x01; // corrupt s of item 75
        sigs[130][3] ^= 0x80; // corrupt R of item 130
        let mut short = sigs.clone();
        short[10].truncate(10);
        let verdicts = verify_ed25519_all(&items(&pks, &msgs, &short));
        for (i, v) in verdicts.iter().enumerate() {
            match i {
                10 => assert!(matches!(
                    v,
                    Err(CryptoError::SignatureLength { got: 10, .. })
                )),
                75 | 130 => assert!(v.is_err(), "item {i} must fail"),
                _ => assert!(v.is_ok(), "item {i} must pass: {v:?}"),
            }
        }
        // The batch verdict of every item equals the one-by-one verdict.
        for (i, v) in verdicts.iter().enumerate() {
            let single = verify(Scheme::Ed25519, &pks[i], &msgs[i], &short[i]);
            assert_eq!(v.is_ok(), single.is_ok(), "item {i}");
        }
    }

    /// The point (0, -1), of order 2.
    const ORDER_TWO: [u8; 32] = {
        let mut b = [0xffu8; 32];
        b[0] = 0xec;
        b[31] = 0x7f;
        b
    };

    /// Signs `msg` like Ed25519 does, but with `R = [r]B + T` for the order-2 point
    /// `T` and with `h = H(R || A || msg)` over that `R`: the prime-order part of the
    /// verification equation holds, and only the torsion part `T` is wrong. Built from
    /// curve arithmetic that ed25519-dalek exposes (no hazmat feature needed).
    fn sign_with_torsion_in_r(
        key: &ed25519_dalek::SigningKey,
        nonce_key: &ed25519_dalek::SigningKey,
        msg: &[u8],
    ) -> [u8; 64] {
        let a = key.to_scalar();
        let r = nonce_key.to_scalar();
        let t = ed25519_dalek::VerifyingKey::from_bytes(&ORDER_TWO)
            .expect("decodes")
            .to_edwards();
        let r_point = nonce_key.verifying_key().to_edwards() + t;
        let r_bytes = r_point.compress().to_bytes();
        let mut hashed = r_bytes.to_vec();
        hashed.extend_from_slice(key.verifying_key().as_bytes());
        hashed.extend_from_slice(msg);
        let digest = ring::digest::digest(&ring::digest::SHA512, &hashed);
        // h = digest (little-endian, 512 bits) mod l, by Horner's rule in scalars, since
        // the Scalar type itself cannot be named without depending on curve25519-dalek.
        let zero = a + (-a);
        let one = a * a.invert();
        let mut small = vec![zero];
        while small.len() <= 256 {
            let next = small[small.len() - 1] + one;
            small.push(next);
        }
        let mut h = zero;
        for &byte in digest.as_ref().iter().rev() {
            h = h * small[256] + small[usize::from(byte)];
        }
        let s = r + h * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        sig
    }

    #[test]
    fn cofactorless_batches_disagree_cofactored_batches_agree() {
        // A signature whose R has an order-2 component: verify_strict (cofactorless)
        // rejects it, ed25519-dalek's verify_batch accepts it whenever the batch's
        // coefficient for it is even, so its verdict depends on the batch. Our rule is
        // cofactored: it accepts the signature alone and in every batch.
        let key = ed25519_dalek::SigningKey::from_bytes(&[21u8; 32]);
        let pk = key.verifying_key().to_bytes();
        let (others_pk, others_msg, others_sig) = make_items(200);
        let mut dalek_batch_accepted = 0;
        for i in 0..64u8 {
            let nonce_key = ed25519_dalek::SigningKey::from_bytes(&[i; 32]);
            let msg = format!("reading {i}").into_bytes();
            let sig = sign_with_torsion_in_r(&key, &nonce_key, &msg);
            let signature = ed25519_dalek::Signature::from_bytes(&sig);
            assert!(key.verifying_key().verify_strict(&msg, &signature).is_err());
            if ed25519_dalek::verify_batch(
                &[msg.as_slice(), others_msg[0].as_slice()],
                &[
                    signature,
                    ed25519_dalek::Signature::from_slice(&others_sig[0]).expect("64 bytes"),
                ],
                &[
                    key.verifying_key(),
                    ed25519_dalek::VerifyingKey::try_from(others_pk[0].as_slice()).expect("key"),
                ],
            )
            .is_ok()
            {
                dalek_batch_accepted += 1;
            }
            verify(Scheme::Ed25519, &pk, &msg, &sig).expect("the cofactored equation holds");
            // The same signature at a different place among different neighbours.
            let at = usize::from(i) % 100;
            let mut batch = items(
                &others_pk[at..at + 100],
                &others_msg[at..at + 100],
                &others_sig[at..at + 100],
            );
            batch.insert(
                at % 64,
                Ed25519Item {
                    public_key: &pk,
                    msg: &msg,
                    signature: &sig,
                },
            );
            let verdicts = verify_ed25519_all(&batch);
            assert!(
                verdicts.iter().all(Result::is_ok),
                "batch {i}: {verdicts:?}"
            );
        }
        // About half; never zero (or all) unless the construction above is wrong.
        assert!(dalek_batch_accepted > 0, "verify_batch accepted none of 64");
        assert!(dalek_batch_accepted < 64, "verify_batch accepted all 64");
    }

    #[test]
    fn small_order_encodings_are_exactly_these() {
        // The torsion subgroup is generated by any point of order 8: derive its eight
        // points and their canonical encodings from curve arithmetic.
        let generator = ed25519_dalek::VerifyingKey::from_bytes(&SMALL_ORDER_ENCODINGS[6])
            .expect("decodes")
            .to_edwards();
        let mut point = generator;
        let mut derived = std::collections::BTreeSet::new();
        for _ in 0..8 {
            derived.insert(point.compress().to_bytes());
            point += generator;
        }
        assert_eq!(point.compress(), generator.compress(), "order 8");
        assert_eq!(derived.len(), 8);
        for encoding in &derived {
            assert!(
                SMALL_ORDER_ENCODINGS.contains(encoding),
                "{}",
                hex::encode(encoding)
            );
        }
        // The two extra entries are (0, 1) and (0, -1) with the sign bit set, which
        // decode to the same points.
        for encoding in SMALL_ORDER_ENCODINGS
            .iter()
            .filter(|e| !derived.contains(*e))
        {
            let mut canonical = *encoding;
            canonical[31] &= 0x7f;
            assert!(derived.contains(&canonical));
            let key = ed25519_dalek::VerifyingKey::from_bytes(encoding).expect("decodes");
            assert!(key.is_weak());
        }
    }

    #[test]
    fn byte_checks_agree_with_decompression() {
        // Whenever an encoding decodes to a point, the byte-level check accepts it
        // exactly when it is canonical and not of small order.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let mut candidates: Vec<[u8; 32]> = (0..20_000)
            .map(|_| {
                let mut b = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rng, &mut b);
                b
            })
            .collect();
        candidates.extend(SMALL_ORDER_ENCODINGS);
        // y = p - 1, p, p + 1, ..., 2^255 - 1, with and without the sign bit.
        for low in [0xecu8, 0xed, 0xee, 0xef, 0xf0, 0xfe, 0xff] {
            for top in [0x7fu8, 0xff] {
                let mut b = [0xffu8; 32];
                b[0] = low;
                b[31] = top;
                candidates.push(b);
            }
        }
        // Small y: y = 1 + p is not representable, but y = 0..3 with both signs are.
        for y in 0..4u8 {
            for top in [0x00u8, 0x80] {
                let mut b = [0u8; 32];
                b[0] = y;
                b[31] = top;
                candidates.push(b);
            }
        }
        let mut decoded = 0;
        for b in &candidates {
            let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(b) else {
                continue;
            };
            decoded += 1;
            let canonical = key.to_edwards().compress().to_bytes() == *b;
            let expected = canonical && !key.is_weak();
            assert_eq!(ed25519_point_acceptable(b), expected, "{}", hex::encode(b));
        }
        assert!(decoded > 5_000, "only {decoded} decoded");
    }

    #[test]
    fn batch_verdicts_do_not_depend_on_neighbours() {
        // Bad signatures of every kind, mixed into batches at different offsets.
        let (pks, msgs, sigs) = make_items(300);
        let mut bad = sigs.clone();
        bad[5][40] ^= 0x01; // s changed: equation fails
        bad[70][0] ^= 0x02; // R changed: equation fails (or R does not decode)
        bad[140][..32].copy_from_slice(&SMALL_ORDER_ENCODINGS[4]); // small-order R
        bad[200][63] |= 0xf0; // s >= l
        let mut wrong_msgs = msgs.clone();
        wrong_msgs[260] = b"another message".to_vec();
        for offset in [0usize, 1, 17, 63, 64, 100] {
            let n = 300 - offset;
            let verdicts = verify_ed25519_all(&items(
                &pks[offset..],
                &wrong_msgs[offset..],
                &bad[offset..],
            ));
            assert_eq!(verdicts.len(), n);
            for (j, v) in verdicts.iter().enumerate() {
                let i = offset + j;
                let single = verify(Scheme::Ed25519, &pks[i], &wrong_msgs[i], &bad[i]);
                assert_eq!(v.is_ok(), single.is_ok(), "item {i} at offset {offset}");
                assert_eq!(
                    v.is_ok(),
                    ![5, 70, 140, 200, 260].contains(&i),
                    "item {i} at offset {offset}: {v:?}"
                );
            }
        }
    }

    #[test]
    fn batch_empty() {
        assert!(verify_ed25519_all(&[]).is_empty());
    }

    #[test]
    fn key_file_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("device.json");
        for scheme in [Scheme::Ed25519, Scheme::P256] {
            let key = SecretKey::generate(scheme);
            let mut file = KeyFile::new(KeyKind::Device, "urn:epc:id:giai:4000001.111", &key);
            assert_eq!(file.take_sequence(), 1);
            assert_eq!(file.take_sequence(), 2);
            file.save(&path).expect("save");
            let loaded = KeyFile::load(&path).expect("load");
            assert_eq!(loaded, file);
            assert_eq!(loaded.next_sequence, 3);
            assert_eq!(
                loaded.secret_key().expect("key").public_key(),
                key.public_key()
            );
            let json: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
            assert_eq!(json["kind"], "device");
            assert_eq!(json["scheme"], scheme.to_string());
            assert_eq!(json["next_sequence"], 3);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = fs::metadata(&path).expect("meta").permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
        // No temp file left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn key_file_mismatch_and_bad_json_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.json");
        let mut file = KeyFile::new(
            KeyKind::Member,
            "farm",
            &SecretKey::generate(Scheme::Ed25519),
        );
        file.public_key = hex::encode(SecretKey::generate(Scheme::Ed25519).public_key());
        file.save(&path).expect("save");
        assert!(matches!(
            KeyFile::load(&path),
            Err(CryptoError::KeyFileMismatch { .. })
        ));
        fs::write(&path, "{ not json").expect("write");
        assert!(matches!(
            KeyFile::load(&path),
            Err(CryptoError::KeyFileFormat { .. })
        ));
        assert!(matches!(
            KeyFile::load(&dir.path().join("missing.json")),
            Err(CryptoError::KeyFileIo { .. })
        ));
        let mut file = KeyFile::new(KeyKind::Node, "n1", &SecretKey::generate(Scheme::P256));
        file.secret_key = "zz".into();
        assert!(matches!(
            file.secret_key(),
            Err(CryptoError::KeyFileHex {
                field: "secret_key",
                ..
            })
        ));
    }

    #[test]
    fn key_file_debug_hides_secret() {
        let key = SecretKey::generate(Scheme::Ed25519);
        let file = KeyFile::new(KeyKind::Member, "farm", &key);
        assert!(!format!("{file:?}").contains(&file.secret_key));
    }

    #[test]
    fn take_sequence_starts_at_one() {
        let mut file = KeyFile::new(KeyKind::Device, "d", &SecretKey::generate(Scheme::P256));
        file.next_sequence = 0;
        assert_eq!(file.take_sequence(), 1);
        assert_eq!(file.next_sequence, 2);
    }
}
