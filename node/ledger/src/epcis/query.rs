//! EPCIS 2.0 queries (the SimpleEventQuery of the standard, the subset docs/EPCIS.md
//! names): parameters by their standard names, matched against events as EPCIS JSON — an
//! imported event as recorded, a native action as `export` writes it — so one set of
//! semantics serves both. Identifiers compare by their index keys
//! ([`crate::identifiers::key`]): an EPC URI matches its Digital Link.

use serde_json::{Value, json};

use super::{export, vocab};
use crate::identifiers;

/// The parameters served, by their standard names.
pub const PARAMETERS: &[&str] = &[
    "eventType",
    "MATCH_epc",
    "MATCH_anyEPC",
    "MATCH_parentID",
    "MATCH_inputEPC",
    "MATCH_outputEPC",
    "MATCH_epcClass",
    "MATCH_anyEPCClass",
    "EQ_bizStep",
    "EQ_disposition",
    "EQ_readPoint",
    "EQ_bizLocation",
    "GE_eventTime",
    "LT_eventTime",
    "GE_recordTime",
    "LT_recordTime",
];

/// Most values one query may give, over all its parameters: each identifier value is an
/// index to read.
pub const MAX_VALUES: usize = 1_000;

/// The EPCIS 2.0 event types.
const EVENT_TYPES: &[&str] = &[
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
];

/// Why a query is refused: the parameter and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter {name}: {reason}")]
pub struct QueryError {
    /// The parameter.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

fn bad(name: &str, reason: impl Into<String>) -> QueryError {
    QueryError {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// The identifiers one parameter asks for: index keys, and EPC patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Wanted {
    keys: Vec<String>,
    patterns: Vec<identifiers::Pattern>,
}

impl Wanted {
    fn keys(keys: Vec<String>) -> Self {
        Wanted {
            keys,
            patterns: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.patterns.is_empty()
    }

    /// Whether the index key `have` is one asked for.
    fn contains(&self, have: &str) -> bool {
        self.keys.iter().any(|k| k == have) || self.patterns.iter().any(|p| p.matches(have))
    }
}

/// A checked query. Each list parameter matches when any of its values does; an event
/// is a result when every parameter given matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    event_types: Vec<String>,
    match_epc: Wanted,
    match_any_epc: Wanted,
    match_parent_id: Wanted,
    match_input_epc: Wanted,
    match_output_epc: Wanted,
    match_epc_class: Wanted,
    match_any_epc_class: Wanted,
    eq_biz_step: Vec<String>,
    eq_disposition: Vec<String>,
    eq_read_point: Wanted,
    eq_biz_location: Wanted,
    ge_event_time: Option<i64>,
    lt_event_time: Option<i64>,
    ge_record_time: Option<i64>,
    lt_record_time: Option<i64>,
}

/// A CBV value as its bare word when it is a standard one written in any of its forms
/// (`shipping`, `urn:epcglobal:cbv:bizstep:shipping`, `https://ref.gs1.org/cbv/BizStep-shipping`,
/// `cbv:BizStep-shipping`), else as written.
fn cbv_word<'a>(value: &'a str, web: &str, urn: &str) -> &'a str {
    value
        .strip_prefix("https://ref.gs1.org/cbv/")
        .and_then(|r| r.strip_prefix(web))
        .or_else(|| value.strip_prefix("cbv:").and_then(|r| r.strip_prefix(web)))
        .or_else(|| value.strip_prefix(urn))
        .unwrap_or(value)
}

fn biz_step(value: &str) -> &str {
    cbv_word(value, "BizStep-", "urn:epcglobal:cbv:bizstep:")
}

fn disposition(value: &str) -> &str {
    cbv_word(value, "Disp-", "urn:epcglobal:cbv:disp:")
}

impl Query {
    /// Checks parameters (name, values) and builds the query. An unknown name, a bad
    /// time, an EPC pattern this node does not serve or an identifier that is not an EPC
    /// URI or Digital Link is refused naming the parameter.
    pub fn parse(params: &[(String, Vec<String>)]) -> Result<Query, QueryError> {
        let mut q = Query::default();
        let total: usize = params.iter().map(|(_, v)| v.len()).sum();
        if total > MAX_VALUES {
            let name = params.first().map_or("", |(n, _)| n.as_str());
            return Err(bad(
                name,
                format!("the query gives {total} values, more than the {MAX_VALUES} one query may"),
            ));
        }
        for (i, (name, values)) in params.iter().enumerate() {
            let name = name.as_str();
            if values.is_empty() {
                return Err(bad(name, "has no value"));
            }
            // Given twice, the second would silently replace the first.
            if params[..i].iter().any(|(n, _)| n == name) {
                return Err(bad(name, "is given twice: give all its values in one"));
            }
            let class = name.to_ascii_lowercase().ends_with("epcclass");
            let epcs = |values: &[String]| -> Result<Wanted, QueryError> {
                let mut wanted = Wanted::default();
                for v in values {
                    if v.starts_with("urn:epc:idpat:") {
                        let pattern =
                            identifiers::Pattern::parse(v, class).map_err(|e| bad(name, e))?;
                        wanted.patterns.push(pattern);
                    } else {
                        identifiers::check_epc(v).map_err(|e| bad(name, e))?;
                        wanted.keys.push(identifiers::key(v));
                    }
                }
                Ok(wanted)
            };
            let time = |values: &[String]| -> Result<Option<i64>, QueryError> {
                match values {
                    [one] => vocab::parse_time(one).map(Some).map_err(|e| bad(name, e)),
                    _ => Err(bad(name, "takes one time")),
                }
            };
            match name {
                "eventType" => {
                    for v in values {
                        if !EVENT_TYPES.contains(&v.as_str()) {
                            return Err(bad(name, format!("{v:?} is not an EPCIS event type")));
                        }
                    }
                    q.event_types = values.clone();
                }
                "MATCH_epc" => q.match_epc = epcs(values)?,
                "MATCH_anyEPC" => q.match_any_epc = epcs(values)?,
                "MATCH_parentID" => q.match_parent_id = epcs(values)?,
                "MATCH_inputEPC" => q.match_input_epc = epcs(values)?,
                "MATCH_outputEPC" => q.match_output_epc = epcs(values)?,
                "MATCH_epcClass" => q.match_epc_class = epcs(values)?,
                "MATCH_anyEPCClass" => q.match_any_epc_class = epcs(values)?,
                "EQ_bizStep" => {
                    q.eq_biz_step = values.iter().map(|v| biz_step(v).to_string()).collect()
                }
                "EQ_disposition" => {
                    q.eq_disposition = values.iter().map(|v| disposition(v).to_string()).collect()
                }
                "EQ_readPoint" => {
                    q.eq_read_point =
                        Wanted::keys(values.iter().map(|v| identifiers::key(v)).collect())
                }
                "EQ_bizLocation" => {
                    q.eq_biz_location =
                        Wanted::keys(values.iter().map(|v| identifiers::key(v)).collect())
                }
                "GE_eventTime" => q.ge_event_time = time(values)?,
                "LT_eventTime" => q.lt_event_time = time(values)?,
                "GE_recordTime" => q.ge_record_time = time(values)?,
                "LT_recordTime" => q.lt_record_time = time(values)?,
                other => {
                    return Err(bad(
                        other,
                        format!(
                            "is not a parameter this node serves ({})",
                            PARAMETERS.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(q)
    }

    /// The identifier keys one of which every result names (each result is in the index
    /// of one of them), or `None` when the query names no identifier: the most selective
    /// parameter given, identifiers before places. A parameter with a pattern among its
    /// values gives none (its results are not under a few keys).
    pub fn candidate_keys(&self) -> Option<&[String]> {
        [
            &self.match_epc,
            &self.match_any_epc,
            &self.match_parent_id,
            &self.match_input_epc,
            &self.match_output_epc,
            &self.match_epc_class,
            &self.match_any_epc_class,
            &self.eq_read_point,
            &self.eq_biz_location,
        ]
        .into_iter()
        .find(|w| !w.keys.is_empty() && w.patterns.is_empty())
        .map(|w| w.keys.as_slice())
    }

    /// Whether `event` (EPCIS JSON), recorded at `record_time_ms`, is a result.
    pub fn matches(&self, event: &Value, record_time_ms: i64) -> bool {
        let ids = |fields: &[&str]| -> Vec<String> {
            let mut out = Vec::new();
            for f in fields {
                match &event[*f] {
                    Value::String(s) => out.push(identifiers::key(s)),
                    Value::Array(list) => out.extend(
                        list.iter()
                            .filter_map(|v| v.as_str().or_else(|| v["epcClass"].as_str()))
                            .map(identifiers::key),
                    ),
                    _ => {}
                }
            }
            out
        };
        let any = |wanted: &Wanted, fields: &[&str]| {
            wanted.is_empty() || ids(fields).iter().any(|have| wanted.contains(have))
        };
        let place = |wanted: &Wanted, field: &str| {
            wanted.is_empty()
                || event[field]["id"]
                    .as_str()
                    .is_some_and(|p| wanted.contains(&identifiers::key(p)))
        };
        let word = |wanted: &[String], field: &str, norm: fn(&str) -> &str| {
            wanted.is_empty()
                || event[field]
                    .as_str()
                    .is_some_and(|v| wanted.iter().any(|w| w == norm(v)))
        };
        let event_time = event["eventTime"]
            .as_str()
            .and_then(|t| vocab::parse_time(t).ok());
        let within = |t: Option<i64>, ge: Option<i64>, lt: Option<i64>| {
            (ge.is_none() && lt.is_none())
                || t.is_some_and(|t| ge.is_none_or(|g| t >= g) && lt.is_none_or(|l| t < l))
        };
        let type_ok = self.event_types.is_empty()
            || event["type"]
                .as_str()
                .is_some_and(|t| self.event_types.iter().any(|w| w == t));
        type_ok
            && any(&self.match_epc, &["epcList", "childEPCs"])
            && any(
                &self.match_any_epc,
                &[
                    "epcList",
                    "childEPCs",
                    "parentID",
                    "inputEPCList",
                    "outputEPCList",
                ],
            )
            && any(&self.match_parent_id, &["parentID"])
            && any(&self.match_input_epc, &["inputEPCList"])
            && any(&self.match_output_epc, &["outputEPCList"])
            && any(
                &self.match_epc_class,
                &["quantityList", "childQuantityList"],
            )
            && any(
                &self.match_any_epc_class,
                &[
                    "quantityList",
                    "childQuantityList",
                    "inputQuantityList",
                    "outputQuantityList",
                ],
            )
            && word(&self.eq_biz_step, "bizStep", biz_step)
            && word(&self.eq_disposition, "disposition", disposition)
            && place(&self.eq_read_point, "readPoint")
            && place(&self.eq_biz_location, "bizLocation")
            && within(event_time, self.ge_event_time, self.lt_event_time)
            && within(
                Some(record_time_ms),
                self.ge_record_time,
                self.lt_record_time,
            )
    }
}

/// A result event: the event with its `recordTime` (the block's time: when the
/// consortium recorded it).
pub fn with_record_time(mut event: Value, record_time_ms: i64) -> Value {
    if let Some(e) = event.as_object_mut() {
        e.insert("recordTime".into(), json!(export::time(record_time_ms)));
    }
    event
}

/// The EPCIS 2.0 query document of a page of results.
pub fn query_document(events: Vec<Value>, created_ms: i64) -> Value {
    json!({
        "@context": [export::CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": export::time(created_ms),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": { "eventList": events },
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn q(list: &[(&str, &[&str])]) -> Query {
        Query::parse(&params(list)).expect("a valid query")
    }

    const ITEM: &str = "urn:epc:id:sgtin:0614141.712345.2017";
    const PALLET: &str = "urn:epc:id:sscc:0614141.1234567890";

    fn packing() -> Value {
        json!({
            "type": "AggregationEvent", "action": "ADD",
            "eventTime": "2024-03-02T09:00:00.000+01:00",
            "bizStep": "urn:epcglobal:cbv:bizstep:packing", "disposition": "in_progress",
            "parentID": PALLET, "childEPCs": [ITEM],
            "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
        })
    }

    #[test]
    fn the_standard_semantics_of_each_parameter() {
        let e = packing();
        let t = 1_709_370_000_000; // 2024-03-02T09:00:00Z
        let link = "https://brand.example/01/70614141123451/21/2017";
        // MATCH_epc looks at epcList and childEPCs, in any form of the identifier.
        assert!(q(&[("MATCH_epc", &[link])]).matches(&e, t));
        assert!(!q(&[("MATCH_epc", &[PALLET])]).matches(&e, t));
        // MATCH_anyEPC also at the parent.
        assert!(q(&[("MATCH_anyEPC", &[PALLET])]).matches(&e, t));
        assert!(q(&[("MATCH_parentID", &[PALLET])]).matches(&e, t));
        assert!(q(&[("eventType", &["AggregationEvent", "ObjectEvent"])]).matches(&e, t));
        assert!(!q(&[("eventType", &["ObjectEvent"])]).matches(&e, t));
        // CBV words in any form.
        assert!(q(&[("EQ_bizStep", &["packing"])]).matches(&e, t));
        assert!(q(&[("EQ_bizStep", &["https://ref.gs1.org/cbv/BizStep-packing"])]).matches(&e, t));
        assert!(!q(&[("EQ_bizStep", &["shipping"])]).matches(&e, t));
        assert!(q(&[("EQ_disposition", &["urn:epcglobal:cbv:disp:in_progress"])]).matches(&e, t));
        assert!(q(&[("EQ_readPoint", &["https://id.gs1.org/414/0614141007776"])]).matches(&e, t));
        assert!(!q(&[("EQ_bizLocation", &["urn:epc:id:sgln:0614141.00777.0"])]).matches(&e, t));
        // Times: the event's (08:00Z) and the record's.
        assert!(q(&[("GE_eventTime", &["2024-03-02T08:00:00Z"])]).matches(&e, t));
        assert!(!q(&[("LT_eventTime", &["2024-03-02T08:00:00Z"])]).matches(&e, t));
        assert!(q(&[("LT_recordTime", &["2024-03-02T09:00:00.001Z"])]).matches(&e, t));
        assert!(!q(&[("GE_recordTime", &["2024-03-02T09:00:00.001Z"])]).matches(&e, t));
        // Every parameter must hold.
        assert!(!q(&[("MATCH_epc", &[ITEM]), ("EQ_bizStep", &["shipping"])]).matches(&e, t));
        assert_eq!(
            q(&[
                ("EQ_readPoint", &["urn:epc:id:sgln:0614141.00777.0"]),
                ("MATCH_anyEPC", &[ITEM])
            ])
            .candidate_keys(),
            Some(&[identifiers::key(ITEM)][..])
        );
        assert_eq!(q(&[("EQ_bizStep", &["packing"])]).candidate_keys(), None);
    }

    /// EPC patterns (TDS): every serial of a product, every SSCC or SGTIN of a company;
    /// for classes, a product's lots. They match each form of an identifier, and a
    /// parameter with a pattern gives no candidate keys (the node reads blocks instead).
    #[test]
    fn epc_patterns_match_what_they_stand_for() {
        let e = packing();
        let t = 1_709_370_000_000;
        let yes = |name: &str, pattern: &str| q(&[(name, &[pattern])]).matches(&e, t);
        assert!(yes("MATCH_epc", "urn:epc:idpat:sgtin:0614141.712345.*"));
        assert!(yes("MATCH_epc", "urn:epc:idpat:sgtin:0614141.*.*"));
        assert!(!yes("MATCH_epc", "urn:epc:idpat:sgtin:0614141.712346.*"));
        assert!(!yes("MATCH_epc", "urn:epc:idpat:sgtin:0614142.*.*"));
        // The pallet is the parent: MATCH_anyEPC, not MATCH_epc.
        assert!(yes("MATCH_anyEPC", "urn:epc:idpat:sscc:0614141.*"));
        assert!(yes("MATCH_parentID", "urn:epc:idpat:sscc:0614141.*"));
        assert!(!yes("MATCH_epc", "urn:epc:idpat:sscc:0614141.*"));
        assert!(!yes("MATCH_parentID", "urn:epc:idpat:sscc:4012345.*"));
        // A pattern and an exact value in one parameter: either matches.
        assert!(q(&[("MATCH_epc", &["urn:epc:idpat:sgtin:4012345.*.*", ITEM])]).matches(&e, t));
        assert_eq!(
            q(&[("MATCH_epc", &["urn:epc:idpat:sgtin:0614141.712345.*"])]).candidate_keys(),
            None
        );
        assert_eq!(
            q(&[
                ("MATCH_epc", &["urn:epc:idpat:sgtin:0614141.712345.*"]),
                ("MATCH_parentID", &[PALLET])
            ])
            .candidate_keys(),
            Some(&[identifiers::key(PALLET)][..])
        );
        // Classes: a lot of the product is one of its classes; another product's is not.
        let lots = json!({
            "type": "ObjectEvent", "action": "OBSERVE",
            "eventTime": "2024-03-02T09:00:00Z",
            "quantityList": [{"epcClass": "urn:epc:class:lgtin:0614141.712345.L7", "quantity": 5}],
        });
        let class = |pattern: &str| q(&[("MATCH_epcClass", &[pattern])]).matches(&lots, t);
        assert!(class("urn:epc:idpat:sgtin:0614141.712345.*"));
        assert!(class("urn:epc:idpat:sgtin:0614141.*.*"));
        assert!(!class("urn:epc:idpat:sgtin:0614141.712399.*"));
        // Other keys with `*` last: every asset of a company, every extension of a place.
        let giai = identifiers::Pattern::parse("urn:epc:idpat:giai:0614141.*", false)
            .expect("a giai pattern");
        assert!(giai.matches(&identifiers::key("urn:epc:id:giai:0614141.A7")));
        assert!(!giai.matches(&identifiers::key("urn:epc:id:giai:0614142.A7")));
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        let err = Query::parse(&params(&[
            ("MATCH_anyEPC", &[ITEM]),
            ("EQ_bizStep", &["packing"]),
            ("MATCH_anyEPC", &[PALLET]),
        ]))
        .expect_err("twice");
        assert_eq!(err.name, "MATCH_anyEPC");
        assert!(err.reason.contains("given twice"), "{err}");
    }

    #[test]
    fn bad_parameters_are_refused_by_name() {
        for (name, values, says) in [
            (
                "MATCH_whatever",
                vec!["x"],
                "is not a parameter this node serves",
            ),
            ("MATCH_epc", vec!["pallet-9"], "is neither an EPC URI"),
            (
                "MATCH_epc",
                vec!["urn:epc:idpat:sgtin:0614141.*.2017"],
                "only `*` in the last field(s)",
            ),
            (
                "MATCH_epc",
                vec!["urn:epc:idpat:sgtin:*.*.*"],
                "at least its company prefix",
            ),
            (
                "MATCH_anyEPC",
                vec!["urn:epc:idpat:sscc:06x4141.*"],
                "is not a GS1 company prefix",
            ),
            ("GE_eventTime", vec!["yesterday"], "is not a date-time"),
            (
                "GE_eventTime",
                vec!["2024-03-02T08:00:00Z", "2024-03-02T09:00:00Z"],
                "takes one time",
            ),
            (
                "eventType",
                vec!["SensorEvent"],
                "is not an EPCIS event type",
            ),
            ("EQ_bizStep", vec![], "has no value"),
            (
                "EQ_bizStep",
                vec!["packing"; MAX_VALUES + 1],
                "more than the 1000 one query may",
            ),
        ] {
            let err = Query::parse(&[(
                name.to_string(),
                values.iter().map(|s| s.to_string()).collect(),
            )])
            .expect_err(name);
            assert_eq!(err.name, name);
            assert!(err.reason.contains(says), "{name}: {err}");
        }
    }
}
