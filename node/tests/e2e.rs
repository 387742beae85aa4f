//! End to end: the real `tracechain` binary, started on an ephemeral port, driven
//! through its gRPC API and its CLI, killed with SIGKILL and restarted.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

mod common;

use common::{BIN, cli, client, now_ms, start_node, start_node_with};
use prost::Message;
use tonic::{Code, transport::Channel};
use tracechain_node::{
    crypto::{KeyFile, Scheme, SecretKey},
    tx,
};
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient, tx_body::Action};

const SHIPMENT: &str = "urn:epc:id:sscc:4012345.0000000042";
const DEVICE: &str = "urn:epc:id:giai:4012345.777";

fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    cli(
        &dir,
        &[
            "genesis",
            "--chain-id",
            "e2e-chain",
            "--member",
            "farm:producer",
            "--member",
            "carrier:carrier",
            "--member",
            "retailer:retailer",
            "--member",
            "customs:customs",
            "--validators",
            "farm",
            "--out-dir",
            "net",
        ],
    );
    cli(
        &dir,
        &[
            "keygen",
            "--kind",
            "device",
            "--scheme",
            "p256",
            "--id",
            DEVICE,
            "--out",
            "device.json",
        ],
    );
    (tmp, dir)
}

fn submit(dir: &Path, url: &str, key: &str, action: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json", "submit", "--node", url, "--key", key];
    args.extend_from_slice(action);
    serde_json::from_str(&cli(dir, &args)).expect("submit prints JSON")
}

fn device_tx(
    key: &SecretKey,
    chain: &str,
    seq: u64,
    shipment: &str,
    milli_c: i32,
    at: i64,
) -> pb::SignedTx {
    let body = pb::TxBody {
        chain_id: chain.into(),
        signer: Some(pb::Signer {
            kind: pb::SignerKind::Device as i32,
            id: DEVICE.into(),
            scheme: pb::SignatureScheme::from(key.scheme()) as i32,
            public_key: key.public_key(),
        }),
        sequence: seq,
        time_ms: at,
        action: Some(Action::SensorReport(pb::SensorReport {
            shipment_id: shipment.into(),
            observed_at_ms: at,
            temperature_milli_c: milli_c,
            humidity_permille: None,
            location: None,
        })),
    };
    tx::sign_body(&body, key)
}

/// n − s for the P-256 group order n (big-endian, 32 bytes): turns a low-S signature
/// into its equally valid high-S twin.
fn negate_s(s: &[u8]) -> [u8; 32] {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

async fn wait_committed(c: &mut LedgerClient<Channel>, id: &[u8]) -> pb::GetTxResponse {
    for _ in 0..200 {
        if let Ok(r) = c.get_tx(pb::GetTxRequest { tx_id: id.to_vec() }).await {
            let r = r.into_inner();
            if r.status == pb::TxStatus::Committed as i32 {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("transaction {} not committed", hex::encode(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_end_to_end_over_grpc_and_cli() {
    let (_tmp, dir) = setup();
    let node = start_node(&dir);
    let url = node.url.clone();
    let mut c = client(&url).await;

    // Health and status.
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect"),
    );
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tracechain.v1.Ledger".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let status = c
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!((status.chain_id.as_str(), status.height), ("e2e-chain", 0));

    // The happy path through the CLI: register, create, hand over.
    let r = submit(
        &dir,
        &url,
        "net/keys/farm.admin.json",
        &["register-device", "--device-key", "device.json"],
    );
    assert_eq!(r["result"], "OK", "{r}");
    let r = submit(
        &dir,
        &url,
        "net/keys/farm.admin.json",
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
    assert_eq!(r["result"], "OK", "{r}");
    let r = submit(
        &dir,
        &url,
        "net/keys/farm.admin.json",
        &["ship", "--shipment", SHIPMENT, "--to", "carrier"],
    );
    assert_eq!(r["result"], "OK", "{r}");
    let r = submit(
        &dir,
        &url,
        "net/keys/carrier.admin.json",
        &["receive", "--shipment", SHIPMENT],
    );
    assert_eq!(r["result"], "OK", "{r}");
    // A reading through the CLI, signed with the device's P-256 key (sequence 1).
    let first_reading_ms = (now_ms() - 60_000).to_string();
    let r = submit(
        &dir,
        &url,
        "device.json",
        &[
            "reading",
            "--shipment",
            SHIPMENT,
            "--temp",
            "4.5",
            "--time-ms",
            &first_reading_ms,
        ],
    );
    assert_eq!(r["result"], "OK", "{r}");

    // A handover by a party that is not the custodian is committed with its reason.
    let out = Command::new(BIN)
        .current_dir(&dir)
        .args([
            "--json",
            "submit",
            "--node",
            &url,
            "--key",
            "net/keys/retailer.admin.json",
            "ship",
            "--shipment",
            SHIPMENT,
            "--to",
            "farm",
        ])
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "a rejected transaction makes the CLI fail"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["result"], "NOT_CUSTODIAN", "{r}");

    // Readings over the API with the device key from its key file.
    let device = KeyFile::load(&dir.join("device.json")).expect("key file");
    let key = device.secret_key().expect("secret");
    assert_eq!(key.scheme(), Scheme::P256);
    let t = now_ms();
    let batch: Vec<_> = (0..20u64)
        .map(|i| {
            device_tx(
                &key,
                "e2e-chain",
                2 + i,
                SHIPMENT,
                5_000 + (i as i32) * 300,
                t - 20_000 + i as i64 * 1_000,
            )
        })
        .collect();
    let outcomes = c
        .submit_txs(pb::SubmitTxsRequest { txs: batch.clone() })
        .await
        .expect("submit batch")
        .into_inner()
        .outcomes;
    assert!(outcomes.iter().all(|o| o.accepted), "{outcomes:?}");
    let last = wait_committed(&mut c, &outcomes[19].tx_id).await;
    assert_eq!(last.result.expect("result").code, pb::ResultCode::Ok as i32);
    // Sent again, each is refused with the canonical gRPC code name the API documents.
    let again = c
        .submit_txs(pb::SubmitTxsRequest { txs: batch.clone() })
        .await
        .expect("submit batch again")
        .into_inner()
        .outcomes;
    assert!(
        again
            .iter()
            .all(|o| !o.accepted && o.error_code == "ALREADY_EXISTS"),
        "{again:?}"
    );

    let twin = c
        .get_shipment(pb::GetShipmentRequest {
            shipment_id: SHIPMENT.into(),
        })
        .await
        .expect("twin")
        .into_inner();
    assert_eq!(twin.custodian, "carrier");
    assert_eq!(twin.reading_count, 21);
    // 5.0 .. 10.7 °C: readings above 8 °C open an excursion that is still open.
    assert_eq!(twin.max_milli_c, Some(10_700));
    assert_eq!(twin.excursions.len(), 1);

    // ---- bad input: each gets a clear error and changes nothing ----
    let before = c
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner();

    // Duplicate transaction.
    let dup = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(batch[0].clone()),
            wait_for_commit: false,
        })
        .await;
    assert_eq!(dup.expect_err("duplicate").code(), Code::AlreadyExists);
    // Replayed device sequence (new body, old sequence).
    let replay = device_tx(&key, "e2e-chain", 3, SHIPMENT, 4_000, now_ms());
    let e = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(replay),
            wait_for_commit: false,
        })
        .await
        .expect_err("replay");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("replayed"), "{}", e.message());
    // Malformed protobuf.
    let e = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(pb::SignedTx {
                body: vec![0xff, 0xff, 0xff],
                signature: vec![0; 64],
            }),
            wait_for_commit: false,
        })
        .await
        .expect_err("malformed");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // Wrong chain id.
    let e = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(device_tx(
                &key,
                "other-chain",
                100,
                SHIPMENT,
                4_000,
                now_ms(),
            )),
            wait_for_commit: false,
        })
        .await
        .expect_err("wrong chain");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("chain"), "{}", e.message());
    // Bad signature.
    let mut forged = device_tx(&key, "e2e-chain", 100, SHIPMENT, 4_000, now_ms());
    forged.signature[10] ^= 0x55;
    let e = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(forged),
            wait_for_commit: false,
        })
        .await
        .expect_err("forged");
    assert_eq!(e.code(), Code::InvalidArgument);
    // High-S ECDSA signature: (r, n - s) is valid ECDSA but malleable; it must be refused.
    let mut high = device_tx(&key, "e2e-chain", 101, SHIPMENT, 4_000, now_ms());
    let s_high = negate_s(&high.signature[32..]);
    high.signature[32..].copy_from_slice(&s_high);
    let e = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(high),
            wait_for_commit: false,
        })
        .await
        .expect_err("high-S");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().to_lowercase().contains("low-s")
            || e.message().to_lowercase().contains("high-s"),
        "{}",
        e.message()
    );
    // Physically impossible value.
    let e = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(device_tx(
                &key,
                "e2e-chain",
                102,
                SHIPMENT,
                400_000,
                now_ms(),
            )),
            wait_for_commit: false,
        })
        .await
        .expect_err("impossible");
    assert_eq!(e.code(), Code::InvalidArgument);
    // Oversized request.
    let huge = pb::SubmitTxsRequest {
        txs: vec![pb::SignedTx {
            body: vec![0; 17 * 1024 * 1024],
            signature: vec![],
        }],
    };
    let e = c.submit_txs(huge).await.expect_err("oversized");
    assert_ne!(e.code(), Code::Ok);
    // Unknown shipment: stateful, so committed with its reason.
    let unknown = device_tx(
        &key,
        "e2e-chain",
        103,
        "urn:epc:id:sscc:9.9",
        4_000,
        now_ms(),
    );
    let r = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(unknown),
            wait_for_commit: true,
        })
        .await
        .expect("admitted")
        .into_inner();
    let result = r.result.expect("committed");
    assert_eq!(
        result.code,
        pb::ResultCode::UnknownShipment as i32,
        "{}",
        result.message
    );

    let after = c
        .get_shipment(pb::GetShipmentRequest {
            shipment_id: SHIPMENT.into(),
        })
        .await
        .expect("twin")
        .into_inner();
    assert_eq!(after, twin, "bad input must not change the shipment");
    let status = c
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        status.height,
        before.height + 1,
        "only the unknown-shipment reading made a block"
    );

    // ---- queries ----
    let block = c
        .get_block(pb::GetBlockRequest {
            by: Some(pb::get_block_request::By::Height(1)),
        })
        .await
        .expect("block 1")
        .into_inner();
    let header = pb::BlockHeader::decode(block.block.as_ref().expect("block").header.as_slice())
        .expect("header");
    assert_eq!(header.height, 1);
    let hash = blake3::hash(&block.block.as_ref().expect("block").header)
        .as_bytes()
        .to_vec();
    let by_hash = c
        .get_block(pb::GetBlockRequest {
            by: Some(pb::get_block_request::By::Hash(hash)),
        })
        .await
        .expect("by hash")
        .into_inner();
    assert_eq!(by_hash, block);
    assert_eq!(
        block.certificate.expect("cert").signatures[0].member_id,
        "farm"
    );
    let events = c
        .get_shipment_events(pb::GetShipmentEventsRequest {
            shipment_id: SHIPMENT.into(),
            offset: 0,
            limit: 0,
        })
        .await
        .expect("events")
        .into_inner();
    assert_eq!(
        events.total,
        3 + 21,
        "create, ship, receive and 21 readings"
    );
    let e = c
        .get_shipment(pb::GetShipmentRequest {
            shipment_id: "nope".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(e.code(), Code::NotFound);
    let d = c
        .get_device(pb::GetDeviceRequest {
            device_id: DEVICE.into(),
        })
        .await
        .expect("device")
        .into_inner();
    assert_eq!((d.owner.as_str(), d.last_sequence), ("farm", 21));

    // CLI queries, JSON.
    let q: serde_json::Value = serde_json::from_str(&cli(
        &dir,
        &["--json", "query", "--node", &url, "shipment", SHIPMENT],
    ))
    .expect("json");
    assert_eq!(q["custodian"], "carrier");
    assert_eq!(q["reading_count"], 21);

    // Subscription: replays from height 1, then delivers a live block.
    let mut stream = c
        .subscribe_blocks(pb::SubscribeBlocksRequest { from_height: 1 })
        .await
        .expect("subscribe")
        .into_inner();
    for h in 1..=status.height {
        let b = stream.message().await.expect("stream").expect("block");
        let hh =
            pb::BlockHeader::decode(b.block.expect("block").header.as_slice()).expect("header");
        assert_eq!(hh.height, h);
    }
    let live = device_tx(&key, "e2e-chain", 200, SHIPMENT, 5_000, now_ms());
    c.submit_tx(pb::SubmitTxRequest {
        tx: Some(live),
        wait_for_commit: false,
    })
    .await
    .expect("live");
    let b = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("live block in time")
        .expect("stream")
        .expect("block");
    let hh = pb::BlockHeader::decode(b.block.expect("block").header.as_slice()).expect("header");
    assert_eq!(hh.height, status.height + 1);

    // ---- kill -9 and restart: same head, same state ----
    let before = c
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    drop(stream);
    drop(c);
    drop(node);
    // Restart from the config file `tracechain genesis` wrote (flags override its data
    // directory and port).
    assert!(dir.join("net/farm.node.toml").exists());
    let node = start_node_with(&dir, &["--config", "net/farm.node.toml"]);
    let mut c = client(&node.url).await;
    let after = c
        .get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        (after.height, &after.head_hash, &after.state_commitment),
        (before.height, &before.head_hash, &before.state_commitment)
    );
    let twin_after = c
        .get_shipment(pb::GetShipmentRequest {
            shipment_id: SHIPMENT.into(),
        })
        .await
        .expect("twin")
        .into_inner();
    assert_eq!(twin_after.reading_count, 22);
    // The restarted node keeps going.
    let next = device_tx(&key, "e2e-chain", 201, SHIPMENT, 5_000, now_ms());
    let r = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(next),
            wait_for_commit: true,
        })
        .await
        .expect("after restart")
        .into_inner();
    assert_eq!(r.height, before.height + 1);

    // ---- a clone: the node keeps the pair, a member proves it through the CLI ----
    let clone = device_tx(&key, "e2e-chain", 201, SHIPMENT, 2_500, now_ms());
    let e = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(clone),
            wait_for_commit: false,
        })
        .await
        .expect_err("a used sequence");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let seen: serde_json::Value = serde_json::from_str(&cli(
        &dir,
        &["--json", "query", "--node", &node.url, "conflicts"],
    ))
    .expect("json");
    assert_eq!(seen.as_array().map(Vec::len), Some(1), "{seen}");
    assert_eq!(seen[0]["kind"], "same_sequence", "{seen}");
    assert_eq!(seen[0]["first_sequence"], 201, "{seen}");
    let r = submit(
        &dir,
        &node.url,
        "net/keys/retailer.admin.json",
        &["report-conflict", "--device", DEVICE],
    );
    assert_eq!(r["result"], "OK", "{r}");
    let shipment: serde_json::Value = serde_json::from_str(&cli(
        &dir,
        &["--json", "query", "--node", &node.url, "shipment", SHIPMENT],
    ))
    .expect("json");
    let flags = shipment["device_flags"].as_array().expect("device_flags");
    assert_eq!(flags.len(), 1, "{shipment}");
    assert!(
        flags[0]
            .as_str()
            .is_some_and(|f| f.contains("flagged as cloned") && f.contains("by retailer")),
        "{shipment}"
    );
    // The key signs nothing any more.
    let r = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(device_tx(&key, "e2e-chain", 202, SHIPMENT, 5_000, now_ms())),
            wait_for_commit: true,
        })
        .await
        .expect("committed")
        .into_inner();
    assert_eq!(
        r.result.expect("result").code,
        pb::ResultCode::DeviceKeyCompromised as i32
    );
}
