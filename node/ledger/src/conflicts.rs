//! Device clones: proof that one device key signed two readings no single honest device
//! signs, and what the ledger does with it.
//!
//! A device's sequence is a monotonic counter and its clock runs forward, so two
//! transactions signed with one device key are a conflict when they carry
//! - the **same sequence with different bodies** (two devices hold the key, or the key
//!   signed outside the device), or
//! - a **higher sequence with an older reading** than a lower sequence (sensor reports:
//!   the reading time; otherwise the body's clock).
//!
//! The ledger refuses the second of such a pair when it arrives (`SEQUENCE_REPLAYED`,
//! `BAD_TIMESTAMP`), but a refusal changes no state, so nothing would mark the device.
//! [`check`] turns the pair into proof: both signatures verify, one signer, one key, and
//! the conflict is in the signed bytes, so any member may report it
//! (`ReportDeviceConflict`) and every replica reaches the same answer without trusting
//! the reporter. Under [`DeviceConflictRule::Flagged`](crate::genesis::DeviceConflictRule)
//! the rules then record the conflict on the device (`DeviceRecord.conflicts`) and refuse
//! anything the key signs afterwards (`DEVICE_KEY_COMPROMISED`) until the owner rotates
//! it. Verdicts that rest on the device's readings name the flag ([`flags`]).

use std::cmp::Ordering;

use prost::Message as _;
use tracechain_proto::v1::{self as pb, tx_body::Action};

use crate::tx::{self, CheckedTx, SignerKind, TxId};

/// One side of a proven conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The transaction's id.
    pub id: TxId,
    /// Its sequence.
    pub sequence: u64,
    /// The reading's time (a sensor report's), else the body's clock, unix ms.
    pub time_ms: i64,
}

/// A checked proof: two transactions one device key signed that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// Same sequence or clock reversed.
    pub kind: pb::DeviceConflictKind,
    /// The device both name.
    pub device_id: String,
    /// The key that signed both.
    pub scheme: pb::SignatureScheme,
    /// Its public key bytes.
    pub public_key: Vec<u8>,
    /// The lower sequence (for one sequence: the lower id).
    pub first: Side,
    /// The other one.
    pub second: Side,
}

impl Proof {
    /// The conflict as recorded on the device.
    pub fn record(&self, height: u64, reported_by: &str) -> pb::DeviceConflict {
        pb::DeviceConflict {
            kind: self.kind as i32,
            height,
            reported_by: reported_by.to_string(),
            scheme: self.scheme as i32,
            public_key: self.public_key.clone(),
            first_tx_id: self.first.id.0.to_vec(),
            first_sequence: self.first.sequence,
            first_time_ms: self.first.time_ms,
            second_tx_id: self.second.id.0.to_vec(),
            second_sequence: self.second.sequence,
            second_time_ms: self.second.time_ms,
        }
    }
}

fn side(tx: &CheckedTx) -> Side {
    let time_ms = match &tx.action {
        Action::SensorReport(r) => r.observed_at_ms,
        _ => tx.time_ms,
    };
    Side {
        id: tx.id,
        sequence: tx.sequence,
        time_ms,
    }
}

fn one(which: &str, bytes: &[u8], chain_id: &str) -> Result<CheckedTx, String> {
    let signed =
        pb::SignedTx::decode(bytes).map_err(|e| format!("{which}: not a SignedTx: {e}"))?;
    let tx = tx::check(signed, chain_id).map_err(|e| format!("{which}: {e}"))?;
    if tx.signer.kind != SignerKind::Device {
        return Err(format!(
            "{which}: signed by {} {}, not by a device",
            tx.signer.kind, tx.signer.id
        ));
    }
    Ok(tx)
}

/// Checks a reported pair without state: both decode and verify for this chain, both
/// are signed by one device with one key, and they conflict. The answer is the proof,
/// or why the pair proves nothing. Whether the key is the device's is for the caller,
/// who has the state.
pub fn check(report: &pb::ReportDeviceConflict, chain_id: &str) -> Result<Proof, String> {
    let a = one("first", &report.first, chain_id)?;
    let b = one("second", &report.second, chain_id)?;
    prove(&a, &b)
}

/// The proof two checked device transactions give, or why they give none: one device,
/// one key, two transactions, and a conflict between them ([`check`] without the
/// decoding, for a caller that has checked both already).
pub fn prove(a: &CheckedTx, b: &CheckedTx) -> Result<Proof, String> {
    if a.signer.kind != SignerKind::Device || b.signer.kind != SignerKind::Device {
        return Err("both must be signed by a device".to_string());
    }
    if a.signer.id != b.signer.id {
        return Err(format!(
            "the two are signed by different devices ({} and {})",
            a.signer.id, b.signer.id
        ));
    }
    if a.signer.scheme != b.signer.scheme || a.signer.public_key != b.signer.public_key {
        return Err(format!(
            "the two are signed by different keys of device {}",
            a.signer.id
        ));
    }
    if a.id == b.id {
        return Err(format!("the two are one transaction ({})", a.id));
    }
    let (a_side, b_side) = (side(a), side(b));
    let (first, second) = match a_side.sequence.cmp(&b_side.sequence) {
        Ordering::Less => (a_side, b_side),
        Ordering::Greater => (b_side, a_side),
        Ordering::Equal if a_side.id < b_side.id => (a_side, b_side),
        Ordering::Equal => (b_side, a_side),
    };
    let kind = if first.sequence == second.sequence {
        pb::DeviceConflictKind::SameSequence
    } else if second.time_ms < first.time_ms {
        pb::DeviceConflictKind::ClockReversed
    } else {
        return Err(format!(
            "no conflict: sequence {} at {} ms comes before sequence {} at {} ms",
            first.sequence, first.time_ms, second.sequence, second.time_ms
        ));
    };
    Ok(Proof {
        kind,
        device_id: a.signer.id.clone(),
        scheme: a.signer.scheme.into(),
        public_key: a.signer.public_key.clone(),
        first,
        second,
    })
}

/// Whether `record`'s current key is one a conflict was proven with.
pub fn current_key_compromised(record: &pb::DeviceRecord) -> Option<&pb::DeviceConflict> {
    record
        .conflicts
        .iter()
        .find(|c| c.scheme == record.scheme && c.public_key == record.public_key)
}

/// The devices whose readings `twin`'s device-signed verdict rests on (or may, once
/// they report): those with readings and those attached, each once, sorted.
pub fn devices_of(twin: &pb::ShipmentTwin) -> Vec<&str> {
    let mut devices: Vec<&str> = twin
        .tracks
        .iter()
        .map(|t| t.device_id.as_str())
        .chain(twin.attached_devices.iter().map(String::as_str))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    devices
}

/// What a verdict resting on `record`'s readings says of its proven conflicts: one line
/// per conflict, empty when there is none.
pub fn flags(record: &pb::DeviceRecord) -> Vec<String> {
    record
        .conflicts
        .iter()
        .map(|c| {
            let what = match pb::DeviceConflictKind::try_from(c.kind) {
                Ok(pb::DeviceConflictKind::SameSequence) => format!(
                    "signed two different readings with sequence {}",
                    c.first_sequence
                ),
                Ok(pb::DeviceConflictKind::ClockReversed) => format!(
                    "signed sequence {} with a reading time {} ms before that of sequence {}",
                    c.second_sequence,
                    c.first_time_ms.saturating_sub(c.second_time_ms),
                    c.first_sequence
                ),
                _ => "signed conflicting readings".to_string(),
            };
            format!(
                "device {} is flagged as cloned: its key {what} (proof recorded at height {} by {}); readings it signed cannot be trusted",
                record.device_id, c.height, c.reported_by
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Scheme, SecretKey};

    const CHAIN: &str = "conflicts-test";

    fn reading(key: &SecretKey, device: &str, sequence: u64, at: i64, milli_c: i32) -> Vec<u8> {
        let body = pb::TxBody {
            chain_id: CHAIN.into(),
            signer: Some(pb::Signer {
                kind: pb::SignerKind::Device as i32,
                id: device.into(),
                scheme: pb::SignatureScheme::from(key.scheme()) as i32,
                public_key: key.public_key(),
            }),
            sequence,
            time_ms: at,
            action: Some(Action::SensorReport(pb::SensorReport {
                shipment_id: "s".into(),
                observed_at_ms: at,
                temperature_milli_c: milli_c,
                humidity_permille: None,
                location: None,
            })),
        };
        tx::sign_body(&body, key).encode_to_vec()
    }

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_bytes(Scheme::Ed25519, &[seed; 32]).expect("seed")
    }

    fn report(first: Vec<u8>, second: Vec<u8>) -> pb::ReportDeviceConflict {
        pb::ReportDeviceConflict { first, second }
    }

    #[test]
    fn one_sequence_with_two_bodies_is_proof_in_either_order() {
        let k = key(1);
        let a = reading(&k, "logger", 7, 1_000, 5_000);
        let b = reading(&k, "logger", 7, 1_000, 4_000);
        let p = check(&report(a.clone(), b.clone()), CHAIN).expect("proof");
        assert_eq!(p.kind, pb::DeviceConflictKind::SameSequence);
        assert_eq!(p.device_id, "logger");
        assert_eq!(p.public_key, k.public_key());
        assert_eq!((p.first.sequence, p.second.sequence), (7, 7));
        assert_eq!(check(&report(b, a), CHAIN).expect("proof"), p);
    }

    #[test]
    fn a_higher_sequence_with_an_older_reading_is_proof() {
        let k = key(1);
        let p = check(
            &report(
                reading(&k, "logger", 9, 5_000, 5_000),
                reading(&k, "logger", 8, 6_000, 5_000),
            ),
            CHAIN,
        )
        .expect("proof");
        assert_eq!(p.kind, pb::DeviceConflictKind::ClockReversed);
        assert_eq!((p.first.sequence, p.first.time_ms), (8, 6_000));
        assert_eq!((p.second.sequence, p.second.time_ms), (9, 5_000));
        let flagged = pb::DeviceRecord {
            device_id: "logger".into(),
            conflicts: vec![p.record(12, "carrier")],
            ..Default::default()
        };
        let lines = flags(&flagged);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains("sequence 9 with a reading time 1000 ms before that of sequence 8")
        );
        assert!(lines[0].contains("height 12 by carrier"));
    }

    #[test]
    fn what_an_honest_device_signs_proves_nothing() {
        let k = key(1);
        let a = reading(&k, "logger", 7, 1_000, 5_000);
        let in_order = check(
            &report(a.clone(), reading(&k, "logger", 8, 1_000, 5_000)),
            CHAIN,
        );
        assert!(in_order.unwrap_err().contains("no conflict"));
        let same = check(&report(a.clone(), a.clone()), CHAIN);
        assert!(same.unwrap_err().contains("one transaction"));
    }

    #[test]
    fn a_pair_that_is_not_one_device_key_proves_nothing() {
        let (k, other) = (key(1), key(2));
        let a = reading(&k, "logger", 7, 1_000, 5_000);
        let err = |r| check(&r, CHAIN).unwrap_err();
        assert!(
            err(report(a.clone(), reading(&k, "other", 7, 1_000, 4_000)))
                .contains("different devices")
        );
        assert!(
            err(report(
                a.clone(),
                reading(&other, "logger", 7, 1_000, 4_000)
            ))
            .contains("different keys")
        );
        // A forged signature: the bytes of a body that its key did not sign.
        let mut forged = pb::SignedTx::decode(reading(&k, "logger", 7, 1_000, 4_000).as_slice())
            .expect("decodes");
        forged.signature[0] ^= 1;
        assert!(err(report(a.clone(), forged.encode_to_vec())).starts_with("second:"));
        assert!(err(report(b"junk".to_vec(), a.clone())).contains("not a SignedTx"));
        // Another chain's transaction.
        let mut foreign = pb::TxBody::decode(
            pb::SignedTx::decode(a.as_slice())
                .expect("decodes")
                .body
                .as_slice(),
        )
        .expect("body");
        foreign.chain_id = "elsewhere".into();
        let foreign = tx::sign_body(&foreign, &k).encode_to_vec();
        assert!(err(report(foreign, a.clone())).starts_with("first:"));
        // A member's transaction is no device reading.
        let member = pb::TxBody {
            chain_id: CHAIN.into(),
            signer: Some(pb::Signer {
                kind: pb::SignerKind::Member as i32,
                id: "farm".into(),
                scheme: pb::SignatureScheme::Ed25519 as i32,
                public_key: k.public_key(),
            }),
            sequence: 7,
            time_ms: 1_000,
            action: Some(Action::RevokeDevice(pb::RevokeDevice {
                device_id: "logger".into(),
                reason: "lost".into(),
            })),
        };
        let member = tx::sign_body(&member, &k).encode_to_vec();
        assert!(err(report(member, a)).contains("not by a device"));
    }
}
