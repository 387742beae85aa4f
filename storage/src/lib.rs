//! Durable storage for a tracechain node: one RocksDB directory, column families, and
//! atomic block commits.
//!
//! This crate stores **opaque bytes**. It knows nothing of protobuf or ledger types: the
//! node encodes blocks, state values and consensus records (with prost) and chooses the
//! state and index keys. What this crate owns is *where* bytes live and *when* they become
//! durable.
//!
//! # The invariant
//!
//! The chain head in the `meta` column family and everything one block changes (the block,
//! its hash, its transaction locations, its state writes and deletes, its index entries) are
//! written in **one** RocksDB `WriteBatch`, with a synced write (`fsync` of the write-ahead
//! log before [`Store::commit_block`] returns). A node killed at any moment therefore reopens
//! with exactly the state of its last committed block: never half a block, never a head that
//! points past the data, never data past the head. `tests/crash.rs` checks this by
//! SIGKILLing a committing process many times.
//!
//! Commits are serialised by a lock inside [`Store`], so the "height must be head + 1" check
//! and the write cannot interleave with another commit. Reads take no lock: they are safe
//! from many threads while a commit runs, and each single read sees either all or none of a
//! block. (Two separate reads may straddle a commit; a caller that needs several reads from
//! one height reads the head first and treats later heights as newer.)
//!
//! # Layout
//!
//! | column family | key | value |
//! |---|---|---|
//! | `blocks` | height, u64 big-endian | encoded committed block (node's bytes) |
//! | `block_hashes` | 32-byte block hash | height, u64 big-endian |
//! | `txs` | 32-byte transaction id | height u64 BE ‖ index in block u32 BE |
//! | `state` | node-chosen key (e.g. `b"d/" + device id`) | node-chosen value |
//! | `index` | node-chosen key, scanned by prefix | node-chosen value |
//! | `meta` | `b"head"` | height u64 BE ‖ block hash (32) ‖ state commitment (32) ‖ extra |
//! | `meta` | `b"schema_version"` | u32 BE, currently 1 |
//! | `consensus` | node-chosen key | node-chosen value (synced writes) |
//!
//! Big-endian heights make RocksDB's byte order equal numeric order, so blocks iterate in
//! height order and index keys that embed heights sort by height.
//!
//! Module map: [`store`] opens the database and serves reads, [`commit`] holds the write
//! paths, [`codec`] the fixed-width encodings and their checked decoders, [`schema`] the
//! column families and RocksDB options, [`error`] the one error type.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod commit;
pub mod error;
pub mod schema;
pub mod store;

pub use codec::{ChainHead, TxLocation};
pub use commit::{BlockCommit, GenesisCommit, KeyValue, StateWrite};
pub use error::StorageError;
pub use schema::{COLUMN_FAMILIES, SCHEMA_VERSION, StoreConfig};
pub use store::Store;
