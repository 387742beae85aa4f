//! Column families and the RocksDB options the store opens them with.
//!
//! Options are deliberately few: LZ4 compression, one shared LRU block cache, bloom filters
//! on the column families read by point lookup, and a bound on open files. The write-ahead
//! log stays on (RocksDB's default): it is what makes one `WriteBatch` across column
//! families atomic on recovery.

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options};

/// On-disk layout version this build reads and writes (stored in `meta`).
pub const SCHEMA_VERSION: u32 = 1;

/// Names of the column families, in the order [`Store::open`](crate::Store::open) creates
/// them. Public so that tools and tests can open a directory with RocksDB directly.
pub const COLUMN_FAMILIES: [&str; 7] = [
    Cf::Blocks.name(),
    Cf::BlockHashes.name(),
    Cf::Txs.name(),
    Cf::State.name(),
    Cf::Index.name(),
    Cf::Meta.name(),
    Cf::Consensus.name(),
];

/// Key of the chain head record in `meta`.
pub(crate) const HEAD_KEY: &[u8] = b"head";
/// Key of the schema version record in `meta`.
pub(crate) const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// A column family of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cf {
    Blocks,
    BlockHashes,
    Txs,
    State,
    Index,
    Meta,
    Consensus,
}

impl Cf {
    const ALL: [Cf; 7] = [
        Cf::Blocks,
        Cf::BlockHashes,
        Cf::Txs,
        Cf::State,
        Cf::Index,
        Cf::Meta,
        Cf::Consensus,
    ];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Cf::Blocks => "blocks",
            Cf::BlockHashes => "block_hashes",
            Cf::Txs => "txs",
            Cf::State => "state",
            Cf::Index => "index",
            Cf::Meta => "meta",
            Cf::Consensus => "consensus",
        }
    }

    /// Column families read mostly by exact key, where a bloom filter saves disk reads
    /// for absent keys (e.g. "is this tx id already committed?"). `index` is read by
    /// prefix scan, which bloom filters do not help.
    fn point_lookups(self) -> bool {
        !matches!(self, Cf::Index)
    }
}

/// Tunables for [`Store::open_with`](crate::Store::open_with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Size of the LRU block cache shared by all column families, in bytes.
    pub block_cache_bytes: usize,
    /// Upper bound on files RocksDB keeps open (stays well under a default `ulimit -n`).
    pub max_open_files: i32,
    /// Size of one memtable per column family before it is flushed to disk, in bytes.
    pub write_buffer_bytes: usize,
    /// Most bytes of write-ahead log kept on disk. The log is shared by all column
    /// families, and a log file goes only when every family with data in it has
    /// flushed; families written a few bytes per block (the chain head, the consensus
    /// record) would otherwise hold every log file until RocksDB's default bound of
    /// four times all memtables (here ~900 MiB per node). Past this bound, the
    /// families holding the oldest file are flushed so that it can go.
    pub max_wal_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            block_cache_bytes: 64 << 20,
            max_open_files: 512,
            write_buffer_bytes: 16 << 20,
            max_wal_bytes: 128 << 20,
        }
    }
}

/// Database-wide options.
pub(crate) fn db_options(config: &StoreConfig) -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_open_files(config.max_open_files);
    // Two cores are shared with consensus, networking and signature checks.
    opts.set_max_background_jobs(2);
    opts.set_keep_log_file_num(4);
    opts.set_max_total_wal_size(config.max_wal_bytes);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts
}

/// One descriptor per column family, all sharing `cache`.
pub(crate) fn cf_descriptors(config: &StoreConfig, cache: &Cache) -> Vec<ColumnFamilyDescriptor> {
    Cf::ALL
        .iter()
        .map(|&cf| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(cache);
            if cf.point_lookups() {
                table.set_bloom_filter(10.0, false);
            }
            let mut opts = Options::default();
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_block_based_table_factory(&table);
            opts.set_write_buffer_size(config.write_buffer_bytes);
            if cf.point_lookups() {
                // A bloom filter over the memtable too: most point reads on the hot path
                // ask for a key that is absent ("is this tx id committed?"), and without
                // it each one walks the memtable's skip list (the profile in
                // docs/PERFORMANCE.md showed this at ~10% of a node's CPU).
                opts.set_memtable_whole_key_filtering(true);
                opts.set_memtable_prefix_bloom_ratio(0.05);
            }
            ColumnFamilyDescriptor::new(cf.name(), opts)
        })
        .collect()
}
