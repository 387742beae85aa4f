//! EPCIS 2.0 queries over committed events, paged (docs/EPCIS.md). A query that names an
//! identifier (an EPC, a class, a place) reads the index of its values; one that does
//! not reads blocks in chain order. Results come in chain order; a page token says where
//! the next page starts and which query it belongs to. Each request examines a bounded
//! number of candidates, so a query that matches little over a long chain answers a
//! shorter page with a token rather than running unbounded.

use std::collections::BTreeSet;

use serde_json::Value;
use tracechain_proto::v1 as pb;
use tracechain_storage::Store;

use crate::{
    block_view::BlockView,
    ledger::{
        epcis::{
            export,
            query::{self, Query},
        },
        state, tx,
    },
    node::{Node, ReadError},
};

/// Page size when the request gives none.
pub const DEFAULT_PAGE: usize = 100;
/// Largest page.
pub const MAX_PAGE: usize = 1_000;
/// Most candidate events one request examines.
pub const SCAN_BUDGET: usize = 20_000;

/// Why a query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter is wrong.
    #[error(transparent)]
    Query(#[from] query::QueryError),
    /// The page token is not one this query issued.
    #[error("nextPageToken {0:?} is not a page token of this query")]
    BadToken(String),
    /// The store failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// A page of results.
#[derive(Debug)]
pub struct Page {
    /// The EPCIS events, in chain order, each with its recordTime.
    pub events: Vec<Value>,
    /// Where the next page starts, when there may be more.
    pub next_page_token: Option<String>,
}

/// A position in the chain: (height, index in block).
type Position = (u64, u32);

/// What a token binds a position to: the query's parameters, as given.
fn digest(params: &[(String, Vec<String>)]) -> String {
    let mut h = blake3::Hasher::new();
    for (name, values) in params {
        h.update(name.as_bytes());
        h.update(b"\0");
        for v in values {
            h.update(v.as_bytes());
            h.update(b"\x01");
        }
        h.update(b"\x02");
    }
    hex::encode(&h.finalize().as_bytes()[..8])
}

fn token(next: Position, digest: &str) -> String {
    format!("{}.{}.{digest}", next.0, next.1)
}

fn parse_token(token: &str, digest: &str) -> Option<Position> {
    let mut parts = token.split('.');
    let (Some(h), Some(i), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (d == digest).then_some(())?;
    Some((h.parse().ok()?, i.parse().ok()?))
}

/// Answers a page of the query `params` (standard parameter names and their values),
/// `per_page` results (0: [`DEFAULT_PAGE`], at most [`MAX_PAGE`]) from `page_token`.
pub async fn run(
    node: &Node,
    params: Vec<(String, Vec<String>)>,
    per_page: u32,
    page_token: &str,
) -> Result<Page, QueryError> {
    let q = Query::parse(&params)?;
    let digest = digest(&params);
    let start = if page_token.is_empty() {
        (0, 0)
    } else {
        parse_token(page_token, &digest).ok_or_else(|| QueryError::BadToken(page_token.into()))?
    };
    let per_page = match per_page as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let store = node.shared.store.clone();
    let chain_id = node.genesis().chain_id().to_string();
    let head = node.status().await.height;
    let (events, next) =
        tokio::task::spawn_blocking(move || scan(&store, &chain_id, head, &q, start, per_page))
            .await
            .map_err(ReadError::from)??;
    Ok(Page {
        events,
        next_page_token: next.map(|p| token(p, &digest)),
    })
}

/// A block read once for the several candidates it holds.
struct Blocks<'a> {
    store: &'a Store,
    cached: Option<(u64, BlockView)>,
}

impl Blocks<'_> {
    /// The block at `height`.
    fn get(&mut self, height: u64) -> Result<&BlockView, ReadError> {
        if self.cached.as_ref().map(|c| c.0) != Some(height) {
            let bytes = self
                .store
                .block(height)?
                .ok_or(ReadError::MissingBlock { height })?;
            self.cached = Some((height, BlockView::new(bytes)?));
        }
        self.cached
            .as_ref()
            .map(|(_, b)| b)
            .ok_or(ReadError::MissingBlock { height })
    }
}

/// The event at `at`, if it is a successful transaction that is an EPCIS event.
fn event_at(
    blocks: &mut Blocks<'_>,
    chain_id: &str,
    at: Position,
) -> Result<Option<(Value, i64)>, ReadError> {
    // The transaction's copy by position, when it has one (every transaction that names
    // an identifier): one small read instead of its block.
    let copy = blocks
        .store
        .get_indexes(&[state::positioned_tx_key(at.0, at.1).as_slice()])?
        .pop()
        .flatten()
        .and_then(|bytes| prost::Message::decode(bytes.as_slice()).ok())
        .and_then(|e: pb::ShipmentEvent| Some((e.tx?, e.block_time_ms)));
    let (signed, time) = match copy {
        Some(found) => found,
        None => {
            let block = blocks.get(at.0)?;
            let ok = block
                .result(at.1)?
                .is_some_and(|r| r.code == pb::ResultCode::Ok as i32);
            let Some(signed) = block.tx(at.1)?.filter(|_| ok) else {
                return Ok(None);
            };
            (signed, block.time_ms())
        }
    };
    // The node's own committed block: its transactions decode, or the store is corrupt
    // (their signatures were verified before commit).
    let checked = tx::committed(signed, chain_id).map_err(|e| {
        ReadError::Chain(crate::chain::ChainError::Corrupt {
            what: "committed transaction",
            reason: e.to_string(),
        })
    })?;
    let event = export::any_event(&export::ExportEvent {
        block_time_ms: time,
        tx: &checked,
    })
    .map_err(|e| {
        ReadError::Chain(crate::chain::ChainError::Corrupt {
            what: "committed EPCIS event",
            reason: e.to_string(),
        })
    })?;
    Ok(event.map(|e| (e, time)))
}

fn position(prefix: &[u8], key: &[u8]) -> Result<Position, ReadError> {
    let suffix = key.get(prefix.len()..).unwrap_or_default();
    match (suffix.get(..8), suffix.get(8..12)) {
        (Some(h), Some(i)) if suffix.len() == 12 => Ok((
            u64::from_be_bytes(h.try_into().unwrap_or_default()),
            u32::from_be_bytes(i.try_into().unwrap_or_default()),
        )),
        _ => Err(ReadError::CorruptIndex { what: "identifier" }),
    }
}

/// The candidates from `start` on, in chain order: from the index of the query's
/// identifiers, or every transaction of every block up to `head`. At most
/// [`SCAN_BUDGET`]; the bool says whether there may be more after them.
fn candidates(
    store: &Store,
    head: u64,
    q: &Query,
    start: Position,
) -> Result<(Vec<Position>, bool), ReadError> {
    let Some(keys) = q.candidate_keys() else {
        let mut out = Vec::new();
        let mut blocks = Blocks {
            store,
            cached: None,
        };
        for height in start.0.max(1)..=head {
            let n = blocks.get(height)?.len() as u32;
            let first = if height == start.0 { start.1 } else { 0 };
            for index in first..n {
                if out.len() == SCAN_BUDGET {
                    return Ok((out, true));
                }
                out.push((height, index));
            }
        }
        return Ok((out, false));
    };
    let mut merged: BTreeSet<Position> = BTreeSet::new();
    // A key that filled its budget may have more entries after its last one: positions
    // beyond the earliest such last entry wait for the next page.
    let mut horizon: Option<Position> = None;
    // The budget is shared by the keys, so a query of many identifiers reads no more.
    let per_key = (SCAN_BUDGET / keys.len().max(1)).max(1);
    for key in keys {
        let prefix = state::identifier_prefix(key);
        let from = state::entry_key(prefix.clone(), start.0, start.1);
        let entries = store.scan_index_from(&prefix, &from, per_key)?;
        let full = entries.len() == per_key;
        let mut last = None;
        for (k, _) in entries {
            let p = position(&prefix, &k)?;
            merged.insert(p);
            last = Some(p);
        }
        if full && let Some(last) = last {
            horizon = Some(horizon.map_or(last, |h: Position| h.min(last)));
        }
    }
    let out: Vec<Position> = merged
        .into_iter()
        .filter(|p| horizon.is_none_or(|h| *p <= h))
        .take(SCAN_BUDGET)
        .collect();
    let more = horizon.is_some() || out.len() == SCAN_BUDGET;
    Ok((out, more))
}

fn scan(
    store: &Store,
    chain_id: &str,
    head: u64,
    q: &Query,
    start: Position,
    per_page: usize,
) -> Result<(Vec<Value>, Option<Position>), ReadError> {
    let (positions, more) = candidates(store, head, q, start)?;
    let mut blocks = Blocks {
        store,
        cached: None,
    };
    let mut events = Vec::new();
    for (n, at) in positions.iter().enumerate() {
        if at.0 > head {
            break;
        }
        let Some((event, record_time)) = event_at(&mut blocks, chain_id, *at)? else {
            continue;
        };
        if !q.matches(&event, record_time) {
            continue;
        }
        events.push(query::with_record_time(event, record_time));
        if events.len() == per_page {
            let rest = n + 1 < positions.len() || more;
            return Ok((events, rest.then_some((at.0, at.1 + 1))));
        }
    }
    let next = match positions.last() {
        Some(last) if more => Some((last.0, last.1 + 1)),
        _ => None,
    };
    Ok((events, next))
}
