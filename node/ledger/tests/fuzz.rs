//! Property-based fuzzing of the points where outside bytes enter the ledger: the
//! transaction decode point (`SignedTx` → checked transaction) and the EPCIS 2.0 parser.
//! Whatever comes in, the answer is a result — never a panic — and a changed transaction
//! never passes as the one that was signed. A bounded number of cases per property runs in
//! the test command (`PROPTEST_CASES` raises it for a longer run).

use proptest::prelude::*;
use prost::Message;
use serde_json::Value;
use tracechain_ledger::{
    crypto::{Scheme, SecretKey},
    epcis::parse::parse_document,
    tx,
};
use tracechain_proto::v1::{self as pb, tx_body::Action};

const CHAIN: &str = "fuzz-chain";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        ..ProptestConfig::default()
    }
}

/// A valid, signed device reading: the seed of the mutation properties.
fn signed_reading() -> pb::SignedTx {
    let key = SecretKey::from_bytes(Scheme::Ed25519, &[9; 32]).expect("seed");
    let body = pb::TxBody {
        chain_id: CHAIN.into(),
        signer: Some(pb::Signer {
            kind: pb::SignerKind::Device as i32,
            id: "urn:epc:id:giai:4012345.1".into(),
            scheme: pb::SignatureScheme::Ed25519 as i32,
            public_key: key.public_key(),
        }),
        sequence: 7,
        time_ms: 1_700_000_000_000,
        action: Some(Action::SensorReport(pb::SensorReport {
            shipment_id: "S-1".into(),
            observed_at_ms: 1_700_000_000_000,
            temperature_milli_c: 4_500,
            humidity_permille: Some(550),
            location: Some(pb::GeoPoint {
                lat_e7: 525_200_000,
                lon_e7: 134_050_000,
            }),
        })),
    };
    tx::sign_body(&body, &key)
}

const MINIMAL_EPCIS: &str = r#"{
  "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
  "type": "EPCISDocument",
  "schemaVersion": "2.0",
  "creationDate": "2026-03-02T09:00:00Z",
  "epcisBody": {
    "eventList": [
      {
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T09:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:4012345.011111.1"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 4.5, "uom": "CEL"}]}]
      }
    ]
  }
}"#;

/// Any JSON value, a few levels deep: what a hostile or careless EPCIS producer might put
/// where the parser expects something else.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("urn:epc:id:sgtin:4012345.011111.1".into())),
        Just(Value::String("2026-02-30T25:61:00+99:00".into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path to a value inside `v` (object keys and array indices).
fn paths(v: &Value, prefix: Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let mut p = prefix.clone();
                p.push(PathStep::Key(k.clone()));
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(PathStep::Index(i));
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at_mut<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    let mut cur = v;
    for step in path {
        cur = match step {
            PathStep::Key(k) => cur.get_mut(k.as_str())?,
            PathStep::Index(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes as a `SignedTx`: a decode error or a checked result, never a panic.
    #[test]
    fn arbitrary_bytes_at_the_decode_point(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(signed) = pb::SignedTx::decode(bytes.as_slice()) {
            let _ = tx::check(signed, CHAIN);
        }
        // The same bytes as the body of a transaction, with and without a signature.
        let _ = tx::check(pb::SignedTx { body: bytes.clone(), signature: Vec::new() }, CHAIN);
        let _ = tx::check(pb::SignedTx { body: bytes, signature: vec![1; 64] }, CHAIN);
    }

    /// A signed transaction with bytes of its encoding changed: accepted only if the body and
    /// signature it decodes to are exactly the ones signed (the change hit an ignorable
    /// part of the wrapper); anything else is refused, never accepted as something else.
    #[test]
    fn a_changed_transaction_never_passes_as_signed(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        truncate in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let original = signed_reading();
        prop_assert!(tx::check(original.clone(), CHAIN).is_ok());
        let mut bytes = original.encode_to_vec();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some(at) = truncate {
            bytes.truncate(at.index(bytes.len()));
        }
        if let Ok(signed) = pb::SignedTx::decode(bytes.as_slice()) {
            let same = signed.body == original.body && signed.signature == original.signature;
            prop_assert_eq!(tx::check(signed, CHAIN).is_ok(), same);
        }
    }

    /// Arbitrary text as an EPCIS document: events or a reason, never a panic.
    #[test]
    fn arbitrary_text_as_an_epcis_document(text in ".{0,600}") {
        let _ = parse_document(&text);
    }

    /// A valid EPCIS document with one value anywhere in it replaced by arbitrary JSON:
    /// events or a reason, never a panic; and an unchanged document still parses.
    #[test]
    fn an_epcis_document_with_any_value_replaced(
        at in any::<prop::sample::Index>(),
        value in json_value(),
    ) {
        let mut doc: Value = serde_json::from_str(MINIMAL_EPCIS).expect("fixture");
        prop_assert!(parse_document(MINIMAL_EPCIS).is_ok());
        let mut all = Vec::new();
        paths(&doc, Vec::new(), &mut all);
        let path = &all[at.index(all.len())];
        if let Some(slot) = at_mut(&mut doc, path) {
            *slot = value;
        }
        let _ = parse_document(&doc.to_string());
    }
}
