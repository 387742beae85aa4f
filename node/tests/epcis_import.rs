//! The EPCIS importer against documents we wrote (tests/fixtures/epcis/own): every event
//! type and the CBV forms accepted, a document with bad events rejected whole with every
//! bad event's position and reason, garbage refused without a panic. Documents written by
//! others (openepcis) are the interop tier's (tests/interop.rs).

use std::path::{Path, PathBuf};

use tracechain_node::epcis::{EpcisError, RejectedEvent, parse::parse_document};
use tracechain_proto::v1 as pb;

fn fixture_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/epcis")
        .join(sub)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rejected(sub: &str, name: &str) -> (usize, Vec<RejectedEvent>) {
    match parse_document(&read(&fixture_dir(sub).join(name))) {
        Err(EpcisError::Rejected { total, rejected }) => (total, rejected),
        other => panic!("{name}: expected rejected events, got {other:?}"),
    }
}

#[test]
fn our_documents_cover_every_type_and_the_cbv_forms() {
    let minimal = parse_document(&read(&fixture_dir("own").join("minimal.json"))).expect("ok");
    assert_eq!(minimal.len(), 1);
    assert_eq!(minimal[0].event_time_ms, 1_709_369_700_000);
    let events = parse_document(&read(&fixture_dir("own").join("cold_chain.json"))).expect("valid");
    let types: Vec<i32> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            pb::EpcisEventType::Object as i32,
            pb::EpcisEventType::Aggregation as i32,
            pb::EpcisEventType::Transaction as i32,
            pb::EpcisEventType::Transformation as i32,
            pb::EpcisEventType::Association as i32,
        ]
    );
    // Web URI and URN forms normalise to the bare CBV word.
    assert_eq!(events[0].biz_step, "shipping");
    assert_eq!(events[0].disposition, "in_transit");
    assert_eq!(events[4].biz_step, "installing");
    // 08:00+01:00 = 07:00Z.
    assert_eq!(events[0].event_time_ms, 1_709_362_800_000);
    let r = &events[0].sensor_readings;
    assert_eq!(r[0].value_micro, Some(4_250_000));
    assert_eq!(
        (r[0].min_micro, r[0].max_micro),
        (Some(3_500_000), Some(5_125_000))
    );
    assert_eq!(
        (r[1].uom.as_str(), r[1].value_micro),
        ("P1", Some(81_500_000))
    );
    assert_eq!(
        (r[2].uom.as_str(), r[2].value_micro),
        ("FAH", Some(40_100_000))
    );
    assert_eq!(
        r[2].time_ms, 1_709_365_500_000,
        "the report's own time wins"
    );
    assert_eq!(r[0].device_id, "urn:epc:id:giai:4012345.901");
    // The aggregation names its parent and children.
    assert_eq!(
        events[1].epcs,
        [
            "urn:epc:id:sscc:4012345.0000000099",
            "urn:epc:id:sgtin:4012345.011111.1",
            "urn:epc:id:sgtin:4012345.011111.2"
        ]
    );
    assert!(
        events[3].action.is_empty(),
        "transformations have no action"
    );
}

#[test]
fn a_document_with_bad_events_imports_nothing_and_names_each_one() {
    let (total, rejected) = rejected("own", "cold_chain_two_bad_events.json");
    assert_eq!(total, 5);
    let positions: Vec<usize> = rejected.iter().map(|r| r.index).collect();
    assert_eq!(positions, [2, 4]);
    let reasons = &rejected[0].reasons;
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("a Temperature is measured in CEL, FAH, KEL, not \"KGM\"")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("\"XYZ\"")), "{reasons:?}");
    assert!(rejected[1].reasons[0].contains("eventTime"));
    assert_eq!(rejected[1].event_type, "AssociationEvent");
}

#[test]
fn garbage_is_refused_without_panicking() {
    for junk in [
        "",
        "[]",
        "{",
        "null",
        "{\"@context\":\"x\",\"type\":\"EPCISDocument\",\"schemaVersion\":\"1.2\"}",
        "{\"@context\":\"x\",\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\",\"creationDate\":\"2024-01-01T00:00:00Z\"}",
        "{\"@context\":\"x\",\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\",\"creationDate\":\"2024-01-01T00:00:00Z\",\"epcisBody\":{\"eventList\":[1,\"a\",null,{}]}}",
    ] {
        assert!(parse_document(junk).is_err(), "{junk}");
    }
}

/// One change to our minimal document's event: a field set to a value, or removed.
enum Edit {
    Set(&'static str, &'static str),
    Remove(&'static str),
}

/// Our minimal document with its one event edited.
fn minimal_with(edits: &[Edit]) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(&read(&fixture_dir("own").join("minimal.json"))).expect("json");
    let event = doc["epcisBody"]["eventList"][0]
        .as_object_mut()
        .expect("an event object");
    for edit in edits {
        match edit {
            Edit::Set(field, value) => {
                event.insert(
                    (*field).to_owned(),
                    serde_json::from_str(value).expect("a JSON value"),
                );
            }
            Edit::Remove(field) => {
                event.remove(*field);
            }
        }
    }
    doc.to_string()
}

#[test]
fn each_kind_of_bad_event_is_rejected_for_its_reason() {
    use Edit::{Remove, Set};
    let cases: &[(&[Edit], &str)] = &[
        (&[Remove("action")], "action is missing"),
        (
            &[Remove("eventTimeZoneOffset")],
            "eventTimeZoneOffset is missing",
        ),
        (&[Remove("eventTime")], "eventTime is missing"),
        (&[Set("action", "\"CREATE\"")], "\"CREATE\""),
        (
            &[Set("bizStep", "\"transforming\"")],
            "\"transforming\" is not a CBV 2.0 bizStep",
        ),
        (
            &[Set("disposition", "\"in_transport\"")],
            "\"in_transport\" is not a CBV 2.0 disposition",
        ),
        (
            &[Set("eventTime", "\"22-07-2026\"")],
            "\"22-07-2026\" is not a date-time",
        ),
        (
            &[Set("ilmd", "{\"materialType\":\"x\"}")],
            "ilmd field \"materialType\" has no namespace",
        ),
        (
            &[Set(
                "quantityList",
                "[{\"epcClass\":\"urn:epc:class:lgtin:4012345.012345.998877\",\"quantity\":\"twenty\"}]",
            )],
            "quantity \"twenty\" is not a non-negative number",
        ),
        (
            &[Set(
                "quantityList",
                "[{\"epcClass\":\"urn:epc:class:lgtin:4012345.012345.998877\",\"quantity\":2,\"weight\":1}]",
            )],
            "unknown field \"weight\"",
        ),
        (&[Remove("epcList")], "needs an epcList or a quantityList"),
        (
            &[Set("epcList", "[\"pallet-9\"]")],
            "epcList: \"pallet-9\" is neither an EPC URI nor a GS1 Digital Link URI",
        ),
        (
            &[Set("epcList", "[\"urn:epc:id:sgtin:4012345.012345\"]")],
            "is not a well-formed EPC URI",
        ),
        (
            &[Set(
                "quantityList",
                "[{\"epcClass\":\"lettuce\",\"quantity\":2}]",
            )],
            "quantityList[0].epcClass: \"lettuce\" is neither",
        ),
        (
            &[Set("parentID", "\"urn:example:pallet\"")],
            "parentID: \"urn:example:pallet\" is neither",
        ),
    ];
    for (edits, part) in cases {
        let doc = minimal_with(edits);
        match parse_document(&doc) {
            Err(EpcisError::Rejected { total, rejected }) => {
                assert_eq!(
                    (total, rejected.len(), rejected[0].index),
                    (1, 1, 0),
                    "{doc}"
                );
                assert!(
                    rejected[0].reasons.iter().any(|r| r.contains(part)),
                    "{part:?} not among {:?}",
                    rejected[0].reasons
                );
            }
            other => panic!("{part:?}: expected a rejected event, got {other:?}"),
        }
    }
    // Both problems of one event are reported, not just the first.
    match parse_document(&minimal_with(&[Remove("action"), Remove("eventTime")])) {
        Err(EpcisError::Rejected { rejected, .. }) => {
            assert!(rejected[0].reasons.len() >= 2, "{:?}", rejected[0].reasons)
        }
        other => panic!("expected a rejected event, got {other:?}"),
    }
    // A document-level fault.
    let mut doc: serde_json::Value = serde_json::from_str(&minimal_with(&[])).expect("json");
    doc.as_object_mut().expect("object").remove("@context");
    match parse_document(&doc.to_string()) {
        Err(EpcisError::Document(m)) => assert!(m.contains("@context"), "{m}"),
        other => panic!("expected a document error, got {other:?}"),
    }
}
