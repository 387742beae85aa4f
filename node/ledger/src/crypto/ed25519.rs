//! Ed25519 as tracechain checks it: the byte-level encoding rules (canonical `A`, `R` and
//! `s`, no small-order points) and the cofactored equation, one signature at a time or
//! many in batches whose verdicts equal the single checks (the parent module's docs say
//! why).

use rayon::prelude::*;

use super::{CryptoError, ED25519_PUBLIC_KEY_LEN, SIGNATURE_LEN, Scheme};

/// `2^255 - 19`, little-endian: an encoded coordinate must be below it.
pub(super) const FIELD_PRIME: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// The order `l` of the prime-order subgroup, little-endian: `s` must be below it.
pub(super) const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// The encodings of the eight points of small order (the torsion subgroup) whose `y`
/// is below the field prime: the canonical ones, plus `(0, 1)` and `(0, -1)` with the
/// sign bit set (`x = 0` has no negative). Other encodings of these points have
/// `y >= p` and are refused as non-canonical. The test `small_order_encodings_are_exactly_these`
/// derives this list from curve arithmetic.
pub(super) const SMALL_ORDER_ENCODINGS: [[u8; 32]; 10] = {
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
pub(super) fn below(bytes: &[u8; 32], bound: &[u8; 32], mask_top_bit: bool) -> bool {
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
pub(super) fn ed25519_point_acceptable(point: &[u8; 32]) -> bool {
    below(point, &FIELD_PRIME, true) && !SMALL_ORDER_ENCODINGS.contains(point)
}

/// The cheap half of the Ed25519 rule: lengths, canonical and not-small-order `A` and
/// `R`, canonical `s`. Returns the key bytes and the parsed signature.
pub(super) fn ed25519_precheck(
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

pub(super) fn zebra_key(key: [u8; 32]) -> Result<ed25519_zebra::VerificationKey, CryptoError> {
    ed25519_zebra::VerificationKey::try_from(key).map_err(|_| CryptoError::InvalidPublicKey {
        scheme: Scheme::Ed25519,
        reason: "not a point on the curve",
    })
}

pub(super) fn ed25519_equation_failed() -> CryptoError {
    CryptoError::BadSignature {
        scheme: Scheme::Ed25519,
        reason: "verification equation failed (or R is not a point on the curve)",
    }
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
/// equal to what [`verify`](super::verify) says about that item alone. Items are checked in batches of
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
