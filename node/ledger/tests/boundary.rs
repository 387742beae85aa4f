//! The crate's boundary, checked rather than promised: none of the node's I/O crates is
//! among its dependencies, and it builds for `wasm32-unknown-unknown`, where a browser
//! verifier or a firmware-side signing tool would run it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Crates that do I/O for the node (runtime, RPC, storage, network) and their engines.
const IO_CRATES: &[&str] = &[
    "tokio",
    "tonic",
    "hyper",
    "mio",
    "rocksdb",
    "librocksdb-sys",
    "libp2p",
    "tracechain-storage",
    "tracechain-p2p",
    "tracechain-node",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cargo(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace())
        .output()
        .unwrap_or_else(|e| panic!("cargo {args:?}: {e}"));
    assert!(
        out.status.success(),
        "cargo {args:?} failed (for the wasm32 build: `rustup target add \
         wasm32-unknown-unknown`, which `scripts/ensure-deps --test` runs):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn no_io_crate_is_a_dependency_on_any_platform() {
    let out = cargo(&[
        "tree",
        "--locked",
        "-p",
        "tracechain-ledger",
        "-e",
        "normal",
        "--target",
        "all",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"tracechain-proto"), "{tree}");
    for io in IO_CRATES {
        assert!(!names.contains(io), "{io} is a dependency:\n{tree}");
    }
}

#[test]
fn it_builds_for_wasm32() {
    // A target directory of its own, kept between runs: the first build compiles the
    // dependencies for wasm32 once.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm32");
    let target_dir = target_dir.to_str().expect("a UTF-8 path");
    cargo(&[
        "build",
        "--locked",
        "-p",
        "tracechain-ledger",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--target-dir",
        target_dir,
    ]);
}
