//! [`Store`]: opening the database and every read.
//!
//! Reads take no lock and may run on many threads while a commit is in progress (RocksDB
//! reads are thread-safe, and a `WriteBatch` becomes visible all at once). The write paths
//! live in [`commit`](crate::commit).

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rocksdb::{Cache, ColumnFamily, DB, ReadOptions, WriteBatch, WriteOptions};

use crate::codec::{self, ChainHead, TxLocation};
use crate::commit::KeyValue;
use crate::error::{StorageError, db_err};
use crate::schema::{self, Cf, HEAD_KEY, SCHEMA_VERSION, SCHEMA_VERSION_KEY, StoreConfig};

/// The node's database: one RocksDB directory with the column families listed in the
/// [crate docs](crate).
///
/// `Send + Sync`: share it behind an `Arc`. RocksDB calls block on disk I/O, so async
/// callers run them on `spawn_blocking` or a dedicated thread.
pub struct Store {
    db: DB,
    /// Serialises commits, so that reading the head, checking the next height and writing
    /// the batch happen as one step with respect to other commits.
    commit_lock: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store at `path` with [`StoreConfig::default`].
    pub fn open(path: &Path) -> Result<Store, StorageError> {
        Self::open_with(path, &StoreConfig::default())
    }

    /// Opens (or creates) the store at `path`, creating missing column families.
    ///
    /// A directory written with another [`SCHEMA_VERSION`] is refused with
    /// [`StorageError::UnsupportedSchema`]. RocksDB's lock file makes a second open of the
    /// same directory (by this or another process) fail with [`StorageError::Db`].
    pub fn open_with(path: &Path, config: &StoreConfig) -> Result<Store, StorageError> {
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let db = DB::open_cf_descriptors(
            &schema::db_options(config),
            path,
            schema::cf_descriptors(config, &cache),
        )
        .map_err(db_err("open"))?;
        let store = Store {
            db,
            commit_lock: Mutex::new(()),
        };
        store.check_schema_version()?;
        Ok(store)
    }

    /// The chain head, or `None` if nothing (not even genesis) was committed yet.
    pub fn head(&self) -> Result<Option<ChainHead>, StorageError> {
        self.get(Cf::Meta, HEAD_KEY, "get head")?
            .map(|value| codec::decode_chain_head(HEAD_KEY, &value))
            .transpose()
    }

    /// The encoded committed block at `height`, exactly as given to
    /// [`commit_block`](Self::commit_block).
    pub fn block(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.get(Cf::Blocks, &codec::encode_height(height), "get block")
    }

    /// Height of the committed block with this hash.
    pub fn height_of(&self, block_hash: &[u8; 32]) -> Result<Option<u64>, StorageError> {
        self.get(Cf::BlockHashes, block_hash, "get block height")?
            .map(|value| codec::decode_height("block height", block_hash, &value))
            .transpose()
    }

    /// Where the committed transaction with this id is.
    pub fn tx_location(&self, tx_id: &[u8; 32]) -> Result<Option<TxLocation>, StorageError> {
        self.get(Cf::Txs, tx_id, "get tx location")?
            .map(|value| codec::decode_tx_location(tx_id, &value))
            .transpose()
    }

    /// [`tx_location`](Self::tx_location) of many ids in one batched lookup, in the order
    /// given.
    pub fn tx_locations(&self, ids: &[[u8; 32]]) -> Result<Vec<Option<TxLocation>>, StorageError> {
        let keys: Vec<&[u8]> = ids.iter().map(|id| id.as_slice()).collect();
        self.multi_get(Cf::Txs, &keys, "get tx locations")?
            .into_iter()
            .zip(ids)
            .map(|(value, id)| {
                value
                    .map(|value| codec::decode_tx_location(id, &value))
                    .transpose()
            })
            .collect()
    }

    /// The ledger state value under `key`.
    pub fn get_state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.get(Cf::State, key, "get state")
    }

    /// [`get_state`](Self::get_state) of many keys in one batched lookup, in the order
    /// given.
    pub fn get_states(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        self.multi_get(Cf::State, keys, "get states")
    }

    /// State entries whose key starts with `prefix`, in key order: skips `offset` entries,
    /// returns at most `limit`.
    pub fn scan_state(
        &self,
        prefix: &[u8],
        offset: u64,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        self.scan(Cf::State, prefix, offset, limit)
    }

    /// Index entries whose key starts with `prefix`, in key order: skips `offset` entries,
    /// returns at most `limit`. Entries of a neighbouring prefix are never returned.
    ///
    /// Prefix matching is on bytes: the node's key design must make prefixes unambiguous
    /// (fixed-length ids or a separator), e.g. `b"s/" + shipment_id + b"/"`.
    pub fn scan_index(
        &self,
        prefix: &[u8],
        offset: u64,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        self.scan(Cf::Index, prefix, offset, limit)
    }

    /// Index entries whose key starts with `prefix` and is at least `from` (a key under
    /// `prefix`), in key order, at most `limit`: a page that resumes where the last one
    /// stopped without counting what came before.
    pub fn scan_index_from(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        self.scan_from(Cf::Index, prefix, from.max(prefix), 0, limit)
    }

    /// The index values under `keys`, in one batched lookup, in the order given.
    pub fn get_indexes(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        self.multi_get(Cf::Index, keys, "get indexes")
    }

    /// Number of index entries whose key starts with `prefix` (a scan: O(entries)).
    pub fn count_index(&self, prefix: &[u8]) -> Result<u64, StorageError> {
        let mut iter = self
            .db
            .raw_iterator_cf_opt(self.cf(Cf::Index)?, prefix_read_options(prefix));
        iter.seek(prefix);
        let mut count = 0u64;
        while iter.key().is_some_and(|key| key.starts_with(prefix)) {
            count += 1;
            iter.next();
        }
        iter.status().map_err(db_err("count index"))?;
        Ok(count)
    }

    /// A value of the consensus log / persistent consensus state.
    pub fn get_consensus(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.get(Cf::Consensus, key, "get consensus")
    }

    /// The handle of a column family.
    pub(crate) fn cf(&self, cf: Cf) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(cf.name())
            .ok_or(StorageError::MissingColumnFamily { name: cf.name() })
    }

    /// Writes `batch` atomically and waits until the write-ahead log is on disk.
    pub(crate) fn write_synced(
        &self,
        batch: WriteBatch,
        op: &'static str,
    ) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts).map_err(db_err(op))
    }

    /// Takes the commit lock. The lock guards no data, only the order of commits, so a
    /// panic in an earlier holder leaves nothing inconsistent and poisoning is ignored.
    pub(crate) fn lock_commits(&self) -> MutexGuard<'_, ()> {
        self.commit_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, cf: Cf, key: &[u8], op: &'static str) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.cf(cf)?, key).map_err(db_err(op))
    }

    /// Many point reads as one RocksDB MultiGet (one snapshot; filter and block reads
    /// shared), asked in key order and answered in the order given.
    fn multi_get(
        &self,
        cf: Cf,
        keys: &[&[u8]],
        op: &'static str,
    ) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let mut sorted: Vec<usize> = (0..keys.len()).collect();
        sorted.sort_unstable_by_key(|&i| keys[i]);
        let values =
            self.db
                .batched_multi_get_cf(self.cf(cf)?, sorted.iter().map(|&i| keys[i]), true);
        let mut out = vec![None; keys.len()];
        for (&i, value) in sorted.iter().zip(values) {
            out[i] = value.map_err(db_err(op))?.map(|v| v.as_ref().to_vec());
        }
        Ok(out)
    }

    fn scan(
        &self,
        cf: Cf,
        prefix: &[u8],
        offset: u64,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        self.scan_from(cf, prefix, prefix, offset, limit)
    }

    /// Entries under `prefix` from the key `seek` (at or after `prefix`) on, in key
    /// order: skips `offset`, returns at most `limit`.
    fn scan_from(
        &self,
        cf: Cf,
        prefix: &[u8],
        seek: &[u8],
        offset: u64,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // One iterator reads from one implicit snapshot, so a page never mixes two heights.
        let mut iter = self
            .db
            .raw_iterator_cf_opt(self.cf(cf)?, prefix_read_options(prefix));
        iter.seek(seek);
        let mut skipped = 0u64;
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !key.starts_with(prefix) {
                break;
            }
            if skipped < offset {
                skipped += 1;
            } else {
                out.push((key.to_vec(), value.to_vec()));
                if out.len() == limit {
                    break;
                }
            }
            iter.next();
        }
        iter.status().map_err(db_err("scan"))?;
        Ok(out)
    }

    fn check_schema_version(&self) -> Result<(), StorageError> {
        match self.get(Cf::Meta, SCHEMA_VERSION_KEY, "get schema version")? {
            Some(value) => {
                let found = codec::decode_schema_version(SCHEMA_VERSION_KEY, &value)?;
                if found != SCHEMA_VERSION {
                    return Err(StorageError::UnsupportedSchema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Ok(())
            }
            None => {
                let mut batch = WriteBatch::default();
                batch.put_cf(
                    self.cf(Cf::Meta)?,
                    SCHEMA_VERSION_KEY,
                    SCHEMA_VERSION.to_be_bytes(),
                );
                self.write_synced(batch, "put schema version")
            }
        }
    }
}

/// Read options whose upper bound ends iteration at the end of `prefix`, so a scan never
/// touches (or pays for tombstones of) the neighbouring keys.
fn prefix_read_options(prefix: &[u8]) -> ReadOptions {
    let mut opts = ReadOptions::default();
    if let Some(bound) = codec::prefix_successor(prefix) {
        opts.set_iterate_upper_bound(bound);
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Store>();
    }
}
