//! The ledger state machine: executes checked transactions into state, deterministically.
//!
//! Input: a block's transactions (signatures and stateless rules already checked at
//! the decode point, [`crate::tx`]), the block's height and time, and read access to
//! the state after the previous block. Output: one [`pb::TxResult`] per transaction,
//! the sorted state writes, and index entries. The same inputs give the same outputs
//! on every node: no floats in state, no hash-map iteration, no wall clock.
//!
//! A transaction that breaks a ledger rule stays in its block with its result code
//! and reason, and changes nothing.

use std::collections::HashSet;

use tracechain_proto::v1 as pb;

use crate::{
    genesis::Genesis,
    rules,
    state::{self, StateError, StateReader, Writes},
    tx::{CheckedTx, TxId},
};

/// What a block is executed in.
#[derive(Debug, Clone, Copy)]
pub struct BlockContext {
    /// Block height.
    pub height: u64,
    /// Block time (proposer's clock, checked by consensus), unix ms.
    pub time_ms: i64,
}

/// The outcome of executing a block.
#[derive(Debug, Default)]
pub struct BlockExecution {
    /// One result per transaction, in block order.
    pub results: Vec<pb::TxResult>,
    /// State writes, sorted by key.
    pub writes: Writes,
    /// Secondary index entries (shipment event history, device lifecycle history, the
    /// identifiers each transaction names, what each transformation made and used).
    pub index_writes: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A rule violation: the transaction's result code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Result code.
    pub code: pb::ResultCode,
    /// Reason shown to users.
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(code: pb::ResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The ledger: the consortium's rules, bound to its genesis.
#[derive(Debug, Clone)]
pub struct Ledger {
    genesis: Genesis,
}

impl Ledger {
    /// A ledger for the consortium in `genesis`.
    pub fn new(genesis: Genesis) -> Self {
        Self { genesis }
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Executes a block's transactions against `store` (state after the previous block).
    ///
    /// Errors only on a local fault (the store failed or holds a corrupt record); rule
    /// violations are results, not errors.
    pub fn execute_block<'t>(
        &self,
        store: &dyn StateReader,
        ctx: BlockContext,
        txs: impl IntoIterator<Item = &'t CheckedTx>,
    ) -> Result<BlockExecution, StateError> {
        let mut out = BlockExecution::default();
        let mut writes = state::BlockWrites::default();
        let txs: Vec<&CheckedTx> = txs.into_iter().collect();
        // Which are in earlier blocks: one batched lookup. Which repeat one earlier in
        // this block: `seen` (only membership is asked, so its order cannot leak into
        // the result).
        let ids: Vec<TxId> = txs.iter().map(|tx| tx.id).collect();
        let committed = store.txs_committed(&ids)?;
        let mut seen: HashSet<TxId> = HashSet::with_capacity(txs.len());
        for (index, (tx, committed)) in txs.into_iter().zip(committed).enumerate() {
            let index = index as u32;
            let result: Result<Vec<pb::HistoryEntry>, Rejection> =
                if !seen.insert(tx.id) || committed {
                    Err(Rejection::new(
                        pb::ResultCode::Duplicate,
                        format!("transaction {} is already in the chain", tx.id),
                    ))
                } else {
                    let mut st = state::TxState::new(store, &writes);
                    match rules::apply(&self.genesis, ctx, &mut st, tx)? {
                        Ok(history) => {
                            let staged = st.into_writes();
                            writes.apply(staged);
                            for entry in &history {
                                out.index_writes.push((
                                    state::history_key(entry, ctx.height, index),
                                    tx.id.0.to_vec(),
                                ));
                            }
                            if tx.signer.kind == crate::tx::SignerKind::Device {
                                out.index_writes.push((
                                    state::device_sequence_key(&tx.signer.id, tx.sequence),
                                    tx.id.0.to_vec(),
                                ));
                            }
                            let named = crate::identifiers::of_action(&tx.action);
                            for key in &named {
                                out.index_writes.push((
                                    state::identifier_entry_key(key, ctx.height, index),
                                    tx.id.0.to_vec(),
                                ));
                            }
                            if !named.is_empty() {
                                let copy = pb::ShipmentEvent {
                                    height: ctx.height,
                                    index,
                                    tx_id: tx.id.0.to_vec(),
                                    tx: Some(tx.signed.clone()),
                                    result: Some(pb::TxResult {
                                        code: pb::ResultCode::Ok as i32,
                                        message: String::new(),
                                        history: history.clone(),
                                    }),
                                    block_time_ms: ctx.time_ms,
                                };
                                out.index_writes.push((
                                    state::positioned_tx_key(ctx.height, index),
                                    prost::Message::encode_to_vec(&copy),
                                ));
                            }
                            if let Some(t) = crate::lineage::of_action(&tx.action) {
                                let made = t.outputs.iter().map(|k| state::made_by_prefix(k));
                                let used = t.inputs.iter().map(|k| state::used_by_prefix(k));
                                for prefix in made.chain(used) {
                                    out.index_writes.push((
                                        state::entry_key(prefix, ctx.height, index),
                                        tx.id.0.to_vec(),
                                    ));
                                }
                            }
                            Ok(history)
                        }
                        Err(rejection) => Err(rejection),
                    }
                };
            out.results.push(match result {
                Ok(history) => pb::TxResult {
                    code: pb::ResultCode::Ok as i32,
                    message: String::new(),
                    history,
                },
                Err(r) => pb::TxResult {
                    code: r.code as i32,
                    message: r.message,
                    history: Vec::new(),
                },
            });
        }
        out.writes = writes.into_writes();
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
