//! Checks the test vectors of docs/SIGNING.md against the node's code. The vectors are
//! read from the document itself, so the document and the code cannot drift apart.

use prost::Message as _;
use tracechain_node::crypto::{self, Scheme, SecretKey};
use tracechain_node::tx::{self, SignerKind, TX_SIGN_DOMAIN, TxId};
use tracechain_proto::v1 as pb;

const SIGNING_MD: &str = include_str!("../../docs/SIGNING.md");

/// One `vector:` block of the document.
#[derive(Debug, Default)]
struct Vector {
    name: String,
    secret_key: Vec<u8>,
    public_key: Vec<u8>,
    body: Vec<u8>,
    signature: Vec<u8>,
    /// The same signature in ASN.1 DER, as secure elements return it (P-256 only).
    signature_der: Option<Vec<u8>>,
    tx_id: String,
}

fn hex_field(value: &str, what: &str) -> Vec<u8> {
    hex::decode(value).unwrap_or_else(|e| panic!("SIGNING.md: {what} is not hex: {e}"))
}

/// Parses every `vector: <name>` block: `key: hex` lines up to the end of the block.
fn vectors() -> Vec<Vector> {
    let mut vectors = Vec::new();
    let mut current: Option<Vector> = None;
    for line in SIGNING_MD.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("vector: ") {
            if let Some(v) = current.take() {
                vectors.push(v);
            }
            current = Some(Vector {
                name: name.to_owned(),
                ..Vector::default()
            });
            continue;
        }
        let Some(v) = current.as_mut() else { continue };
        match line.split_once(": ") {
            Some(("secret_key", value)) => v.secret_key = hex_field(value, "secret_key"),
            Some(("public_key", value)) => v.public_key = hex_field(value, "public_key"),
            Some(("body", value)) => v.body = hex_field(value, "body"),
            Some(("signature", value)) => v.signature = hex_field(value, "signature"),
            Some(("signature_der", value)) => {
                v.signature_der = Some(hex_field(value, "signature_der"));
            }
            Some(("tx_id", value)) => v.tx_id = value.to_owned(),
            _ => vectors.extend(current.take()),
        }
    }
    vectors.extend(current);
    vectors
}

/// The body each vector describes in the document's table.
fn expected_body(scheme: Scheme, public_key: Vec<u8>) -> pb::TxBody {
    let (sequence, temperature, humidity, lat, lon) = match scheme {
        Scheme::Ed25519 => (42, 4_250, 650, 525_200_066, 134_049_540),
        Scheme::P256 => (7, -18_500, 420, -338_688_000, 1_512_093_000),
    };
    pb::TxBody {
        chain_id: "tracechain-devnet".into(),
        signer: Some(pb::Signer {
            kind: pb::SignerKind::Device as i32,
            id: "urn:epc:id:giai:4000001.111".into(),
            scheme: pb::SignatureScheme::from(scheme) as i32,
            public_key,
        }),
        sequence,
        time_ms: 1_767_225_600_000,
        action: Some(pb::tx_body::Action::SensorReport(pb::SensorReport {
            shipment_id: "urn:epc:id:sscc:0614141.1234567890".into(),
            observed_at_ms: 1_767_225_595_000,
            temperature_milli_c: temperature,
            humidity_permille: Some(humidity),
            location: Some(pb::GeoPoint {
                lat_e7: lat,
                lon_e7: lon,
            }),
        })),
    }
}

#[test]
fn document_has_both_vectors() {
    let names: Vec<String> = vectors().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["ed25519", "p256"]);
}

#[test]
fn vectors_match_the_code() {
    for v in vectors() {
        let scheme = match v.name.as_str() {
            "ed25519" => Scheme::Ed25519,
            "p256" => Scheme::P256,
            other => panic!("unknown vector {other}"),
        };
        let name = &v.name;

        // The key: the public key is the one derived from the secret key.
        let key = SecretKey::from_bytes(scheme, &v.secret_key).expect("vector secret key");
        assert_eq!(key.public_key(), v.public_key, "{name}: public key");

        // The body decodes to the TxBody the document describes, and prost encodes that
        // TxBody to the same bytes (the vector uses field-number order).
        let body = pb::TxBody::decode(v.body.as_slice()).expect("vector body decodes");
        let expected = expected_body(scheme, v.public_key.clone());
        assert_eq!(body, expected, "{name}: body fields");
        assert_eq!(expected.encode_to_vec(), v.body, "{name}: body bytes");

        // The signature verifies over prefix || body, with the exact bytes.
        let mut message = TX_SIGN_DOMAIN.to_vec();
        message.extend_from_slice(&v.body);
        crypto::verify(scheme, &v.public_key, &message, &v.signature)
            .unwrap_or_else(|e| panic!("{name}: signature does not verify: {e}"));

        // Signing is deterministic, so the node reproduces the signature, both from the
        // message and through sign_body.
        assert_eq!(key.sign(&message), v.signature, "{name}: signature");
        let signed = tx::sign_body(&expected, &key);
        assert_eq!(signed.body, v.body, "{name}: sign_body body");
        assert_eq!(signed.signature, v.signature, "{name}: sign_body signature");

        // The id is blake3(body), shown as lowercase hex.
        let id = TxId::of_body(&v.body);
        assert_eq!(id.to_string(), v.tx_id, "{name}: tx id");
        assert_eq!(*id.as_bytes(), *blake3::hash(&v.body).as_bytes());
        assert_eq!(v.tx_id.parse::<TxId>().ok(), Some(id));

        // And the full decode point accepts the envelope.
        let checked = tx::check(
            pb::SignedTx {
                body: v.body.clone(),
                signature: v.signature.clone(),
            },
            "tracechain-devnet",
        )
        .unwrap_or_else(|e| panic!("{name}: tx::check refused the vector: {e}"));
        assert_eq!(checked.id, id);
        assert_eq!(checked.signer.kind, SignerKind::Device);
        assert_eq!(checked.signer.scheme, scheme);

        // The DER form: the same (r, s), accepted with the same id.
        match (scheme, &v.signature_der) {
            (Scheme::P256, Some(der)) => {
                let (fixed, encoding) = crypto::p256_fixed(der).expect("strict DER");
                assert_eq!(
                    fixed.to_vec(),
                    v.signature,
                    "{name}: DER is the same r || s"
                );
                assert_eq!(encoding, crypto::SignatureEncoding::Der);
                let checked = tx::check(
                    pb::SignedTx {
                        body: v.body.clone(),
                        signature: der.clone(),
                    },
                    "tracechain-devnet",
                )
                .unwrap_or_else(|e| panic!("{name}: the DER form was refused: {e}"));
                assert_eq!(checked.id, id);
            }
            (Scheme::P256, None) => panic!("{name}: the document has no signature_der"),
            (_, der) => assert!(der.is_none(), "{name}: DER is an ECDSA encoding"),
        }
    }
}

#[test]
fn documented_prefix_matches_the_code() {
    assert_eq!(TX_SIGN_DOMAIN, b"tracechain/tx/v1\0");
    assert!(SIGNING_MD.contains("74 72 61 63 65 63 68 61 69 6e 2f 74 78 2f 76 31 00"));
    let spaced: Vec<String> = TX_SIGN_DOMAIN.iter().map(|b| format!("{b:02x}")).collect();
    assert!(SIGNING_MD.contains(&spaced.join(" ")));
}
