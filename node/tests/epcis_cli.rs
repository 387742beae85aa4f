//! EPCIS import end to end: the real binary and node. A valid document becomes one
//! member-signed transaction per event, recorded in the history of the shipment it
//! names; a document with bad events imports nothing; the audit bundle of the shipment
//! still verifies offline with the imported events in it.

use std::path::Path;

use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient};

/// The SSCC that tests/fixtures/epcis/own/cold_chain.json talks about.
mod common;

use common::{BIN, cli, run, start_node, start_node_with};

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

/// farm's admin key file, in a consortium `tracechain genesis` wrote to `dir/net`.
const FARM_KEY: &str = "net/keys/farm.admin.json";

/// A one-member consortium (farm, the validator) in `dir/net`, its running node, and
/// farm's shipment `SSCC` of lettuce.
/// Writes `doc` to `doc.json` in `dir` and imports it through the CLI, signed with the
/// member key file `key`, into the node at `url`: the process's output.
fn import_doc(dir: &Path, url: &str, key: &str, doc: String) -> std::process::Output {
    std::fs::write(dir.join("doc.json"), doc).expect("write");
    run(
        dir,
        &["epcis", "import", "doc.json", "--key", key, "--node", url],
    )
}

/// [`import_doc`], which must succeed.
fn import_ok(dir: &Path, url: &str, key: &str, doc: String) {
    let out = import_doc(dir, url, key, doc);
    assert!(
        out.status.success(),
        "import failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn farm_with_shipment(dir: &Path, chain_id: &str) -> common::NodeProcess {
    cli(
        dir,
        &[
            "genesis",
            "--chain-id",
            chain_id,
            "--member",
            "farm:producer",
            "--validators",
            "farm",
            "--out-dir",
            "net",
        ],
    );
    let node = start_node(dir);
    cli(
        dir,
        &[
            "submit",
            "--node",
            &node.url,
            "--key",
            FARM_KEY,
            "create-shipment",
            "--id",
            SSCC,
            "--product",
            "urn:epc:class:lgtin:4012345.011111.L1,Lettuce,40,KGM",
            "--min",
            "2",
            "--max",
            "8",
        ],
    );
    node
}

/// An EPCIS 2.0 document of `events` (a JSON list).
fn document(events: serde_json::Value) -> String {
    serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0",
        "creationDate": "2024-03-02T10:00:00Z",
        "epcisBody": {"eventList": events},
    })
    .to_string()
}

/// A document of `n` (at most 3600) distinct ObjectEvents about the shipment `SSCC`.
fn many_events(n: usize) -> String {
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "type": "ObjectEvent",
                "eventTime": format!("2024-03-02T09:{:02}:{:02}.000+01:00", i / 60 % 60, i % 60),
                "eventTimeZoneOffset": "+01:00",
                "action": "OBSERVE",
                "bizStep": "inspecting",
                "epcList": [SSCC, format!("urn:epc:id:sgtin:4012345.011111.{i}")],
                "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
            })
        })
        .collect();
    document(serde_json::json!(events))
}

fn next_sequence(dir: &Path, key: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(key)).expect("key file"))
            .expect("json");
    v["next_sequence"].as_u64().expect("next_sequence")
}

/// What any capture client does after a timeout, and what a crash leaves: the same
/// document imported again. The first import is killed (SIGKILL) as soon as the node
/// has some of its transactions, the second once the chain holds an event from the
/// middle of the document, the third runs to the end, a fourth finds everything
/// recorded and signs nothing. Every event
/// is recorded exactly once: the shipment's history has one entry per event, and each
/// event's hash names one transaction.
#[tokio::test]
async fn a_retried_import_records_each_event_once() {
    const N: usize = 2000;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let node = farm_with_shipment(dir, "epcis-retry");
    let url = node.url.clone();
    let farm = FARM_KEY;
    std::fs::write(dir.join("doc.json"), many_events(N)).expect("write");
    let events = tracechain_node::epcis::parse::parse_document(&many_events(N)).expect("valid");
    let hashes: Vec<String> = events
        .iter()
        .map(|e| tracechain_node::epcis::hash::recorded_event_hash(&e.event_json).expect("hash"))
        .collect();
    let mut client = LedgerClient::connect(url.clone()).await.expect("connect");
    let import = ["epcis", "import", "doc.json", "--key", farm, "--node", &url];

    // 1. Killed as soon as the node has received some of its transactions.
    let seq0 = next_sequence(dir, farm);
    let mut child = std::process::Command::new(BIN)
        .current_dir(dir)
        .args(import)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the import never sent"
        );
        let status = client
            .get_chain_status(pb::GetChainStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        if status.mempool_size > 0 || status.height > 2 {
            break;
        }
    }
    child.kill().expect("kill");
    child.wait().expect("wait");

    // 2. Killed once the chain holds an event the first import did not send (it sent
    //    one request of 256 at most).
    let mut child = std::process::Command::new(BIN)
        .current_dir(dir)
        .args(import)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no event was ever recorded"
        );
        let found = client
            .get_event(pb::GetEventRequest {
                event_hash: hashes[N / 2].clone(),
            })
            .await;
        if found.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill().expect("kill");
    child.wait().expect("wait");

    // 3. Runs to the end: every event is recorded now, once.
    let out = cli(dir, &[&["--json"][..], &import].concat());
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let rows = report["events"].as_array().expect("rows");
    assert_eq!(rows.len(), N);
    assert!(
        rows.iter()
            .all(|r| r["result"] == "OK" || r["result"] == "ALREADY_RECORDED"),
        "{out}"
    );
    let recorded_before = rows
        .iter()
        .filter(|r| r["result"] == "ALREADY_RECORDED")
        .count();
    eprintln!(
        "after two killed imports, the third found {recorded_before} of {N} events recorded \
         and recorded the rest itself; the key file's sequence went from {seq0} to {}",
        next_sequence(dir, farm)
    );
    let twin = client
        .get_shipment(pb::GetShipmentRequest {
            shipment_id: SSCC.into(),
        })
        .await
        .expect("twin")
        .into_inner();
    assert_eq!(twin.event_count, 1 + N as u64, "creation + each event once");
    let mut txs = std::collections::BTreeSet::new();
    for (i, h) in hashes.iter().enumerate() {
        let found = client
            .get_event(pb::GetEventRequest {
                event_hash: h.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("event {i}: {e}"))
            .into_inner();
        let record = found.record.expect("record");
        assert_eq!(&record.event_hash, h);
        assert_eq!(record.recorded_by, "farm");
        assert!(txs.insert(record.tx_id), "two events, one transaction?");
    }

    // 4. Nothing left to do: nothing is signed or sent.
    let seq = next_sequence(dir, farm);
    let out = cli(dir, &[&["--json"][..], &import].concat());
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let rows = report["events"].as_array().expect("rows");
    assert!(
        rows.iter().all(|r| r["result"] == "ALREADY_RECORDED"),
        "{out}"
    );
    assert_eq!(next_sequence(dir, farm), seq, "no sequence was used");
    let twin = client
        .get_shipment(pb::GetShipmentRequest {
            shipment_id: SSCC.into(),
        })
        .await
        .expect("twin")
        .into_inner();
    assert_eq!(twin.event_count, 1 + N as u64);

    // The query by hash, from the CLI.
    let shown = cli(
        dir,
        &["--json", "query", "--node", &url, "event", &hashes[7]],
    );
    let v: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(v["event_hash"], hashes[7].as_str());
    assert_eq!(
        v["event"]["epcList"][1],
        "urn:epc:id:sgtin:4012345.011111.7"
    );
    let refused = run(
        dir,
        &[
            "query",
            "--node",
            &url,
            "event",
            "ni:///sha-256;00?ver=CBV2.0",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("64 lower-case hex digits"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let unknown = run(
        dir,
        &[
            "query",
            "--node",
            &url,
            "event",
            &tracechain_node::epcis::hash::ni("no such event"),
        ],
    );
    assert!(!unknown.status.success());
    drop(node);
}

/// A document's own eventID is kept as given; when it is an Event Hash ID that is not
/// the event's, the import says so (and goes on): here the dry run's report.
#[test]
fn an_event_id_that_is_not_the_events_hash_is_noted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let text = many_events(3);
    let events = tracechain_node::epcis::parse::parse_document(&text).expect("valid");
    let right =
        tracechain_node::epcis::hash::recorded_event_hash(&events[1].event_json).expect("hash");
    let wrong = tracechain_node::epcis::hash::ni("another event");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    doc["epcisBody"]["eventList"][0]["eventID"] = wrong.clone().into();
    doc["epcisBody"]["eventList"][1]["eventID"] = right.clone().into();
    doc["epcisBody"]["eventList"][2]["eventID"] = "urn:uuid:9f1c".into();
    std::fs::write(dir.join("doc.json"), doc.to_string()).expect("write");
    let out = cli(dir, &["--json", "epcis", "import", "doc.json", "--dry-run"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let notes = v["notes"].as_array().expect("notes");
    let note = notes[0].as_str().expect("a note on event 0");
    assert!(
        note.contains(&wrong) && note.contains("is not its Event Hash ID"),
        "{note}"
    );
    assert!(notes[1].is_null(), "the right hash: {out}");
    assert!(notes[2].is_null(), "not a hash: {out}");
    // The eventID does not enter the hash: the recorded identity is the event's own.
    assert_eq!(v["event_hashes"][1], right.as_str());
    let out = run(dir, &["epcis", "import", "doc.json", "--dry-run"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("note: event 0: its eventID"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One EPCIS document of one ObjectEvent naming `epcs`, at `time`.
fn one_event(epcs: &[&str], time: &str, read_point: &str) -> String {
    document(serde_json::json!([{
        "type": "ObjectEvent", "eventTime": time, "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE", "bizStep": "inspecting", "epcList": epcs,
        "readPoint": {"id": read_point},
    }]))
}

/// Every identifier a transaction names is indexed under one key per thing: an item
/// named by its EPC URI in one document and by a Digital Link of another domain in the
/// next is found, with both events, by either name; a lot created natively by its class
/// URI is found by its Digital Link; a place by its SGLN or its GLN link. An identifier
/// nobody named has no events, and that is not an error.
#[tokio::test]
async fn an_item_is_found_by_any_of_its_names() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let node = farm_with_shipment(dir, "ids");
    let url = node.url.clone();
    let farm = FARM_KEY;
    let urn = "urn:epc:id:sgtin:0614141.712345.2017";
    let link = "https://brand.example/gtin/70614141123451/21/2017?linkType=all";
    std::fs::write(
        dir.join("a.json"),
        one_event(
            &[urn],
            "2024-03-02T09:00:00Z",
            "urn:epc:id:sgln:0614141.00777.0",
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("b.json"),
        one_event(
            &[link],
            "2024-03-02T11:00:00Z",
            "https://id.gs1.org/414/0614141007776",
        ),
    )
    .expect("write");
    for doc in ["a.json", "b.json"] {
        cli(
            dir,
            &["epcis", "import", doc, "--key", farm, "--node", &url],
        );
    }
    let query = |id: &str| -> serde_json::Value {
        let out = cli(dir, &["--json", "query", "--node", &url, "identifier", id]);
        serde_json::from_str(&out).expect("json")
    };
    let item = "https://id.gs1.org/01/70614141123451/21/2017";
    for name in [urn, link, item, "urn:epc:id:sgtin:0614141.712345.2017"] {
        let v = query(name);
        assert_eq!(v["key"], item, "{name}");
        assert_eq!(v["total"], 2, "{name}: {v}");
        let events = v["events"].as_array().expect("events");
        assert!(
            events.iter().all(|e| e["body"]["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("RecordEpcisEvent"))),
            "{v}"
        );
    }
    // The place: both events, by its EPC URI or its GLN link.
    for name in [
        "urn:epc:id:sgln:0614141.00777.0",
        "https://id.gs1.org/414/0614141007776",
    ] {
        assert_eq!(query(name)["total"], 2, "{name}");
    }
    // The lot the shipment was created with, by its Digital Link; the shipment by its id.
    let lot = query("https://id.gs1.org/01/04012345111118/10/L1");
    assert_eq!(lot["total"], 1, "{lot}");
    assert!(
        lot["events"][0]["body"]["action"]
            .as_str()
            .is_some_and(|a| a.starts_with("CreateShipment")),
        "{lot}"
    );
    assert_eq!(query(SSCC)["total"], 1);
    // Nobody named it: no events, not an error.
    let unknown = query("urn:epc:id:sgtin:0614141.712345.9999");
    assert_eq!(unknown["total"], 0);
    // An identifier no transaction could hold is refused with the reason.
    let refused = run(dir, &["query", "--node", &url, "identifier", "a\u{7}b"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("control characters"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    drop(node);
}

/// One EPCIS document of one ObjectEvent with `action` and `biz_step` naming `epc`.
fn object_event(epc: &str, action: &str, biz_step: &str, time: &str) -> String {
    document(serde_json::json!([{
        "type": "ObjectEvent", "eventTime": time, "eventTimeZoneOffset": "+00:00",
        "action": action, "bizStep": biz_step, "epcList": [epc],
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
    }]))
}

/// A genuine item (commissioned once by the holder of its GS1 company prefix, then
/// shipped), a counterfeit (a second item of the brand's prefix commissioned by another
/// member), and an item nobody named, as `tracechain query provenance` tells them apart.
#[tokio::test]
async fn provenance_tells_a_genuine_item_from_a_counterfeit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    cli(
        dir,
        &[
            "genesis",
            "--chain-id",
            "prov",
            "--member",
            "brand:producer",
            "--member",
            "carrier:carrier",
            "--validators",
            "brand",
            "--company-prefix",
            "brand=0614141",
            "--out-dir",
            "net",
        ],
    );
    let genesis = std::fs::read_to_string(dir.join("net/genesis.toml")).expect("genesis");
    assert!(
        genesis.contains("gs1_company_prefixes = [\"0614141\"]"),
        "{genesis}"
    );
    let node = start_node_with(
        dir,
        &[
            "--genesis",
            "net/genesis.toml",
            "--node-key",
            "net/keys/brand.node.json",
        ],
    );
    let url = node.url.clone();
    let genuine = "urn:epc:id:sgtin:0614141.712345.1";
    let fake = "urn:epc:id:sgtin:0614141.712345.2";
    let mut commissioning: serde_json::Value = serde_json::from_str(&object_event(
        genuine,
        "ADD",
        "commissioning",
        "2024-03-02T08:00:00Z",
    ))
    .expect("json");
    commissioning["epcisBody"]["eventList"][0]["ilmd"] = serde_json::json!({
        "cbvmda:lotNumber": "L7", "cbvmda:itemExpirationDate": "2027-06-30",
    });
    let docs = [
        ("brand", commissioning.to_string()),
        (
            "carrier",
            object_event(genuine, "OBSERVE", "shipping", "2024-03-02T09:00:00Z"),
        ),
        (
            "carrier",
            object_event(fake, "ADD", "commissioning", "2024-03-02T09:30:00Z"),
        ),
    ];
    for (i, (member, doc)) in docs.iter().enumerate() {
        let file = format!("doc{i}.json");
        std::fs::write(dir.join(&file), doc).expect("write");
        let key = format!("net/keys/{member}.admin.json");
        cli(
            dir,
            &["epcis", "import", &file, "--key", &key, "--node", &url],
        );
    }
    let provenance = |id: &str| -> serde_json::Value {
        let out = cli(dir, &["--json", "query", "--node", &url, "provenance", id]);
        serde_json::from_str(&out).expect("json")
    };
    // By its Digital Link: the same item.
    let p = provenance("https://brand.example/01/70614141123451/21/1");
    assert_eq!(p["verdict"], "genuine", "{p}");
    assert_eq!(p["commissioned_by"], "brand");
    assert_eq!(p["prefix_holder"], "brand");
    let kinds: Vec<&str> = p["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["commissioned", "observed"], "{p}");
    let f = provenance(fake);
    assert_eq!(f["verdict"], "suspect", "{f}");
    assert!(
        f["reasons"][0].as_str().is_some_and(|r| r
            .contains("commissioned by carrier, but its GS1 company prefix 0614141 is brand's")),
        "{f}"
    );
    let u = provenance("urn:epc:id:sgtin:0614141.712345.3");
    assert_eq!(u["verdict"], "unknown", "{u}");
    assert!(
        u["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("not known to the consortium"))
    );
    // The text form says it in words.
    let text = cli(dir, &["query", "--node", &url, "provenance", fake]);
    assert!(text.contains("SUSPECT"), "{text}");

    // DSCSA-style verification: GTIN, serial, lot, expiry (YYMMDD or ISO).
    let verify = |serial: &str, lot: &str, expiry: &str| -> serde_json::Value {
        let out = cli(
            dir,
            &[
                "--json",
                "query",
                "--node",
                &url,
                "verify-product",
                "--gtin",
                "70614141123451",
                "--serial",
                serial,
                "--lot",
                lot,
                "--expiry",
                expiry,
            ],
        );
        serde_json::from_str(&out).expect("json")
    };
    let ok = verify("1", "L7", "270630");
    assert_eq!(ok["verified"], true, "{ok}");
    let wrong_lot = verify("1", "L8", "2027-06-30");
    assert_eq!(wrong_lot["verified"], false);
    assert_eq!(
        wrong_lot["reasons"][0],
        "lot L8 does not match: commissioned in lot L7"
    );
    let counterfeit = verify("2", "L7", "270630");
    assert_eq!(counterfeit["verified"], false, "{counterfeit}");
    let refused = run(
        dir,
        &[
            "query",
            "--node",
            &url,
            "verify-product",
            "--gtin",
            "7061414112345x",
            "--serial",
            "1",
            "--lot",
            "L7",
            "--expiry",
            "270630",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not 8, 12, 13 or 14 digits"));
    drop(node);
}

/// One EPCIS document of one AggregationEvent: `action` of `children` in `parent`.
fn aggregation_event(action: &str, parent: &str, children: &[&str], time: &str) -> String {
    document(serde_json::json!([{
        "type": "AggregationEvent", "eventTime": time, "eventTimeZoneOffset": "+00:00",
        "action": action, "bizStep": "packing", "parentID": parent, "childEPCs": children,
    }]))
}

/// Containment as an operator sees it: cases packed (by EPCIS) on a pallet that ships as
/// a shipment's product inherit the shipment's custody; the pallet's contents are known
/// now and at an earlier time; a case packed into a second pallet while on the first is
/// refused with the reason, and a member without custody cannot unpack the pallet.
#[tokio::test]
async fn a_case_inherits_the_custody_of_the_shipment_its_pallet_is_in() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    cli(
        dir,
        &[
            "genesis",
            "--chain-id",
            "packing",
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
    let carrier_key = "net/keys/carrier.admin.json";
    let pallet = "urn:epc:id:sscc:4012345.0000000077";
    let (case_a, case_b) = (
        "urn:epc:id:sgtin:4012345.011111.A",
        "urn:epc:id:sgtin:4012345.011111.B",
    );
    let import = |key: &str, doc: String| import_doc(dir, &url, key, doc);
    let packed = import(
        FARM_KEY,
        aggregation_event("ADD", pallet, &[case_a, case_b], "2024-03-02T08:00:00Z"),
    );
    assert!(
        packed.status.success(),
        "{}",
        String::from_utf8_lossy(&packed.stderr)
    );
    let submit = |key: &str, args: &[&str]| {
        let mut all = vec!["submit", "--node", url.as_str(), "--key", key];
        all.extend_from_slice(args);
        cli(dir, &all);
    };
    submit(
        FARM_KEY,
        &[
            "create-shipment",
            "--id",
            SSCC,
            "--product",
            &format!("{pallet},Pallet,1,EA"),
            "--min",
            "2",
            "--max",
            "8",
        ],
    );
    // The carrier has no custody of the pallet's shipment: it may not unpack it.
    let out = import(
        carrier_key,
        aggregation_event("DELETE", pallet, &[case_a], "2024-03-02T09:00:00Z"),
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NOT_CUSTODIAN") && text.contains("in the custody of farm, not carrier"),
        "{text}"
    );
    submit(FARM_KEY, &["ship", "--shipment", SSCC, "--to", "carrier"]);
    submit(carrier_key, &["receive", "--shipment", SSCC]);
    // A case on the pallet cannot be packed onto a second pallet.
    let out = import(
        carrier_key,
        aggregation_event(
            "ADD",
            "urn:epc:id:sscc:4012345.0000000088",
            &[case_a],
            "2024-03-02T09:30:00Z",
        ),
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CONTAINMENT_CONFLICT")
            && text.contains("is already inside https://id.gs1.org/00/040123450000000771"),
        "{text}"
    );

    let provenance = |id: &str| -> serde_json::Value {
        let out = cli(dir, &["--json", "query", "--node", &url, "provenance", id]);
        serde_json::from_str(&out).expect("json")
    };
    let p = provenance(case_a);
    let stays = p["stays"].as_array().expect("stays");
    assert_eq!(stays.len(), 2, "{p}");
    assert_eq!(
        stays[0]["container"],
        "https://id.gs1.org/00/040123450000000771"
    );
    assert_eq!(
        (stays[0]["depth"].as_u64(), stays[0]["to_height"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(stays[1]["depth"], 2);
    assert_eq!(stays[1]["shipment_id"], SSCC);
    assert_eq!(
        stays[1]["custody"],
        serde_json::json!(["farm", "in transit farm -> carrier", "carrier"]),
        "{p}"
    );
    assert!(
        p["reasons"].as_array().expect("reasons").iter().any(|r| r
            .as_str()
            .is_some_and(|r| r.starts_with(&format!(
                "in shipment {SSCC} (custody farm, in transit farm -> carrier, carrier): cold chain"
            )))),
        "{p}"
    );
    // The pallet: what it holds now, and before its cases were packed.
    let contents = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "--json",
            "query",
            "--node",
            url.as_str(),
            "contents",
            pallet,
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&cli(dir, &args)).expect("json")
    };
    let now = contents(&[]);
    assert_eq!(now["children"].as_array().map(Vec::len), Some(2), "{now}");
    assert_eq!(
        contents(&["--at", "2024-03-02T07:59:59Z"])["children"],
        serde_json::json!([])
    );
    assert_eq!(provenance(pallet)["contents"], now["children"]);
    let text = cli(dir, &["query", "--node", &url, "provenance", case_a]);
    assert!(
        text.contains("  in https://id.gs1.org/00/040123450000000771 from "),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "(shipment {SSCC}, custody farm, in transit farm -> carrier, carrier)"
        )),
        "{text}"
    );
    drop(node);
}

/// An EPCIS document of TransformationEvents, each `(inputs, outputs)` of lots (class
/// URIs), a minute apart.
fn transformations(steps: &[(Vec<String>, Vec<String>)]) -> String {
    let list = |lots: &[String]| -> Vec<serde_json::Value> {
        lots.iter()
            .map(|l| serde_json::json!({"epcClass": l, "quantity": 10, "uom": "KGM"}))
            .collect()
    };
    let events: Vec<serde_json::Value> = steps
        .iter()
        .enumerate()
        .map(|(i, (inputs, outputs))| {
            serde_json::json!({
                "type": "TransformationEvent",
                "eventTime": format!("2024-03-02T{:02}:{:02}:00Z", i / 60 % 24, i % 60),
                "eventTimeZoneOffset": "+00:00", "bizStep": "commissioning",
                "inputQuantityList": list(inputs), "outputQuantityList": list(outputs),
            })
        })
        .collect();
    document(serde_json::json!(events))
}

/// Lineage as an operator asks for it: which lots went into a salad mix, what was made
/// from a lettuce lot (to a depth, saying when it goes further), a transformation that
/// would make a lot from itself refused with the reason, and a lineage larger than one
/// answer refused with what to do.
#[tokio::test]
async fn a_salad_mix_is_traced_to_its_lots_and_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let node = farm_with_shipment(dir, "lineage");
    let url = node.url.clone();
    let lot = |name: &str| format!("urn:epc:class:lgtin:4012345.011111.{name}");
    let import = |doc: String| import_doc(dir, &url, FARM_KEY, doc);
    let made = import(transformations(&[
        (vec![lot("A"), lot("B")], vec![lot("MIX")]),
        (vec![lot("MIX")], vec![lot("SALAD")]),
    ]));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let lineage = |id: &str, depth: &str| -> serde_json::Value {
        let out = cli(
            dir,
            &[
                "--json", "query", "--node", &url, "lineage", id, "--depth", depth,
            ],
        );
        serde_json::from_str(&out).expect("json")
    };
    let key = |name: &str| format!("https://id.gs1.org/01/04012345111118/10/{name}");
    let salad = lineage(&lot("SALAD"), "0");
    let up = salad["upstream"].as_array().expect("upstream");
    assert_eq!(up.len(), 2, "{salad}");
    assert_eq!(up[0]["depth"], 1);
    assert_eq!(up[0]["inputs"], serde_json::json!([key("MIX")]));
    assert_eq!(up[1]["depth"], 2);
    assert_eq!(up[1]["inputs"], serde_json::json!([key("A"), key("B")]));
    assert_eq!(salad["downstream"], serde_json::json!([]));
    assert_eq!(salad["upstream_beyond_depth"], false);
    // By its Digital Link, one step down: the mix, and more beyond.
    let a = lineage(&key("A"), "1");
    assert_eq!(
        a["downstream"][0]["outputs"],
        serde_json::json!([key("MIX")]),
        "{a}"
    );
    assert_eq!(a["downstream"].as_array().map(Vec::len), Some(1));
    assert_eq!(a["downstream_beyond_depth"], true);
    let text = cli(dir, &["query", "--node", &url, "lineage", &lot("SALAD")]);
    assert!(text.contains("made from: 2 transformation(s)"), "{text}");

    // The salad back into lot A: a cycle.
    let cycle = import(transformations(&[(vec![lot("SALAD")], vec![lot("A")])]));
    assert!(!cycle.status.success());
    let out = String::from_utf8_lossy(&cycle.stdout);
    assert!(
        out.contains("LINEAGE_CONFLICT") && out.contains("would make it from itself"),
        "{out}"
    );

    // A lot used by more transformations than one answer lists.
    let many: Vec<(Vec<String>, Vec<String>)> = (0..1001)
        .map(|i| (vec![lot("BULK")], vec![lot(&format!("P{i}"))]))
        .collect();
    let bulk = import(transformations(&many));
    assert!(
        bulk.status.success(),
        "{}",
        String::from_utf8_lossy(&bulk.stderr)
    );
    let refused = run(dir, &["query", "--node", &url, "lineage", &lot("BULK")]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(
            "more than 1000 transformations downstream within depth 8: ask for a smaller depth"
        ),
        "{err}"
    );
    drop(node);
}

/// EPCIS queries as an integrator runs them: by item (in any of its forms), by any EPC
/// (parents included), by business step over native and imported events alike, by
/// event time; paged one by one with tokens to the same results as one page; a bad
/// parameter or token refused by name.
#[tokio::test]
async fn epcis_queries_answer_with_the_standards_semantics_and_pages() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let node = farm_with_shipment(dir, "query");
    let url = node.url.clone();
    let item = "urn:epc:id:sgtin:0614141.712345.2017";
    let link = "https://brand.example/01/70614141123451/21/2017";
    let pallet = "urn:epc:id:sscc:0614141.1234567890";
    let import = |doc: String| import_ok(dir, &url, FARM_KEY, doc);
    import(object_event(
        item,
        "ADD",
        "commissioning",
        "2024-03-02T08:00:00Z",
    ));
    import(aggregation_event(
        "ADD",
        pallet,
        &[link],
        "2024-03-02T08:30:00Z",
    ));
    import(object_event(
        pallet,
        "OBSERVE",
        "shipping",
        "2024-03-02T09:00:00Z",
    ));
    import(object_event(
        item,
        "OBSERVE",
        "inspecting",
        "2024-03-02T10:00:00Z",
    ));
    let query = |params: &[&str], extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["epcis", "query", "--node", url.as_str()];
        for p in params {
            args.extend(["--param", p]);
        }
        args.extend_from_slice(extra);
        serde_json::from_str(&cli(dir, &args)).expect("json")
    };
    let events = |doc: &serde_json::Value| -> Vec<serde_json::Value> {
        doc.pointer("/epcisBody/queryResults/resultsBody/eventList")
            .and_then(|l| l.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let steps = |doc: &serde_json::Value| -> Vec<String> {
        events(doc)
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap_or_default(),
                    e["bizStep"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    let by_item = query(&[&format!("MATCH_epc={link}")], &[]);
    assert_eq!(by_item["type"], "EPCISQueryDocument");
    assert_eq!(
        steps(&by_item),
        [
            "ObjectEvent commissioning",
            "AggregationEvent packing",
            "ObjectEvent inspecting"
        ],
        "{by_item}"
    );
    assert!(events(&by_item).iter().all(|e| e["recordTime"].is_string()));
    let by_pallet = query(&[&format!("MATCH_anyEPC={pallet}")], &[]);
    assert_eq!(
        steps(&by_pallet),
        ["AggregationEvent packing", "ObjectEvent shipping"]
    );
    assert_eq!(
        steps(&query(&[&format!("MATCH_epc={pallet}")], &[])),
        ["ObjectEvent shipping"]
    );
    // No identifier: every block, native events included (the shipment's creation is
    // a commissioning ObjectEvent of the shipment).
    let shipping = query(&["EQ_bizStep=urn:epcglobal:cbv:bizstep:shipping"], &[]);
    assert_eq!(steps(&shipping), ["ObjectEvent shipping"], "{shipping}");
    let made = query(
        &["EQ_bizStep=https://ref.gs1.org/cbv/BizStep-commissioning"],
        &[],
    );
    let made: Vec<String> = events(&made)
        .iter()
        .filter_map(|e| e["epcList"][0].as_str().map(String::from))
        .collect();
    assert_eq!(made, [SSCC, item]);
    let late = query(
        &[
            &format!("MATCH_epc={item}"),
            "GE_eventTime=2024-03-02T09:00:00Z",
        ],
        &[],
    );
    assert_eq!(steps(&late), ["ObjectEvent inspecting"]);
    let several = query(&["eventType=AggregationEvent,TransformationEvent"], &[]);
    assert_eq!(steps(&several), ["AggregationEvent packing"]);
    // EPC patterns: every serial of the product, every SSCC of the company.
    assert_eq!(
        steps(&query(
            &["MATCH_epc=urn:epc:idpat:sgtin:0614141.712345.*"],
            &[]
        )),
        steps(&by_item)
    );
    assert_eq!(
        steps(&query(&["MATCH_anyEPC=urn:epc:idpat:sscc:0614141.*"], &[])),
        steps(&by_pallet)
    );
    assert!(
        events(&query(
            &["MATCH_epc=urn:epc:idpat:sgtin:0614141.712399.*"],
            &[]
        ))
        .is_empty()
    );

    // One at a time, following the tokens: the same events as one page.
    let all_at_once = events(&query(
        &["EQ_bizStep=shipping,packing,inspecting,commissioning"],
        &[],
    ));
    let mut token = String::new();
    let mut one_by_one = Vec::new();
    loop {
        let mut args = vec![
            "epcis",
            "query",
            "--node",
            url.as_str(),
            "--param",
            "EQ_bizStep=shipping,packing,inspecting,commissioning",
            "--per-page",
            "1",
        ];
        if !token.is_empty() {
            args.extend(["--page-token", token.as_str()]);
        }
        let out = run(dir, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let page: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        one_by_one.extend(events(&page));
        let stderr = String::from_utf8_lossy(&out.stderr);
        match stderr.split("--page-token ").nth(1) {
            Some(t) => token = t.trim().to_string(),
            None => break,
        }
        assert!(one_by_one.len() <= all_at_once.len(), "paging does not end");
    }
    assert_eq!(one_by_one, all_at_once);
    assert_eq!(all_at_once.len(), 5, "{all_at_once:?}");
    let every = events(&query(
        &["EQ_bizStep=shipping,packing,inspecting,commissioning"],
        &["--per-page", "2", "--all"],
    ));
    assert_eq!(every, all_at_once);

    for (args, says) in [
        (
            vec!["--param", "MATCH_thing=x"],
            "query parameter MATCH_thing: is not a parameter",
        ),
        (
            vec!["--param", "MATCH_epc=pallet-9"],
            "is neither an EPC URI",
        ),
        (vec!["--param", "GE_eventTime=noon"], "is not a date-time"),
        (
            vec!["--param", "MATCH_epc=urn:epc:idpat:sgtin:0614141.*.2017"],
            "only `*` in the last field(s)",
        ),
        (
            vec!["--page-token", "3.0.00"],
            "is not a page token of this query",
        ),
    ] {
        let mut all = vec!["epcis", "query", "--node", url.as_str()];
        all.extend(args);
        let out = run(dir, &all);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    drop(node);
}

/// FSMA 204 as a regulator's request is answered: the records of a salad mix lot and of
/// the lettuce lots that went into it — harvesting, the transformation, the shipping
/// with its bill of lading, and the native shipment's handovers with the lot's quantity
/// — sorted by time, as CSV and as an .xlsx workbook.
#[tokio::test]
async fn fsma_records_of_a_lot_and_its_inputs_as_a_sortable_spreadsheet() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    cli(
        dir,
        &[
            "genesis",
            "--chain-id",
            "fsma",
            "--member",
            "farm:producer",
            "--member",
            "retailer:retailer",
            "--validators",
            "farm",
            "--out-dir",
            "net",
        ],
    );
    let node = start_node(dir);
    let url = node.url.clone();
    let lot = |name: &str| format!("urn:epc:class:lgtin:4012345.011111.{name}");
    let import = |doc: String| import_ok(dir, &url, FARM_KEY, doc);
    let harvest = |name: &str, time: &str| {
        serde_json::json!({
            "type": "ObjectEvent", "eventTime": time, "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "bizStep": "https://example.org/fsma/harvesting",
            "quantityList": [{"epcClass": lot(name), "quantity": 500, "uom": "KGM"}],
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        })
    };
    import(document(serde_json::json!([
        harvest("A", "2024-03-01T06:00:00Z"),
        harvest("B", "2024-03-01T07:00:00Z"),
        serde_json::json!({
            "type": "TransformationEvent", "eventTime": "2024-03-01T12:00:00Z",
            "eventTimeZoneOffset": "+00:00", "bizStep": "commissioning",
            "inputQuantityList": [
                {"epcClass": lot("A"), "quantity": 200, "uom": "KGM"},
                {"epcClass": lot("B"), "quantity": 200, "uom": "KGM"}],
            "outputQuantityList": [{"epcClass": lot("MIX"), "quantity": 400, "uom": "KGM"}],
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00002.0"},
        }),
        serde_json::json!({
            "type": "ObjectEvent", "eventTime": "2024-03-02T09:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "shipping",
            "quantityList": [{"epcClass": lot("MIX"), "quantity": 400, "uom": "KGM"}],
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00002.0"},
            "bizTransactionList": [{"type": "bol", "bizTransaction": "urn:epcglobal:cbv:bt:4012345000009:BOL7"}],
        }),
    ])));
    let submit = |key: &str, args: &[&str]| {
        let mut all = vec!["submit", "--node", url.as_str(), "--key", key];
        all.extend_from_slice(args);
        cli(dir, &all);
    };
    submit(
        FARM_KEY,
        &[
            "create-shipment",
            "--id",
            SSCC,
            "--product",
            &format!("{},Salad mix,400,KGM", lot("MIX")),
            "--min",
            "2",
            "--max",
            "8",
        ],
    );
    submit(FARM_KEY, &["ship", "--shipment", SSCC, "--to", "retailer"]);
    submit(
        "net/keys/retailer.admin.json",
        &["receive", "--shipment", SSCC, "--final"],
    );

    let out = cli(
        dir,
        &[
            "fsma",
            "export",
            "--node",
            &url,
            "--lot",
            &lot("MIX"),
            "--out",
            "mix.csv",
            "--xlsx",
            "mix.xlsx",
        ],
    );
    assert!(out.contains("records of 3 lot(s)"), "{out}");
    let csv = std::fs::read_to_string(dir.join("mix.csv")).expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("Event Date-Time (UTC),Critical Tracking Event,Traceability Lot Code")
    );
    let cte = |l: &str| l.split(',').nth(1).unwrap_or_default().to_string();
    let ctes: Vec<String> = lines[1..].iter().map(|l| cte(l)).collect();
    assert_eq!(
        &ctes[..6],
        [
            "Harvesting",
            "Harvesting",
            "Transformation",
            "Transformation",
            "Transformation",
            "Shipping"
        ],
        "{csv}"
    );
    assert!(
        lines.iter().any(|l| l.contains(",Shipping,MIX,")
            && l.contains("bol,urn:epcglobal:cbv:bt:4012345000009:BOL7")),
        "{csv}"
    );
    // The native shipment: shipped and received, with the lot's quantity on it.
    assert!(
        lines.iter().any(|l| l.contains(",Receiving,MIX,")
            && l.contains(",400,KGM,")
            && l.contains(",retailer,")),
        "{csv}"
    );
    let times: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "sorted by time");
    let xlsx = std::fs::read(dir.join("mix.xlsx")).expect("xlsx");
    assert!(xlsx.starts_with(b"PK\x03\x04"), "a zip container");
    assert!(
        xlsx.windows(24).any(|w| w == b"xl/worksheets/sheet1.xml"),
        "with a worksheet"
    );
    // A window: only what happened from March 2 on.
    cli(
        dir,
        &[
            "fsma",
            "export",
            "--node",
            &url,
            "--lot",
            &lot("MIX"),
            "--from",
            "2024-03-02T00:00:00Z",
            "--out",
            "late.csv",
        ],
    );
    let late = std::fs::read_to_string(dir.join("late.csv")).expect("csv");
    assert!(
        late.lines().skip(1).all(|l| !l.contains("Harvesting")),
        "{late}"
    );
    drop(node);
}

/// A logger platform's journey document, imported as is: the logger tied to the
/// shipment by an AssociationEvent, then 12 hourly temperature reports with a 3-hour
/// excursion. The shipment's twin gives their MKT and the excursion as member-attested
/// evidence, apart from (here: without) device-signed readings.
#[tokio::test]
async fn a_journey_document_counts_as_attested_evidence_in_the_twin() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let node = farm_with_shipment(dir, "attested");
    let url = node.url.clone();
    let logger = "urn:epc:id:giai:4012345.777";
    let celsius = [3.0, 3.5, 4.0, 7.5, 10.0, 12.5, 9.0, 6.0, 5.0, 4.5, 4.0, 3.5];
    let reports: Vec<serde_json::Value> = celsius
        .iter()
        .enumerate()
        .map(|(h, c)| {
            serde_json::json!({"type": "gs1:Temperature", "value": c, "uom": "CEL",
                "time": format!("2024-03-02T{h:02}:00:00Z")})
        })
        .collect();
    let doc = document(serde_json::json!([
            {"type": "AssociationEvent", "eventTime": "2024-03-01T23:00:00Z",
             "eventTimeZoneOffset": "+00:00", "action": "ADD", "bizStep": "installing",
             "parentID": SSCC, "childEPCs": [logger]},
            {"type": "ObjectEvent", "eventTime": "2024-03-02T11:00:00Z",
             "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "sensor_reporting",
             "epcList": [], "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
             "sensorElementList": [{"sensorMetadata": {"deviceID": logger}, "sensorReport": reports}]},
    ]));
    std::fs::write(dir.join("journey.json"), doc).expect("write");
    cli(
        dir,
        &[
            "epcis",
            "import",
            "journey.json",
            "--key",
            FARM_KEY,
            "--node",
            &url,
        ],
    );
    let twin: serde_json::Value = serde_json::from_str(&cli(
        dir,
        &["--json", "query", "--node", &url, "shipment", SSCC],
    ))
    .expect("json");
    assert_eq!(twin["reading_count"], 0, "{twin}");
    let a = &twin["attested"];
    assert_eq!(a["reading_count"], 12, "{twin}");
    assert_eq!(a["attested_by"], serde_json::json!(["farm"]));
    let mkt = a["mkt_milli_c"].as_i64().expect("an MKT");
    assert!((6_603..=6_605).contains(&mkt), "MKT {mkt}");
    let excursions = a["excursions"].as_array().expect("excursions");
    assert_eq!(excursions.len(), 1, "{twin}");
    assert_eq!(excursions[0]["duration_ms"], 3 * 3_600_000);
    assert_eq!(excursions[0]["peak_milli_c"], 12_500);
    let text = cli(dir, &["query", "--node", &url, "shipment", SSCC]);
    assert!(text.contains("(member-attested readings)"), "{text}");
    drop(node);
}
