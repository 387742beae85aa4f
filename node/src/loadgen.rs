//! Load for the benchmarks (`examples/ingest_bench.rs`, `tracechain bench`): device keys,
//! the transactions that register them and put them on shipments, and signed readings
//! split into streams that each keep a device's readings in sequence order.

use rayon::prelude::*;
use tracechain_proto::v1::{self as pb, tx_body::Action};

use crate::{
    crypto::{Scheme, SecretKey},
    tx,
};

/// Devices per shipment.
pub const DEVICES_PER_SHIPMENT: usize = 10;

fn signer(kind: pb::SignerKind, id: &str, key: &SecretKey) -> pb::Signer {
    pb::Signer {
        kind: kind as i32,
        id: id.into(),
        scheme: pb::SignatureScheme::from(key.scheme()) as i32,
        public_key: key.public_key(),
    }
}

/// `n` devices with fresh keys: `scheme` is "ed25519", "p256" or "mixed" (alternating).
pub fn devices(n: usize, scheme: &str) -> Vec<(String, SecretKey)> {
    (0..n)
        .map(|i| {
            let s = match scheme {
                "p256" => Scheme::P256,
                "mixed" if i % 2 == 1 => Scheme::P256,
                _ => Scheme::Ed25519,
            };
            (
                format!("urn:epc:id:giai:4012345.{i}"),
                SecretKey::generate(s),
            )
        })
        .collect()
}

/// The member's transactions (sequences 1, 2, …) that register `devices` and create one
/// shipment per [`DEVICES_PER_SHIPMENT`] of them; and the shipment ids, in device order.
pub fn setup(
    chain: &str,
    member: &str,
    admin: &SecretKey,
    devices: &[(String, SecretKey)],
    time_ms: i64,
) -> (Vec<pb::SignedTx>, Vec<String>) {
    let mut seq = 0u64;
    let mut sign = |action: Action| {
        seq += 1;
        tx::sign_body(
            &pb::TxBody {
                chain_id: chain.into(),
                signer: Some(signer(pb::SignerKind::Member, member, admin)),
                sequence: seq,
                time_ms,
                action: Some(action),
            },
            admin,
        )
    };
    let mut txs: Vec<pb::SignedTx> = devices
        .iter()
        .map(|(id, key)| {
            sign(Action::RegisterDevice(pb::RegisterDevice {
                device_id: id.clone(),
                scheme: pb::SignatureScheme::from(key.scheme()) as i32,
                public_key: key.public_key(),
                device_type: "logger".into(),
            }))
        })
        .collect();
    let mut shipments = Vec::new();
    for (i, chunk) in devices.chunks(DEVICES_PER_SHIPMENT).enumerate() {
        let id = format!("urn:epc:id:sscc:4012345.{i:010}");
        txs.push(sign(Action::CreateShipment(pb::CreateShipment {
            shipment_id: id.clone(),
            products: vec![],
            owner: String::new(),
            policy: Some(pb::ColdChainPolicy {
                min_milli_c: 2_000,
                max_milli_c: 8_000,
                excursion_budget_minutes: 60,
                ..Default::default()
            }),
            origin_location: String::new(),
            device_ids: chunk.iter().map(|(d, _)| d.clone()).collect(),
        })));
        shipments.push(id);
    }
    (txs, shipments)
}

/// `total` signed readings, round-robin over the devices, one every `interval_ms` per
/// device, the last at or before `latest_ms`. Device `d` goes to stream `d % streams`,
/// so each stream holds its devices' readings in sequence order.
pub fn readings(
    chain: &str,
    devices: &[(String, SecretKey)],
    shipments: &[String],
    total: usize,
    streams: usize,
    interval_ms: i64,
    latest_ms: i64,
) -> Vec<Vec<pb::SignedTx>> {
    let streams = streams.max(1);
    let per_device = total.div_ceil(devices.len().max(1));
    let t0 = latest_ms - per_device as i64 * interval_ms;
    let mut out: Vec<Vec<pb::SignedTx>> = vec![Vec::new(); streams];
    let mut signed = 0usize;
    for k in 0..per_device {
        let round = devices.len().min(total - signed);
        if round == 0 {
            break;
        }
        let at = t0 + k as i64 * interval_ms;
        // One round of readings (every device's k-th), signed on all cores.
        let txs: Vec<pb::SignedTx> = devices[..round]
            .par_iter()
            .enumerate()
            .map(|(d, (id, key))| {
                tx::sign_body(
                    &pb::TxBody {
                        chain_id: chain.into(),
                        signer: Some(signer(pb::SignerKind::Device, id, key)),
                        sequence: k as u64 + 1,
                        time_ms: at,
                        action: Some(Action::SensorReport(pb::SensorReport {
                            shipment_id: shipments[d / DEVICES_PER_SHIPMENT].clone(),
                            observed_at_ms: at,
                            temperature_milli_c: 4_000 + ((k * 7 + d) % 30) as i32 * 100,
                            humidity_permille: Some(800),
                            location: None,
                        })),
                    },
                    key,
                )
            })
            .collect();
        for (d, tx) in txs.into_iter().enumerate() {
            out[d % streams].push(tx);
        }
        signed += round;
    }
    out
}

/// `count` EPCIS ObjectEvents (OBSERVE, inspecting) signed by `member` with sequences
/// from `first_sequence` on, as `tracechain epcis import` records them: each names one
/// item (an SGTIN of the member's own serial range), so each is indexed under it and
/// recorded once under its own Event Hash ID. Event times run up to `latest_ms`.
pub fn epcis_observations(
    chain: &str,
    member: &str,
    admin: &SecretKey,
    first_sequence: u64,
    count: usize,
    latest_ms: i64,
) -> Vec<pb::SignedTx> {
    let t0 = latest_ms - count as i64;
    (0..count)
        .into_par_iter()
        .map(|i| {
            let at = t0 + i as i64;
            let item = format!("urn:epc:id:sgtin:4012345.011111.{member}{i}");
            let place = "urn:epc:id:sgln:4012345.00001.0";
            let json = serde_json::json!({
                "type": "ObjectEvent",
                "eventTime": crate::epcis::export::time(at),
                "eventTimeZoneOffset": "+00:00",
                "action": "OBSERVE",
                "bizStep": "inspecting",
                "epcList": [item],
                "readPoint": {"id": place},
            });
            tx::sign_body(
                &pb::TxBody {
                    chain_id: chain.into(),
                    signer: Some(signer(pb::SignerKind::Member, member, admin)),
                    sequence: first_sequence + i as u64,
                    time_ms: at,
                    action: Some(Action::RecordEpcisEvent(pb::RecordEpcisEvent {
                        event_type: pb::EpcisEventType::Object as i32,
                        event_time_ms: at,
                        action: "OBSERVE".into(),
                        biz_step: "inspecting".into(),
                        read_point: place.into(),
                        epcs: vec![item],
                        event_json: json.to_string(),
                        ..Default::default()
                    })),
                },
                admin,
            )
        })
        .collect()
}
