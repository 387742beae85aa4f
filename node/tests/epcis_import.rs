//! The EPCIS importer against documents written by others (openepcis, Apache-2.0, read
//! from the workspace's sibling `shared/epcis/openepcis`, or `$TRACECHAIN_EPCIS_DIR`) and
//! by us (tests/fixtures/epcis/own): valid ones
//! accepted, invalid ones rejected with every bad event's position and reason, and
//! nothing at all from a document with a bad event.

use std::path::{Path, PathBuf};

use tracechain_node::epcis::{EpcisError, RejectedEvent, parse::parse_document};
use tracechain_proto::v1 as pb;

/// Third-party documents are not copied into the repository: they are read where the
/// consortium's shared material lives, beside the checkout (CI has it there).
fn fixture_dir(sub: &str) -> PathBuf {
    if let Some(rest) = sub.strip_prefix("openepcis") {
        let base = std::env::var_os("TRACECHAIN_EPCIS_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/epcis"),
            PathBuf::from,
        );
        let dir = base.join(format!("openepcis{rest}"));
        assert!(
            dir.is_dir(),
            "{} is missing: the openepcis documents live in ../shared/epcis beside the \
             checkout (or set TRACECHAIN_EPCIS_DIR)",
            dir.display()
        );
        return dir;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/epcis")
        .join(sub)
}

fn fixtures(sub: &str) -> Vec<PathBuf> {
    let dir = fixture_dir(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
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
fn every_valid_openepcis_document_and_event_is_accepted() {
    let mut by_type = std::collections::BTreeMap::<i32, usize>::new();
    let mut files = 0;
    for sub in ["openepcis/Documents", "openepcis/Events"] {
        for f in fixtures(sub) {
            let events = parse_document(&read(&f))
                .unwrap_or_else(|e| panic!("{} should be accepted: {e}", f.display()));
            assert!(!events.is_empty());
            for e in events {
                *by_type.entry(e.event_type).or_default() += 1;
                assert!(e.event_time_ms > 0 && !e.event_json.is_empty());
            }
            files += 1;
        }
    }
    assert_eq!(files, 43);
    // All five event types occur.
    assert_eq!(by_type.len(), 5, "{by_type:?}");
}

#[test]
fn sensor_data_is_kept_in_fixed_point_with_units_and_times() {
    let f = fixture_dir("openepcis/Documents").join("ObjectEvent_with_sensorData.json");
    let events = parse_document(&read(&f)).expect("valid");
    let r = &events[0].sensor_readings;
    assert_eq!(r.len(), 12);
    assert_eq!(
        (r[0].r#type.as_str(), r[0].uom.as_str(), r[0].value_micro),
        ("Temperature", "CEL", Some(26_000_000))
    );
    assert_eq!(r[4].value_micro, Some(26_100_000));
    // sensorMetadata's time and deviceID apply to its reports: 14:35+01:00.
    assert_eq!(r[4].time_ms, 1_554_212_100_000);
    assert_eq!(r[4].device_id, "urn:epc:id:giai:4000001.111");
    assert_eq!(events[0].biz_step, "inspecting");
    assert_eq!(events[0].event_time_zone_offset_minutes, 60);
}

/// (file, events in it, [(position, part of the reason)]).
type Case = (&'static str, usize, &'static [(usize, &'static str)]);

#[test]
fn invalid_openepcis_documents_are_rejected_for_their_reason() {
    let cases: &[Case] = &[
        (
            "Combination_of_events_with_missing_mandatory_fields.json",
            2,
            &[
                (0, "action is missing"),
                (1, "eventTimeZoneOffset is missing"),
            ],
        ),
        (
            "Combination_of_multiple_invalid_fields.json",
            5,
            &[
                (0, "\"transforming\" is not a CBV 2.0 bizStep"),
                (1, "\"in_transport\" is not a CBV 2.0 disposition"),
                (2, "sourceList[0].type"),
                (3, "ilmd field \"materialType\" has no namespace"),
                (4, "eventTime"),
            ],
        ),
        (
            "Combination_of_non_standard_bizStep_and_disposition.json",
            2,
            &[(0, "bizStep"), (1, "disposition")],
        ),
        (
            "ObjectEvent_with_ilmd_field_without_namespace.json",
            1,
            &[(0, "no namespace")],
        ),
        (
            "ObjectEvent_with_invalid_action.json",
            1,
            &[(0, "\"CREATE\"")],
        ),
        (
            "ObjectEvent_with_invalid_certificationInfo.json",
            1,
            &[(0, "certificationInfo")],
        ),
        (
            "ObjectEvent_with_invalid_eventTime_format.json",
            1,
            &[(0, "\"22-07-2026\" is not a date-time")],
        ),
        (
            "ObjectEvent_with_non_standard_bizStep.json",
            1,
            &[(0, "bizStep")],
        ),
        (
            "ObjectEvent_with_non_standard_bizStep_in_second_event.json",
            2,
            &[(1, "bizStep")],
        ),
        (
            "ObjectEvent_with_non_standard_disposition.json",
            1,
            &[(0, "disposition")],
        ),
        (
            "ObjectEvent_with_quantity_as_text.json",
            1,
            &[(0, "quantity \"twenty\" is not a non-negative number")],
        ),
        (
            "ObjectEvent_with_unknown_field_in_quantityList.json",
            1,
            &[(0, "unknown field \"weight\"")],
        ),
        (
            "ObjectEvent_without_action_and_eventTime.json",
            1,
            &[(0, "eventTime is missing")],
        ),
        (
            "ObjectEvent_without_identifier_list.json",
            1,
            &[(0, "needs an epcList or a quantityList")],
        ),
    ];
    for (file, events, expected) in cases {
        let (total, rejected) = rejected("openepcis/Invalid", file);
        assert_eq!(total, *events, "{file}");
        let positions: Vec<usize> = rejected.iter().map(|r| r.index).collect();
        let want: Vec<usize> = expected.iter().map(|(i, _)| *i).collect();
        assert_eq!(positions, want, "{file}: rejected positions {rejected:?}");
        for ((_, part), r) in expected.iter().zip(&rejected) {
            assert!(
                r.reasons.iter().any(|reason| reason.contains(part)),
                "{file} event {}: {:?} lacks {part:?}",
                r.index,
                r.reasons
            );
        }
    }
    // Both problems of one event are reported, not just the first.
    let (_, r) = rejected(
        "openepcis/Invalid",
        "ObjectEvent_without_action_and_eventTime.json",
    );
    assert_eq!(r[0].reasons.len(), 3, "{:?}", r[0].reasons);
    // A document-level fault.
    let no_context = fixture_dir("openepcis/Invalid").join("EPCISDocument_without_context.json");
    match parse_document(&read(&no_context)) {
        Err(EpcisError::Document(m)) => assert!(m.contains("@context"), "{m}"),
        other => panic!("expected a document error, got {other:?}"),
    }
    // Every file of Invalid/ is covered above.
    assert_eq!(fixtures("openepcis/Invalid").len(), cases.len() + 1);
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
