//! Behaviour of [`Store`] through its public API, on a real RocksDB directory: commits and
//! reopen, refused commits that write nothing, deletes, index scans, transaction
//! locations, genesis, the consensus column family, concurrent reads, and typed errors for
//! corrupt bytes on disk (planted with RocksDB directly, as a damaged disk would).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracechain_storage::{
    BlockCommit, COLUMN_FAMILIES, ChainHead, GenesisCommit, StorageError, Store, StoreConfig,
    TxLocation,
};

fn hash(tag: u8, n: u64) -> [u8; 32] {
    let mut out = [tag; 32];
    out[..8].copy_from_slice(&n.to_be_bytes());
    out
}

fn block_hash(height: u64) -> [u8; 32] {
    hash(0xB0, height)
}

fn tx_id(height: u64, index: u32) -> [u8; 32] {
    let mut out = hash(0x70, height);
    out[8..12].copy_from_slice(&index.to_be_bytes());
    out
}

/// A block at `height` with `tx_count` transactions and the given state/index writes.
fn block(
    height: u64,
    tx_count: u32,
    state_writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    index_writes: Vec<(Vec<u8>, Vec<u8>)>,
) -> BlockCommit {
    BlockCommit {
        height,
        block_hash: block_hash(height),
        block: format!("block {height}").into_bytes(),
        tx_ids: (0..tx_count).map(|i| (i, tx_id(height, i))).collect(),
        state_writes,
        index_writes,
        head: ChainHead {
            height,
            block_hash: block_hash(height),
            state_commitment: hash(0x5C, height),
            extra: format!("head {height}").into_bytes(),
        },
    }
}

fn put(key: &str, value: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    (key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()))
}

fn delete(key: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    (key.as_bytes().to_vec(), None)
}

fn entry(key: &[u8], value: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (key.to_vec(), value.to_vec())
}

/// Writes `value` under `key` in column family `cf`, bypassing the store.
fn plant_raw(path: &Path, cf: &str, key: &[u8], value: &[u8]) {
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, COLUMN_FAMILIES).unwrap();
    db.put_cf(db.cf_handle(cf).unwrap(), key, value).unwrap();
}

#[test]
fn commits_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.head().unwrap(), None);
        store
            .commit_block(&block(1, 2, vec![put("d/a", "1")], vec![]))
            .unwrap();
        store
            .commit_block(&block(2, 0, vec![put("d/b", "2")], vec![]))
            .unwrap();
        store
            .commit_block(&block(3, 1, vec![put("d/a", "3")], vec![]))
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.head().unwrap(),
        Some(block(3, 1, vec![], vec![]).head)
    );
    for height in 1..=3 {
        assert_eq!(
            store.block(height).unwrap(),
            Some(format!("block {height}").into_bytes())
        );
        assert_eq!(store.height_of(&block_hash(height)).unwrap(), Some(height));
    }
    assert_eq!(store.block(0).unwrap(), None);
    assert_eq!(store.block(4).unwrap(), None);
    assert_eq!(store.height_of(&block_hash(4)).unwrap(), None);
    assert_eq!(store.get_state(b"d/a").unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.get_state(b"d/b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get_state(b"d/c").unwrap(), None);
    // The next height after reopen is head + 1.
    let err = store
        .commit_block(&block(3, 0, vec![], vec![]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NonSequentialHeight {
                expected: 4,
                got: 3
            }
        ),
        "{err:?}"
    );
    store.commit_block(&block(4, 0, vec![], vec![])).unwrap();
}

#[test]
fn refused_commits_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let writes = || vec![put("d/x", "bad")];
    let index = || vec![entry(b"i/x", b"bad")];

    let err = store
        .commit_block(&block(2, 3, writes(), index()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NonSequentialHeight {
                expected: 1,
                got: 2
            }
        ),
        "{err:?}"
    );
    let err = store
        .commit_block(&block(0, 3, writes(), index()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NonSequentialHeight {
                expected: 1,
                got: 0
            }
        ),
        "{err:?}"
    );

    store
        .commit_block(&block(1, 1, vec![put("d/x", "good")], vec![]))
        .unwrap();
    for height in [1, 3, 100] {
        let err = store
            .commit_block(&block(height, 3, writes(), index()))
            .unwrap_err();
        assert!(
            matches!(err, StorageError::NonSequentialHeight { expected: 2, got } if got == height),
            "{err:?}"
        );
    }

    let mut wrong_head_height = block(2, 3, writes(), index());
    wrong_head_height.head.height = 3;
    let err = store.commit_block(&wrong_head_height).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::HeadHeightMismatch {
                block_height: 2,
                head_height: 3
            }
        ),
        "{err:?}"
    );
    let mut wrong_head_hash = block(2, 3, writes(), index());
    wrong_head_hash.head.block_hash = block_hash(99);
    let err = store.commit_block(&wrong_head_hash).unwrap_err();
    assert!(
        matches!(err, StorageError::HeadHashMismatch { height: 2 }),
        "{err:?}"
    );

    // Nothing of any refused block reached the store.
    assert_eq!(store.head().unwrap().map(|h| h.height), Some(1));
    for height in [0, 2, 3, 100] {
        assert_eq!(store.block(height).unwrap(), None, "block {height}");
    }
    assert_eq!(store.height_of(&block_hash(2)).unwrap(), None);
    for height in [2, 3, 100] {
        assert_eq!(store.tx_location(&tx_id(height, 0)).unwrap(), None);
    }
    assert_eq!(store.get_state(b"d/x").unwrap(), Some(b"good".to_vec()));
    assert_eq!(store.count_index(b"").unwrap(), 0);
}

#[test]
fn state_deletes_remove_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .commit_block(&block(1, 0, vec![put("k/1", "a"), put("k/2", "b")], vec![]))
        .unwrap();
    // Delete of an existing key, a missing key, and put-then-delete within one block.
    store
        .commit_block(&block(
            2,
            0,
            vec![
                delete("k/1"),
                delete("k/none"),
                put("k/3", "c"),
                delete("k/3"),
            ],
            vec![],
        ))
        .unwrap();
    assert_eq!(store.get_state(b"k/1").unwrap(), None);
    assert_eq!(store.get_state(b"k/2").unwrap(), Some(b"b".to_vec()));
    assert_eq!(store.get_state(b"k/3").unwrap(), None);
    // Delete-then-put within one block: the later write wins.
    store
        .commit_block(&block(
            3,
            0,
            vec![delete("k/2"), put("k/2", "again")],
            vec![],
        ))
        .unwrap();
    assert_eq!(store.get_state(b"k/2").unwrap(), Some(b"again".to_vec()));
    assert_eq!(
        store.scan_state(b"k/", 0, 10).unwrap(),
        vec![entry(b"k/2", b"again")]
    );
}

#[test]
fn index_scan_pages_within_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = |shipment: &[u8], n: u64| [b"s/".as_slice(), shipment, &n.to_be_bytes()].concat();
    let mut writes = Vec::new();
    for n in 0..10u64 {
        writes.push((key(b"A/", n), vec![n as u8]));
        // Neighbours on both sides of "s/A/" in byte order.
        writes.push((key(b"A.", n), b"before".to_vec()));
        writes.push((key(b"A0", n), b"after".to_vec()));
        writes.push((key(b"B/", n), b"other".to_vec()));
    }
    // A prefix ending in 0xFF and its immediate neighbour.
    writes.push((vec![7, 0xFF, 1], b"ff".to_vec()));
    writes.push((vec![7, 0xFF, 0xFF], b"ffff".to_vec()));
    writes.push((vec![8, 0], b"next".to_vec()));
    // Committed in two blocks to also scan across memtable and batch boundaries.
    let second = writes.split_off(writes.len() / 2);
    store.commit_block(&block(1, 0, vec![], writes)).unwrap();
    store.commit_block(&block(2, 0, vec![], second)).unwrap();

    let values =
        |page: Vec<(Vec<u8>, Vec<u8>)>| page.into_iter().map(|(_, v)| v[0]).collect::<Vec<_>>();
    assert_eq!(store.count_index(b"s/A/").unwrap(), 10);
    assert_eq!(
        values(store.scan_index(b"s/A/", 0, 100).unwrap()),
        (0..10).collect::<Vec<u8>>()
    );
    assert_eq!(
        values(store.scan_index(b"s/A/", 3, 4).unwrap()),
        vec![3, 4, 5, 6]
    );
    assert_eq!(values(store.scan_index(b"s/A/", 8, 5).unwrap()), vec![8, 9]);
    assert!(store.scan_index(b"s/A/", 10, 5).unwrap().is_empty());
    assert!(store.scan_index(b"s/A/", u64::MAX, 5).unwrap().is_empty());
    assert!(store.scan_index(b"s/A/", 0, 0).unwrap().is_empty());
    let page = store.scan_index(b"s/A/", 0, 100).unwrap();
    assert!(page.iter().all(|(k, _)| k.starts_with(b"s/A/")));
    assert_eq!(page[0].0, key(b"A/", 0));

    assert_eq!(store.count_index(b"s/").unwrap(), 40);
    assert_eq!(store.count_index(b"s/C/").unwrap(), 0);
    assert!(store.scan_index(b"s/C/", 0, 10).unwrap().is_empty());
    assert_eq!(
        store.scan_index(&[7, 0xFF], 0, 10).unwrap(),
        vec![
            entry(&[7, 0xFF, 1], b"ff"),
            entry(&[7, 0xFF, 0xFF], b"ffff")
        ]
    );
    assert_eq!(store.count_index(&[7, 0xFF, 0xFF]).unwrap(), 1);
    assert_eq!(store.count_index(b"").unwrap(), 43);
}

#[test]
fn tx_locations_point_into_their_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.commit_block(&block(1, 3, vec![], vec![])).unwrap();
    store.commit_block(&block(2, 0, vec![], vec![])).unwrap();
    store.commit_block(&block(3, 2, vec![], vec![])).unwrap();
    for (height, count) in [(1u64, 3u32), (3, 2)] {
        for index in 0..count {
            assert_eq!(
                store.tx_location(&tx_id(height, index)).unwrap(),
                Some(TxLocation { height, index })
            );
        }
        assert_eq!(store.tx_location(&tx_id(height, count)).unwrap(), None);
    }
    assert_eq!(store.tx_location(&tx_id(2, 0)).unwrap(), None);
    assert_eq!(store.tx_location(&[0; 32]).unwrap(), None);
}

#[test]
fn batched_lookups_answer_like_single_ones_in_the_order_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .commit_block(&block(1, 3, vec![put("k/b", "2"), put("k/a", "1")], vec![]))
        .unwrap();
    store.commit_block(&block(2, 2, vec![], vec![])).unwrap();
    // Unsorted, with a repeat and absent ids.
    let ids = [
        tx_id(2, 1),
        [0; 32],
        tx_id(1, 0),
        tx_id(1, 2),
        tx_id(2, 1),
        tx_id(1, 3),
        [0xFF; 32],
    ];
    let batched = store.tx_locations(&ids).unwrap();
    let single: Vec<_> = ids
        .iter()
        .map(|id| store.tx_location(id).unwrap())
        .collect();
    assert_eq!(batched, single);
    assert_eq!(
        batched[0],
        Some(TxLocation {
            height: 2,
            index: 1
        })
    );
    assert_eq!(batched[1], None);
    assert!(store.tx_locations(&[]).unwrap().is_empty());

    let keys: [&[u8]; 5] = [b"k/b", b"k/none", b"k/a", b"k/b", b""];
    assert_eq!(
        store.get_states(&keys).unwrap(),
        vec![
            Some(b"2".to_vec()),
            None,
            Some(b"1".to_vec()),
            Some(b"2".to_vec()),
            None
        ]
    );
}

#[test]
fn genesis_comes_once_before_block_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let genesis_head = ChainHead {
        height: 0,
        block_hash: hash(0x6E, 0),
        state_commitment: hash(0x5C, 0),
        extra: vec![],
    };

    let mut bad = GenesisCommit {
        head: genesis_head.clone(),
        state_writes: vec![],
        index_writes: vec![],
    };
    bad.head.height = 1;
    let err = store.commit_genesis(&bad).unwrap_err();
    assert!(
        matches!(err, StorageError::GenesisHeight { height: 1 }),
        "{err:?}"
    );

    let genesis = GenesisCommit {
        head: genesis_head.clone(),
        state_writes: vec![put("m/farm", "member")],
        index_writes: vec![entry(b"m/", b"farm")],
    };
    store.commit_genesis(&genesis).unwrap();
    assert_eq!(store.head().unwrap(), Some(genesis_head));
    assert_eq!(
        store.get_state(b"m/farm").unwrap(),
        Some(b"member".to_vec())
    );
    assert_eq!(store.count_index(b"m/").unwrap(), 1);
    assert_eq!(store.block(0).unwrap(), None);

    let err = store.commit_genesis(&genesis).unwrap_err();
    assert!(
        matches!(err, StorageError::AlreadyInitialized { height: 0 }),
        "{err:?}"
    );
    let err = store
        .commit_block(&block(2, 0, vec![], vec![]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NonSequentialHeight {
                expected: 1,
                got: 2
            }
        ),
        "{err:?}"
    );
    store.commit_block(&block(1, 0, vec![], vec![])).unwrap();
    let err = store.commit_genesis(&genesis).unwrap_err();
    assert!(
        matches!(err, StorageError::AlreadyInitialized { height: 1 }),
        "{err:?}"
    );
}

#[test]
fn consensus_records_persist() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get_consensus(b"view").unwrap(), None);
        store.put_consensus(b"view", b"7").unwrap();
        store.put_consensus(b"prepared/5", b"cert").unwrap();
        store.put_consensus(b"old", b"x").unwrap();
        store.delete_consensus(b"old").unwrap();
        store
            .write_consensus(&[
                put("view", "8"),
                delete("prepared/5"),
                put("prepared/6", "cert6"),
            ])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.get_consensus(b"view").unwrap(), Some(b"8".to_vec()));
    assert_eq!(store.get_consensus(b"prepared/5").unwrap(), None);
    assert_eq!(
        store.get_consensus(b"prepared/6").unwrap(),
        Some(b"cert6".to_vec())
    );
    assert_eq!(store.get_consensus(b"old").unwrap(), None);
    // The consensus column family is separate from state.
    assert_eq!(store.get_state(b"view").unwrap(), None);
    assert_eq!(store.head().unwrap(), None);
}

#[test]
fn readers_run_alongside_commits() {
    const BLOCKS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, done) = (Arc::clone(&store), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                let mut last_seen = 0;
                while !done.load(Ordering::Acquire) {
                    let Some(head) = store.head().unwrap() else {
                        continue;
                    };
                    // Heads only move forward, and what a head names is already there.
                    assert!(head.height >= last_seen);
                    last_seen = head.height;
                    assert!(store.block(head.height).unwrap().is_some());
                    assert_eq!(
                        store.height_of(&head.block_hash).unwrap(),
                        Some(head.height)
                    );
                    let latest = store
                        .get_state(b"latest")
                        .unwrap()
                        .expect("latest written by every block");
                    let latest = u64::from_be_bytes(latest.try_into().unwrap());
                    assert!(latest >= head.height);
                    // Block k adds exactly k index entries in one batch, so a count (one
                    // iterator, one snapshot) is always 1 + 2 + ... + k for some k >= head.
                    let count = store.count_index(b"h/").unwrap();
                    let k = (0..=BLOCKS).find(|k| k * (k + 1) / 2 >= count).unwrap_or(0);
                    assert_eq!(count, k * (k + 1) / 2, "count saw part of a block");
                    assert!(k >= head.height);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for height in 1..=BLOCKS {
        let index = (0..height)
            .map(|i| (format!("h/{height:05}/{i:05}").into_bytes(), vec![]))
            .collect();
        let state = vec![(b"latest".to_vec(), Some(height.to_be_bytes().to_vec()))];
        store.commit_block(&block(height, 1, state, index)).unwrap();
    }
    done.store(true, Ordering::Release);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    assert_eq!(store.head().unwrap().unwrap().height, BLOCKS);
    assert_eq!(store.count_index(b"h/").unwrap(), BLOCKS * (BLOCKS + 1) / 2);
}

#[test]
fn concurrent_commits_of_one_height_admit_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    for height in 1..=20u64 {
        // Spawn all four before joining any, so the commits really race.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || store.commit_block(&block(height, 1, vec![], vec![])))
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "height {height}"
        );
        for result in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(result, StorageError::NonSequentialHeight { got, .. } if *got == height)
            );
        }
    }
    assert_eq!(store.head().unwrap().unwrap().height, 20);
}

#[test]
fn corrupt_values_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.commit_block(&block(1, 1, vec![], vec![])).unwrap();
    }
    plant_raw(dir.path(), "txs", &tx_id(1, 0), &[1, 2, 3, 4, 5]);
    plant_raw(dir.path(), "block_hashes", &block_hash(1), &[0; 9]);
    let store = Store::open(dir.path()).unwrap();
    let err = store.tx_location(&tx_id(1, 0)).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { what: "tx location", key, .. } if key[..] == tx_id(1, 0)),
        "{err:?}"
    );
    let err = store.height_of(&block_hash(1)).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupt {
                what: "block height",
                ..
            }
        ),
        "{err:?}"
    );
    // Undamaged records still read.
    assert_eq!(store.block(1).unwrap(), Some(b"block 1".to_vec()));
    drop(store);

    // A damaged head stops reads of the head and further commits, with a typed error.
    plant_raw(dir.path(), "meta", b"head", &[0; 71]);
    let store = Store::open(dir.path()).unwrap();
    let err = store.head().unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupt {
                what: "chain head",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .commit_block(&block(2, 0, vec![], vec![]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupt {
                what: "chain head",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.block(2).unwrap(), None);
}

#[test]
fn other_schema_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    plant_raw(dir.path(), "meta", b"schema_version", &2u32.to_be_bytes());
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::UnsupportedSchema {
                found: 2,
                supported: 1
            }
        ),
        "{err:?}"
    );

    plant_raw(dir.path(), "meta", b"schema_version", &[1]);
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupt {
                what: "schema version",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_directory_opens_once_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StorageError::Db { op: "open", .. }),
        "{err:?}"
    );
}

/// Bytes of write-ahead log files in a store directory.
fn wal_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

/// Commits `blocks` blocks of 64 KiB each, every one also writing the chain head and a
/// consensus record (the small writes that pin old log files), then reports the log
/// bytes left on disk, after waiting up to 10 s for them to drop to `settle_at`.
fn wal_left_after_commits(config: &StoreConfig, blocks: u64, settle_at: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), config).unwrap();
    for height in 1..=blocks {
        let mut commit = block(height, 4, vec![put("s/x", "y")], vec![]);
        commit.block = vec![height as u8; 64 << 10];
        store.commit_block(&commit).unwrap();
        store
            .put_consensus(b"replica-state", &height.to_be_bytes())
            .unwrap();
    }
    // Obsolete log files are deleted after the flush that frees them, in the background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal_bytes(dir.path()) > settle_at && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left = wal_bytes(dir.path());
    // Whatever was flushed early reads back, as does the head.
    assert_eq!(store.block(1).unwrap(), Some(vec![1u8; 64 << 10]));
    assert_eq!(store.head().unwrap().map(|h| h.height), Some(blocks));
    drop(store);
    let store = Store::open_with(dir.path(), config).unwrap();
    assert_eq!(
        store.block(blocks).unwrap(),
        Some(vec![blocks as u8; 64 << 10])
    );
    assert_eq!(
        store.get_consensus(b"replica-state").unwrap(),
        Some(blocks.to_be_bytes().to_vec())
    );
    left
}

#[test]
fn the_write_ahead_log_stays_within_its_bound() {
    // 160 blocks of 64 KiB: 10 MiB of log, under one memtable (16 MiB), so no family
    // would flush on its own.
    let bounded = StoreConfig {
        max_wal_bytes: 1 << 20,
        ..StoreConfig::default()
    };
    let left = wal_left_after_commits(&bounded, 160, 4 << 20);
    assert!(
        left <= 4 << 20,
        "{left} bytes of log left with a 1 MiB bound"
    );
    // Without the bound (RocksDB's default: 0 = four times all memtables), all of it
    // stays: the test would notice the option going missing.
    let unbounded = StoreConfig {
        max_wal_bytes: 0,
        ..StoreConfig::default()
    };
    let left = wal_left_after_commits(&unbounded, 160, u64::MAX);
    assert!(
        left >= 8 << 20,
        "only {left} bytes of log left without a bound"
    );
}
