//! EPCIS import end to end: the real binary and node. A valid document becomes one
//! member-signed transaction per event, recorded in the history of the shipment it
//! names; a document with bad events imports nothing; the audit bundle of the shipment
//! still verifies offline with the imported events in it.

use std::path::Path;

use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient};

/// The SSCC that tests/fixtures/epcis/own/cold_chain.json talks about.
mod common;

use common::{cli, run, start_node};

const SSCC: &str = "urn:epc:id:sscc:4012345.0000000099";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/epcis/own")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test]
async fn import_records_events_under_the_shipment_and_rejects_bad_documents_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    cli(
        dir,
        &[
            "genesis",
            "--chain-id",
            "epcis-e2e",
            "--member",
            "farm:producer",
            "--member",
            "carrier:carrier",
            "--validators",
            "farm",
            "--out-dir",
            "net",
        ],
    );
    let node = start_node(dir);
    let url = node.url.clone();
    let farm = "net/keys/farm.admin.json";
    cli(
        dir,
        &[
            "--json",
            "submit",
            "--node",
            &url,
            "--key",
            farm,
            "create-shipment",
            "--id",
            SSCC,
            "--product",
            "urn:epc:class:lgtin:4012345.011111.L1,Lettuce,40,KGM",
            "--min",
            "2",
            "--max",
            "8",
            "--budget-min",
            "30",
            "--max-gap-min",
            "60",
        ],
    );

    // The gRPC check: validate-only, every rejected event with its position.
    let mut client = LedgerClient::connect(url.clone()).await.expect("connect");
    let bad_text =
        std::fs::read_to_string(fixture("cold_chain_two_bad_events.json")).expect("read");
    let checked = client
        .check_epcis_document(pb::CheckEpcisDocumentRequest { document: bad_text })
        .await
        .expect("check")
        .into_inner();
    assert!(!checked.accepted);
    assert_eq!(checked.total_events, 5);
    let positions: Vec<u32> = checked.rejected.iter().map(|r| r.index).collect();
    assert_eq!(positions, [2, 4]);
    assert!(checked.events.is_empty());
    let garbage = client
        .check_epcis_document(pb::CheckEpcisDocumentRequest {
            document: "{not json".into(),
        })
        .await
        .expect("check")
        .into_inner();
    assert!(!garbage.accepted && garbage.document_error.contains("not JSON"));
    let height_before = client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner()
        .height;

    // The CLI refuses the bad document whole: both events reported, nothing sent.
    let out = run(
        dir,
        &[
            "epcis",
            "import",
            &fixture("cold_chain_two_bad_events.json"),
            "--key",
            farm,
            "--node",
            &url,
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("event 2 (TransactionEvent)"), "{err}");
    assert!(err.contains("event 4 (AssociationEvent)"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let status = client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.height, height_before, "nothing was committed");
    assert_eq!(status.mempool_size, 0);

    // The valid one: five events, four of which name the shipment.
    let out = cli(
        dir,
        &[
            "--json",
            "epcis",
            "import",
            &fixture("cold_chain.json"),
            "--key",
            farm,
            "--node",
            &url,
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let rows = v["events"].as_array().expect("events");
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["result"] == "OK"), "{out}");
    let joined: Vec<usize> = rows
        .iter()
        .filter(|r| r["shipments"].as_array().is_some_and(|s| !s.is_empty()))
        .map(|r| r["index"].as_u64().unwrap_or(99) as usize)
        .collect();
    assert_eq!(
        joined,
        [0, 1, 2, 4],
        "the transformation does not name the SSCC"
    );
    let twin = client
        .get_shipment(pb::GetShipmentRequest {
            shipment_id: SSCC.into(),
        })
        .await
        .expect("twin")
        .into_inner();
    assert_eq!(twin.event_count, 5, "creation + four EPCIS events");

    // Export from the node: the creation, then the four recorded events exactly as
    // imported; the document passes the importer's own checks.
    cli(
        dir,
        &[
            "epcis",
            "export",
            "--node",
            &url,
            "--shipment",
            SSCC,
            "--out",
            "out.json",
        ],
    );
    let text = std::fs::read_to_string(dir.join("out.json")).expect("export");
    let exported = tracechain_node::epcis::parse::parse_document(&text).expect("valid EPCIS");
    assert_eq!(exported.len(), 5);
    assert_eq!(exported[0].biz_step, "commissioning");
    let original = tracechain_node::epcis::parse::parse_document(
        &std::fs::read_to_string(fixture("cold_chain.json")).expect("read"),
    )
    .expect("valid");
    for (got, want) in exported[1..].iter().zip([0, 1, 2, 4].map(|i| &original[i])) {
        assert_eq!(
            got.event_json, want.event_json,
            "recorded events round-trip exactly"
        );
    }

    // The audit bundle carries the imported events and still verifies offline.
    cli(
        dir,
        &[
            "audit",
            "export",
            "--node",
            &url,
            "--shipment",
            SSCC,
            "--out",
            "b.pb",
        ],
    );
    drop(node);
    let report = cli(
        dir,
        &["audit", "verify", "b.pb", "--genesis", "net/genesis.toml"],
    );
    assert!(
        report.contains("EPCIS object shipping / in_transit"),
        "{report}"
    );
    assert!(report.contains("EPCIS aggregation packing"), "{report}");
    assert!(report.contains("5 transactions proven"), "{report}");
}
