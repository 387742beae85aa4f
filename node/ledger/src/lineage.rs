//! What was made from what: EPCIS TransformationEvents, their inputs and outputs (items
//! by EPC, lots and classes by `epcClass`), under one identifier key per thing
//! ([`crate::identifiers::key`]).
//!
//! Under the genesis rule [`LineageRule::Tracked`](crate::genesis::LineageRule::Tracked)
//! the state keeps each output's inputs (`l/<key>`, [`pb::Lineage`]) and whether it was
//! ever an input, and refuses, with [`pb::ResultCode::LineageConflict`] and changing
//! nothing, a transformation that would make something from itself: an output among its
//! own inputs, or among their ancestors (a cycle). Only an output that was already an
//! input somewhere (one with descendants) can close a cycle, so only then are the inputs'
//! ancestors walked, up to [`MAX_ANCESTORS`]; inputs whose lineage is larger are refused
//! as too large to check rather than accepted unchecked.
//!
//! Every chain indexes each transformation under its outputs (`t/<key>`: what made it)
//! and its inputs (`o/<key>`: what used it), so lineage is answered both ways from the
//! index ([`crate::state::made_by_prefix`], [`crate::state::used_by_prefix`]).

use std::collections::BTreeSet;

use serde_json::Value;
use tracechain_proto::v1::{self as pb, ResultCode as Code, tx_body::Action};

use crate::{
    Rejection, identifiers,
    state::{self, StateError, TxState},
};

/// Most inputs kept for one output (over all the transformations that made it).
pub const MAX_INPUTS: usize = 1_000;
/// Most ancestors a transformation's cycle check walks: one state read each, so this
/// bounds what one transaction costs every node (a member could otherwise make each of
/// its transformations walk an arbitrarily large lineage).
pub const MAX_ANCESTORS: usize = 1_000;

/// A transformation's inputs and outputs, as identifier keys, each once, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transformation {
    /// What went in.
    pub inputs: Vec<String>,
    /// What came out.
    pub outputs: Vec<String>,
}

fn keys(event: &Value, ids: &str, quantities: &str) -> Vec<String> {
    let mut out = BTreeSet::new();
    if let Some(list) = event[ids].as_array() {
        out.extend(list.iter().filter_map(Value::as_str).map(identifiers::key));
    }
    if let Some(list) = event[quantities].as_array() {
        out.extend(
            list.iter()
                .filter_map(|q| q["epcClass"].as_str())
                .map(identifiers::key),
        );
    }
    out.into_iter().collect()
}

/// The transformation an EPCIS event records, if it is a TransformationEvent whose JSON
/// parses.
pub fn of_event(e: &pb::RecordEpcisEvent) -> Option<Transformation> {
    if e.event_type != pb::EpcisEventType::Transformation as i32 {
        return None;
    }
    let event: Value = serde_json::from_str(&e.event_json).ok()?;
    of_json(e, Some(&event))
}

/// [`of_event`] with the event's JSON already parsed (`None`: it does not parse).
pub fn of_json(e: &pb::RecordEpcisEvent, event: Option<&Value>) -> Option<Transformation> {
    if e.event_type != pb::EpcisEventType::Transformation as i32 {
        return None;
    }
    let event = event?;
    Some(Transformation {
        inputs: keys(event, "inputEPCList", "inputQuantityList"),
        outputs: keys(event, "outputEPCList", "outputQuantityList"),
    })
}

/// The transformation an action records, if any.
pub fn of_action(action: &Action) -> Option<Transformation> {
    match action {
        Action::RecordEpcisEvent(e) => of_event(e),
        _ => None,
    }
}

fn conflict<T>(message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(Code::LineageConflict, message))
}

/// Applies a transformation: refuses one that makes something from itself, else adds
/// its inputs to each output's lineage.
pub(crate) fn apply(
    st: &mut TxState<'_>,
    t: &Transformation,
) -> Result<Result<(), Rejection>, StateError> {
    if t.inputs.is_empty() || t.outputs.is_empty() {
        return Ok(Ok(()));
    }
    if let Some(both) = t.outputs.iter().find(|o| t.inputs.contains(o)) {
        return Ok(conflict(format!(
            "{both} is both an input and an output: it would be made from itself"
        )));
    }
    // An output nothing was made from yet has no descendants: it closes no cycle.
    let mut reused = false;
    for output in &t.outputs {
        reused |= st
            .read::<pb::Lineage>(&state::lineage_key(output))?
            .is_some_and(|l| l.consumed);
    }
    if reused && let Err(r) = no_cycle(st, t)? {
        return Ok(Err(r));
    }
    for input in &t.inputs {
        let key = state::lineage_key(input);
        let mut lineage = st
            .read::<pb::Lineage>(&key)?
            .unwrap_or_else(|| pb::Lineage {
                key: input.clone(),
                ..Default::default()
            });
        if !lineage.consumed {
            lineage.consumed = true;
            st.write(key, lineage);
        }
    }
    for output in &t.outputs {
        let key = state::lineage_key(output);
        let mut lineage = st
            .read::<pb::Lineage>(&key)?
            .unwrap_or_else(|| pb::Lineage {
                key: output.clone(),
                ..Default::default()
            });
        for input in &t.inputs {
            if let Err(at) = lineage.inputs.binary_search(input) {
                lineage.inputs.insert(at, input.clone());
            }
        }
        if lineage.inputs.len() > MAX_INPUTS {
            return Ok(conflict(format!(
                "{output} would be made from more than {MAX_INPUTS} inputs"
            )));
        }
        st.write(key, lineage);
    }
    Ok(Ok(()))
}

/// Walks the inputs' ancestors: an output among them closes a cycle.
fn no_cycle(st: &TxState<'_>, t: &Transformation) -> Result<Result<(), Rejection>, StateError> {
    let mut seen: BTreeSet<String> = t.inputs.iter().cloned().collect();
    let mut queue: Vec<String> = t.inputs.clone();
    while let Some(key) = queue.pop() {
        let Some(lineage) = st.read::<pb::Lineage>(&state::lineage_key(&key))? else {
            continue;
        };
        for input in lineage.inputs {
            if t.outputs.contains(&input) {
                return Ok(conflict(format!(
                    "{input} is an ancestor of input {key}: the transformation would make \
                     it from itself"
                )));
            }
            if seen.insert(input.clone()) {
                if seen.len() > MAX_ANCESTORS {
                    return Ok(conflict(format!(
                        "the inputs have more than {MAX_ANCESTORS} ancestors: too many to \
                         check that nothing is made from itself"
                    )));
                }
                queue.push(input);
            }
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transformation_is_read_from_its_lists_as_keys() {
        let e = pb::RecordEpcisEvent {
            event_type: pb::EpcisEventType::Transformation as i32,
            event_json: serde_json::json!({
                "inputEPCList": ["urn:epc:id:sgtin:4012345.011111.1"],
                "inputQuantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.011111.A", "quantity": 5}],
                "outputQuantityList": [{"epcClass": "https://id.gs1.org/01/04012345111118/10/MIX"}],
            })
            .to_string(),
            ..Default::default()
        };
        let t = of_event(&e).expect("a transformation");
        assert_eq!(
            t.inputs,
            [
                "https://id.gs1.org/01/04012345111118/10/A",
                "https://id.gs1.org/01/04012345111118/21/1"
            ]
        );
        assert_eq!(t.outputs, ["https://id.gs1.org/01/04012345111118/10/MIX"]);
        let object = pb::RecordEpcisEvent {
            event_type: pb::EpcisEventType::Object as i32,
            ..e
        };
        assert_eq!(of_event(&object), None);
    }
}
