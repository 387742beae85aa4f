//! The one decode point for transactions: raw `pb::SignedTx` in, [`CheckedTx`] out.
//!
//! # Signing rule (docs/SIGNING.md)
//! The signer signs `TX_SIGN_DOMAIN || body`, where `body` is the exact bytes of an
//! encoded `TxBody` as carried in `SignedTx.body`; the transaction id is `blake3(body)`.
//! Nobody re-encodes a body before hashing or verifying it, so a client in any language
//! can sign with any protobuf encoder.
//!
//! # Two steps
//! [`decode`] makes every check that needs neither state nor a signature check: sizes,
//! protobuf, chain id, signer, key and signature lengths, and the physical sanity of every
//! field of the action. It is cheap, so junk is dropped before it costs a signature check.
//! [`UnverifiedTx::verify`] (or [`verify_all`] for many, with Ed25519 batching and P-256
//! in parallel) then checks the signature with the scheme and key carried in the body.
//! The ledger later checks that this key is the signer's current registered key and that
//! the sequence is fresh; consensus and the ledger only ever see [`CheckedTx`].
//!
//! Depends on `crypto`; `mempool`, the API and the ledger depend on this module.

use std::fmt;
use std::str::FromStr;

use prost::Message as _;
use rayon::prelude::*;
use tracechain_proto::v1 as pb;

use crate::crypto::{self, CryptoError, Ed25519Item, Scheme, SecretKey};

mod fields;
#[cfg(test)]
mod tests;

pub use fields::{MAX_EPCIS_EPCS, MAX_EPCIS_JSON_BYTES, MAX_EPCIS_READINGS, check_id};
use fields::{check_action, check_signer, check_time};

/// Domain-separation prefix of every transaction signature: a transaction signature can
/// never be mistaken for a signature over anything else (a vote, a block, another version).
pub const TX_SIGN_DOMAIN: &[u8] = b"tracechain/tx/v1\0";

/// Largest encoded `SignedTx` (and so body) accepted, in bytes.
pub const MAX_TX_BYTES: usize = 64 * 1024;

/// Longest identifier (shipment, device, member, location, EPC), in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest free-text field (reason, description, device type), in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Most products in one shipment.
pub const MAX_PRODUCTS: usize = 1000;
/// Most devices named in one shipment.
pub const MAX_SHIPMENT_DEVICES: usize = 64;
/// Lowest physically plausible temperature, milli-°C (−100 °C).
pub const MIN_TEMPERATURE_MILLI_C: i32 = -100_000;
/// Highest physically plausible temperature, milli-°C (+150 °C).
pub const MAX_TEMPERATURE_MILLI_C: i32 = 150_000;
/// Largest relative humidity, tenths of a percent.
pub const MAX_HUMIDITY_PERMILLE: u32 = 1000;
/// Latitude bound, degrees × 10^7.
pub const MAX_ABS_LAT_E7: i32 = 900_000_000;
/// Longitude bound, degrees × 10^7.
pub const MAX_ABS_LON_E7: i32 = 1_800_000_000;
/// 2200-01-01T00:00:00Z in unix milliseconds: any time at or after it is a broken clock
/// or a unit mistake (micro- or nanoseconds).
pub const MAX_TIME_MS: i64 = 7_258_118_400_000;

/// A transaction id: `blake3(body)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub [u8; 32]);

impl TxId {
    /// The id of a body: the blake3 hash of its exact bytes.
    pub fn of_body(body: &[u8]) -> Self {
        TxId(*blake3::hash(body).as_bytes())
    }

    /// The 32 id bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for TxId {
    type Err = hex::FromHexError;

    /// Parses 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)?;
        Ok(TxId(bytes))
    }
}

/// Who may sign a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignerKind {
    /// A consortium member's admin key.
    Member,
    /// A registered IoT device.
    Device,
}

impl fmt::Display for SignerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignerKind::Member => "member",
            SignerKind::Device => "device",
        })
    }
}

impl From<SignerKind> for pb::SignerKind {
    fn from(kind: SignerKind) -> Self {
        match kind {
            SignerKind::Member => pb::SignerKind::Member,
            SignerKind::Device => pb::SignerKind::Device,
        }
    }
}

/// The signer named in a body: kind, id, and the key the signature is checked with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerRef {
    /// Member or device.
    pub kind: SignerKind,
    /// Member id or device id.
    pub id: String,
    /// The key's scheme.
    pub scheme: Scheme,
    /// The public key (format already checked).
    pub public_key: Vec<u8>,
}

/// A transaction whose body passed every stateless check and whose signature verified.
#[derive(Clone, Debug)]
pub struct CheckedTx {
    /// `blake3(body)`.
    pub id: TxId,
    /// The envelope exactly as received: what goes into blocks.
    pub signed: pb::SignedTx,
    /// Who signed.
    pub signer: SignerRef,
    /// The signer's sequence number (≥ 1).
    pub sequence: u64,
    /// The signer's clock, unix milliseconds.
    pub time_ms: i64,
    /// What the transaction does.
    pub action: pb::tx_body::Action,
}

/// A transaction that passed [`decode`]'s stateless checks; its signature is not yet
/// checked. Only [`UnverifiedTx::verify`] and [`verify_all`] turn it into a [`CheckedTx`].
#[derive(Clone, Debug)]
pub struct UnverifiedTx {
    id: TxId,
    signed: pb::SignedTx,
    signer: SignerRef,
    sequence: u64,
    time_ms: i64,
    action: pb::tx_body::Action,
}

/// Why a transaction was refused. Shown to API clients, so every message names the
/// field and the limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The envelope or the body is larger than [`MAX_TX_BYTES`].
    #[error("{part} is {size} bytes, the limit is {max}")]
    TooLarge {
        /// `"transaction"` (the encoded envelope) or `"body"`.
        part: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// `SignedTx.body` is empty: nothing was signed.
    #[error("the transaction's body is empty: SignedTx.body must hold the encoded TxBody")]
    EmptyBody,
    /// The body is not a valid protobuf `TxBody`.
    #[error("body is not a valid encoded TxBody: {reason}")]
    Malformed {
        /// The decoder's message.
        reason: String,
    },
    /// The body is for another chain.
    #[error("transaction is for chain {got:?}, this is chain {expected:?}")]
    WrongChain {
        /// This node's chain id.
        expected: String,
        /// The body's chain id.
        got: String,
    },
    /// A required field is absent or empty.
    #[error("missing required field {field}")]
    MissingField {
        /// The field's path, e.g. `signer.id`.
        field: &'static str,
    },
    /// `signer.kind` is unspecified or unknown.
    #[error("signer.kind {value} is not a known signer kind (1 = member, 2 = device)")]
    UnknownSignerKind {
        /// The raw enum value.
        value: i32,
    },
    /// A signature scheme field is unspecified or unknown.
    #[error("{field} {value} is not a known signature scheme (1 = ed25519, 2 = ecdsa-p256-sha256)")]
    UnknownScheme {
        /// The field's path.
        field: &'static str,
        /// The raw enum value.
        value: i32,
    },
    /// A public key of the wrong length or format for its scheme.
    #[error("{field}: {reason}")]
    InvalidPublicKey {
        /// The field's path.
        field: &'static str,
        /// What is wrong, e.g. "ed25519 public key must be 32 bytes, got 33".
        reason: String,
    },
    /// The signature is not 64 bytes.
    #[error("signature must be {expected} bytes, got {got}")]
    SignatureLength {
        /// 64.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// An Ed25519 signature with the shape of an ASN.1 DER `ECDSA-Sig-Value` (what ECDSA
    /// libraries and secure elements emit): the key is Ed25519, the signature ECDSA's.
    #[error(
        "an ed25519 signature must be 64 bytes, got {got}: this looks like a DER-encoded ECDSA signature (is the signer's scheme right?)"
    )]
    DerSignature {
        /// The length received.
        got: usize,
    },
    /// A P-256 signature that is neither 64-byte `r || s` nor strict ASN.1 DER.
    #[error(
        "an ecdsa-p256 signature must be r || s (64 bytes) or strict DER; {got} bytes: {reason}"
    )]
    SignatureEncoding {
        /// The length received.
        got: usize,
        /// What the DER decoder said.
        reason: String,
    },
    /// A field holds a physically impossible or out-of-range value.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's path, e.g. `sensor_report.temperature_milli_c`.
        field: String,
        /// Why, with the allowed range.
        reason: String,
    },
    /// The action must be signed by another kind of signer.
    #[error("{action} must be signed by a {expected} key, not a {got} key")]
    WrongSignerKind {
        /// The action's name.
        action: &'static str,
        /// The kind it requires.
        expected: SignerKind,
        /// The kind that signed.
        got: SignerKind,
    },
    /// The signature does not verify under the key in the body.
    #[error("transaction {id}: bad {scheme} signature by {signer}: {reason}")]
    BadSignature {
        /// The transaction id.
        id: TxId,
        /// The signer id.
        signer: String,
        /// The scheme.
        scheme: Scheme,
        /// Which check failed.
        reason: String,
    },
    /// A P-256 signature with `s > n/2`. It may be a correct signature by the key, but
    /// only its low-S twin `(r, n - s)` is accepted; the signer must normalise.
    #[error(
        "transaction {id}: ecdsa-p256 signature ({encoding}) by {signer} has high S (s > n/2); sign with low-S (replace s by n - s)"
    )]
    HighS {
        /// The transaction id.
        id: TxId,
        /// The signer id.
        signer: String,
        /// How the signature was encoded (`r || s` or DER).
        encoding: crypto::SignatureEncoding,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> TxError {
    TxError::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Whether `sig` is shaped like a DER `SEQUENCE { INTEGER r, INTEGER s }` of P-256 size:
/// tag 0x30, a length that covers the rest, two INTEGERs of at most 33 bytes each.
fn looks_like_der(sig: &[u8]) -> bool {
    let integer = |at: usize| -> Option<usize> {
        let (&tag, &len) = (sig.get(at)?, sig.get(at + 1)?);
        (tag == 0x02 && (1..=33).contains(&len)).then_some(at + 2 + usize::from(len))
    };
    sig.len() >= 8
        && sig[0] == 0x30
        && usize::from(sig[1]) == sig.len() - 2
        && integer(2).and_then(integer) == Some(sig.len())
}

/// The bytes a signer signs: `TX_SIGN_DOMAIN || body`.
pub fn signing_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(TX_SIGN_DOMAIN.len() + body.len());
    msg.extend_from_slice(TX_SIGN_DOMAIN);
    msg.extend_from_slice(body);
    msg
}

/// Decodes an envelope and makes every stateless check except the signature.
pub fn decode(signed: pb::SignedTx, chain_id: &str) -> Result<UnverifiedTx, TxError> {
    // Sizes first: everything after this is bounded by them.
    if signed.body.len() > MAX_TX_BYTES {
        return Err(TxError::TooLarge {
            part: "body",
            size: signed.body.len(),
            max: MAX_TX_BYTES,
        });
    }
    let size = signed.encoded_len();
    if size > MAX_TX_BYTES {
        return Err(TxError::TooLarge {
            part: "transaction",
            size,
            max: MAX_TX_BYTES,
        });
    }
    if signed.body.is_empty() {
        return Err(TxError::EmptyBody);
    }
    let body = pb::TxBody::decode(signed.body.as_slice()).map_err(|e| TxError::Malformed {
        reason: e.to_string(),
    })?;
    if body.chain_id != chain_id {
        return Err(TxError::WrongChain {
            expected: chain_id.to_owned(),
            got: body.chain_id,
        });
    }
    let signer = check_signer(body.signer)?;
    let got = signed.signature.len();
    match signer.scheme {
        // P-256: `r || s` or strict DER, as secure elements emit it.
        Scheme::P256 => {
            if let Err(e) = crypto::p256_fixed(&signed.signature) {
                let reason = match e {
                    CryptoError::NotDer { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Err(TxError::SignatureEncoding { got, reason });
            }
        }
        Scheme::Ed25519 if got != crypto::SIGNATURE_LEN => {
            if looks_like_der(&signed.signature) {
                return Err(TxError::DerSignature { got });
            }
            return Err(TxError::SignatureLength {
                expected: crypto::SIGNATURE_LEN,
                got,
            });
        }
        Scheme::Ed25519 => {}
    }
    if body.sequence == 0 {
        return Err(invalid(
            "sequence",
            "must be at least 1 (sequences start at 1)",
        ));
    }
    check_time("time_ms", body.time_ms)?;
    let action = body
        .action
        .ok_or(TxError::MissingField { field: "action" })?;
    check_action(&action, signer.kind)?;
    Ok(UnverifiedTx {
        id: TxId::of_body(&signed.body),
        signed,
        signer,
        sequence: body.sequence,
        time_ms: body.time_ms,
        action,
    })
}

impl UnverifiedTx {
    /// The transaction id, `blake3(body)`.
    pub fn id(&self) -> TxId {
        self.id
    }

    /// Who claims to have signed it.
    pub fn signer(&self) -> &SignerRef {
        &self.signer
    }

    /// The signer's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The envelope as received.
    pub fn signed(&self) -> &pb::SignedTx {
        &self.signed
    }

    /// Checks the signature over `TX_SIGN_DOMAIN || body` with the scheme and key in
    /// the body.
    pub fn verify(self) -> Result<CheckedTx, TxError> {
        let verdict = crypto::verify(
            self.signer.scheme,
            &self.signer.public_key,
            &signing_message(&self.signed.body),
            &self.signed.signature,
        );
        self.conclude(verdict)
    }

    fn conclude(self, verdict: Result<(), CryptoError>) -> Result<CheckedTx, TxError> {
        match verdict {
            Ok(()) => Ok(CheckedTx {
                id: self.id,
                signed: self.signed,
                signer: self.signer,
                sequence: self.sequence,
                time_ms: self.time_ms,
                action: self.action,
            }),
            Err(CryptoError::HighS { encoding }) => Err(TxError::HighS {
                id: self.id,
                signer: self.signer.id,
                encoding,
            }),
            Err(error) => Err(TxError::BadSignature {
                id: self.id,
                signer: self.signer.id,
                scheme: self.signer.scheme,
                reason: error.to_string(),
            }),
        }
    }
}

/// Verifies many transactions; one result per input, in input order. Ed25519
/// signatures are batch-verified (with verdicts equal to one-by-one strict checks, see
/// `crypto`), P-256 signatures are checked in parallel on the rayon pool.
pub fn verify_all(txs: Vec<UnverifiedTx>) -> Vec<Result<CheckedTx, TxError>> {
    type Indexed = Vec<(usize, UnverifiedTx)>;
    let (ed25519, p256): (Indexed, Indexed) = txs
        .into_iter()
        .enumerate()
        .partition(|(_, tx)| tx.signer.scheme == Scheme::Ed25519);

    let messages: Vec<Vec<u8>> = ed25519
        .iter()
        .map(|(_, tx)| signing_message(&tx.signed.body))
        .collect();
    let items: Vec<Ed25519Item<'_>> = ed25519
        .iter()
        .zip(&messages)
        .map(|((_, tx), msg)| Ed25519Item {
            public_key: &tx.signer.public_key,
            msg,
            signature: &tx.signed.signature,
        })
        .collect();
    let verdicts = crypto::verify_ed25519_all(&items);

    let mut results: Vec<(usize, Result<CheckedTx, TxError>)> = ed25519
        .into_iter()
        .zip(verdicts)
        .map(|((index, tx), verdict)| (index, tx.conclude(verdict)))
        .collect();
    results.par_extend(p256.into_par_iter().map(|(index, tx)| (index, tx.verify())));
    results.sort_unstable_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// [`decode`] then [`UnverifiedTx::verify`].
pub fn check(signed: pb::SignedTx, chain_id: &str) -> Result<CheckedTx, TxError> {
    decode(signed, chain_id)?.verify()
}

/// A transaction read back from this node's own committed blocks: decoded and checked
/// like any other, but its signature is not verified again — it was, before its block
/// was committed. Never for a transaction from anywhere else (a peer, a client, a file,
/// another node's answer): those go through [`check`].
pub fn committed(signed: pb::SignedTx, chain_id: &str) -> Result<CheckedTx, TxError> {
    decode(signed, chain_id)?.conclude(Ok(()))
}

/// Encodes `body` once and signs exactly those bytes. The body's signer should name
/// `key`'s public key; this function does not fill it in, because the body is the
/// caller's.
pub fn sign_body(body: &pb::TxBody, key: &SecretKey) -> pb::SignedTx {
    let body = body.encode_to_vec();
    let signature = key.sign(&signing_message(&body));
    pb::SignedTx { body, signature }
}
