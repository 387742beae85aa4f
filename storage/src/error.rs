//! The storage crate's one error type.
//!
//! Every variant carries the facts a log line or a caller needs. Bytes read back from disk
//! that do not decode are [`StorageError::Corrupt`], never a panic: a damaged disk must
//! stop a node with a clear message, not an index-out-of-bounds.

/// Errors from [`Store`](crate::Store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// RocksDB itself failed (I/O error, corruption detected by RocksDB, lock held, ...).
    #[error("rocksdb {op} failed: {source}")]
    Db {
        /// What the store was doing, e.g. `"open"`, `"commit block"`, `"get state"`.
        op: &'static str,
        /// The underlying RocksDB error.
        #[source]
        source: rocksdb::Error,
    },

    /// A column family this build needs was not opened (should be impossible after
    /// [`Store::open`](crate::Store::open), which creates missing ones).
    #[error("column family {name} is missing")]
    MissingColumnFamily {
        /// Column family name.
        name: &'static str,
    },

    /// A block was offered out of order: blocks are committed one at a time, at head + 1
    /// (height 1 on an empty store or after genesis).
    #[error("block height {got} is not the next height; expected {expected}")]
    NonSequentialHeight {
        /// The only height that may be committed now.
        expected: u64,
        /// The height that was offered.
        got: u64,
    },

    /// The head record committed with a block names another height.
    #[error("head record is for height {head_height} but the block is at height {block_height}")]
    HeadHeightMismatch {
        /// Height of the block being committed.
        block_height: u64,
        /// Height in the accompanying head record.
        head_height: u64,
    },

    /// The head record committed with a block names another block hash.
    #[error("head record's block hash differs from the hash of block {height}")]
    HeadHashMismatch {
        /// Height of the block being committed.
        height: u64,
    },

    /// The chain is at its last representable height.
    #[error("chain head is at height {height}; no further height exists")]
    HeightOverflow {
        /// Current head height.
        height: u64,
    },

    /// Genesis may only be written to a store that has no chain head yet.
    #[error("store already has a chain head at height {height}; genesis needs an empty store")]
    AlreadyInitialized {
        /// Height of the existing head.
        height: u64,
    },

    /// The genesis head must be at height 0 (block 1 is the first block).
    #[error("genesis head must be at height 0, got {height}")]
    GenesisHeight {
        /// Height in the offered genesis head.
        height: u64,
    },

    /// The directory was written by a build with another on-disk layout.
    #[error("store schema version {found} is not supported; this build reads version {supported}")]
    UnsupportedSchema {
        /// Version found on disk.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },

    /// Bytes read from disk do not decode as what they should be.
    #[error("corrupt {what} at key {key:02x?}: {reason}")]
    Corrupt {
        /// What was being decoded, e.g. `"tx location"`, `"chain head"`.
        what: &'static str,
        /// The key whose value is corrupt.
        key: Vec<u8>,
        /// Why it does not decode.
        reason: String,
    },
}

/// Adapts a RocksDB error into [`StorageError::Db`] naming the operation.
pub(crate) fn db_err(op: &'static str) -> impl FnOnce(rocksdb::Error) -> StorageError {
    move |source| StorageError::Db { op, source }
}
