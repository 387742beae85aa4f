//! The tracechain node: checked transactions, the ledger state machine, blocks,
//! the mempool, the gRPC API and the CLI's building blocks.

#![forbid(unsafe_code)]

mod admission;
pub mod api;
pub mod audit;
pub mod chain;
pub mod cli;
pub mod consortium;
pub mod crypto;
pub mod epcis;
pub mod genesis;
pub mod ledger;
pub mod loadgen;
pub mod mempool;
pub mod merkle;
pub mod node;
pub mod tx;
pub mod wire;
