//! Key, signature and key-file rules, with vectors and crafted edge cases.

use super::tests_support::p256_negate_s;
use std::fs;

use super::ed25519::{SMALL_ORDER_ENCODINGS, ed25519_point_acceptable};
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
        Err(CryptoError::HighS {
            encoding: super::SignatureEncoding::Fixed
        })
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

fn items<'a>(pks: &'a [Vec<u8>], msgs: &'a [Vec<u8>], sigs: &'a [Vec<u8>]) -> Vec<Ed25519Item<'a>> {
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
