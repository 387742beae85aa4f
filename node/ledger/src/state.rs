//! State keys and the per-block overlay through which transactions read and write.
//!
//! Every record lives under a one-letter prefix in the storage `state` column family:
//! `d/<device id>` → `DeviceRecord`, `m/<member id>` → `MemberAccount`,
//! `s/<shipment id>` → `ShipmentTwin`. A transaction reads through its own pending
//! writes, then the block's, then the committed state; its writes reach the block
//! only if it succeeds, so a failed transaction changes nothing.

use std::any::Any;
use std::collections::BTreeMap;

use prost::Message;
use tracechain_proto::v1 as pb;

use crate::tx::TxId;

/// Reads committed state. Implemented by the node's RocksDB store (and by maps in tests).
pub trait StateReader {
    /// The committed value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// Whether a transaction with this id is already in a committed block.
    fn tx_committed(&self, id: &TxId) -> Result<bool, StateError>;
    /// [`tx_committed`](Self::tx_committed) of many ids, in order (a store answers them
    /// in one batched lookup).
    fn txs_committed(&self, ids: &[TxId]) -> Result<Vec<bool>, StateError> {
        ids.iter().map(|id| self.tx_committed(id)).collect()
    }
}

/// Committed state in memory: what the auditor replays a bundle into, and what the rule
/// tests run on. `commit` applies a block's writes and remembers its transaction ids.
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    records: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    committed: std::collections::BTreeSet<TxId>,
}

impl MemoryState {
    /// Applies a block's sorted writes (`None` deletes) and records its transactions as
    /// committed.
    pub fn commit(&mut self, writes: Writes, txs: impl IntoIterator<Item = TxId>) {
        for (key, value) in writes {
            match value {
                Some(value) => self.records.insert(key, value),
                None => self.records.remove(&key),
            };
        }
        self.committed.extend(txs);
    }

    /// The record at `key`, encoded.
    pub fn record(&self, key: &[u8]) -> Option<&[u8]> {
        self.records.get(key).map(Vec::as_slice)
    }

    /// Every record, in key order.
    pub fn records(&self) -> &std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
        &self.records
    }
}

impl StateReader for MemoryState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.records.get(key).cloned())
    }
    fn tx_committed(&self, id: &TxId) -> Result<bool, StateError> {
        Ok(self.committed.contains(id))
    }
}

/// A failure to read state: the node cannot execute the block (a local fault, never
/// the transaction's).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store failed.
    #[error("state store: {0}")]
    Store(String),
    /// A stored record does not decode.
    #[error("corrupt state record at {key}: {reason}")]
    Corrupt {
        /// The key, printable.
        key: String,
        /// What failed.
        reason: String,
    },
}

/// Key of a device record.
pub fn device_key(id: &str) -> Vec<u8> {
    [b"d/".as_slice(), id.as_bytes()].concat()
}

/// Key of a member account.
pub fn member_key(id: &str) -> Vec<u8> {
    [b"m/".as_slice(), id.as_bytes()].concat()
}

/// Key of a shipment twin.
pub fn shipment_key(id: &str) -> Vec<u8> {
    [b"s/".as_slice(), id.as_bytes()].concat()
}

/// Key of an EPCIS event's record under its Event Hash ID (`x/<ni URI>`; the URI is
/// ASCII without control characters, and names its algorithm and version).
pub fn epcis_event_key(event_hash: &str) -> Vec<u8> {
    [b"x/".as_slice(), event_hash.as_bytes()].concat()
}

/// Key of a thing's containment record (`a/<identifier key>`): where it is packed, now
/// and before.
pub fn containment_key(key: &str) -> Vec<u8> {
    [b"a/".as_slice(), key.as_bytes()].concat()
}

/// Key of a container's contents (`k/<identifier key>`).
pub fn contents_key(key: &str) -> Vec<u8> {
    [b"k/".as_slice(), key.as_bytes()].concat()
}

/// Key of a thing's lineage record (`l/<identifier key>`): what it was made from.
pub fn lineage_key(key: &str) -> Vec<u8> {
    [b"l/".as_slice(), key.as_bytes()].concat()
}

/// Appends `id` to a key so that it ends unambiguously: escaped (0x00 → 0x01 0x01,
/// 0x01 → 0x01 0x02), then a 0x00 terminator. So no id's prefix is a prefix of another
/// id's keys, whatever bytes either holds: a scan of `e/<id>\0` returns that id's
/// entries and no one else's. Ids in transactions never hold control characters, so for
/// every id a chain can contain this is the id itself and a 0x00 (the layout before the
/// escape).
fn push_id(key: &mut Vec<u8>, id: &str) {
    for &b in id.as_bytes() {
        match b {
            0 => key.extend_from_slice(&[1, 1]),
            1 => key.extend_from_slice(&[1, 2]),
            b => key.push(b),
        }
    }
    key.push(0);
}

/// Prefix of a shipment's event index entries (`e/<shipment id>\0<height be><index be>`,
/// the id escaped as [`push_id`] does).
pub fn shipment_events_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + id.len());
    k.extend_from_slice(b"e/");
    push_id(&mut k, id);
    k
}

/// Key of one shipment event index entry; sorts by (height, index) within the shipment.
pub fn shipment_event_key(id: &str, height: u64, index: u32) -> Vec<u8> {
    let mut k = shipment_events_prefix(id);
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Prefix of a device's lifecycle index entries (`v/<device id>\0<height be><index be>`):
/// register, rotate key, revoke; an auditor needs them to know the device's keys.
pub fn device_lifecycle_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + id.len());
    k.extend_from_slice(b"v/");
    push_id(&mut k, id);
    k
}

/// Prefix of an identifier's index entries (`i/<key>\0<height be><index be>` → tx id,
/// the key from [`crate::identifiers::key`], escaped as [`push_id`] does).
pub fn identifier_prefix(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + key.len());
    k.extend_from_slice(b"i/");
    push_id(&mut k, key);
    k
}

/// Key of one identifier index entry; sorts by (height, index) within the identifier.
pub fn identifier_entry_key(key: &str, height: u64, index: u32) -> Vec<u8> {
    let mut k = identifier_prefix(key);
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Prefix of the transformations that made a thing (`t/<key>\0<height be><index be>` →
/// tx id: the TransformationEvents that list it among their outputs).
pub fn made_by_prefix(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + key.len());
    k.extend_from_slice(b"t/");
    push_id(&mut k, key);
    k
}

/// Prefix of the transformations that used a thing (`o/<key>\0<height be><index be>` →
/// tx id: the TransformationEvents that list it among their inputs).
pub fn used_by_prefix(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + key.len());
    k.extend_from_slice(b"o/");
    push_id(&mut k, key);
    k
}

/// Key of a device transaction's index entry by sequence (`q/<device id>\0<sequence
/// be>` → tx id), kept for every transaction a device signed that was accepted: what a
/// node needs to tell a replayed reading from a clone's conflicting one
/// ([`crate::conflicts`]).
pub fn device_sequence_key(id: &str, sequence: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(12 + id.len());
    k.extend_from_slice(b"q/");
    push_id(&mut k, id);
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

/// Key of a transaction's copy by position (`p/<height be><index be>` →
/// `pb::ShipmentEvent`: the transaction, its result and its block's time), kept for
/// every successful transaction an identifier names, so that a history spread over many
/// blocks reads each of its transactions without reading its block.
pub fn positioned_tx_key(height: u64, index: u32) -> Vec<u8> {
    entry_key(b"p/".to_vec(), height, index)
}

/// `prefix` followed by (height, index), big-endian: an index entry's key.
pub fn entry_key(mut prefix: Vec<u8>, height: u64, index: u32) -> Vec<u8> {
    prefix.extend_from_slice(&height.to_be_bytes());
    prefix.extend_from_slice(&index.to_be_bytes());
    prefix
}

/// The index key of a history entry at (height, index).
pub fn history_key(entry: &pb::HistoryEntry, height: u64, index: u32) -> Vec<u8> {
    let mut k = if entry.kind == pb::HistoryKind::Device as i32 {
        device_lifecycle_prefix(&entry.subject)
    } else {
        shipment_events_prefix(&entry.subject)
    };
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// State writes of a block, sorted by key; `None` deletes.
pub type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A decoded state record kept in the block's overlay: encoded once, when the block is
/// done, however many of its transactions wrote it.
trait Record: Any + Send {
    fn encode_record(&self) -> Vec<u8>;
    fn as_any(&self) -> &dyn Any;
}

impl<M: Message + Any + Send> Record for M {
    fn encode_record(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The records a block (or a transaction) wrote, decoded.
type Records = BTreeMap<Vec<u8>, Box<dyn Record>>;

/// What a block's transactions wrote so far, as decoded records.
///
/// Sensor readings rewrite the same few records (the shipment twin, the device's
/// sequence) many times per block; keeping them decoded between transactions saves a
/// decode and an encode per transaction (docs/PERFORMANCE.md). The bytes that state
/// and its commitment see are the same: each record's encoding after the block's last
/// write to it.
#[derive(Default)]
pub struct BlockWrites {
    records: Records,
}

impl BlockWrites {
    /// The block's writes, encoded, sorted by key.
    pub fn into_writes(self) -> Writes {
        self.records
            .into_iter()
            .map(|(k, v)| (k, Some(v.encode_record())))
            .collect()
    }

    /// Applies a successful transaction's writes.
    pub fn apply(&mut self, tx: TxWrites) {
        self.records.extend(tx.0);
    }
}

/// A transaction's staged writes, to apply to the block once it succeeded.
pub struct TxWrites(Records);

/// A transaction's view of state: its own writes over the block's over the store.
pub struct TxState<'a> {
    store: &'a dyn StateReader,
    block: &'a BlockWrites,
    pending: Records,
}

impl<'a> TxState<'a> {
    /// A fresh view for one transaction.
    pub fn new(store: &'a dyn StateReader, block: &'a BlockWrites) -> Self {
        Self {
            store,
            block,
            pending: Records::new(),
        }
    }

    /// Reads and decodes a record.
    pub fn read<M: Message + Default + Clone + Any>(
        &self,
        key: &[u8],
    ) -> Result<Option<M>, StateError> {
        let corrupt = |reason: String| StateError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        };
        if let Some(record) = self
            .pending
            .get(key)
            .or_else(|| self.block.records.get(key))
        {
            // Keys are typed by their prefix, so a record under a key is always of the
            // type that key is read as.
            return record
                .as_any()
                .downcast_ref::<M>()
                .cloned()
                .map(Some)
                .ok_or_else(|| corrupt("written with another record type".into()));
        }
        match self.store.get(key)? {
            None => Ok(None),
            Some(bytes) => M::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| corrupt(e.to_string())),
        }
    }

    /// Stages a record write.
    pub fn write<M: Message + Any + Send>(&mut self, key: Vec<u8>, record: M) {
        self.pending.insert(key, Box::new(record));
    }

    /// The staged writes, for [`BlockWrites::apply`] after the transaction succeeded.
    pub fn into_writes(self) -> TxWrites {
        TxWrites(self.pending)
    }
}

/// Reads a device record.
pub fn device(st: &TxState<'_>, id: &str) -> Result<Option<pb::DeviceRecord>, StateError> {
    st.read(&device_key(id))
}

/// Reads a shipment twin.
pub fn shipment(st: &TxState<'_>, id: &str) -> Result<Option<pb::ShipmentTwin>, StateError> {
    st.read(&shipment_key(id))
}

/// The commitment to state after a block: blake3(previous || blake3(writes)), the
/// writes encoded in key order as `u32be(len) key tag [u32be(len) value]`.
pub fn state_commitment(previous: &[u8; 32], writes: &Writes) -> [u8; 32] {
    let mut w = blake3::Hasher::new();
    for (k, v) in writes {
        w.update(&(k.len() as u32).to_be_bytes());
        w.update(k);
        match v {
            None => {
                w.update(&[0]);
            }
            Some(v) => {
                w.update(&[1]);
                w.update(&(v.len() as u32).to_be_bytes());
                w.update(v);
            }
        }
    }
    let mut h = blake3::Hasher::new();
    h.update(b"tracechain/state/v1\0");
    h.update(previous);
    h.update(w.finalize().as_bytes());
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Ids built from the bytes that could confuse a key layout: the escape and terminator
    /// bytes, a multi-byte character, and plain letters (so that ids are often prefixes of
    /// one another).
    fn id() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('\0'),
                Just('\u{1}'),
                Just('a'),
                Just('b'),
                Just('\u{ff}')
            ],
            0..6,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// A scan of one id's index prefix meets exactly that id's entries: no id's keys
        /// fall in another id's prefix range, however the two ids relate.
        #[test]
        fn index_keys_of_one_id_are_never_in_anothers_range(
            a in id(),
            b in id(),
            suffix in id(),
            height in any::<u64>(),
            index in any::<u32>(),
        ) {
            for other in [b.clone(), format!("{a}{suffix}")] {
                let key = shipment_event_key(&other, height, index);
                prop_assert_eq!(key.starts_with(&shipment_events_prefix(&a)), a == other);
                let entry = pb::HistoryEntry {
                    kind: pb::HistoryKind::Device as i32,
                    subject: other.clone(),
                    ..Default::default()
                };
                let key = history_key(&entry, height, index);
                prop_assert_eq!(key.starts_with(&device_lifecycle_prefix(&a)), a == other);
            }
        }
    }

    /// For every id a transaction may hold (no control characters) the layout is the one
    /// chains were written with before the escape: the id, then 0x00.
    #[test]
    fn ids_without_control_characters_keep_their_layout() {
        for id in ["S-1", "urn:epc:id:sscc:4012345.0000000077", "ÿ"] {
            let mut old = b"e/".to_vec();
            old.extend_from_slice(id.as_bytes());
            old.push(0);
            assert_eq!(shipment_events_prefix(id), old);
        }
    }
}
