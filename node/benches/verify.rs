//! Signature verification rates on one core: the figures the cluster's ceiling is
//! computed from (every node checks every device signature once, so the ceiling is
//! cores × rate ÷ nodes). docs/PERFORMANCE.md records a run.
//!
//! ```sh
//! cargo bench -p tracechain-node --bench verify
//! ```
//!
//! Everything runs on one thread: batched paths in a one-thread rayon pool, so the
//! figures are per core.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tracechain_node::{
    crypto::{self, Ed25519Item, Scheme, SecretKey},
    loadgen, tx,
};

/// Signatures per measured iteration.
const N: usize = 1_024;

struct Signed {
    keys: Vec<Vec<u8>>,
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Vec<u8>>,
}

/// `N` signatures by `N` distinct keys (as with many devices) over reading-sized
/// messages.
fn signed(scheme: Scheme) -> Signed {
    let mut out = Signed {
        keys: Vec::new(),
        msgs: Vec::new(),
        sigs: Vec::new(),
    };
    for i in 0..N {
        let key = SecretKey::generate(scheme);
        let msg = tx::signing_message(format!("{i:0>180}").as_bytes());
        out.sigs.push(key.sign(&msg));
        out.keys.push(key.public_key());
        out.msgs.push(msg);
    }
    out
}

fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool")
}

fn ed25519(c: &mut Criterion) {
    let s = signed(Scheme::Ed25519);
    let dalek_keys: Vec<ed25519_dalek::VerifyingKey> = s
        .keys
        .iter()
        .map(|k| ed25519_dalek::VerifyingKey::try_from(k.as_slice()).expect("key"))
        .collect();
    let dalek_sigs: Vec<ed25519_dalek::Signature> = s
        .sigs
        .iter()
        .map(|g| ed25519_dalek::Signature::from_slice(g).expect("signature"))
        .collect();
    let pool = one_thread();

    let mut group = c.benchmark_group("ed25519");
    group.sample_size(20);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("dalek verify_strict, one at a time", |b| {
        b.iter(|| {
            for i in 0..N {
                dalek_keys[i]
                    .verify_strict(&s.msgs[i], &dalek_sigs[i])
                    .expect("valid");
            }
        })
    });
    group.bench_function(
        "dalek verify_batch x64 (not used: verdicts depend on the batch)",
        |b| {
            b.iter(|| {
                for start in (0..N).step_by(64) {
                    let msgs: Vec<&[u8]> = s.msgs[start..start + 64]
                        .iter()
                        .map(Vec::as_slice)
                        .collect();
                    ed25519_dalek::verify_batch(
                        &msgs,
                        &dalek_sigs[start..start + 64],
                        &dalek_keys[start..start + 64],
                    )
                    .expect("valid");
                }
            })
        },
    );
    group.bench_function("tracechain rule, one at a time", |b| {
        b.iter(|| {
            for i in 0..N {
                crypto::verify(Scheme::Ed25519, &s.keys[i], &s.msgs[i], &s.sigs[i]).expect("valid");
            }
        })
    });
    let items: Vec<Ed25519Item<'_>> = (0..N)
        .map(|i| Ed25519Item {
            public_key: &s.keys[i],
            msg: &s.msgs[i],
            signature: &s.sigs[i],
        })
        .collect();
    group.bench_function(
        format!("tracechain rule, batches of {}", crypto::ED25519_BATCH),
        |b| {
            b.iter(|| {
                let verdicts = pool.install(|| crypto::verify_ed25519_all(&items));
                assert!(verdicts.iter().all(Result::is_ok));
            })
        },
    );
    // A batch with one bad signature falls back to single checks: the cost a client
    // sending bad signatures can impose.
    let mut bad_sigs = s.sigs.clone();
    for start in (0..N).step_by(crypto::ED25519_BATCH) {
        bad_sigs[start][40] ^= 1;
    }
    let bad_items: Vec<Ed25519Item<'_>> = (0..N)
        .map(|i| Ed25519Item {
            public_key: &s.keys[i],
            msg: &s.msgs[i],
            signature: &bad_sigs[i],
        })
        .collect();
    group.bench_function("tracechain rule, one bad signature in every batch", |b| {
        b.iter(|| pool.install(|| crypto::verify_ed25519_all(&bad_items)))
    });
    group.finish();

    // ed25519-zebra's batch alone, by batch size: what ED25519_BATCH was chosen from.
    let mut group = c.benchmark_group("ed25519-zebra batch size");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    for size in [8usize, 16, 32, 64, 128, 256] {
        group.bench_function(format!("{size}"), |b| {
            b.iter_batched(
                || {
                    (0..N)
                        .map(|i| {
                            let key: [u8; 32] = s.keys[i].as_slice().try_into().expect("32");
                            let sig: [u8; 64] = s.sigs[i].as_slice().try_into().expect("64");
                            (key, sig)
                        })
                        .collect::<Vec<_>>()
                },
                |raw| {
                    for (chunk, start) in raw.chunks(size).zip((0..N).step_by(size)) {
                        let mut batch = ed25519_zebra::batch::Verifier::new();
                        for (j, (key, sig)) in chunk.iter().enumerate() {
                            batch.queue((
                                ed25519_zebra::VerificationKeyBytes::from(*key),
                                ed25519_zebra::Signature::from_bytes(sig),
                                &s.msgs[start + j],
                            ));
                        }
                        batch.verify(rand010::rng()).expect("valid");
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn p256(c: &mut Criterion) {
    let s = signed(Scheme::P256);
    let mut group = c.benchmark_group("p256");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("ring, low-S (tracechain rule)", |b| {
        b.iter(|| {
            for i in 0..N {
                crypto::verify(Scheme::P256, &s.keys[i], &s.msgs[i], &s.sigs[i]).expect("valid");
            }
        })
    });
    group.finish();
}

fn transactions(c: &mut Criterion) {
    // Whole admission checks of real sensor readings: decode, field checks, id hash,
    // signature.
    let pool = one_thread();
    let mut group = c.benchmark_group("transactions");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    for scheme in ["ed25519", "p256"] {
        let devices = loadgen::devices(64, scheme);
        let shipments: Vec<String> = (0..devices.len().div_ceil(loadgen::DEVICES_PER_SHIPMENT))
            .map(|i| format!("urn:epc:id:sscc:4012345.{i:010}"))
            .collect();
        let readings = loadgen::readings(
            "bench",
            &devices,
            &shipments,
            N,
            1,
            1_000,
            1_700_000_000_000,
        )
        .remove(0);
        group.bench_function(format!("decode and verify, {scheme}"), |b| {
            b.iter_batched(
                || readings.clone(),
                |txs| {
                    let unverified: Vec<_> = txs
                        .into_iter()
                        .map(|t| tx::decode(t, "bench").expect("decodes"))
                        .collect();
                    let checked = pool.install(|| tx::verify_all(unverified));
                    assert!(checked.iter().all(Result::is_ok));
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("blake3");
    let body = vec![7u8; 200];
    group.throughput(Throughput::Elements(1));
    group.bench_function("200-byte body", |b| b.iter(|| blake3::hash(&body)));
    group.finish();
}

criterion_group!(benches, ed25519, p256, transactions);
criterion_main!(benches);
