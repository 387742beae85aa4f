//! The tracechain node: checked transactions, the ledger state machine, blocks,
//! the mempool, the gRPC API and the CLI's building blocks.

#![forbid(unsafe_code)]

mod admission;
pub mod api;
pub mod audit;
pub mod block_view;
pub mod chain;
pub mod cli;
pub mod consortium;
pub mod containers;
mod decode_fault;
pub mod device_conflicts;
pub mod fsma;
pub mod gateway;
pub mod lineage;
pub mod loadgen;
mod locks;
pub mod mempool;
pub mod node;
pub mod query;
pub mod wire;

// The deterministic core (transactions, signature rules, the state machine, genesis,
// Merkle proofs, EPCIS) is the `tracechain-ledger` crate; the node's modules reach it by
// these paths.
pub use tracechain_ledger as ledger;
pub use tracechain_ledger::{certificate, crypto, epcis, genesis, merkle, tx};
