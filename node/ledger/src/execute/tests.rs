//! Rule tests: a small consortium, a map-backed store, blocks of signed transactions.

use std::collections::BTreeMap;

use tracechain_proto::v1::{self as pb, ResultCode as Code, tx_body::Action};

use super::*;
use crate::{
    crypto::{Scheme, SecretKey},
    genesis::{
        AttestationRule, ContainmentRule, DeviceConflictRule, EventIdentity, GenesisFile,
        LineageRule, MemberEntry, MktRule, Role,
    },
    state::MemoryState,
    tx::{self, CheckedTx},
};

pub(crate) const CHAIN: &str = "test-chain";
const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

pub(crate) struct World {
    pub ledger: Ledger,
    pub store: MemoryState,
    admins: BTreeMap<String, SecretKey>,
    member_seq: BTreeMap<String, u64>,
    pub devices: BTreeMap<String, (SecretKey, u64)>,
    pub height: u64,
    pub time_ms: i64,
}

fn key_seed(i: u8) -> SecretKey {
    SecretKey::from_bytes(Scheme::Ed25519, &[i; 32]).expect("valid seed")
}

impl World {
    pub fn new() -> Self {
        Self::with_mkt_rule(MktRule::CURRENT)
    }

    /// A world whose genesis has `mkt_rule`.
    pub fn with_mkt_rule(mkt_rule: MktRule) -> Self {
        Self::with_rules(mkt_rule, EventIdentity::CURRENT)
    }

    /// A world whose genesis has these rules.
    pub fn with_rules(mkt_rule: MktRule, epcis_event_identity: EventIdentity) -> Self {
        Self::with_all_rules(
            mkt_rule,
            epcis_event_identity,
            ContainmentRule::CURRENT,
            LineageRule::CURRENT,
            AttestationRule::CURRENT,
        )
    }

    /// A world whose genesis has these rules, containment included.
    pub fn with_all_rules(
        mkt_rule: MktRule,
        epcis_event_identity: EventIdentity,
        containment: ContainmentRule,
        lineage: LineageRule,
        attestation: AttestationRule,
    ) -> Self {
        Self::with_device_conflicts(
            mkt_rule,
            epcis_event_identity,
            containment,
            lineage,
            attestation,
            DeviceConflictRule::CURRENT,
        )
    }

    /// A world whose genesis has every rule given.
    pub fn with_device_conflicts(
        mkt_rule: MktRule,
        epcis_event_identity: EventIdentity,
        containment: ContainmentRule,
        lineage: LineageRule,
        attestation: AttestationRule,
        device_conflicts: DeviceConflictRule,
    ) -> Self {
        let roles = [
            ("farm", Role::Producer),
            ("carrier", Role::Carrier),
            ("retailer", Role::Retailer),
            ("customs", Role::Customs),
        ];
        let mut admins = BTreeMap::new();
        let members = roles
            .iter()
            .enumerate()
            .map(|(i, (id, role))| {
                let admin = key_seed(i as u8 + 1);
                let node = key_seed(i as u8 + 101);
                let entry = MemberEntry {
                    id: id.to_string(),
                    name: id.to_string(),
                    role: *role,
                    node_key: hex::encode(node.public_key()),
                    admin_key: hex::encode(admin.public_key()),
                    address: format!("127.0.0.1:{}", 7000 + i),
                    validator: i == 0,
                    gs1_company_prefixes: Vec::new(),
                };
                admins.insert(id.to_string(), admin);
                entry
            })
            .collect();
        let genesis = crate::genesis::Genesis::from_file(GenesisFile {
            chain_id: CHAIN.into(),
            genesis_time_ms: T0,
            max_clock_skew_ms: 5 * MIN as u64,
            mkt_rule,
            epcis_event_identity,
            containment,
            lineage,
            attestation,
            device_conflicts,
            members,
        })
        .expect("valid genesis");
        Self {
            ledger: Ledger::new(genesis),
            store: MemoryState::default(),
            admins,
            member_seq: BTreeMap::new(),
            devices: BTreeMap::new(),
            height: 0,
            time_ms: T0,
        }
    }

    fn body(signer: pb::Signer, sequence: u64, time_ms: i64, action: Action) -> pb::TxBody {
        pb::TxBody {
            chain_id: CHAIN.into(),
            signer: Some(signer),
            sequence,
            time_ms,
            action: Some(action),
        }
    }

    pub fn member_tx(&mut self, member: &str, action: Action) -> CheckedTx {
        let seq = self.member_seq.entry(member.to_string()).or_insert(0);
        *seq += 1;
        let seq = *seq;
        self.member_tx_seq(member, seq, action)
    }

    pub fn member_tx_seq(&mut self, member: &str, seq: u64, action: Action) -> CheckedTx {
        let key = &self.admins[member];
        let signer = pb::Signer {
            kind: pb::SignerKind::Member as i32,
            id: member.into(),
            scheme: pb::SignatureScheme::Ed25519 as i32,
            public_key: key.public_key(),
        };
        let signed = tx::sign_body(&Self::body(signer, seq, self.time_ms, action), key);
        tx::check(signed, CHAIN).expect("test transaction passes stateless checks")
    }

    pub fn new_device(&mut self, id: &str, scheme: Scheme) -> Action {
        let key = SecretKey::generate(scheme);
        let action = Action::RegisterDevice(pb::RegisterDevice {
            device_id: id.into(),
            scheme: pb::SignatureScheme::from(scheme) as i32,
            public_key: key.public_key(),
            device_type: "temperature_logger".into(),
        });
        self.devices.insert(id.to_string(), (key, 0));
        action
    }

    pub fn reading(
        &mut self,
        device: &str,
        shipment: &str,
        minute: i64,
        milli_c: i32,
    ) -> CheckedTx {
        let seq = {
            let entry = self.devices.get_mut(device).expect("known device");
            entry.1 += 1;
            entry.1
        };
        self.reading_seq(device, seq, shipment, T0 + minute * MIN, milli_c)
    }

    pub fn reading_seq(
        &mut self,
        device: &str,
        seq: u64,
        shipment: &str,
        observed_at_ms: i64,
        milli_c: i32,
    ) -> CheckedTx {
        let (key, _) = &self.devices[device];
        let signer = pb::Signer {
            kind: pb::SignerKind::Device as i32,
            id: device.into(),
            scheme: pb::SignatureScheme::from(key.scheme()) as i32,
            public_key: key.public_key(),
        };
        let action = Action::SensorReport(pb::SensorReport {
            shipment_id: shipment.into(),
            observed_at_ms,
            temperature_milli_c: milli_c,
            humidity_permille: None,
            location: None,
        });
        let signed = tx::sign_body(&Self::body(signer, seq, observed_at_ms, action), key);
        tx::check(signed, CHAIN).expect("test reading passes stateless checks")
    }

    /// Executes one block and commits its writes.
    pub fn run(&mut self, txs: Vec<CheckedTx>) -> Vec<(Code, String)> {
        self.run_results(txs)
            .into_iter()
            .map(|r| (Code::try_from(r.code).unwrap_or_default(), r.message))
            .collect()
    }

    /// Executes one block, commits its writes, and returns the full results.
    pub fn run_results(&mut self, txs: Vec<CheckedTx>) -> Vec<pb::TxResult> {
        self.height += 1;
        self.time_ms += MIN;
        let ctx = BlockContext {
            height: self.height,
            time_ms: self.time_ms.max(T0 + 10_000 * MIN),
        };
        let exec = self
            .ledger
            .execute_block(&self.store, ctx, txs.iter())
            .expect("store does not fail");
        self.store.commit(exec.writes, txs.iter().map(|t| t.id));
        exec.results
    }

    pub fn run_one(&mut self, tx: CheckedTx) -> (Code, String) {
        self.run(vec![tx]).remove(0)
    }

    pub fn ok(&mut self, tx: CheckedTx) {
        let (code, msg) = self.run_one(tx);
        assert_eq!(code, Code::Ok, "expected OK, got {code:?}: {msg}");
    }

    pub fn twin(&self, id: &str) -> pb::ShipmentTwin {
        let bytes = self
            .store
            .record(&state::shipment_key(id))
            .expect("shipment exists");
        prost::Message::decode(bytes).expect("decodes")
    }

    pub fn device(&self, id: &str) -> pb::DeviceRecord {
        let bytes = self
            .store
            .record(&state::device_key(id))
            .expect("device exists");
        prost::Message::decode(bytes).expect("decodes")
    }

    pub fn state_snapshot(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.store.records().clone()
    }
}

pub(crate) fn policy() -> pb::ColdChainPolicy {
    pb::ColdChainPolicy {
        min_milli_c: 2_000,
        max_milli_c: 8_000,
        excursion_budget_minutes: 30,
        max_reading_gap_minutes: 30,
        mkt_limit_milli_c: Some(8_000),
        hard_min_milli_c: None,
        hard_max_milli_c: None,
    }
}

pub(crate) fn create(id: &str, devices: &[&str]) -> Action {
    Action::CreateShipment(pb::CreateShipment {
        shipment_id: id.into(),
        products: vec![pb::Product {
            epc: "urn:epc:class:lgtin:4012345.012345.998877".into(),
            description: "Lettuce".into(),
            quantity: 100,
            uom: "KGM".into(),
        }],
        owner: String::new(),
        policy: Some(policy()),
        origin_location: "urn:epc:id:sgln:4012345.00001.0".into(),
        device_ids: devices.iter().map(|d| d.to_string()).collect(),
    })
}

fn ship(id: &str, to: &str, new_owner: &str) -> Action {
    Action::Ship(pb::ShipShipment {
        shipment_id: id.into(),
        to_custodian: to.into(),
        new_owner: new_owner.into(),
        location: String::new(),
    })
}

fn receive(id: &str, final_delivery: bool) -> Action {
    Action::Receive(pb::ReceiveShipment {
        shipment_id: id.into(),
        location: String::new(),
        final_delivery,
    })
}

fn customs(id: &str, outcome: pb::CustomsOutcome) -> Action {
    Action::Customs(pb::CustomsDecision {
        shipment_id: id.into(),
        outcome: outcome as i32,
        reason: String::new(),
        location: String::new(),
    })
}

const S: &str = "urn:epc:id:sscc:4012345.0000000001";
const D: &str = "urn:epc:id:giai:4012345.1";

/// A world with a registered device D and a shipment S monitored by it.
fn with_shipment() -> World {
    shipment_in(World::new())
}

/// `w` with a registered device D and a shipment S monitored by it.
fn shipment_in(mut w: World) -> World {
    let reg = w.new_device(D, Scheme::Ed25519);
    let tx = w.member_tx("farm", reg);
    w.ok(tx);
    let tx = w.member_tx("farm", create(S, &[D]));
    w.ok(tx);
    w
}

#[test]
fn full_journey_custody_ownership_and_verdict() {
    let mut w = with_shipment();
    let t = w.twin(S);
    assert_eq!((t.owner.as_str(), t.custodian.as_str()), ("farm", "farm"));
    assert_eq!(t.verdict, pb::Verdict::Conformant as i32);

    let tx = w.member_tx("farm", ship(S, "carrier", ""));
    w.ok(tx);
    let tx = w.member_tx("carrier", receive(S, false));
    w.ok(tx);
    let txs = (0..5).map(|i| w.reading(D, S, i * 10, 5_000)).collect();
    assert!(w.run(txs).iter().all(|(c, _)| *c == Code::Ok));
    let tx = w.member_tx("customs", customs(S, pb::CustomsOutcome::Cleared));
    w.ok(tx);
    let tx = w.member_tx("carrier", ship(S, "retailer", "retailer"));
    w.ok(tx);
    let tx = w.member_tx("retailer", receive(S, true));
    w.ok(tx);

    let t = w.twin(S);
    assert_eq!(t.custodian, "retailer");
    assert_eq!(t.owner, "retailer");
    assert_eq!(t.status, pb::ShipmentStatus::Delivered as i32);
    assert_eq!(t.customs, pb::CustomsStatus::Cleared as i32);
    assert_eq!(t.reading_count, 5);
    assert_eq!(t.mkt_milli_c, Some(5_000));
    assert_eq!(t.verdict, pb::Verdict::Conformant as i32);
    // Delivered shipments are closed.
    let tx = w.reading(D, S, 100, 5_000);
    assert_eq!(w.run_one(tx).0, Code::ShipmentClosed);
}

/// Each bad input gets its code and changes no state.
#[test]
fn rule_violations_change_nothing() {
    type Case = (&'static str, fn(&mut World) -> CheckedTx, Code);
    let cases: &[Case] = &[
        (
            "unknown device",
            |w| {
                let _ = w.new_device("urn:epc:id:giai:9.9", Scheme::Ed25519);
                w.reading("urn:epc:id:giai:9.9", S, 1, 5_000)
            },
            Code::UnknownDevice,
        ),
        (
            "reading for unknown shipment",
            |w| w.reading(D, "urn:epc:id:sscc:1.2", 1, 5_000),
            Code::UnknownShipment,
        ),
        (
            "handover by non-custodian",
            |w| w.member_tx("carrier", ship(S, "retailer", "")),
            Code::NotCustodian,
        ),
        (
            "receive by non-consignee",
            |w| w.member_tx("retailer", receive(S, false)),
            Code::NotInTransit,
        ),
        (
            "customs decision by a non-customs member",
            |w| w.member_tx("carrier", customs(S, pb::CustomsOutcome::Held)),
            Code::NotCustoms,
        ),
        (
            "device of another member attached",
            |w| {
                w.member_tx(
                    "carrier",
                    Action::AttachDevice(pb::AttachDevice {
                        shipment_id: S.into(),
                        device_id: D.into(),
                    }),
                )
            },
            Code::NotCustodian,
        ),
        (
            "another member rotates the device key",
            |w| {
                let k = SecretKey::generate(Scheme::Ed25519);
                w.member_tx(
                    "carrier",
                    Action::RotateDeviceKey(pb::RotateDeviceKey {
                        device_id: D.into(),
                        scheme: pb::SignatureScheme::Ed25519 as i32,
                        public_key: k.public_key(),
                    }),
                )
            },
            Code::NotDeviceOwner,
        ),
        (
            "another member revokes the device",
            |w| {
                w.member_tx(
                    "retailer",
                    Action::RevokeDevice(pb::RevokeDevice {
                        device_id: D.into(),
                        reason: "x".into(),
                    }),
                )
            },
            Code::NotDeviceOwner,
        ),
        (
            "duplicate registration",
            |w| {
                let k = SecretKey::generate(Scheme::Ed25519);
                w.member_tx(
                    "carrier",
                    Action::RegisterDevice(pb::RegisterDevice {
                        device_id: D.into(),
                        scheme: pb::SignatureScheme::Ed25519 as i32,
                        public_key: k.public_key(),
                        device_type: String::new(),
                    }),
                )
            },
            Code::DeviceExists,
        ),
        (
            "duplicate shipment",
            |w| w.member_tx("farm", create(S, &[])),
            Code::ShipmentExists,
        ),
        (
            "ship to a non-member",
            |w| w.member_tx("farm", ship(S, "mallory", "")),
            Code::UnknownMember,
        ),
        (
            "replayed member sequence",
            |w| w.member_tx_seq("farm", 1, ship(S, "carrier", "")),
            Code::SequenceReplayed,
        ),
        (
            "replayed device sequence",
            |w| {
                let tx = w.reading(D, S, 1, 5_000);
                w.ok(tx);
                w.reading_seq(D, 1, S, T0 + 2 * MIN, 5_000)
            },
            Code::SequenceReplayed,
        ),
        (
            "reading far in the future",
            |w| w.reading(D, S, 1_000_000, 5_000),
            Code::BadTimestamp,
        ),
        (
            "reading going back in time",
            |w| {
                let tx = w.reading(D, S, 10, 5_000);
                w.ok(tx);
                w.reading(D, S, 5, 5_000)
            },
            Code::BadTimestamp,
        ),
        (
            "member key mismatch",
            |_w| {
                // carrier signs, but claims to be farm.
                let key = SecretKey::from_bytes(Scheme::Ed25519, &[2; 32]).expect("seed");
                let body = pb::TxBody {
                    chain_id: CHAIN.into(),
                    signer: Some(pb::Signer {
                        kind: pb::SignerKind::Member as i32,
                        id: "farm".into(),
                        scheme: pb::SignatureScheme::Ed25519 as i32,
                        public_key: key.public_key(),
                    }),
                    sequence: 99,
                    time_ms: T0,
                    action: Some(ship(S, "carrier", "")),
                };
                tx::check(tx::sign_body(&body, &key), CHAIN).expect("valid signature")
            },
            Code::KeyMismatch,
        ),
        (
            "device key mismatch",
            |w| {
                let impostor = SecretKey::generate(Scheme::Ed25519);
                let body = pb::TxBody {
                    chain_id: CHAIN.into(),
                    signer: Some(pb::Signer {
                        kind: pb::SignerKind::Device as i32,
                        id: D.into(),
                        scheme: pb::SignatureScheme::Ed25519 as i32,
                        public_key: impostor.public_key(),
                    }),
                    sequence: 50,
                    time_ms: T0,
                    action: Some(Action::SensorReport(pb::SensorReport {
                        shipment_id: S.into(),
                        observed_at_ms: T0,
                        temperature_milli_c: 4_000,
                        humidity_permille: None,
                        location: None,
                    })),
                };
                let _ = w;
                tx::check(tx::sign_body(&body, &impostor), CHAIN).expect("valid signature")
            },
            Code::KeyMismatch,
        ),
        (
            "unknown member signer",
            |w| {
                let key = SecretKey::generate(Scheme::Ed25519);
                let body = pb::TxBody {
                    chain_id: CHAIN.into(),
                    signer: Some(pb::Signer {
                        kind: pb::SignerKind::Member as i32,
                        id: "mallory".into(),
                        scheme: pb::SignatureScheme::Ed25519 as i32,
                        public_key: key.public_key(),
                    }),
                    sequence: 1,
                    time_ms: T0,
                    action: Some(create("urn:epc:id:sscc:6.6", &[])),
                };
                let _ = w;
                tx::check(tx::sign_body(&body, &key), CHAIN).expect("valid signature")
            },
            Code::UnknownSigner,
        ),
    ];
    for (name, make, expected) in cases {
        let mut w = with_shipment();
        let tx = make(&mut w);
        let before = w.state_snapshot();
        let (code, message) = w.run_one(tx);
        assert_eq!(code, *expected, "{name}: {message}");
        assert!(!message.is_empty(), "{name}: a rejection says why");
        assert_eq!(w.state_snapshot(), before, "{name}: state must not change");
    }
}

#[test]
fn revoked_device_and_rotation() {
    let mut w = with_shipment();
    // Rotate: the old key stops working, the new one works, the counter continues.
    let new_key = SecretKey::generate(Scheme::P256);
    let tx = w.member_tx(
        "farm",
        Action::RotateDeviceKey(pb::RotateDeviceKey {
            device_id: D.into(),
            scheme: pb::SignatureScheme::EcdsaP256Sha256 as i32,
            public_key: new_key.public_key(),
        }),
    );
    w.ok(tx);
    let old = w.reading(D, S, 1, 5_000);
    assert_eq!(w.run_one(old).0, Code::KeyMismatch);
    w.devices.get_mut(D).expect("device").0 = new_key;
    let tx = w.reading(D, S, 2, 5_000);
    w.ok(tx);
    assert_eq!(w.device(D).key_rotations, 1);

    let tx = w.member_tx(
        "farm",
        Action::RevokeDevice(pb::RevokeDevice {
            device_id: D.into(),
            reason: "lost".into(),
        }),
    );
    w.ok(tx);
    let tx = w.reading(D, S, 3, 5_000);
    assert_eq!(w.run_one(tx).0, Code::DeviceRevoked);
}

#[test]
fn sequence_gaps_are_flagged_not_rejected() {
    let mut w = with_shipment();
    let tx = w.reading_seq(D, 1, S, T0 + MIN, 5_000);
    w.ok(tx);
    let tx = w.reading_seq(D, 5, S, T0 + 2 * MIN, 5_000);
    w.ok(tx);
    let d = w.device(D);
    assert_eq!((d.last_sequence, d.sequence_gaps), (5, 1));
}

#[test]
fn device_not_attached_to_shipment() {
    let mut w = with_shipment();
    let reg = w.new_device("urn:epc:id:giai:4012345.2", Scheme::P256);
    let tx = w.member_tx("farm", reg);
    w.ok(tx);
    let tx = w.reading("urn:epc:id:giai:4012345.2", S, 1, 5_000);
    assert_eq!(w.run_one(tx).0, Code::DeviceNotAttached);
    // The custodian attaches it; now it may report.
    let tx = w.member_tx(
        "farm",
        Action::AttachDevice(pb::AttachDevice {
            shipment_id: S.into(),
            device_id: "urn:epc:id:giai:4012345.2".into(),
        }),
    );
    w.ok(tx);
    let tx = w.reading("urn:epc:id:giai:4012345.2", S, 2, 5_000);
    w.ok(tx);
}

#[test]
fn customs_hold_blocks_handover_until_cleared() {
    let mut w = with_shipment();
    let tx = w.member_tx("customs", customs(S, pb::CustomsOutcome::Held));
    w.ok(tx);
    let tx = w.member_tx("farm", ship(S, "carrier", ""));
    assert_eq!(w.run_one(tx).0, Code::ShipmentOnHold);
    let tx = w.member_tx("customs", customs(S, pb::CustomsOutcome::Cleared));
    w.ok(tx);
    let tx = w.member_tx("farm", ship(S, "carrier", ""));
    w.ok(tx);
    // Still the custodian until the carrier receives, but the shipment is in transit.
    let tx = w.member_tx("farm", ship(S, "retailer", ""));
    assert_eq!(w.run_one(tx).0, Code::InTransit);
    let tx = w.member_tx("retailer", ship(S, "farm", ""));
    assert_eq!(w.run_one(tx).0, Code::NotCustodian);
}

#[test]
fn duplicate_transaction_in_block_and_across_blocks() {
    let mut w = with_shipment();
    let tx = w.reading(D, S, 1, 5_000);
    let results = w.run(vec![tx.clone(), tx.clone()]);
    assert_eq!(results[0].0, Code::Ok);
    assert_eq!(results[1].0, Code::Duplicate);
    assert_eq!(w.run_one(tx).0, Code::Duplicate);
}

#[test]
fn excursion_turns_shipment_non_conformant() {
    let mut w = with_shipment();
    let series = [
        (0, 5_000),
        (10, 9_500),
        (20, 11_000),
        (30, 10_000),
        (45, 6_000),
    ];
    let txs = series.iter().map(|&(m, t)| w.reading(D, S, m, t)).collect();
    assert!(w.run(txs).iter().all(|(c, _)| *c == Code::Ok));
    let t = w.twin(S);
    assert_eq!(
        t.verdict,
        pb::Verdict::NonConformant as i32,
        "{:?}",
        t.reasons
    );
    assert_eq!(t.excursions.len(), 1);
    let e = &t.excursions[0];
    assert_eq!(
        (e.start_ms, e.end_ms, e.peak_milli_c),
        (T0 + 10 * MIN, T0 + 45 * MIN, 11_000)
    );
    assert_eq!(e.device_id, D);
}

/// The MKT rule is the genesis's: a chain made before the rule changed replays with the
/// old one (a device's first reading weighs nothing), a new chain counts every reading.
/// DOMAIN.md's 12-hour vector: 6.604 °C, or 6.865 °C if the first weighed nothing.
#[test]
fn the_mkt_rule_comes_from_the_genesis() {
    let temps = [
        3_000, 3_500, 4_000, 7_500, 10_000, 12_500, 9_000, 6_000, 5_000, 4_500, 4_000, 3_500,
    ];
    for (rule, expected) in [
        (MktRule::FirstReadingToNext, 6_604),
        (MktRule::FirstReadingUnweighted, 6_865),
    ] {
        let mut w = World::with_mkt_rule(rule);
        let reg = w.new_device(D, Scheme::Ed25519);
        let tx = w.member_tx("farm", reg);
        w.ok(tx);
        let tx = w.member_tx("farm", create(S, &[D]));
        w.ok(tx);
        let txs = temps
            .iter()
            .enumerate()
            .map(|(h, &t)| w.reading(D, S, h as i64 * 60, t))
            .collect();
        assert!(w.run(txs).iter().all(|(c, _)| *c == Code::Ok));
        let mkt = w.twin(S).mkt_milli_c.expect("weighted");
        assert!(
            (mkt - expected).abs() <= 1,
            "{rule:?}: {mkt} m°C, expected {expected}"
        );
    }
}

#[test]
fn execution_is_deterministic() {
    let mut w = with_shipment();
    let txs: Vec<_> = (0..20)
        .map(|i| w.reading(D, S, i * 7, 3_000 + (i as i32 * 431) % 7_000))
        .collect();
    let ctx = BlockContext {
        height: 3,
        time_ms: T0 + 10_000 * MIN,
    };
    let a = w
        .ledger
        .execute_block(&w.store, ctx, txs.iter())
        .expect("executes");
    let b = w
        .ledger
        .execute_block(&w.store, ctx, txs.iter())
        .expect("executes");
    assert_eq!(a.writes, b.writes);
    assert_eq!(a.results, b.results);
    assert_eq!(
        state::state_commitment(&[0; 32], &a.writes),
        state::state_commitment(&[0; 32], &b.writes)
    );
}

fn history(r: &pb::TxResult) -> Vec<(i32, &str, u64)> {
    r.history
        .iter()
        .map(|h| (h.kind, h.subject.as_str(), h.seq))
        .collect()
}

/// Results number each successful transaction in its shipment's and device's history,
/// so an auditor can see a gap (docs/AUDIT.md); a failed one joins no history.
#[test]
fn results_carry_history_positions() {
    const SHIP: i32 = pb::HistoryKind::Shipment as i32;
    const DEV: i32 = pb::HistoryKind::Device as i32;
    let mut w = World::new();
    let reg = w.new_device(D, Scheme::Ed25519);
    let tx = w.member_tx("farm", reg);
    let r = w.run_results(vec![tx]);
    assert_eq!(history(&r[0]), [(DEV, D, 1)]);
    let create = w.member_tx("farm", create(S, &[D]));
    let reading = w.reading(D, S, 1, 5_000);
    let bad = w.member_tx("carrier", receive(S, false));
    let r = w.run_results(vec![create, reading, bad]);
    assert_eq!(history(&r[0]), [(SHIP, S, 1)]);
    assert_eq!(history(&r[1]), [(SHIP, S, 2)]);
    assert_ne!(r[2].code, Code::Ok as i32);
    assert!(
        r[2].history.is_empty(),
        "a failed transaction joins no history"
    );
    let revoke = w.member_tx(
        "farm",
        Action::RevokeDevice(pb::RevokeDevice {
            device_id: D.into(),
            reason: "lost".into(),
        }),
    );
    let r = w.run_results(vec![revoke]);
    assert_eq!(history(&r[0]), [(DEV, D, 2)]);
    assert_eq!(w.device(D).lifecycle_events, 2);
}

fn epcis_event(epcs: &[&str]) -> Action {
    Action::RecordEpcisEvent(pb::RecordEpcisEvent {
        event_type: pb::EpcisEventType::Object as i32,
        event_time_ms: T0,
        action: "OBSERVE".into(),
        biz_step: "shipping".into(),
        epcs: epcs.iter().map(|e| e.to_string()).collect(),
        event_json: serde_json::json!({
            "type": "ObjectEvent", "eventTime": "2024-03-02T09:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "shipping",
            "epcList": epcs,
        })
        .to_string(),
        ..Default::default()
    })
}

/// An EPCIS event joins the history of each shipment it names in which the signer has
/// a part, and never the history of a delivered (closed) shipment.
#[test]
fn epcis_events_join_only_their_signers_open_shipments() {
    const SHIP: i32 = pb::HistoryKind::Shipment as i32;
    let mut w = with_shipment();
    let other = "urn:epc:id:sscc:4012345.0000000002";
    let tx = w.member_tx("carrier", create(other, &[]));
    w.ok(tx);
    // farm is a party to S only; the unknown EPC and `other` are recorded, not indexed.
    let tx = w.member_tx(
        "farm",
        epcis_event(&[S, other, "urn:epc:id:sgtin:1.2.3", S]),
    );
    let r = w.run_results(vec![tx]);
    assert_eq!(r[0].code, Code::Ok as i32, "{}", r[0].message);
    assert_eq!(history(&r[0]), [(SHIP, S, 2)]);
    assert_eq!(w.twin(S).event_count, 2);
    assert_eq!(w.twin(other).event_count, 1);
    // Delivered: closed.
    let tx = w.member_tx("farm", ship(S, "carrier", ""));
    w.ok(tx);
    let tx = w.member_tx("carrier", receive(S, true));
    w.ok(tx);
    let tx = w.member_tx("carrier", epcis_event(&[S]));
    let r = w.run_results(vec![tx]);
    assert_eq!(r[0].code, Code::Ok as i32);
    assert!(r[0].history.is_empty());
    assert_eq!(w.twin(S).event_count, 4);
    // Devices may not sign EPCIS events (the stateless check refuses it).
    let (key, _) = &w.devices[D];
    let body = pb::TxBody {
        chain_id: CHAIN.into(),
        signer: Some(pb::Signer {
            kind: pb::SignerKind::Device as i32,
            id: D.into(),
            scheme: pb::SignatureScheme::Ed25519 as i32,
            public_key: key.public_key(),
        }),
        sequence: 99,
        time_ms: T0,
        action: Some(epcis_event(&[S])),
    };
    assert!(tx::check(tx::sign_body(&body, key), CHAIN).is_err());
}

fn epcis_json(json: &str) -> Action {
    let mut action = epcis_event(&[S]);
    if let Action::RecordEpcisEvent(e) = &mut action {
        e.event_json = json.into();
    }
    action
}

/// Under the genesis rule of new chains an EPCIS event is recorded once across all
/// members, by its Event Hash ID: the same event again, in another serialisation, from
/// another member or later in the same block, is DUPLICATE_EVENT naming the height and
/// transaction that recorded it, and changes nothing. A chain made before the rule
/// replays as it was made: the event is recorded twice.
#[test]
fn an_epcis_event_is_recorded_once_under_its_event_hash_id() {
    let event = r#"{"type":"ObjectEvent","eventTime":"2024-03-02T09:00:00Z","eventTimeZoneOffset":"+00:00","action":"OBSERVE","bizStep":"shipping","epcList":["urn:epc:id:sscc:4012345.0000000001"]}"#;
    // The same event: other key order, spacing, time zone, CBV URN, an eventID and a
    // recordTime (which the hash leaves out).
    let same = r#"{ "epcList": ["urn:epc:id:sscc:4012345.0000000001"], "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
        "action": "OBSERVE", "eventTimeZoneOffset": "+00:00", "eventTime": "2024-03-02T10:00:00.000+01:00",
        "type": "ObjectEvent", "eventID": "urn:uuid:6f1c", "recordTime": "2024-03-02T09:00:05Z" }"#;
    let other = event.replace("OBSERVE", "ADD");

    let mut w = with_shipment();
    let first = w.member_tx("farm", epcis_json(event));
    let first_id = first.id;
    let in_block = w.member_tx("farm", epcis_json(same));
    let r = w.run_results(vec![first, in_block]);
    assert_eq!(r[0].code, Code::Ok as i32, "{}", r[0].message);
    assert_eq!(r[1].code, Code::DuplicateEvent as i32, "{}", r[1].message);
    let height = w.height;
    let events = w.twin(S).event_count;
    let before = w.state_snapshot();
    for (member, json) in [("farm", same), ("carrier", event), ("farm", event)] {
        let tx = w.member_tx(member, epcis_json(json));
        let r = w.run_results(vec![tx]);
        assert_eq!(
            r[0].code,
            Code::DuplicateEvent as i32,
            "{member}: {}",
            r[0].message
        );
        let want = format!("at height {height} by transaction {} (farm)", first_id);
        assert!(r[0].message.contains(&want), "{}", r[0].message);
        assert!(r[0].message.contains("ni:///sha-256;"), "{}", r[0].message);
        assert!(r[0].history.is_empty());
    }
    assert_eq!(w.state_snapshot(), before, "a duplicate changes nothing");
    assert_eq!(w.twin(S).event_count, events);
    // A different event is recorded.
    let tx = w.member_tx("farm", epcis_json(&other));
    w.ok(tx);
    // An event without a hash (not an object, no type) is refused under the rule.
    for bad in ["[]", r#"{"action":"ADD"}"#] {
        let tx = w.member_tx("farm", epcis_json(bad));
        let (code, message) = w.run_one(tx);
        assert_eq!(code, Code::InvalidArgument, "{bad}");
        assert!(message.contains("no EPCIS Event Hash ID"), "{message}");
    }

    // A chain from before the rule records the event twice, as it always did.
    let mut legacy = shipment_in(World::with_rules(MktRule::CURRENT, EventIdentity::None));
    for _ in 0..2 {
        let tx = legacy.member_tx("farm", epcis_json(event));
        legacy.ok(tx);
    }
    assert_eq!(legacy.twin(S).event_count, 3);
}

// ---- containment ------------------------------------------------------------------

impl World {
    /// A state record, if present.
    fn record<M: prost::Message + Default>(&self, key: &[u8]) -> Option<M> {
        self.store
            .record(key)
            .map(|bytes| M::decode(bytes).expect("decodes"))
    }

    fn containment(&self, id: &str) -> pb::Containment {
        self.record(&state::containment_key(&crate::identifiers::key(id)))
            .unwrap_or_default()
    }

    fn contents(&self, id: &str) -> Vec<String> {
        self.record::<pb::Contents>(&state::contents_key(&crate::identifiers::key(id)))
            .map(|c| c.children)
            .unwrap_or_default()
    }
}

/// An AggregationEvent at minute `minute` after T0.
fn aggregation(action: &str, parent: &str, children: &[&str], minute: i64) -> Action {
    let mut event = serde_json::json!({
        "type": "AggregationEvent",
        "eventTime": format!("2024-03-02T{:02}:{:02}:00Z", minute / 60, minute % 60),
        "eventTimeZoneOffset": "+00:00", "action": action, "bizStep": "packing",
        "parentID": parent,
    });
    if !children.is_empty() {
        event["childEPCs"] = serde_json::json!(children);
    }
    Action::RecordEpcisEvent(pb::RecordEpcisEvent {
        event_type: pb::EpcisEventType::Aggregation as i32,
        event_time_ms: T0 + minute * MIN,
        action: action.into(),
        biz_step: "packing".into(),
        epcs: std::iter::once(parent)
            .chain(children.iter().copied())
            .map(String::from)
            .collect(),
        event_json: event.to_string(),
        ..Default::default()
    })
}

const PALLET: &str = "urn:epc:id:sscc:4012345.0000000077";
const CASE_A: &str = "urn:epc:id:sgtin:4012345.011111.A";
const CASE_B: &str = "urn:epc:id:sgtin:4012345.011111.B";

/// Runs one transaction that must fail with `code` and a message containing `says`,
/// and checks that it changed nothing.
fn refused(w: &mut World, member: &str, action: Action, code: Code, says: &str) {
    let before = w.state_snapshot();
    let tx = w.member_tx(member, action);
    let (got, message) = w.run_one(tx);
    assert_eq!(got, code, "{message}");
    assert!(message.contains(says), "{message:?} does not say {says:?}");
    assert_eq!(
        w.state_snapshot(),
        before,
        "a refused packing changed state"
    );
}

/// AggregationEvents pack and unpack things, under one key per thing (the URN and the
/// Digital Link of a case are one), and every contradiction is refused with its reason
/// and changes nothing: a thing in two containers, a DELETE of what is not inside or
/// before it went in, a thing packed inside itself directly or through its containers.
#[test]
fn aggregation_events_pack_and_unpack_and_contradictions_are_refused() {
    let mut w = World::new();
    let tx = w.member_tx("farm", aggregation("ADD", PALLET, &[CASE_A, CASE_B], 10));
    w.ok(tx);
    let pallet = crate::identifiers::key(PALLET);
    assert_eq!(w.containment(CASE_A).parent, pallet);
    assert_eq!(
        w.contents(PALLET),
        [
            crate::identifiers::key(CASE_A),
            crate::identifiers::key(CASE_B)
        ]
    );
    let period = &w.containment(CASE_A).periods[0];
    assert_eq!(
        (period.from_ms, period.added_by.as_str(), period.to_height),
        (T0 + 10 * MIN, "farm", 0)
    );

    let other = "urn:epc:id:sscc:4012345.0000000088";
    // The Digital Link of case A is case A.
    let a_link = "https://id.gs1.org/01/04012345111118/21/A";
    refused(
        &mut w,
        "carrier",
        aggregation("ADD", other, &[a_link], 11),
        Code::ContainmentConflict,
        "is already inside https://id.gs1.org/00/",
    );
    refused(
        &mut w,
        "farm",
        aggregation("DELETE", other, &[CASE_A], 12),
        Code::ContainmentConflict,
        "is not inside",
    );
    refused(
        &mut w,
        "farm",
        aggregation("ADD", PALLET, &[PALLET], 12),
        Code::ContainmentConflict,
        "cannot be packed inside itself",
    );
    // The pallet into its own case: a cycle.
    refused(
        &mut w,
        "farm",
        aggregation("ADD", CASE_A, &[PALLET], 12),
        Code::ContainmentConflict,
        "would put it inside itself",
    );
    refused(
        &mut w,
        "farm",
        aggregation("DELETE", PALLET, &[CASE_A], 9),
        Code::ContainmentConflict,
        "before it was packed",
    );
    refused(
        &mut w,
        "farm",
        Action::RecordEpcisEvent(pb::RecordEpcisEvent {
            event_json: r#"{"type":"AggregationEvent","eventTime":"2024-03-02T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"DELETE"}"#.into(),
            event_type: pb::EpcisEventType::Aggregation as i32,
            event_time_ms: T0,
            action: "DELETE".into(),
            ..Default::default()
        }),
        Code::InvalidArgument,
        "needs a parentID",
    );

    // Out by its Digital Link (and its URN: one thing, listed twice), then into the
    // other pallet.
    let tx = w.member_tx("farm", aggregation("DELETE", PALLET, &[a_link, CASE_A], 20));
    w.ok(tx);
    assert_eq!(w.containment(CASE_A).parent, "");
    let closed = &w.containment(CASE_A).periods[0];
    assert_eq!(
        (closed.to_ms, closed.removed_by.as_str()),
        (T0 + 20 * MIN, "farm")
    );
    let tx = w.member_tx("carrier", aggregation("ADD", other, &[CASE_A], 21));
    w.ok(tx);
    assert_eq!(w.containment(CASE_A).periods.len(), 2);
    // A DELETE that names no child empties the container.
    let tx = w.member_tx("farm", aggregation("DELETE", PALLET, &[], 22));
    w.ok(tx);
    assert!(w.contents(PALLET).is_empty());
    assert_eq!(w.containment(CASE_B).parent, "");
    // Nesting: the other pallet into PALLET, then PALLET into case A (inside the other
    // pallet) is a cycle two levels up.
    let tx = w.member_tx("farm", aggregation("ADD", PALLET, &[other], 23));
    w.ok(tx);
    refused(
        &mut w,
        "farm",
        aggregation("ADD", CASE_A, &[PALLET], 24),
        Code::ContainmentConflict,
        "would put it inside itself",
    );
    // OBSERVE changes nothing, whatever it says.
    let before = w.containment(CASE_B);
    let tx = w.member_tx("farm", aggregation("OBSERVE", other, &[CASE_B], 25));
    w.ok(tx);
    assert_eq!(w.containment(CASE_B), before);
}

/// A shipment holds its instance-level products (not its lots) from creation to final
/// delivery; what is inside it is repacked only by its custodian, and not in transit.
#[test]
fn a_shipment_holds_its_products_and_only_its_custodian_repacks_them() {
    let mut w = World::new();
    let mut create = create(S, &[]);
    if let Action::CreateShipment(c) = &mut create {
        c.products.push(pb::Product {
            epc: PALLET.into(),
            description: "pallet".into(),
            quantity: 1,
            uom: "EA".into(),
        });
    }
    let tx = w.member_tx("farm", aggregation("ADD", PALLET, &[CASE_A], 1));
    w.ok(tx);
    let tx = w.member_tx("farm", create.clone());
    w.ok(tx);
    assert_eq!(w.contents(S), [crate::identifiers::key(PALLET)]);
    assert_eq!(w.containment(PALLET).parent, crate::identifiers::key(S));
    // The lot of `create` is not inside: a class is not one thing.
    assert!(
        w.containment("urn:epc:class:lgtin:4012345.012345.998877")
            .parent
            .is_empty()
    );
    refused(
        &mut w,
        "carrier",
        aggregation("DELETE", PALLET, &[CASE_A], 2),
        Code::NotCustodian,
        "is in shipment urn:epc:id:sscc:4012345.0000000001: shipment urn:epc:id:sscc:4012345.0000000001 is in the custody of farm, not carrier",
    );
    let tx = w.member_tx("farm", ship(S, "carrier", ""));
    w.ok(tx);
    refused(
        &mut w,
        "farm",
        aggregation("ADD", PALLET, &[CASE_B], 3),
        Code::InTransit,
        "is in transit",
    );
    let tx = w.member_tx("carrier", receive(S, false));
    w.ok(tx);
    let tx = w.member_tx("carrier", aggregation("ADD", PALLET, &[CASE_B], 4));
    w.ok(tx);
    // A second shipment cannot take the pallet while the first holds it.
    let mut second = create.clone();
    if let Action::CreateShipment(c) = &mut second {
        c.shipment_id = "urn:epc:id:sscc:4012345.0000000002".into();
    }
    refused(
        &mut w,
        "carrier",
        second.clone(),
        Code::ContainmentConflict,
        "is already inside",
    );
    // Final delivery empties the shipment; the pallet keeps its cases.
    let tx = w.member_tx("carrier", ship(S, "retailer", ""));
    w.ok(tx);
    let tx = w.member_tx("retailer", receive(S, true));
    w.ok(tx);
    assert!(w.contents(S).is_empty());
    let stay = w.containment(PALLET);
    assert_eq!(stay.parent, "");
    assert_eq!(stay.periods[0].removed_by, "retailer");
    assert_eq!(w.contents(PALLET).len(), 2);
    refused(
        &mut w,
        "retailer",
        aggregation("ADD", S, &[CASE_A], 5),
        Code::ShipmentClosed,
        "was delivered",
    );
    let tx = w.member_tx("retailer", second);
    w.ok(tx);
}

/// A chain made before the containment rule records aggregation events without
/// following them, as it always did: contradictions are not refused.
#[test]
fn a_chain_without_the_containment_rule_does_not_follow_packing() {
    let mut w = World::with_all_rules(
        MktRule::CURRENT,
        EventIdentity::CURRENT,
        ContainmentRule::None,
        LineageRule::CURRENT,
        AttestationRule::CURRENT,
    );
    let tx = w.member_tx("farm", aggregation("ADD", PALLET, &[CASE_A], 1));
    w.ok(tx);
    let tx = w.member_tx("farm", aggregation("DELETE", CASE_B, &[CASE_A], 2));
    w.ok(tx);
    assert!(w.contents(PALLET).is_empty());
    assert!(
        w.state_snapshot()
            .keys()
            .all(|k| !k.starts_with(b"a/") && !k.starts_with(b"k/"))
    );
}

// ---- lineage ----------------------------------------------------------------------

/// A TransformationEvent of lots `inputs` into lots `outputs` (class URIs), at `minute`.
fn transformation(inputs: &[&str], outputs: &[&str], minute: i64) -> Action {
    let list = |lots: &[&str]| -> Vec<serde_json::Value> {
        lots.iter()
            .map(|l| serde_json::json!({"epcClass": l, "quantity": 10, "uom": "KGM"}))
            .collect()
    };
    let event = serde_json::json!({
        "type": "TransformationEvent",
        "eventTime": format!("2024-03-02T{:02}:{:02}:00Z", minute / 60, minute % 60),
        "eventTimeZoneOffset": "+00:00", "bizStep": "commissioning",
        "inputQuantityList": list(inputs), "outputQuantityList": list(outputs),
    });
    Action::RecordEpcisEvent(pb::RecordEpcisEvent {
        event_type: pb::EpcisEventType::Transformation as i32,
        event_time_ms: T0 + minute * MIN,
        biz_step: "commissioning".into(),
        epcs: inputs
            .iter()
            .chain(outputs)
            .map(|l| l.to_string())
            .collect(),
        event_json: event.to_string(),
        ..Default::default()
    })
}

const LOT_A: &str = "urn:epc:class:lgtin:4012345.011111.A";
const LOT_B: &str = "urn:epc:class:lgtin:4012345.011111.B";
const MIX: &str = "urn:epc:class:lgtin:4012345.022222.MIX";
const SALAD: &str = "urn:epc:class:lgtin:4012345.033333.SALAD";

/// Lineage: a transformation's outputs are made from its inputs; one that would make
/// something from itself — an output among its inputs, or among their ancestors however
/// far up — is refused with the reason and changes nothing. Every transformation is
/// indexed under what it made and what it used.
#[test]
fn nothing_is_made_from_itself() {
    let mut w = World::new();
    let tx = w.member_tx("farm", transformation(&[LOT_A, LOT_B], &[MIX], 1));
    w.ok(tx);
    let key = crate::identifiers::key;
    let mix: pb::Lineage = w
        .record(&state::lineage_key(&key(MIX)))
        .expect("the mix's lineage");
    assert_eq!(mix.inputs, [key(LOT_A), key(LOT_B)]);
    refused(
        &mut w,
        "farm",
        transformation(&[LOT_A], &[LOT_A], 2),
        Code::LineageConflict,
        "is both an input and an output",
    );
    refused(
        &mut w,
        "farm",
        transformation(&[MIX], &[LOT_A], 2),
        Code::LineageConflict,
        "is an ancestor of input https://id.gs1.org/01/04012345222227/10/MIX",
    );
    // Two steps up.
    let tx = w.member_tx("retailer", transformation(&[MIX], &[SALAD], 3));
    w.ok(tx);
    refused(
        &mut w,
        "farm",
        transformation(&[SALAD], &[LOT_B], 4),
        Code::LineageConflict,
        "would make it from itself",
    );
    // The index: what made the salad, what used the mix.
    let tx = w.member_tx(
        "retailer",
        transformation(&[SALAD], &[LOT_B.replace(".B", ".C").as_str()], 5),
    );
    let exec = w
        .ledger
        .execute_block(
            &w.store,
            BlockContext {
                height: w.height + 1,
                time_ms: T0 + 20_000 * MIN,
            },
            [&tx],
        )
        .expect("executes");
    assert_eq!(
        exec.results[0].code,
        Code::Ok as i32,
        "{}",
        exec.results[0].message
    );
    let index: Vec<&[u8]> = exec
        .index_writes
        .iter()
        .map(|(k, _)| k.as_slice())
        .collect();
    let made = state::made_by_prefix(&key("urn:epc:class:lgtin:4012345.011111.C"));
    let used = state::used_by_prefix(&key(SALAD));
    assert!(index.iter().any(|k| k.starts_with(&made)), "made-by entry");
    assert!(index.iter().any(|k| k.starts_with(&used)), "used-by entry");
}

/// A chain made before the lineage rule records transformations without following
/// them: a cycle is not refused.
#[test]
fn a_chain_without_the_lineage_rule_does_not_follow_transformations() {
    let mut w = World::with_all_rules(
        MktRule::CURRENT,
        EventIdentity::CURRENT,
        ContainmentRule::CURRENT,
        LineageRule::None,
        AttestationRule::CURRENT,
    );
    let tx = w.member_tx("farm", transformation(&[LOT_A], &[MIX], 1));
    w.ok(tx);
    let tx = w.member_tx("farm", transformation(&[MIX], &[LOT_A], 2));
    w.ok(tx);
    assert!(w.state_snapshot().keys().all(|k| !k.starts_with(b"l/")));
}

// ---- member-attested sensor data ---------------------------------------------------

const LOGGER: &str = "urn:epc:id:giai:4012345.777";

/// An AssociationEvent `action` tying LOGGER to `parent`.
fn association(action: &str, parent: &str) -> Action {
    Action::RecordEpcisEvent(pb::RecordEpcisEvent {
        event_type: pb::EpcisEventType::Association as i32,
        event_time_ms: T0,
        action: action.into(),
        biz_step: "installing".into(),
        epcs: vec![parent.into(), LOGGER.into()],
        event_json: serde_json::json!({
            "type": "AssociationEvent", "eventTime": "2024-03-02T00:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": action, "bizStep": "installing",
            "parentID": parent, "childEPCs": [LOGGER],
        })
        .to_string(),
        ..Default::default()
    })
}

/// An ObjectEvent with LOGGER's temperature reports, one per hour from `first_hour`,
/// naming nothing but a place (so only the association ties them to a shipment).
fn journey(celsius: &[&str], first_hour: i64) -> Action {
    let readings: Vec<pb::EpcisSensorReading> = celsius
        .iter()
        .enumerate()
        .map(|(i, c)| pb::EpcisSensorReading {
            r#type: "gs1:Temperature".into(),
            uom: "CEL".into(),
            value_micro: Some(crate::units::parse_fixed(c, 6).expect("a number")),
            time_ms: T0 + (first_hour + i as i64) * 60 * MIN,
            device_id: LOGGER.into(),
            ..Default::default()
        })
        .collect();
    Action::RecordEpcisEvent(pb::RecordEpcisEvent {
        event_type: pb::EpcisEventType::Object as i32,
        event_time_ms: T0,
        action: "OBSERVE".into(),
        biz_step: "sensor_reporting".into(),
        read_point: "urn:epc:id:sgln:4012345.00001.0".into(),
        sensor_readings: readings,
        event_json: serde_json::json!({
            "type": "ObjectEvent", "eventTime": format!("2024-03-02T{first_hour:02}:00:00Z"),
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "sensor_reporting",
            "epcList": [], "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
            "sensorElementList": [{"sensorReport": celsius}],
        })
        .to_string(),
        ..Default::default()
    })
}

fn shipment_without_gap_limit(w: &mut World) {
    let mut action = create(S, &[]);
    if let Action::CreateShipment(c) = &mut action
        && let Some(p) = c.policy.as_mut()
    {
        p.max_reading_gap_minutes = 0;
    }
    let tx = w.member_tx("farm", action);
    w.ok(tx);
}

/// DOMAIN.md's journey of 12 hourly readings with a 3-hour excursion, imported as a
/// document by a party to the shipment through a logger tied to it: the twin's attested
/// record gives the MKT and the excursion from the document alone, and the device-signed
/// record stays empty. A member that is no party can neither tie a logger to the
/// shipment nor attest its temperatures; a document sent again changes nothing.
#[test]
fn a_journey_document_gives_its_mkt_and_excursion_as_attested_evidence() {
    let mut w = World::new();
    shipment_without_gap_limit(&mut w);
    refused(
        &mut w,
        "retailer",
        association("ADD", S),
        Code::NotCustodian,
        "only a party to shipment",
    );
    let tx = w.member_tx("farm", association("ADD", S));
    let r = w.run_results(vec![tx]);
    assert_eq!(r[0].code, Code::Ok as i32, "{}", r[0].message);
    assert_eq!(
        r[0].history.len(),
        1,
        "the association joins the shipment's history"
    );
    let hours = [
        "3.0", "3.5", "4.0", "7.5", "10.0", "12.5", "9.0", "6.0", "5.0", "4.5", "4.0", "3.5",
    ];
    let tx = w.member_tx("farm", journey(&hours, 0));
    let r = w.run_results(vec![tx]);
    assert_eq!(r[0].code, Code::Ok as i32, "{}", r[0].message);
    assert_eq!(r[0].history.len(), 1, "the readings' event joins it too");
    let twin = w.twin(S);
    assert_eq!(twin.reading_count, 0, "no device-signed reading");
    assert_eq!(twin.attested_by, ["farm"]);
    let attested = twin.attested.as_deref().expect("an attested record");
    assert_eq!(attested.reading_count, 12);
    // USP <1079.2> over the 12 readings: 6.604 °C.
    let mkt = attested.mkt_milli_c.expect("an MKT");
    assert!((6_603..=6_605).contains(&mkt), "MKT {mkt}");
    assert_eq!(attested.excursions.len(), 1);
    let x = &attested.excursions[0];
    assert_eq!(
        (x.start_ms, x.end_ms, x.duration_ms, x.peak_milli_c),
        (T0 + 4 * 60 * MIN, T0 + 7 * 60 * MIN, 3 * 3_600_000, 12_500)
    );
    assert_eq!(attested.verdict, pb::Verdict::NonConformant as i32);
    assert!(
        attested.reasons[0].contains("excursion budget exceeded"),
        "{:?}",
        attested.reasons
    );

    // The same document again: every reading is at or before the logger's last.
    let tx = w.member_tx("farm", journey(&hours, 0));
    let _ = w.run_results(vec![tx]);
    assert_eq!(
        w.twin(S).attested.as_deref().map(|a| a.reading_count),
        Some(12)
    );
    // A member that is no party: its reports do not count.
    let tx = w.member_tx("retailer", journey(&["20.0"], 20));
    w.ok(tx);
    assert_eq!(
        w.twin(S).attested.as_deref().map(|a| a.reading_count),
        Some(12)
    );
    // Untied, the logger's next reports count for nothing.
    let tx = w.member_tx("farm", association("DELETE", S));
    w.ok(tx);
    let tx = w.member_tx("farm", journey(&["5.0"], 30));
    w.ok(tx);
    assert_eq!(
        w.twin(S).attested.as_deref().map(|a| a.reading_count),
        Some(12)
    );
}

/// A chain made before the attestation rule records imported sensor reports without
/// applying them.
#[test]
fn a_chain_without_the_attestation_rule_does_not_apply_imported_readings() {
    let mut w = World::with_all_rules(
        MktRule::CURRENT,
        EventIdentity::CURRENT,
        ContainmentRule::CURRENT,
        LineageRule::CURRENT,
        AttestationRule::None,
    );
    shipment_without_gap_limit(&mut w);
    let tx = w.member_tx("farm", association("ADD", S));
    w.ok(tx);
    let tx = w.member_tx("farm", journey(&["3.0", "4.0"], 0));
    w.ok(tx);
    assert!(w.twin(S).attested.is_none());
}

/// New outputs need no cycle check, so lineages grow without bound; re-making a lot that
/// was already used, from inputs whose lineage is larger than the check walks, is
/// refused as too large to check, not accepted unchecked: each transformation's cost to
/// every node stays bounded.
#[test]
fn a_lineage_too_large_to_check_is_refused() {
    let mut w = World::new();
    let lot = |i: usize| format!("urn:epc:class:lgtin:4012345.011111.L{i}");
    let side = |i: usize| format!("urn:epc:class:lgtin:4012345.011111.R{i}");
    let txs: Vec<_> = (1..=1200)
        .map(|i| {
            let action = transformation(&[&lot(i - 1), &side(i)], &[&lot(i)], 1);
            w.member_tx("farm", action)
        })
        .collect();
    let results = w.run(txs);
    assert!(
        results.iter().all(|(c, _)| *c == Code::Ok),
        "{:?}",
        results.last()
    );
    refused(
        &mut w,
        "farm",
        transformation(&[&lot(1200)], &[&lot(0)], 2),
        Code::LineageConflict,
        "more than 1000 ancestors: too many to check",
    );
    // A new lot from the same inputs is no cycle and needs no walk.
    let tx = w.member_tx("farm", transformation(&[&lot(1200)], &[&lot(1201)], 2));
    w.ok(tx);
}

fn conflict(first: &CheckedTx, second: &CheckedTx) -> Action {
    Action::ReportDeviceConflict(pb::ReportDeviceConflict {
        first: prost::Message::encode_to_vec(&first.signed),
        second: prost::Message::encode_to_vec(&second.signed),
    })
}

/// A clone: the device's key signs a second body for a sequence already used. The
/// ledger refuses the second reading, and any member's report of the pair flags the
/// device; from then on its key signs nothing, until the owner rotates it. Evidence that
/// proves nothing is refused, changing nothing.
#[test]
fn a_device_key_proven_to_sign_two_readings_of_one_sequence_is_flagged() {
    let mut w = with_shipment();
    let genuine = w.reading_seq(D, 1, S, T0 + MIN, 5_000);
    w.ok(genuine.clone());
    let clone = w.reading_seq(D, 1, S, T0 + MIN, 3_000);
    assert_eq!(w.run_one(clone.clone()).0, Code::SequenceReplayed);
    let later = w.reading_seq(D, 2, S, T0 + 2 * MIN, 5_000);

    // Proof that proves nothing changes nothing.
    refused(
        &mut w,
        "carrier",
        conflict(&genuine, &later),
        Code::BadEvidence,
        "no conflict",
    );
    refused(
        &mut w,
        "carrier",
        conflict(&genuine, &genuine),
        Code::BadEvidence,
        "one transaction",
    );

    // Any member may report it; the device's owner need not agree.
    let tx = w.member_tx("carrier", conflict(&clone, &genuine));
    let result = w.run_results(vec![tx]).remove(0);
    assert_eq!(result.code, Code::Ok as i32, "{}", result.message);
    assert_eq!(
        result.history,
        vec![pb::HistoryEntry {
            kind: pb::HistoryKind::Device as i32,
            subject: D.into(),
            seq: 2,
        }],
        "the report is in the device's lifecycle history"
    );
    let d = w.device(D);
    assert_eq!(d.conflicts.len(), 1);
    let c = &d.conflicts[0];
    assert_eq!(c.kind, pb::DeviceConflictKind::SameSequence as i32);
    assert_eq!((c.reported_by.as_str(), c.first_sequence), ("carrier", 1));
    assert_eq!(c.height, w.height);
    assert!(
        crate::conflicts::flags(&d)[0].contains("flagged as cloned"),
        "{:?}",
        crate::conflicts::flags(&d)
    );

    // Flagged once per key.
    refused(
        &mut w,
        "retailer",
        conflict(&genuine, &clone),
        Code::BadEvidence,
        "already flagged",
    );
    // The key signs nothing any more.
    let (code, message) = w.run_one(later);
    assert_eq!(code, Code::DeviceKeyCompromised, "{message}");
    assert!(message.contains("rotates the key"), "{message}");

    // A new key works again; the flag stays on the device's record.
    let new_key = SecretKey::generate(Scheme::Ed25519);
    let tx = w.member_tx(
        "farm",
        Action::RotateDeviceKey(pb::RotateDeviceKey {
            device_id: D.into(),
            scheme: pb::SignatureScheme::Ed25519 as i32,
            public_key: new_key.public_key(),
        }),
    );
    w.ok(tx);
    w.devices.get_mut(D).expect("device").0 = new_key;
    let tx = w.reading_seq(D, 3, S, T0 + 3 * MIN, 5_000);
    w.ok(tx);
    assert_eq!(w.device(D).conflicts.len(), 1);
    // The old key's pair no longer names the device's key.
    refused(
        &mut w,
        "carrier",
        conflict(&genuine, &clone),
        Code::BadEvidence,
        "not device",
    );
}

/// The other conflict: a higher sequence whose reading is older than a lower one's (a
/// clone with its own counter and clock). The ledger refuses the older reading
/// (BAD_TIMESTAMP), and the pair flags the device.
#[test]
fn a_device_key_whose_clock_runs_backwards_across_sequences_is_flagged() {
    let mut w = with_shipment();
    let first = w.reading_seq(D, 10, S, T0 + 10 * MIN, 5_000);
    w.ok(first.clone());
    let older = w.reading_seq(D, 11, S, T0 + 5 * MIN, 5_000);
    assert_eq!(w.run_one(older.clone()).0, Code::BadTimestamp);
    let tx = w.member_tx("retailer", conflict(&older, &first));
    w.ok(tx);
    let c = &w.device(D).conflicts[0];
    assert_eq!(c.kind, pb::DeviceConflictKind::ClockReversed as i32);
    assert_eq!((c.first_sequence, c.second_sequence), (10, 11));
}

#[test]
fn a_chain_without_the_device_conflict_rule_refuses_reports() {
    let mut w = shipment_in(World::with_device_conflicts(
        MktRule::CURRENT,
        EventIdentity::CURRENT,
        ContainmentRule::CURRENT,
        LineageRule::CURRENT,
        AttestationRule::CURRENT,
        DeviceConflictRule::None,
    ));
    let genuine = w.reading_seq(D, 1, S, T0 + MIN, 5_000);
    w.ok(genuine.clone());
    let clone = w.reading_seq(D, 1, S, T0 + MIN, 3_000);
    refused(
        &mut w,
        "carrier",
        conflict(&genuine, &clone),
        Code::BadEvidence,
        "device_conflicts",
    );
}
