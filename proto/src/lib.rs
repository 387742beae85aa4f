//! The `tracechain.v1` protobuf schema: generated message types and, with the `grpc`
//! feature (on by default), the gRPC stubs.
//!
//! protobuf (prost) is tracechain's one format: on the wire, between nodes and on
//! disk. Raw types stop at the crate boundaries of their users: the node converts
//! them into checked domain values at one decode point (`node::tx`).

#![forbid(unsafe_code)]

#[cfg(feature = "grpc")]
pub mod codec;

/// Generated types of package `tracechain.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tracechain.v1.rs"));
}

/// Encoded `FileDescriptorSet` of the schema, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tracechain_descriptor.bin"));

pub use v1::*;
