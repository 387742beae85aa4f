//! Fixed-width encodings of the few values the store itself understands: heights,
//! transaction locations and the chain head record.
//!
//! Integers are big-endian so that byte order is numeric order in RocksDB. Every decoder
//! checks lengths and returns [`StorageError::Corrupt`] naming the key; nothing here panics
//! on bytes read from disk.

use crate::error::StorageError;

/// Length of a block hash, a transaction id and a state commitment.
pub const HASH_LEN: usize = 32;

/// Encoded length of a [`TxLocation`]: height u64 BE ‖ index u32 BE.
pub const TX_LOCATION_LEN: usize = 12;

/// Encoded length of a [`ChainHead`] without its `extra` blob.
pub const CHAIN_HEAD_FIXED_LEN: usize = 8 + HASH_LEN + HASH_LEN;

/// The chain head: the last committed block and the state it produced.
///
/// Written in the same batch as the block it names, so it never runs ahead of or behind
/// the stored data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// Height of the last committed block (0 = genesis only).
    pub height: u64,
    /// Hash of that block (for height 0, the genesis hash).
    pub block_hash: [u8; 32],
    /// Commitment to ledger state after that block.
    pub state_commitment: [u8; 32],
    /// Opaque bytes the node keeps with the head (e.g. an encoded head message).
    pub extra: Vec<u8>,
}

/// Where a committed transaction is: its block height and its index in that block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxLocation {
    /// Height of the block holding the transaction.
    pub height: u64,
    /// Position of the transaction in the block, from 0.
    pub index: u32,
}

/// Key of a height in the `blocks` column family, and the value in `block_hashes`.
pub(crate) fn encode_height(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// Decodes a height stored as 8 big-endian bytes.
pub(crate) fn decode_height(
    what: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| {
        corrupt(
            what,
            key,
            format!("expected 8 bytes, found {}", value.len()),
        )
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Value in the `txs` column family.
pub(crate) fn encode_tx_location(location: TxLocation) -> [u8; TX_LOCATION_LEN] {
    let mut out = [0u8; TX_LOCATION_LEN];
    out[..8].copy_from_slice(&location.height.to_be_bytes());
    out[8..].copy_from_slice(&location.index.to_be_bytes());
    out
}

/// Decodes a value of the `txs` column family.
pub(crate) fn decode_tx_location(key: &[u8], value: &[u8]) -> Result<TxLocation, StorageError> {
    const WHAT: &str = "tx location";
    let bytes: &[u8; TX_LOCATION_LEN] = value.try_into().map_err(|_| {
        corrupt(
            WHAT,
            key,
            format!("expected {TX_LOCATION_LEN} bytes, found {}", value.len()),
        )
    })?;
    let (height, index) = bytes.split_at(8);
    Ok(TxLocation {
        height: u64::from_be_bytes(fixed(WHAT, key, height)?),
        index: u32::from_be_bytes(fixed(WHAT, key, index)?),
    })
}

/// Value of the head record in the `meta` column family.
pub(crate) fn encode_chain_head(head: &ChainHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHAIN_HEAD_FIXED_LEN + head.extra.len());
    out.extend_from_slice(&head.height.to_be_bytes());
    out.extend_from_slice(&head.block_hash);
    out.extend_from_slice(&head.state_commitment);
    out.extend_from_slice(&head.extra);
    out
}

/// Decodes the head record.
pub(crate) fn decode_chain_head(key: &[u8], value: &[u8]) -> Result<ChainHead, StorageError> {
    const WHAT: &str = "chain head";
    if value.len() < CHAIN_HEAD_FIXED_LEN {
        return Err(corrupt(
            WHAT,
            key,
            format!(
                "expected at least {CHAIN_HEAD_FIXED_LEN} bytes, found {}",
                value.len()
            ),
        ));
    }
    let (height, rest) = value.split_at(8);
    let (block_hash, rest) = rest.split_at(HASH_LEN);
    let (state_commitment, extra) = rest.split_at(HASH_LEN);
    Ok(ChainHead {
        height: u64::from_be_bytes(fixed(WHAT, key, height)?),
        block_hash: fixed(WHAT, key, block_hash)?,
        state_commitment: fixed(WHAT, key, state_commitment)?,
        extra: extra.to_vec(),
    })
}

/// Decodes the schema version record (u32 BE).
pub(crate) fn decode_schema_version(key: &[u8], value: &[u8]) -> Result<u32, StorageError> {
    Ok(u32::from_be_bytes(fixed("schema version", key, value)?))
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None`
/// if there is none (empty prefix, or all bytes 0xFF). Used as an exclusive upper bound so a
/// prefix scan stops at the prefix's end instead of wading through its neighbours.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut bound = prefix[..=last].to_vec();
    bound[last] += 1;
    Some(bound)
}

/// Converts a slice whose length the caller already checked into an array, still without
/// panicking if that check is ever wrong.
fn fixed<const N: usize>(
    what: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<[u8; N], StorageError> {
    bytes.try_into().map_err(|_| {
        corrupt(
            what,
            key,
            format!("expected {N} bytes, found {}", bytes.len()),
        )
    })
}

fn corrupt(what: &'static str, key: &[u8], reason: String) -> StorageError {
    StorageError::Corrupt {
        what,
        key: key.to_vec(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_location_roundtrips() {
        let location = TxLocation {
            height: 0x0102_0304_0506_0708,
            index: 0x090A_0B0C,
        };
        let bytes = encode_tx_location(location);
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(decode_tx_location(b"k", &bytes).unwrap(), location);
    }

    #[test]
    fn tx_location_of_wrong_length_is_corrupt() {
        for len in [0, 11, 13] {
            let err = decode_tx_location(b"id", &vec![0; len]).unwrap_err();
            assert!(
                matches!(&err, StorageError::Corrupt { what: "tx location", key, .. } if key == b"id"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn chain_head_roundtrips_with_and_without_extra() {
        for extra in [vec![], b"opaque head".to_vec()] {
            let head = ChainHead {
                height: 42,
                block_hash: [7; 32],
                state_commitment: [9; 32],
                extra,
            };
            let bytes = encode_chain_head(&head);
            assert_eq!(decode_chain_head(b"head", &bytes).unwrap(), head);
        }
    }

    #[test]
    fn short_chain_head_is_corrupt() {
        let err = decode_chain_head(b"head", &[0; CHAIN_HEAD_FIXED_LEN - 1]).unwrap_err();
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
    }

    #[test]
    fn height_decodes_only_from_eight_bytes() {
        assert_eq!(decode_height("h", b"k", &encode_height(7)).unwrap(), 7);
        assert!(matches!(
            decode_height("block height", b"k", &[0; 7]),
            Err(StorageError::Corrupt {
                what: "block height",
                ..
            })
        ));
    }

    #[test]
    fn prefix_successor_bounds_exactly_the_prefix() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
