//! The audit commands end to end: a real node, `tracechain audit export`, the node
//! stopped, then `tracechain audit verify` offline — and a tampered bundle refused.

use std::path::Path;

mod common;

use common::{cli, now_ms, run, start_node};

const SHIPMENT: &str = "urn:epc:id:sscc:4012345.0000000077";
const DEVICE: &str = "urn:epc:id:giai:4012345.901";

fn submit(dir: &Path, url: &str, key: &str, action: &[&str]) {
    let mut args = vec!["--json", "submit", "--node", url, "--key", key];
    args.extend_from_slice(action);
    let out: serde_json::Value =
        serde_json::from_str(&cli(dir, &args)).expect("submit prints JSON");
    assert_eq!(out["result"], "OK", "{out}");
}

#[test]
fn export_then_verify_offline_and_refuse_a_tampered_bundle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    cli(
        dir,
        &[
            "genesis",
            "--chain-id",
            "audit-e2e",
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
    cli(
        dir,
        &[
            "keygen",
            "--kind",
            "device",
            "--scheme",
            "ed25519",
            "--id",
            DEVICE,
            "--out",
            "device.json",
        ],
    );
    let node = start_node(dir);
    let url = node.url.clone();
    let farm = "net/keys/farm.admin.json";
    submit(
        dir,
        &url,
        farm,
        &["register-device", "--device-key", "device.json"],
    );
    submit(
        dir,
        &url,
        farm,
        &[
            "create-shipment",
            "--id",
            SHIPMENT,
            "--product",
            "urn:epc:class:lgtin:4012345.012345.L1,Lettuce,10,KGM",
            "--min",
            "2",
            "--max",
            "8",
            "--budget-min",
            "30",
            "--max-gap-min",
            "60",
            "--device",
            DEVICE,
        ],
    );
    let t0 = now_ms() - 90 * 60_000;
    for (i, temp) in ["4.5", "9.25", "5"].iter().enumerate() {
        let at = (t0 + i as i64 * 20 * 60_000).to_string();
        submit(
            dir,
            &url,
            "device.json",
            &[
                "reading",
                "--shipment",
                SHIPMENT,
                "--temp",
                temp,
                "--time-ms",
                &at,
            ],
        );
    }
    submit(
        dir,
        &url,
        farm,
        &["ship", "--shipment", SHIPMENT, "--to", "carrier"],
    );
    submit(
        dir,
        &url,
        "net/keys/carrier.admin.json",
        &["receive", "--shipment", SHIPMENT, "--final"],
    );
    let out = cli(
        dir,
        &[
            "audit",
            "export",
            "--node",
            &url,
            "--shipment",
            SHIPMENT,
            "--out",
            "bundle.pb",
        ],
    );
    assert!(out.contains("wrote bundle.pb"), "{out}");
    let missing = run(
        dir,
        &[
            "audit",
            "export",
            "--node",
            &url,
            "--shipment",
            "nope",
            "--out",
            "x.pb",
        ],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NotFound"));
    // Offline from here on.
    drop(node);

    let report = cli(
        dir,
        &[
            "audit",
            "verify",
            "bundle.pb",
            "--genesis",
            "net/genesis.toml",
            "--csv",
            "readings.csv",
            "--svg",
            "chart.svg",
        ],
    );
    assert!(
        report.contains(&format!("VERIFIED  shipment {SHIPMENT}")),
        "{report}"
    );
    assert!(
        report.contains("custody chain: farm -> carrier"),
        "{report}"
    );
    assert!(report.contains("readings: 3 (1 out of range)"), "{report}");
    assert!(report.contains("history: complete"), "{report}");
    let csv = std::fs::read_to_string(dir.join("readings.csv")).expect("csv");
    assert_eq!(csv.lines().filter(|l| l.starts_with("reading,")).count(), 3);
    assert!(csv.contains(",9.250,out,"), "{csv}");
    let svg = std::fs::read_to_string(dir.join("chart.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("policy band"));
    let json: serde_json::Value = serde_json::from_str(&cli(
        dir,
        &[
            "--json",
            "audit",
            "verify",
            "bundle.pb",
            "--genesis",
            "net/genesis.toml",
        ],
    ))
    .expect("json");
    assert_eq!(json["verified"], true);
    assert_eq!(json["anchored"], true);
    assert_eq!(json["readings"].as_array().map(Vec::len), Some(3));
    // No trust anchor: not VERIFIED, whatever the bundle's own genesis says; exit code 3.
    let out = run(dir, &["audit", "verify", "bundle.pb"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("NOT ANCHORED  shipment"), "{text}");
    assert!(!text.contains("VERIFIED  "), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not anchored"),
        "{out:?}"
    );
    let out = run(dir, &["--json", "audit", "verify", "bundle.pb"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["verified"], false);
    assert_eq!(json["anchored"], false);

    // The proven events as an EPCIS 2.0 document, offline, accepted by the importer's
    // checks (CBV vocabularies, units, required fields per event type).
    let out = cli(
        dir,
        &[
            "epcis",
            "export",
            "--bundle",
            "bundle.pb",
            "--out",
            "epcis.json",
        ],
    );
    assert!(out.contains("6 EPCIS events"), "{out}");
    let text = std::fs::read_to_string(dir.join("epcis.json")).expect("export");
    let events = tracechain_node::epcis::parse::parse_document(&text).expect("valid EPCIS");
    assert_eq!(events.len(), 6);
    let steps: Vec<&str> = events.iter().map(|e| e.biz_step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "commissioning",
            "sensor_reporting",
            "sensor_reporting",
            "sensor_reporting",
            "shipping",
            "receiving"
        ]
    );
    assert_eq!(events[2].sensor_readings[0].value_micro, Some(9_250_000));
    assert_eq!(events[2].sensor_readings[0].uom, "CEL");
    assert!(
        events
            .iter()
            .all(|e| e.epcs.contains(&SHIPMENT.to_string()))
    );
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        doc["epcisBody"]["eventList"][4]["destinationList"][0],
        serde_json::json!({"type": "possessing_party", "destination": "urn:tracechain:member:carrier"})
    );

    // Samples for people to look at (target/ is not committed).
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/audit-sample/cli");
    if std::fs::create_dir_all(&sample).is_ok() {
        for f in ["bundle.pb", "readings.csv", "chart.svg", "epcis.json"] {
            let _ = std::fs::copy(dir.join(f), sample.join(f));
        }
        let _ = std::fs::write(sample.join("report.txt"), &report);
    }

    // One byte altered: refused with a reason and a failing exit status.
    let mut bytes = std::fs::read(dir.join("bundle.pb")).expect("bundle");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(dir.join("tampered.pb"), &bytes).expect("write");
    let out = run(dir, &["audit", "verify", "tampered.pb"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NOT VERIFIED"), "{err}");
    // A bundle of another consortium (wrong expected genesis) is refused too.
    let out = run(
        dir,
        &[
            "audit",
            "verify",
            "bundle.pb",
            "--genesis-hash",
            &"ab".repeat(32),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("genesis"));
}
