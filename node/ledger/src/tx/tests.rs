//! The decode point's rules, one table or case per rule.

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

fn to_der(fixed: &[u8]) -> Vec<u8> {
    p256::ecdsa::Signature::from_slice(fixed)
        .expect("r || s")
        .to_der()
        .as_bytes()
        .to_vec()
}

/// Secure elements (SE050, OPTIGA) return P-256 signatures in DER: accepted as well as
/// `r || s`, strictly, low-S only, with errors that name the encoding seen.
#[test]
fn a_p256_signature_in_strict_der_is_accepted() {
    let key = p256();
    let signed = sign_body(&device_body(&key), &key);
    let der = to_der(&signed.signature);
    assert_ne!(der.len(), 64);
    let fixed = check(signed.clone(), CHAIN).expect("r || s");
    let checked = check(
        pb::SignedTx {
            signature: der.clone(),
            ..signed.clone()
        },
        CHAIN,
    )
    .expect("DER");
    assert_eq!(
        checked.id, fixed.id,
        "one transaction, whatever the encoding"
    );

    // High S in DER is refused as high S, and says it saw DER.
    let mut high = signed.signature.clone();
    let twin = crate::crypto::tests_support::p256_negate_s(&high[32..]);
    high[32..].copy_from_slice(&twin);
    let err = check(
        pb::SignedTx {
            signature: to_der(&high),
            ..signed.clone()
        },
        CHAIN,
    )
    .expect_err("high S");
    assert!(
        matches!(
            err,
            TxError::HighS {
                encoding: crypto::SignatureEncoding::Der,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("(DER)"), "{err}");

    // Not strict DER: an integer with a needless leading zero, a long-form length where
    // the short form fits, a byte after the sequence, a truncated sequence.
    let (r, s) = (&signed.signature[..32], &signed.signature[32..]);
    // A minimal DER INTEGER's content: no leading zeros, one if the top bit is set.
    let minimal = |v: &[u8]| {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|&b| b == 0).collect();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        v
    };
    let int = |content: Vec<u8>| [vec![0x02, content.len() as u8], content].concat();
    let seq = |body: Vec<u8>| [vec![0x30, body.len() as u8], body].concat();
    let padded = seq([int(minimal(r)), int([vec![0], minimal(s)].concat())].concat());
    let long_length = {
        let body = [int(minimal(r)), int(minimal(s))].concat();
        [vec![0x30, 0x81, body.len() as u8], body].concat()
    };
    assert_eq!(seq([int(minimal(r)), int(minimal(s))].concat()), der);
    let trailing = [der.clone(), vec![0]].concat();
    let truncated = der[..der.len() - 1].to_vec();
    for (what, bad) in [
        ("padded integer", padded),
        ("long-form length", long_length),
        ("trailing byte", trailing),
        ("truncated", truncated),
    ] {
        let err = decode(
            pb::SignedTx {
                signature: bad,
                ..signed.clone()
            },
            CHAIN,
        )
        .expect_err(what);
        assert!(
            matches!(err, TxError::SignatureEncoding { .. }),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains("strict DER"), "{what}: {err}");
    }
}

/// An Ed25519 key with a DER-shaped signature: the signer's scheme is wrong.
#[test]
fn a_der_signature_under_an_ed25519_key_is_named_as_such() {
    let key = ed();
    let p = p256();
    let signed = sign_body(&device_body(&key), &key);
    let der = to_der(&sign_body(&device_body(&p), &p).signature);
    let got = der.len();
    let err = decode(
        pb::SignedTx {
            signature: der,
            ..signed
        },
        CHAIN,
    )
    .expect_err("DER under an ed25519 key");
    assert_eq!(err, TxError::DerSignature { got });
    assert!(err.to_string().contains("DER"), "{err}");
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
