//! tracechain's deterministic core: everything a node, an auditor, a light client or a
//! signing tool computes the same way, with no I/O runtime.
//!
//! - [`crypto`]: keys, signing, the verification rules (Ed25519 ZIP-215 in batches,
//!   P-256 low-S), key files.
//! - [`tx`]: the one decode point for transactions (`SignedTx` → `UnverifiedTx` →
//!   `CheckedTx`).
//! - [`genesis`]: the consortium's members, roles and validators.
//! - [`Ledger`] with [`state`], [`twin`] and [`mkt`]: the state machine that executes a
//!   block's transactions against the state after the previous block, read through the
//!   narrow [`StateReader`] trait (the node implements it on RocksDB, tests and the
//!   auditor on a map).
//! - [`block`]: the header a batch executes into on top of its parent, and the checks of a
//!   proposed header, without storage.
//! - [`certificate`]: commit certificates in protobuf, both forms, one decode point.
//! - [`merkle`]: roots and inclusion proofs.
//! - [`epcis`]: EPCIS 2.0 documents in and out, and the EPCIS Event Hash ID.
//! - [`conflicts`]: proof that a device key signed conflicting readings (a clone).
//! - [`identifiers`]: the identifiers a transaction names, one index key per thing;
//!   [`provenance`]: a thing's history and authenticity verdict from them.
//! - [`audit`]: checking a shipment's audit bundle offline, and its report and chart.
//! - [`units`]: exact decimal formatting and parsing of temperatures and times.
//!
//! This crate depends on no tokio, tonic, rocksdb or libp2p, and builds for
//! `wasm32-unknown-unknown` (tests/boundary.rs checks both).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attestation;
pub mod audit;
pub mod block;
pub mod certificate;
pub mod conflicts;
pub mod containment;
pub mod crypto;
pub mod epcis;
mod execute;
pub mod fsma;
pub mod genesis;
pub mod identifiers;
pub mod lineage;
pub mod merkle;
pub mod mkt;
pub mod provenance;
mod rules;
pub mod state;
pub mod twin;
pub mod tx;
pub mod units;

pub use execute::{BlockContext, BlockExecution, Ledger, Rejection};
pub use state::{StateError, StateReader, Writes};
