//! The write paths: genesis, block commits and the consensus log.
//!
//! Each write is one `WriteBatch` with a synced write. For blocks, that batch holds the
//! block, its hash, its transaction locations, its state and index writes **and** the new
//! chain head, which is the invariant the crate docs state: the head and the data it
//! describes are never on disk without each other.

use rocksdb::WriteBatch;

use crate::codec::{self, ChainHead, TxLocation};
use crate::error::StorageError;
use crate::schema::{Cf, HEAD_KEY};
use crate::store::Store;

/// One write to a key: `Some(value)` puts, `None` deletes.
pub type StateWrite = (Vec<u8>, Option<Vec<u8>>);

/// A key and its value, as put into the index or returned by a scan.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Everything one committed block changes in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCommit {
    /// Height of the block: must be the current head's height + 1 (1 on an empty store).
    pub height: u64,
    /// Hash of the block.
    pub block_hash: [u8; 32],
    /// The encoded committed block (with its certificate), as the node serves it later.
    pub block: Vec<u8>,
    /// `(index in the block, tx id)` of the transactions to index in the `txs` column
    /// family. Ids must be unique on the chain: a repeated id would overwrite the earlier
    /// location, so the node leaves out transactions that repeat one.
    pub tx_ids: Vec<(u32, [u8; 32])>,
    /// Ledger state changes, applied in order (a later write to the same key wins).
    pub state_writes: Vec<StateWrite>,
    /// Secondary index entries to put.
    pub index_writes: Vec<KeyValue>,
    /// The head after this block: its height and block hash must equal this block's.
    pub head: ChainHead,
}

impl BlockCommit {
    /// About the size of this commit's `WriteBatch`: every key and value, plus a few
    /// bytes of framing per record.
    fn encoded_size_hint(&self) -> usize {
        const PER_RECORD: usize = 16;
        let state: usize = self
            .state_writes
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + PER_RECORD)
            .sum();
        let index: usize = self
            .index_writes
            .iter()
            .map(|(k, v)| k.len() + v.len() + PER_RECORD)
            .sum();
        let txs = self.tx_ids.len() * (32 + codec::TX_LOCATION_LEN + PER_RECORD);
        64 + self.block.len() + 4 * PER_RECORD + 64 + txs + state + index + self.head.extra.len()
    }
}

/// The initial state of a chain, written once to an empty store before block 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisCommit {
    /// Head at height 0: the genesis hash as `block_hash`, the genesis state commitment.
    pub head: ChainHead,
    /// Initial ledger state (members, ...).
    pub state_writes: Vec<StateWrite>,
    /// Initial index entries.
    pub index_writes: Vec<KeyValue>,
}

impl Store {
    /// Writes genesis state and a head at height 0 to a store that has no head yet.
    ///
    /// Optional: on a store without genesis, block 1 is simply the first commit.
    pub fn commit_genesis(&self, genesis: &GenesisCommit) -> Result<(), StorageError> {
        let _commits = self.lock_commits();
        if let Some(head) = self.head()? {
            return Err(StorageError::AlreadyInitialized {
                height: head.height,
            });
        }
        if genesis.head.height != 0 {
            return Err(StorageError::GenesisHeight {
                height: genesis.head.height,
            });
        }
        let mut batch = WriteBatch::default();
        self.add_state_and_index(&mut batch, &genesis.state_writes, &genesis.index_writes)?;
        batch.put_cf(
            self.cf(Cf::Meta)?,
            HEAD_KEY,
            codec::encode_chain_head(&genesis.head),
        );
        self.write_synced(batch, "commit genesis")
    }

    /// Commits one block and the head after it in a single synced batch.
    ///
    /// Refuses, writing nothing, a block that is not at head + 1
    /// ([`StorageError::NonSequentialHeight`]) or whose head record names another height or
    /// block hash. When this returns `Ok`, the block is durable: a crash of the process or
    /// the machine afterwards reopens at this head or later.
    pub fn commit_block(&self, commit: &BlockCommit) -> Result<(), StorageError> {
        let _commits = self.lock_commits();
        let expected = match self.head()? {
            None => 1,
            Some(head) => head
                .height
                .checked_add(1)
                .ok_or(StorageError::HeightOverflow {
                    height: head.height,
                })?,
        };
        if commit.height != expected {
            return Err(StorageError::NonSequentialHeight {
                expected,
                got: commit.height,
            });
        }
        if commit.head.height != commit.height {
            return Err(StorageError::HeadHeightMismatch {
                block_height: commit.height,
                head_height: commit.head.height,
            });
        }
        if commit.head.block_hash != commit.block_hash {
            return Err(StorageError::HeadHashMismatch {
                height: commit.height,
            });
        }

        let height_bytes = codec::encode_height(commit.height);
        // Sized up front: the batch of a full block is megabytes, and growing it by
        // doubling copied it several times over.
        let mut batch = WriteBatch::with_capacity_bytes(commit.encoded_size_hint());
        batch.put_cf(self.cf(Cf::Blocks)?, height_bytes, &commit.block);
        batch.put_cf(self.cf(Cf::BlockHashes)?, commit.block_hash, height_bytes);
        // Keys go into each memtable in ascending order: RocksDB's skip list keeps the
        // position of the previous insert, so a sorted run costs O(log distance) per key
        // where random ids (tx ids, interleaved shipments) cost a full O(log n) search
        // from the top (~4 % of a node's CPU, docs/PERFORMANCE.md). Ids are unique, so
        // the order changes nothing in what is written.
        let mut tx_ids: Vec<&(u32, [u8; 32])> = commit.tx_ids.iter().collect();
        tx_ids.sort_by_key(|t| t.1);
        let txs = self.cf(Cf::Txs)?;
        for &&(index, tx_id) in &tx_ids {
            let location = TxLocation {
                height: commit.height,
                index,
            };
            batch.put_cf(txs, tx_id, codec::encode_tx_location(location));
        }
        self.add_state_and_index(&mut batch, &commit.state_writes, &commit.index_writes)?;
        batch.put_cf(
            self.cf(Cf::Meta)?,
            HEAD_KEY,
            codec::encode_chain_head(&commit.head),
        );
        self.write_synced(batch, "commit block")
    }

    /// Puts one consensus record with a synced write: when this returns, the record
    /// survives a crash (PBFT: a replica persists what it signs before it sends it).
    pub fn put_consensus(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.write_consensus(&[(key.to_vec(), Some(value.to_vec()))])
    }

    /// Deletes one consensus record with a synced write.
    pub fn delete_consensus(&self, key: &[u8]) -> Result<(), StorageError> {
        self.write_consensus(&[(key.to_vec(), None)])
    }

    /// Applies several consensus puts/deletes atomically, with one synced write.
    pub fn write_consensus(&self, writes: &[StateWrite]) -> Result<(), StorageError> {
        let consensus = self.cf(Cf::Consensus)?;
        let mut batch = WriteBatch::default();
        for (key, value) in writes {
            match value {
                Some(value) => batch.put_cf(consensus, key, value),
                None => batch.delete_cf(consensus, key),
            }
        }
        self.write_synced(batch, "write consensus")
    }

    fn add_state_and_index(
        &self,
        batch: &mut WriteBatch,
        state_writes: &[StateWrite],
        index_writes: &[KeyValue],
    ) -> Result<(), StorageError> {
        let state = self.cf(Cf::State)?;
        for (key, value) in state_writes {
            match value {
                Some(value) => batch.put_cf(state, key, value),
                None => batch.delete_cf(state, key),
            }
        }
        let index = self.cf(Cf::Index)?;
        // Sorted for the memtable, as in `commit_block`; a stable sort, so that of two
        // entries with one key the later still wins.
        let mut index_writes: Vec<&KeyValue> = index_writes.iter().collect();
        index_writes.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in index_writes {
            batch.put_cf(index, key, value);
        }
        Ok(())
    }
}
