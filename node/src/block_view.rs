//! A committed block as stored, read without decoding all of it: one walk over its
//! protobuf fields finds where each transaction and each result lies, and only those
//! asked for are decoded. A history that names one transaction in each of many blocks
//! of 10,000 readings then costs a walk and two small decodes per block, not the
//! decoding of every transaction in them (docs/PERFORMANCE.md).

use std::ops::Range;

use prost::{
    Message,
    encoding::{WireType, decode_key, decode_varint},
};
use tracechain_proto::v1 as pb;

use crate::chain::ChainError;

/// A stored block and where its parts lie.
pub struct BlockView {
    bytes: Vec<u8>,
    txs: Vec<Range<usize>>,
    results: Vec<Range<usize>>,
    time_ms: i64,
}

fn corrupt(reason: impl std::fmt::Display) -> ChainError {
    ChainError::Corrupt {
        what: "block",
        reason: reason.to_string(),
    }
}

/// The length-delimited fields of the message at `range` of `bytes`, as (field number,
/// range); fields of other wire types are skipped.
fn fields(bytes: &[u8], range: Range<usize>) -> Result<Vec<(u32, Range<usize>)>, ChainError> {
    let mut out = Vec::new();
    let mut buf = &bytes[range.clone()];
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(corrupt)?;
        match wire_type {
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).map_err(corrupt)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l <= buf.len())
                    .ok_or_else(|| corrupt("a field runs past the end"))?;
                let start = range.end - buf.len();
                out.push((tag, start..start + len));
                buf = &buf[len..];
            }
            WireType::Varint => {
                decode_varint(&mut buf).map_err(corrupt)?;
            }
            WireType::SixtyFourBit if buf.len() >= 8 => buf = &buf[8..],
            WireType::ThirtyTwoBit if buf.len() >= 4 => buf = &buf[4..],
            other => return Err(corrupt(format!("unexpected wire type {other:?}"))),
        }
    }
    Ok(out)
}

impl BlockView {
    /// Reads the layout of a stored `CommittedBlock`.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ChainError> {
        let mut view = BlockView {
            txs: Vec::new(),
            results: Vec::new(),
            time_ms: 0,
            bytes,
        };
        for (tag, range) in fields(&view.bytes, 0..view.bytes.len())? {
            match tag {
                // CommittedBlock.block: Block { header = 1, txs = 2 }
                1 => {
                    for (inner, r) in fields(&view.bytes, range)? {
                        match inner {
                            1 => {
                                view.time_ms = pb::BlockHeader::decode(&view.bytes[r])
                                    .map_err(corrupt)?
                                    .time_ms
                            }
                            2 => view.txs.push(r),
                            _ => {}
                        }
                    }
                }
                // CommittedBlock.results
                3 => view.results.push(range),
                _ => {}
            }
        }
        Ok(view)
    }

    /// The block's time (its header's), unix ms.
    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether the block holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The transaction at `index`, if there is one.
    pub fn tx(&self, index: u32) -> Result<Option<pb::SignedTx>, ChainError> {
        self.txs
            .get(index as usize)
            .map(|r| pb::SignedTx::decode(&self.bytes[r.clone()]).map_err(corrupt))
            .transpose()
    }

    /// The result of the transaction at `index`, if there is one.
    pub fn result(&self, index: u32) -> Result<Option<pb::TxResult>, ChainError> {
        self.results
            .get(index as usize)
            .map(|r| pb::TxResult::decode(&self.bytes[r.clone()]).map_err(corrupt))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_reads_what_a_full_decode_reads() {
        let header = pb::BlockHeader {
            height: 7,
            time_ms: 1_234,
            ..Default::default()
        };
        let txs: Vec<pb::SignedTx> = (0..5u8)
            .map(|i| pb::SignedTx {
                body: vec![i; 10 + i as usize],
                signature: vec![i; 64],
            })
            .collect();
        let block = pb::CommittedBlock {
            block: Some(pb::Block {
                header: header.encode_to_vec(),
                txs: txs.clone(),
            }),
            certificate: Some(pb::CommitCertificate {
                height: 7,
                view: 2,
                ..Default::default()
            }),
            results: (0..5)
                .map(|i| pb::TxResult {
                    code: 1 + i,
                    message: format!("r{i}"),
                    history: Vec::new(),
                })
                .collect(),
        };
        let view = BlockView::new(block.encode_to_vec()).expect("a block");
        assert_eq!((view.len(), view.time_ms()), (5, 1_234));
        for i in 0..5u32 {
            assert_eq!(view.tx(i).unwrap().as_ref(), Some(&txs[i as usize]));
            assert_eq!(
                view.result(i).unwrap().as_ref(),
                Some(&block.results[i as usize])
            );
        }
        assert_eq!(view.tx(5).unwrap(), None);
        // Truncated bytes are a corrupt block, not a panic.
        let bytes = block.encode_to_vec();
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            let _ = BlockView::new(bytes[..cut].to_vec());
        }
        assert!(BlockView::new(vec![0x0a, 0xff]).is_err());
    }
}
