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
    /// The signature has the shape of an ASN.1 DER `ECDSA-Sig-Value` (what many ECDSA
    /// libraries and secure elements emit) instead of the fixed 64-byte `r || s`.
    #[error(
        "signature must be 64 bytes, got {got}: this looks like a DER-encoded ECDSA signature; send r || s, each as 32 big-endian bytes"
    )]
    DerSignature {
        /// The length received.
        got: usize,
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
        "transaction {id}: ecdsa-p256 signature by {signer} has high S (s > n/2); sign with low-S (replace s by n - s)"
    )]
    HighS {
        /// The transaction id.
        id: TxId,
        /// The signer id.
        signer: String,
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
    if signed.signature.len() != crypto::SIGNATURE_LEN {
        if looks_like_der(&signed.signature) {
            return Err(TxError::DerSignature {
                got: signed.signature.len(),
            });
        }
        return Err(TxError::SignatureLength {
            expected: crypto::SIGNATURE_LEN,
            got: signed.signature.len(),
        });
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
            Err(CryptoError::HighS) => Err(TxError::HighS {
                id: self.id,
                signer: self.signer.id,
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

/// Encodes `body` once and signs exactly those bytes. The body's signer should name
/// `key`'s public key; this function does not fill it in, because the body is the
/// caller's.
pub fn sign_body(body: &pb::TxBody, key: &SecretKey) -> pb::SignedTx {
    let body = body.encode_to_vec();
    let signature = key.sign(&signing_message(&body));
    pb::SignedTx { body, signature }
}

fn check_signer(signer: Option<pb::Signer>) -> Result<SignerRef, TxError> {
    let signer = signer.ok_or(TxError::MissingField { field: "signer" })?;
    let kind = match pb::SignerKind::try_from(signer.kind) {
        Ok(pb::SignerKind::Member) => SignerKind::Member,
        Ok(pb::SignerKind::Device) => SignerKind::Device,
        Ok(pb::SignerKind::Unspecified) | Err(_) => {
            return Err(TxError::UnknownSignerKind { value: signer.kind });
        }
    };
    if signer.id.is_empty() {
        return Err(TxError::MissingField { field: "signer.id" });
    }
    check_id("signer.id", &signer.id)?;
    let scheme = check_scheme("signer.scheme", signer.scheme)?;
    crypto::check_public_key_format(scheme, &signer.public_key).map_err(|e| {
        TxError::InvalidPublicKey {
            field: "signer.public_key",
            reason: e.to_string(),
        }
    })?;
    Ok(SignerRef {
        kind,
        id: signer.id,
        scheme,
        public_key: signer.public_key,
    })
}

fn check_scheme(field: &'static str, value: i32) -> Result<Scheme, TxError> {
    Scheme::try_from(value).map_err(|_| TxError::UnknownScheme { field, value })
}

/// An identifier: 1..=256 bytes, no control characters (they break logs, terminals
/// and CSV exports of audit reports, and are never part of an EPC or a member id).
fn check_id(field: &str, value: &str) -> Result<(), TxError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(invalid(
            field,
            format!("is {} bytes, at most {MAX_ID_BYTES} allowed", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An identifier that may be left empty.
fn check_optional_id(field: &str, value: &str) -> Result<(), TxError> {
    if value.is_empty() {
        Ok(())
    } else {
        check_id(field, value)
    }
}

/// Free text: at most 1024 bytes; tab and newline allowed, other control characters not.
fn check_text(field: &str, value: &str) -> Result<(), TxError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(invalid(
            field,
            format!("is {} bytes, at most {MAX_TEXT_BYTES} allowed", value.len()),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_time(field: &str, ms: i64) -> Result<(), TxError> {
    if ms <= 0 {
        return Err(invalid(
            field,
            format!("{ms} is not a time: must be unix milliseconds > 0"),
        ));
    }
    if ms >= MAX_TIME_MS {
        return Err(invalid(
            field,
            format!(
                "{ms} is after the year 2200: must be unix milliseconds (not micro- or nanoseconds)"
            ),
        ));
    }
    Ok(())
}

fn check_temperature(field: &str, milli_c: i32) -> Result<(), TxError> {
    if !(MIN_TEMPERATURE_MILLI_C..=MAX_TEMPERATURE_MILLI_C).contains(&milli_c) {
        return Err(invalid(
            field,
            format!(
                "{milli_c} m°C is outside the physical range {MIN_TEMPERATURE_MILLI_C}..={MAX_TEMPERATURE_MILLI_C} m°C (-100 °C to +150 °C)"
            ),
        ));
    }
    Ok(())
}

fn check_new_key(
    field: &'static str,
    scheme_field: &'static str,
    scheme: i32,
    key: &[u8],
) -> Result<(), TxError> {
    let scheme = check_scheme(scheme_field, scheme)?;
    // A key that gets registered is checked fully (on the curve, not weak, no torsion):
    // registrations are rare, and it keeps odd points away from every later check.
    crypto::validate_public_key(scheme, key).map_err(|e| TxError::InvalidPublicKey {
        field,
        reason: e.to_string(),
    })
}

fn require_signer(
    action: &'static str,
    expected: SignerKind,
    got: SignerKind,
) -> Result<(), TxError> {
    if expected == got {
        Ok(())
    } else {
        Err(TxError::WrongSignerKind {
            action,
            expected,
            got,
        })
    }
}

/// Stateless sanity of one action, and who may sign it: sensor reports come from
/// devices, everything else from members.
fn check_action(action: &pb::tx_body::Action, signer: SignerKind) -> Result<(), TxError> {
    use pb::tx_body::Action;
    match action {
        Action::RegisterDevice(a) => {
            require_signer("register_device", SignerKind::Member, signer)?;
            check_id("register_device.device_id", &a.device_id)?;
            check_new_key(
                "register_device.public_key",
                "register_device.scheme",
                a.scheme,
                &a.public_key,
            )?;
            check_text("register_device.device_type", &a.device_type)
        }
        Action::RotateDeviceKey(a) => {
            require_signer("rotate_device_key", SignerKind::Member, signer)?;
            check_id("rotate_device_key.device_id", &a.device_id)?;
            check_new_key(
                "rotate_device_key.public_key",
                "rotate_device_key.scheme",
                a.scheme,
                &a.public_key,
            )
        }
        Action::RevokeDevice(a) => {
            require_signer("revoke_device", SignerKind::Member, signer)?;
            check_id("revoke_device.device_id", &a.device_id)?;
            check_text("revoke_device.reason", &a.reason)
        }
        Action::CreateShipment(a) => {
            require_signer("create_shipment", SignerKind::Member, signer)?;
            check_create_shipment(a)
        }
        Action::AttachDevice(a) => {
            require_signer("attach_device", SignerKind::Member, signer)?;
            check_id("attach_device.shipment_id", &a.shipment_id)?;
            check_id("attach_device.device_id", &a.device_id)
        }
        Action::Ship(a) => {
            require_signer("ship", SignerKind::Member, signer)?;
            check_id("ship.shipment_id", &a.shipment_id)?;
            check_id("ship.to_custodian", &a.to_custodian)?;
            check_optional_id("ship.new_owner", &a.new_owner)?;
            check_optional_id("ship.location", &a.location)
        }
        Action::Receive(a) => {
            require_signer("receive", SignerKind::Member, signer)?;
            check_id("receive.shipment_id", &a.shipment_id)?;
            check_optional_id("receive.location", &a.location)
        }
        Action::Customs(a) => {
            require_signer("customs", SignerKind::Member, signer)?;
            check_id("customs.shipment_id", &a.shipment_id)?;
            match pb::CustomsOutcome::try_from(a.outcome) {
                Ok(pb::CustomsOutcome::Cleared | pb::CustomsOutcome::Held) => {}
                Ok(pb::CustomsOutcome::Unspecified) | Err(_) => {
                    return Err(invalid(
                        "customs.outcome",
                        format!("{} is not an outcome (1 = cleared, 2 = held)", a.outcome),
                    ));
                }
            }
            check_text("customs.reason", &a.reason)?;
            check_optional_id("customs.location", &a.location)
        }
        Action::SensorReport(a) => {
            require_signer("sensor_report", SignerKind::Device, signer)?;
            check_sensor_report(a)
        }
        Action::RecordEpcisEvent(a) => {
            require_signer("record_epcis_event", SignerKind::Member, signer)?;
            check_epcis_event(a)
        }
    }
}

/// Most identifiers one EPCIS event may name.
pub const MAX_EPCIS_EPCS: usize = 1000;
/// Most sensor readings in one EPCIS event.
pub const MAX_EPCIS_READINGS: usize = 1000;
/// Largest `event_json` (the rest of the 64 KiB body holds the typed fields).
pub const MAX_EPCIS_JSON_BYTES: usize = 32 * 1024;

/// The stateless limits of an imported EPCIS event. The vocabulary checks (CBV, units,
/// required fields per type) are the importer's (`crate::epcis`); here only what keeps
/// the ledger and its indexes sane.
fn check_epcis_event(a: &pb::RecordEpcisEvent) -> Result<(), TxError> {
    let event_type = pb::EpcisEventType::try_from(a.event_type)
        .ok()
        .filter(|t| *t != pb::EpcisEventType::Unspecified)
        .ok_or_else(|| {
            invalid(
                "record_epcis_event.event_type",
                format!("{} is not an EPCIS event type", a.event_type),
            )
        })?;
    check_optional_id("record_epcis_event.event_id", &a.event_id)?;
    check_time("record_epcis_event.event_time_ms", a.event_time_ms)?;
    if a.event_time_zone_offset_minutes.abs() > 14 * 60 {
        return Err(invalid(
            "record_epcis_event.event_time_zone_offset_minutes",
            format!("{} is beyond ±14:00", a.event_time_zone_offset_minutes),
        ));
    }
    match (a.action.as_str(), event_type) {
        ("", pb::EpcisEventType::Transformation) | ("ADD" | "OBSERVE" | "DELETE", _) => {}
        (other, _) => {
            return Err(invalid(
                "record_epcis_event.action",
                format!("{other:?} is not ADD, OBSERVE or DELETE"),
            ));
        }
    }
    for (field, value) in [
        ("record_epcis_event.biz_step", &a.biz_step),
        ("record_epcis_event.disposition", &a.disposition),
        ("record_epcis_event.read_point", &a.read_point),
        ("record_epcis_event.biz_location", &a.biz_location),
    ] {
        check_optional_id(field, value)?;
    }
    if a.epcs.len() > MAX_EPCIS_EPCS {
        return Err(invalid(
            "record_epcis_event.epcs",
            format!(
                "{} identifiers, at most {MAX_EPCIS_EPCS} allowed",
                a.epcs.len()
            ),
        ));
    }
    for epc in &a.epcs {
        check_id("record_epcis_event.epcs", epc)?;
    }
    if a.sensor_readings.len() > MAX_EPCIS_READINGS {
        return Err(invalid(
            "record_epcis_event.sensor_readings",
            format!(
                "{} readings, at most {MAX_EPCIS_READINGS} allowed",
                a.sensor_readings.len()
            ),
        ));
    }
    for r in &a.sensor_readings {
        check_text("record_epcis_event.sensor_readings.type", &r.r#type)?;
        check_optional_id("record_epcis_event.sensor_readings.uom", &r.uom)?;
        check_optional_id("record_epcis_event.sensor_readings.device_id", &r.device_id)?;
        check_text("record_epcis_event.sensor_readings.exception", &r.exception)?;
        if r.time_ms != 0 {
            check_time("record_epcis_event.sensor_readings.time_ms", r.time_ms)?;
        }
    }
    if a.event_json.is_empty() || a.event_json.len() > MAX_EPCIS_JSON_BYTES {
        return Err(invalid(
            "record_epcis_event.event_json",
            format!(
                "is {} bytes; 1..={MAX_EPCIS_JSON_BYTES} allowed",
                a.event_json.len()
            ),
        ));
    }
    Ok(())
}

fn check_create_shipment(a: &pb::CreateShipment) -> Result<(), TxError> {
    check_id("create_shipment.shipment_id", &a.shipment_id)?;
    check_optional_id("create_shipment.owner", &a.owner)?;
    check_optional_id("create_shipment.origin_location", &a.origin_location)?;
    if a.products.len() > MAX_PRODUCTS {
        return Err(invalid(
            "create_shipment.products",
            format!(
                "{} products, at most {MAX_PRODUCTS} allowed",
                a.products.len()
            ),
        ));
    }
    for (i, product) in a.products.iter().enumerate() {
        check_id(&format!("create_shipment.products[{i}].epc"), &product.epc)?;
        check_text(
            &format!("create_shipment.products[{i}].description"),
            &product.description,
        )?;
        check_optional_id(&format!("create_shipment.products[{i}].uom"), &product.uom)?;
        if product.quantity == 0 {
            return Err(invalid(
                format!("create_shipment.products[{i}].quantity"),
                "must be greater than 0",
            ));
        }
    }
    if a.device_ids.len() > MAX_SHIPMENT_DEVICES {
        return Err(invalid(
            "create_shipment.device_ids",
            format!(
                "{} devices, at most {MAX_SHIPMENT_DEVICES} allowed",
                a.device_ids.len()
            ),
        ));
    }
    for (i, device) in a.device_ids.iter().enumerate() {
        let field = format!("create_shipment.device_ids[{i}]");
        check_id(&field, device)?;
        // Quadratic, but bounded by 64 entries.
        if a.device_ids[..i].contains(device) {
            return Err(invalid(field, format!("device {device:?} is listed twice")));
        }
    }
    if let Some(policy) = &a.policy {
        check_policy(policy)?;
    }
    Ok(())
}

fn check_policy(p: &pb::ColdChainPolicy) -> Result<(), TxError> {
    check_temperature("create_shipment.policy.min_milli_c", p.min_milli_c)?;
    check_temperature("create_shipment.policy.max_milli_c", p.max_milli_c)?;
    if p.min_milli_c > p.max_milli_c {
        return Err(invalid(
            "create_shipment.policy",
            format!(
                "min_milli_c {} is above max_milli_c {}",
                p.min_milli_c, p.max_milli_c
            ),
        ));
    }
    if let Some(mkt) = p.mkt_limit_milli_c {
        check_temperature("create_shipment.policy.mkt_limit_milli_c", mkt)?;
    }
    if let Some(hard_min) = p.hard_min_milli_c {
        check_temperature("create_shipment.policy.hard_min_milli_c", hard_min)?;
        if hard_min > p.min_milli_c {
            return Err(invalid(
                "create_shipment.policy.hard_min_milli_c",
                format!(
                    "{hard_min} is above min_milli_c {}: a hard limit lies outside the allowed range",
                    p.min_milli_c
                ),
            ));
        }
    }
    if let Some(hard_max) = p.hard_max_milli_c {
        check_temperature("create_shipment.policy.hard_max_milli_c", hard_max)?;
        if hard_max < p.max_milli_c {
            return Err(invalid(
                "create_shipment.policy.hard_max_milli_c",
                format!(
                    "{hard_max} is below max_milli_c {}: a hard limit lies outside the allowed range",
                    p.max_milli_c
                ),
            ));
        }
    }
    Ok(())
}

fn check_sensor_report(a: &pb::SensorReport) -> Result<(), TxError> {
    check_id("sensor_report.shipment_id", &a.shipment_id)?;
    check_time("sensor_report.observed_at_ms", a.observed_at_ms)?;
    check_temperature("sensor_report.temperature_milli_c", a.temperature_milli_c)?;
    if let Some(humidity) = a.humidity_permille
        && humidity > MAX_HUMIDITY_PERMILLE
    {
        return Err(invalid(
            "sensor_report.humidity_permille",
            format!("{humidity} is above {MAX_HUMIDITY_PERMILLE} (100.0 %)"),
        ));
    }
    if let Some(location) = &a.location {
        if !(-MAX_ABS_LAT_E7..=MAX_ABS_LAT_E7).contains(&location.lat_e7) {
            return Err(invalid(
                "sensor_report.location.lat_e7",
                format!("{} is outside ±{MAX_ABS_LAT_E7} (±90°)", location.lat_e7),
            ));
        }
        if !(-MAX_ABS_LON_E7..=MAX_ABS_LON_E7).contains(&location.lon_e7) {
            return Err(invalid(
                "sensor_report.location.lon_e7",
                format!("{} is outside ±{MAX_ABS_LON_E7} (±180°)", location.lon_e7),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::tx_body::Action;

    const CHAIN: &str = "tracechain-test";
    const T: i64 = 1_763_700_000_000; // November 2025

    fn signer(kind: SignerKind, id: &str, key: &SecretKey) -> pb::Signer {
        pb::Signer {
            kind: pb::SignerKind::from(kind) as i32,
            id: id.to_owned(),
            scheme: pb::SignatureScheme::from(key.scheme()) as i32,
            public_key: key.public_key(),
        }
    }

    fn reading() -> pb::SensorReport {
        pb::SensorReport {
            shipment_id: "urn:epc:id:sscc:0614141.1234567890".into(),
            observed_at_ms: T,
            temperature_milli_c: 4_250,
            humidity_permille: Some(650),
            location: Some(pb::GeoPoint {
                lat_e7: 525_200_000,
                lon_e7: 134_050_000,
            }),
        }
    }

    fn body(kind: SignerKind, key: &SecretKey, action: Action) -> pb::TxBody {
        pb::TxBody {
            chain_id: CHAIN.into(),
            signer: Some(signer(kind, "urn:epc:id:giai:4000001.111", key)),
            sequence: 7,
            time_ms: T,
            action: Some(action),
        }
    }

    fn device_body(key: &SecretKey) -> pb::TxBody {
        body(SignerKind::Device, key, Action::SensorReport(reading()))
    }

    fn policy() -> pb::ColdChainPolicy {
        pb::ColdChainPolicy {
            min_milli_c: 2_000,
            max_milli_c: 8_000,
            excursion_budget_minutes: 60,
            max_reading_gap_minutes: 30,
            mkt_limit_milli_c: Some(6_000),
            hard_min_milli_c: Some(0),
            hard_max_milli_c: Some(12_000),
        }
    }

    fn shipment() -> pb::CreateShipment {
        pb::CreateShipment {
            shipment_id: "urn:epc:id:sscc:0614141.1234567890".into(),
            products: vec![pb::Product {
                epc: "urn:epc:class:lgtin:4012345.012345.998877".into(),
                description: "strawberries".into(),
                quantity: 120,
                uom: "KGM".into(),
            }],
            owner: String::new(),
            policy: Some(policy()),
            origin_location: "urn:epc:id:sgln:4012345.00001.0".into(),
            device_ids: vec!["urn:epc:id:giai:4000001.111".into()],
        }
    }

    fn ed() -> SecretKey {
        SecretKey::from_bytes(Scheme::Ed25519, &[11u8; 32]).expect("key")
    }

    fn p256() -> SecretKey {
        SecretKey::from_bytes(Scheme::P256, &[12u8; 32]).expect("key")
    }

    /// Signs `body` with `key` and decodes it; returns the decode error.
    fn decode_err(body: &pb::TxBody, key: &SecretKey) -> TxError {
        match decode(sign_body(body, key), CHAIN) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    fn field_of(e: &TxError) -> &str {
        match e {
            TxError::InvalidField { field, .. } => field,
            other => panic!("expected InvalidField, got {other:?}"),
        }
    }

    fn member_err(action: Action) -> TxError {
        decode_err(&body(SignerKind::Member, &ed(), action), &ed())
    }

    #[test]
    fn valid_transactions_check_for_both_schemes() {
        for key in [ed(), p256()] {
            let b = device_body(&key);
            let signed = sign_body(&b, &key);
            let id = TxId::of_body(&signed.body);
            let tx = check(signed.clone(), CHAIN).expect("valid");
            assert_eq!(tx.id, id);
            assert_eq!(tx.signed, signed);
            assert_eq!(tx.sequence, 7);
            assert_eq!(tx.time_ms, T);
            assert_eq!(tx.signer.kind, SignerKind::Device);
            assert_eq!(tx.signer.scheme, key.scheme());
            assert_eq!(tx.signer.public_key, key.public_key());
            assert_eq!(tx.action, Action::SensorReport(reading()));
        }
        let b = body(
            SignerKind::Member,
            &ed(),
            Action::CreateShipment(shipment()),
        );
        check(sign_body(&b, &ed()), CHAIN).expect("valid shipment");
    }

    #[test]
    fn id_is_blake3_of_exact_body_bytes() {
        let key = ed();
        let signed = sign_body(&device_body(&key), &key);
        let tx = decode(signed.clone(), CHAIN).expect("decode");
        assert_eq!(tx.id().0, *blake3::hash(&signed.body).as_bytes());
    }

    #[test]
    fn signature_covers_exact_bytes_not_reencoding() {
        // Append an unknown field (number 99, varint 1): prost skips it, so the decoded
        // body is the same, but the bytes differ: the signature must not carry over, and
        // the id must change.
        let key = ed();
        let mut signed = sign_body(&device_body(&key), &key);
        let original_id = TxId::of_body(&signed.body);
        signed.body.extend_from_slice(&[0x98, 0x06, 0x01]);
        let tx = decode(signed, CHAIN).expect("unknown fields decode");
        assert_ne!(tx.id(), original_id);
        assert!(matches!(tx.verify(), Err(TxError::BadSignature { .. })));
    }

    #[test]
    fn tx_id_hex_roundtrip() {
        let id = TxId::of_body(b"x");
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(format!("{id:?}"), text);
        assert_eq!(text.parse::<TxId>().ok(), Some(id));
        assert_eq!(text.to_uppercase().parse::<TxId>().ok(), Some(id));
        assert!("abc".parse::<TxId>().is_err());
        assert!("zz".repeat(32).parse::<TxId>().is_err());
    }

    #[test]
    fn malformed_protobuf() {
        let signed = pb::SignedTx {
            body: vec![0xff, 0xff, 0xff],
            signature: vec![0; 64],
        };
        assert!(matches!(
            decode(signed, CHAIN),
            Err(TxError::Malformed { .. })
        ));
        // Invalid UTF-8 in a string field is malformed too.
        let signed = pb::SignedTx {
            body: vec![0x0a, 0x02, 0xc3, 0x28],
            signature: vec![0; 64],
        };
        assert!(matches!(
            decode(signed, CHAIN),
            Err(TxError::Malformed { .. })
        ));
    }

    #[test]
    fn wrong_chain() {
        let key = ed();
        let err = match decode(sign_body(&device_body(&key), &key), "other-chain") {
            Err(e) => e,
            Ok(_) => panic!("wrong chain accepted"),
        };
        assert_eq!(
            err,
            TxError::WrongChain {
                expected: "other-chain".into(),
                got: CHAIN.into()
            }
        );
        assert!(err.to_string().contains("other-chain"));
    }

    #[test]
    fn oversized() {
        let key = ed();
        let mut b = device_body(&key);
        b.chain_id = "x".repeat(MAX_TX_BYTES);
        let err = decode_err(&b, &key);
        assert!(matches!(
            err,
            TxError::TooLarge {
                part: "body",
                max: MAX_TX_BYTES,
                ..
            }
        ));
        // Body within the limit, envelope over it.
        let signed = pb::SignedTx {
            body: vec![0; MAX_TX_BYTES],
            signature: vec![0; 64],
        };
        assert!(matches!(
            decode(signed, CHAIN),
            Err(TxError::TooLarge {
                part: "transaction",
                ..
            })
        ));
    }

    #[test]
    fn bad_signature() {
        for key in [ed(), p256()] {
            let mut signed = sign_body(&device_body(&key), &key);
            signed.signature[5] ^= 1;
            let err = check(signed, CHAIN).expect_err("bad signature");
            assert!(
                matches!(err, TxError::BadSignature { scheme, .. } if scheme == key.scheme()),
                "{err:?}"
            );
        }
        // Signed by another key than the one in the body.
        let key = ed();
        let signed = sign_body(
            &device_body(&key),
            &SecretKey::from_bytes(Scheme::Ed25519, &[13u8; 32]).expect("key"),
        );
        assert!(matches!(
            check(signed, CHAIN),
            Err(TxError::BadSignature { .. })
        ));
        // Signed without the domain prefix.
        let body = device_body(&key).encode_to_vec();
        let signature = key.sign(&body);
        assert!(matches!(
            check(pb::SignedTx { body, signature }, CHAIN),
            Err(TxError::BadSignature { .. })
        ));
    }

    #[test]
    fn high_s_p256_is_its_own_error() {
        let key = p256();
        let mut signed = sign_body(&device_body(&key), &key);
        let twin = crate::crypto::tests_support::p256_negate_s(&signed.signature[32..]);
        signed.signature[32..].copy_from_slice(&twin);
        let err = check(signed, CHAIN).expect_err("high S");
        assert!(matches!(err, TxError::HighS { .. }), "{err:?}");
        assert!(err.to_string().contains("high S"));
    }

    #[test]
    fn signature_length() {
        let key = ed();
        let mut signed = sign_body(&device_body(&key), &key);
        signed.signature.pop();
        assert_eq!(
            decode(signed, CHAIN).expect_err("short"),
            TxError::SignatureLength {
                expected: 64,
                got: 63
            }
        );
    }

    #[test]
    fn a_der_signature_is_named_as_such() {
        let key = p256();
        let signed = sign_body(&device_body(&key), &key);
        let der = p256::ecdsa::Signature::from_slice(&signed.signature)
            .expect("r || s")
            .to_der();
        let der = der.as_bytes().to_vec();
        let got = der.len();
        let message = decode(
            pb::SignedTx {
                signature: der,
                ..signed
            },
            CHAIN,
        )
        .expect_err("DER is not r || s");
        assert_eq!(message, TxError::DerSignature { got });
        assert!(message.to_string().contains("DER"), "{message}");
    }

    #[test]
    fn an_empty_body_is_named_as_such() {
        let empty = pb::SignedTx {
            body: Vec::new(),
            signature: vec![0; 64],
        };
        assert_eq!(decode(empty, CHAIN).expect_err("empty"), TxError::EmptyBody);
        assert_eq!(
            decode(pb::SignedTx::default(), CHAIN).expect_err("empty"),
            TxError::EmptyBody
        );
    }

    #[test]
    fn signer_checks() {
        let key = ed();
        let mut b = device_body(&key);
        b.signer = None;
        assert_eq!(
            decode_err(&b, &key),
            TxError::MissingField { field: "signer" }
        );

        let mut b = device_body(&key);
        if let Some(s) = b.signer.as_mut() {
            s.id.clear();
        }
        assert_eq!(
            decode_err(&b, &key),
            TxError::MissingField { field: "signer.id" }
        );

        let mut b = device_body(&key);
        if let Some(s) = b.signer.as_mut() {
            s.kind = 0;
        }
        assert_eq!(
            decode_err(&b, &key),
            TxError::UnknownSignerKind { value: 0 }
        );

        for value in [0, 3, -1] {
            let mut b = device_body(&key);
            if let Some(s) = b.signer.as_mut() {
                s.scheme = value;
            }
            assert_eq!(
                decode_err(&b, &key),
                TxError::UnknownScheme {
                    field: "signer.scheme",
                    value
                }
            );
        }
    }

    #[test]
    fn wrong_key_length() {
        let key = ed();
        let mut b = device_body(&key);
        if let Some(s) = b.signer.as_mut() {
            s.public_key.push(0);
        }
        let err = decode_err(&b, &key);
        assert!(
            matches!(
                err,
                TxError::InvalidPublicKey {
                    field: "signer.public_key",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("32 bytes, got 33"));

        // A P-256 key must be the 65-byte uncompressed form.
        let key = p256();
        let mut b = device_body(&key);
        if let Some(s) = b.signer.as_mut() {
            s.public_key.truncate(33);
            s.public_key[0] = 0x02;
        }
        assert!(matches!(
            decode_err(&b, &key),
            TxError::InvalidPublicKey { .. }
        ));
        let mut b = device_body(&key);
        if let Some(s) = b.signer.as_mut() {
            s.public_key[0] = 0x03;
        }
        assert!(matches!(
            decode_err(&b, &key),
            TxError::InvalidPublicKey { .. }
        ));
        // Ed25519 key in a body that says P-256.
        let mut b = device_body(&ed());
        if let Some(s) = b.signer.as_mut() {
            s.scheme = pb::SignatureScheme::EcdsaP256Sha256 as i32;
        }
        assert!(matches!(
            decode_err(&b, &ed()),
            TxError::InvalidPublicKey { .. }
        ));
    }

    #[test]
    fn missing_action_and_sequence_and_time() {
        let key = ed();
        let mut b = device_body(&key);
        b.action = None;
        assert_eq!(
            decode_err(&b, &key),
            TxError::MissingField { field: "action" }
        );

        let mut b = device_body(&key);
        b.sequence = 0;
        assert_eq!(field_of(&decode_err(&b, &key)), "sequence");

        for t in [0, -5, MAX_TIME_MS, i64::MAX] {
            let mut b = device_body(&key);
            b.time_ms = t;
            assert_eq!(field_of(&decode_err(&b, &key)), "time_ms", "time {t}");
        }
        let mut b = device_body(&key);
        b.time_ms = MAX_TIME_MS - 1;
        decode(sign_body(&b, &key), CHAIN).expect("just before 2200 is fine");
    }

    #[test]
    fn wrong_signer_kind() {
        // A member cannot sign a sensor report...
        let key = ed();
        let b = body(SignerKind::Member, &key, Action::SensorReport(reading()));
        assert_eq!(
            decode_err(&b, &key),
            TxError::WrongSignerKind {
                action: "sensor_report",
                expected: SignerKind::Device,
                got: SignerKind::Member
            }
        );
        // ...and a device cannot create shipments or register devices.
        let b = body(SignerKind::Device, &key, Action::CreateShipment(shipment()));
        assert!(matches!(
            decode_err(&b, &key),
            TxError::WrongSignerKind {
                action: "create_shipment",
                expected: SignerKind::Member,
                ..
            }
        ));
        let b = body(
            SignerKind::Device,
            &key,
            Action::RevokeDevice(pb::RevokeDevice {
                device_id: "d".into(),
                reason: String::new(),
            }),
        );
        assert!(matches!(
            decode_err(&b, &key),
            TxError::WrongSignerKind { .. }
        ));
    }

    fn report_err(edit: impl FnOnce(&mut pb::SensorReport)) -> String {
        let key = ed();
        let mut r = reading();
        edit(&mut r);
        let b = body(SignerKind::Device, &key, Action::SensorReport(r));
        field_of(&decode_err(&b, &key)).to_owned()
    }

    #[test]
    fn impossible_sensor_values() {
        assert_eq!(
            report_err(|r| r.temperature_milli_c = -100_001),
            "sensor_report.temperature_milli_c"
        );
        assert_eq!(
            report_err(|r| r.temperature_milli_c = 150_001),
            "sensor_report.temperature_milli_c"
        );
        assert_eq!(
            report_err(|r| r.temperature_milli_c = i32::MIN),
            "sensor_report.temperature_milli_c"
        );
        assert_eq!(
            report_err(|r| r.humidity_permille = Some(1001)),
            "sensor_report.humidity_permille"
        );
        assert_eq!(
            report_err(|r| r.location = Some(pb::GeoPoint {
                lat_e7: 900_000_001,
                lon_e7: 0
            })),
            "sensor_report.location.lat_e7"
        );
        assert_eq!(
            report_err(|r| r.location = Some(pb::GeoPoint {
                lat_e7: -900_000_001,
                lon_e7: 0
            })),
            "sensor_report.location.lat_e7"
        );
        assert_eq!(
            report_err(|r| r.location = Some(pb::GeoPoint {
                lat_e7: 0,
                lon_e7: 1_800_000_001
            })),
            "sensor_report.location.lon_e7"
        );
        assert_eq!(
            report_err(|r| r.observed_at_ms = 0),
            "sensor_report.observed_at_ms"
        );
        // Microseconds instead of milliseconds lands after 2200.
        assert_eq!(
            report_err(|r| r.observed_at_ms = T * 1000),
            "sensor_report.observed_at_ms"
        );
        assert_eq!(
            report_err(|r| r.shipment_id.clear()),
            "sensor_report.shipment_id"
        );
        assert_eq!(
            report_err(|r| r.shipment_id = "x".repeat(257)),
            "sensor_report.shipment_id"
        );
        assert_eq!(
            report_err(|r| r.shipment_id = "a\nb".into()),
            "sensor_report.shipment_id"
        );
        assert_eq!(
            report_err(|r| r.shipment_id = "a\u{7f}b".into()),
            "sensor_report.shipment_id"
        );
    }

    #[test]
    fn sensor_boundaries_accepted() {
        let key = p256();
        for (t, h, lat, lon) in [
            (-100_000, 0, -900_000_000, -1_800_000_000),
            (150_000, 1000, 900_000_000, 1_800_000_000),
        ] {
            let r = pb::SensorReport {
                temperature_milli_c: t,
                humidity_permille: Some(h),
                location: Some(pb::GeoPoint {
                    lat_e7: lat,
                    lon_e7: lon,
                }),
                shipment_id: "x".repeat(256),
                ..reading()
            };
            let b = body(SignerKind::Device, &key, Action::SensorReport(r));
            check(sign_body(&b, &key), CHAIN).expect("boundary values are valid");
        }
    }

    fn shipment_err(edit: impl FnOnce(&mut pb::CreateShipment)) -> String {
        let mut s = shipment();
        edit(&mut s);
        field_of(&member_err(Action::CreateShipment(s))).to_owned()
    }

    fn policy_err(edit: impl FnOnce(&mut pb::ColdChainPolicy)) -> String {
        shipment_err(|s| {
            let mut p = policy();
            edit(&mut p);
            s.policy = Some(p);
        })
    }

    #[test]
    fn impossible_policies() {
        assert_eq!(
            policy_err(|p| {
                p.min_milli_c = 9_000;
                p.max_milli_c = 8_000;
            }),
            "create_shipment.policy"
        );
        assert_eq!(
            policy_err(|p| p.min_milli_c = -200_000),
            "create_shipment.policy.min_milli_c"
        );
        assert_eq!(
            policy_err(|p| p.max_milli_c = 200_000),
            "create_shipment.policy.max_milli_c"
        );
        assert_eq!(
            policy_err(|p| p.hard_min_milli_c = Some(3_000)),
            "create_shipment.policy.hard_min_milli_c"
        );
        assert_eq!(
            policy_err(|p| p.hard_max_milli_c = Some(7_000)),
            "create_shipment.policy.hard_max_milli_c"
        );
        assert_eq!(
            policy_err(|p| p.hard_min_milli_c = Some(-100_001)),
            "create_shipment.policy.hard_min_milli_c"
        );
        assert_eq!(
            policy_err(|p| p.hard_max_milli_c = Some(150_001)),
            "create_shipment.policy.hard_max_milli_c"
        );
        assert_eq!(
            policy_err(|p| p.mkt_limit_milli_c = Some(150_001)),
            "create_shipment.policy.mkt_limit_milli_c"
        );
    }

    /// A product small enough that 1001 of them fit in MAX_TX_BYTES.
    fn tiny_product() -> pb::Product {
        pb::Product {
            epc: "e".into(),
            description: String::new(),
            quantity: 1,
            uom: String::new(),
        }
    }

    #[test]
    fn impossible_shipments() {
        assert_eq!(
            shipment_err(|s| s.products[0].quantity = 0),
            "create_shipment.products[0].quantity"
        );
        assert_eq!(
            shipment_err(|s| s.products = vec![tiny_product(); MAX_PRODUCTS + 1]),
            "create_shipment.products"
        );
        assert_eq!(
            shipment_err(|s| s.device_ids = (0..65).map(|i| format!("d{i}")).collect()),
            "create_shipment.device_ids"
        );
        assert_eq!(
            shipment_err(|s| s.device_ids = vec!["d1".into(), "d1".into()]),
            "create_shipment.device_ids[1]"
        );
        assert_eq!(
            shipment_err(|s| s.shipment_id.clear()),
            "create_shipment.shipment_id"
        );
        assert_eq!(
            shipment_err(|s| s.products[0].epc.clear()),
            "create_shipment.products[0].epc"
        );
        assert_eq!(
            shipment_err(|s| s.owner = "o\u{0}".into()),
            "create_shipment.owner"
        );
        // Limits themselves are fine.
        let mut s = shipment();
        s.device_ids = (0..64).map(|i| format!("d{i}")).collect();
        s.products = vec![tiny_product(); MAX_PRODUCTS];
        s.policy = None;
        let b = body(SignerKind::Member, &ed(), Action::CreateShipment(s));
        decode(sign_body(&b, &ed()), CHAIN).expect("limits are inclusive");
    }

    #[test]
    fn device_key_actions() {
        let member = ed();
        let register = |scheme: i32, public_key: Vec<u8>| {
            Action::RegisterDevice(pb::RegisterDevice {
                device_id: "urn:epc:id:giai:4000001.111".into(),
                scheme,
                public_key,
                device_type: "temperature_logger".into(),
            })
        };
        let ed_scheme = pb::SignatureScheme::Ed25519 as i32;
        let p_scheme = pb::SignatureScheme::EcdsaP256Sha256 as i32;
        // Valid registrations for both schemes.
        for device in [ed(), p256()] {
            let scheme = pb::SignatureScheme::from(device.scheme()) as i32;
            let b = body(
                SignerKind::Member,
                &member,
                register(scheme, device.public_key()),
            );
            check(sign_body(&b, &member), CHAIN).expect("valid registration");
        }
        // Key length must match the scheme.
        assert!(matches!(
            member_err(register(ed_scheme, p256().public_key())),
            TxError::InvalidPublicKey {
                field: "register_device.public_key",
                ..
            }
        ));
        assert!(matches!(
            member_err(register(p_scheme, ed().public_key())),
            TxError::InvalidPublicKey {
                field: "register_device.public_key",
                ..
            }
        ));
        assert_eq!(
            member_err(register(0, ed().public_key())),
            TxError::UnknownScheme {
                field: "register_device.scheme",
                value: 0
            }
        );
        // A weak key cannot be registered.
        let mut identity = vec![0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            member_err(register(ed_scheme, identity)),
            TxError::InvalidPublicKey { .. }
        ));
        // Nor can a P-256 "key" that is not on the curve.
        let mut off_curve = p256().public_key();
        off_curve[64] ^= 1;
        assert!(matches!(
            member_err(register(p_scheme, off_curve)),
            TxError::InvalidPublicKey { .. }
        ));
        // Rotation is checked the same way.
        let rotate = Action::RotateDeviceKey(pb::RotateDeviceKey {
            device_id: "d".into(),
            scheme: p_scheme,
            public_key: vec![4u8; 64],
        });
        assert!(matches!(
            member_err(rotate),
            TxError::InvalidPublicKey {
                field: "rotate_device_key.public_key",
                ..
            }
        ));
        let revoke = Action::RevokeDevice(pb::RevokeDevice {
            device_id: "d".into(),
            reason: "x".repeat(MAX_TEXT_BYTES + 1),
        });
        assert_eq!(field_of(&member_err(revoke)), "revoke_device.reason");
    }

    #[test]
    fn customs_and_custody_actions() {
        let customs = |outcome: i32| {
            Action::Customs(pb::CustomsDecision {
                shipment_id: "s".into(),
                outcome,
                reason: "papers in order".into(),
                location: String::new(),
            })
        };
        assert_eq!(field_of(&member_err(customs(0))), "customs.outcome");
        assert_eq!(field_of(&member_err(customs(7))), "customs.outcome");
        let b = body(
            SignerKind::Member,
            &ed(),
            customs(pb::CustomsOutcome::Held as i32),
        );
        check(sign_body(&b, &ed()), CHAIN).expect("valid customs decision");

        let ship = Action::Ship(pb::ShipShipment {
            shipment_id: "s".into(),
            to_custodian: String::new(),
            new_owner: String::new(),
            location: String::new(),
        });
        assert_eq!(field_of(&member_err(ship)), "ship.to_custodian");
        let receive = Action::Receive(pb::ReceiveShipment {
            shipment_id: String::new(),
            location: String::new(),
            final_delivery: false,
        });
        assert_eq!(field_of(&member_err(receive)), "receive.shipment_id");
        let attach = Action::AttachDevice(pb::AttachDevice {
            shipment_id: "s".into(),
            device_id: "x".repeat(300),
        });
        assert_eq!(field_of(&member_err(attach)), "attach_device.device_id");
    }

    #[test]
    fn verify_all_preserves_order_and_isolates_failures() {
        let keys: Vec<SecretKey> = (0..10u8)
            .map(|i| {
                let scheme = if i % 3 == 0 {
                    Scheme::P256
                } else {
                    Scheme::Ed25519
                };
                SecretKey::from_bytes(scheme, &[i + 1; 32]).expect("key")
            })
            .collect();
        let mut txs = Vec::new();
        let mut bad = Vec::new();
        for i in 0..200usize {
            let key = &keys[i % keys.len()];
            let mut b = device_body(key);
            b.sequence = i as u64 + 1;
            let mut signed = sign_body(&b, key);
            if i == 100 || i == 33 || i == 150 {
                signed.signature[10] ^= 1;
                bad.push(i);
            }
            txs.push(decode(signed, CHAIN).expect("decode"));
        }
        let ids: Vec<TxId> = txs.iter().map(UnverifiedTx::id).collect();
        let results = verify_all(txs);
        assert_eq!(results.len(), 200);
        for (i, r) in results.iter().enumerate() {
            if bad.contains(&i) {
                match r {
                    Err(TxError::BadSignature { id, .. }) => assert_eq!(*id, ids[i]),
                    other => panic!("tx {i}: expected BadSignature, got {other:?}"),
                }
            } else {
                let tx = r.as_ref().expect("valid");
                assert_eq!(tx.id, ids[i], "order preserved");
                assert_eq!(tx.sequence, i as u64 + 1);
            }
        }
        assert!(verify_all(Vec::new()).is_empty());
    }

    #[test]
    fn errors_read_well() {
        let e = TxError::InvalidField {
            field: "sensor_report.temperature_milli_c".into(),
            reason: "x".into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid sensor_report.temperature_milli_c: x"
        );
        let e = TxError::WrongSignerKind {
            action: "sensor_report",
            expected: SignerKind::Device,
            got: SignerKind::Member,
        };
        assert_eq!(
            e.to_string(),
            "sensor_report must be signed by a device key, not a member key"
        );
    }
}
