//! Compiles the `tracechain.v1` schema with the pure-Rust `protox` compiler (no system
//! `protoc`) and generates prost types and, with the `grpc` feature, tonic stubs. The encoded descriptor set is
//! kept for gRPC reflection.

use std::{env, fs, path::PathBuf};

use protox::prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tracechain/v1/tx.proto",
        "proto/tracechain/v1/chain.proto",
        "proto/tracechain/v1/state.proto",
        "proto/tracechain/v1/audit.proto",
        "proto/tracechain/v1/api.proto",
        "proto/tracechain/v1/consensus.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("tracechain_descriptor.bin"), fds.encode_to_vec())?;
    // Stubs only with the `grpc` feature: without it the generated code names no tonic type.
    let grpc = env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        // Bytes that are not the expected message are the client's fault (src/codec.rs).
        .codec_path("crate::codec::StrictCodec")
        .compile_fds(fds)?;
    Ok(())
}
