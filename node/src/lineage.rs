//! A thing's lineage, both ways, from the transformation indexes: what it was made from
//! (upstream) and what was made from it (downstream), breadth first, bounded in depth and
//! in size.

use std::collections::BTreeSet;

use tracechain_proto::v1 as pb;

use crate::{
    ledger::{identifiers, state},
    node::{HistoryError, Node},
};

/// Depth when the request gives none.
pub const DEFAULT_DEPTH: u32 = 8;
/// Deepest a request may ask.
pub const MAX_DEPTH: u32 = 32;
/// Most transformations one answer lists, each way.
pub const MAX_LINKS: usize = 1_000;

/// Why a lineage was not answered.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    /// The store failed.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// More transformations within the depth than one answer lists.
    #[error(
        "the lineage of {key} holds more than {MAX_LINKS} transformations {direction} within \
         depth {depth}: ask for a smaller depth"
    )]
    TooLarge {
        /// The identifier key.
        key: String,
        /// "upstream" or "downstream".
        direction: &'static str,
        /// The depth asked.
        depth: u32,
    },
}

#[derive(Clone, Copy)]
enum Direction {
    /// What made it: follow outputs back to inputs.
    Up,
    /// What used it: follow inputs on to outputs.
    Down,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Up => "upstream",
            Direction::Down => "downstream",
        }
    }

    fn prefix(self, key: &str) -> Vec<u8> {
        match self {
            Direction::Up => state::made_by_prefix(key),
            Direction::Down => state::used_by_prefix(key),
        }
    }
}

/// The transformations one way from `key`, nearest first, and whether the lineage goes
/// on beyond `depth`.
async fn walk(
    node: &Node,
    key: &str,
    direction: Direction,
    depth: u32,
) -> Result<(Vec<pb::LineageLink>, bool), LineageError> {
    let too_large = || LineageError::TooLarge {
        key: key.to_string(),
        direction: direction.name(),
        depth,
    };
    let mut links: Vec<pb::LineageLink> = Vec::new();
    let mut seen_keys: BTreeSet<String> = BTreeSet::from([key.to_string()]);
    let mut seen_txs: BTreeSet<(u64, u32)> = BTreeSet::new();
    let mut frontier = vec![key.to_string()];
    for level in 1..=depth {
        let mut next = Vec::new();
        for k in &frontier {
            let found = match node
                .transformations(direction.prefix(k), MAX_LINKS - links.len())
                .await
            {
                Err(HistoryError::TooLong { .. }) => return Err(too_large()),
                other => other?,
            };
            for mut link in found {
                if !seen_txs.insert((link.height, link.index)) {
                    continue;
                }
                let further = match direction {
                    Direction::Up => &link.inputs,
                    Direction::Down => &link.outputs,
                };
                next.extend(
                    further
                        .iter()
                        .filter(|f| seen_keys.insert((*f).clone()))
                        .cloned(),
                );
                link.depth = level;
                links.push(link);
            }
        }
        frontier = next;
        if frontier.is_empty() {
            return Ok((links, false));
        }
    }
    // Does anything of the last frontier go on?
    for k in &frontier {
        match node.transformations(direction.prefix(k), 1).await {
            Ok(found) if found.is_empty() => {}
            Ok(_) | Err(HistoryError::TooLong { .. }) => return Ok((links, true)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok((links, false))
}

/// The lineage of the thing `identifier` names, to `max_depth` transformations each way
/// (0: [`DEFAULT_DEPTH`]; capped at [`MAX_DEPTH`]).
pub async fn lineage(
    node: &Node,
    identifier: &str,
    max_depth: u32,
) -> Result<pb::GetLineageResponse, LineageError> {
    let depth = if max_depth == 0 {
        DEFAULT_DEPTH
    } else {
        max_depth.min(MAX_DEPTH)
    };
    let key = identifiers::key(identifier);
    let (upstream, upstream_beyond_depth) = walk(node, &key, Direction::Up, depth).await?;
    let (downstream, downstream_beyond_depth) = walk(node, &key, Direction::Down, depth).await?;
    Ok(pb::GetLineageResponse {
        key,
        upstream,
        downstream,
        upstream_beyond_depth,
        downstream_beyond_depth,
    })
}
