//! Provenance at scale: how fast one node answers a thing's provenance, lineage and EPCIS
//! queries on a chain holding a million events, measured through its gRPC API.
//!
//! ```text
//! cargo run --release -p tracechain-node --example provenance_bench -- --events 1000000
//! ```
//!
//! Setup (timed and reported, not part of the query figures): a single-member chain in
//! this process (127.0.0.1:0, a fresh RocksDB directory) holding `--events` EPCIS
//! ObjectEvents, each about its own item at one of 100 places, and, spread evenly among
//! them so that no two share a block, the story of one item: commissioned, packed into
//! and out of 20 pallets in turn (the last one left on and shipped as a shipment's
//! product), and the first of 5 transformations in a chain of lots (item → lot 1 → ... →
//! lot 5). Every transaction is signed by the member and committed through the node's
//! own admission and blocks.
//!
//! Measured: `--queries` sequential requests of each kind, one client, after the chain
//! is built — GetProvenance of the item (its steps, 20 stays and the shipment's custody),
//! GetLineage of lot 5 (5 transformations upstream) and of the item (5 downstream),
//! QueryEvents MATCH_epc of the item (first page), the same through the EPCIS 2.0 REST
//! gateway (`GET /events?MATCH_epc=...`, an HTTP client; gateway and node in this
//! process), GetContents of the last pallet.
//! Prints p50 / p95 / p99 / max per kind, and a JSON line.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use clap::Parser;
use rayon::prelude::*;
use serde_json::json;
use tokio::sync::watch;
use tracechain_node::{
    api,
    crypto::{Scheme, SecretKey},
    epcis::export,
    gateway,
    genesis::{Genesis, GenesisFile},
    node::{Node, NodeConfig},
    tx,
};
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient, tx_body::Action};

#[derive(Debug, Parser)]
struct Args {
    /// Background EPCIS events (one item each).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Requests of each kind measured.
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// Transactions per SubmitTxs request.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
}

const CHAIN: &str = "provenance-bench";
const TOKEN: &str = "provenance-bench-token";
const ITEM: &str = "urn:epc:id:sgtin:4012345.099999.STORY";
const SHIPMENT: &str = "urn:epc:id:sscc:4012345.9999999999";
const T0: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
const PALLETS: usize = 20;
const TRANSFORMATIONS: usize = 5;

fn pallet(i: usize) -> String {
    format!(
        "urn:epc:id:sscc:4012345.{:010}",
        7_000_000_000u64 + i as u64
    )
}

fn lot(i: usize) -> String {
    format!("urn:epc:class:lgtin:4012345.099999.LOT{i}")
}

/// An EPCIS event as the importer records it: typed fields and the JSON.
fn epcis(event_type: pb::EpcisEventType, json: serde_json::Value, epcs: Vec<String>) -> Action {
    let text = |k: &str| json[k].as_str().unwrap_or_default().to_string();
    Action::RecordEpcisEvent(pb::RecordEpcisEvent {
        event_type: event_type as i32,
        event_time_ms: json["eventTime"]
            .as_str()
            .and_then(|t| tracechain_node::epcis::vocab::parse_time(t).ok())
            .unwrap_or(T0),
        action: text("action"),
        biz_step: text("bizStep"),
        read_point: json["readPoint"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        epcs,
        event_json: json.to_string(),
        ..Default::default()
    })
}

fn observe(item: &str, place: &str, at_ms: i64) -> Action {
    epcis(
        pb::EpcisEventType::Object,
        json!({
            "type": "ObjectEvent", "eventTime": export::time(at_ms), "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE", "bizStep": "inspecting", "epcList": [item],
            "readPoint": {"id": place},
        }),
        vec![item.to_string()],
    )
}

/// The story of the item, in order.
fn story(at_ms: impl Fn(usize) -> i64) -> Vec<Action> {
    let mut out = vec![epcis(
        pb::EpcisEventType::Object,
        json!({
            "type": "ObjectEvent", "eventTime": export::time(at_ms(0)), "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "bizStep": "commissioning", "epcList": [ITEM],
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        }),
        vec![ITEM.into()],
    )];
    let pack = |action: &str, p: &str, at: i64| {
        epcis(
            pb::EpcisEventType::Aggregation,
            json!({
                "type": "AggregationEvent", "eventTime": export::time(at), "eventTimeZoneOffset": "+00:00",
                "action": action, "bizStep": "packing", "parentID": p, "childEPCs": [ITEM],
            }),
            vec![p.to_string(), ITEM.to_string()],
        )
    };
    for i in 0..PALLETS {
        out.push(pack("ADD", &pallet(i), at_ms(out.len())));
        if i + 1 < PALLETS {
            out.push(pack("DELETE", &pallet(i), at_ms(out.len())));
        }
    }
    out.push(Action::CreateShipment(pb::CreateShipment {
        shipment_id: SHIPMENT.into(),
        products: vec![pb::Product {
            epc: pallet(PALLETS - 1),
            description: "pallet".into(),
            quantity: 1,
            uom: "EA".into(),
        }],
        ..Default::default()
    }));
    let mut input = ITEM.to_string();
    for i in 1..=TRANSFORMATIONS {
        let output = lot(i);
        let (inputs, inputs_q) = if i == 1 {
            (json!([input]), json!([]))
        } else {
            (
                json!([]),
                json!([{"epcClass": input, "quantity": 10, "uom": "KGM"}]),
            )
        };
        out.push(epcis(
            pb::EpcisEventType::Transformation,
            json!({
                "type": "TransformationEvent", "eventTime": export::time(at_ms(out.len())),
                "eventTimeZoneOffset": "+00:00", "bizStep": "commissioning",
                "inputEPCList": inputs, "inputQuantityList": inputs_q,
                "outputQuantityList": [{"epcClass": output, "quantity": 10, "uom": "KGM"}],
            }),
            vec![input.clone(), output.clone()],
        ));
        input = output;
    }
    out
}

fn percentiles(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    json!({"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let admin = SecretKey::generate(Scheme::Ed25519);
    let node_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let genesis = Genesis::from_file(GenesisFile::single_member(
        CHAIN,
        T0 - 86_400_000,
        &node_key.verifying_key(),
        &admin.public_key(),
    ))?;
    let data = tempfile::tempdir()?;
    let mut config = NodeConfig::new(data.path().join("db"), "farm".into());
    config.mempool_max_txs = args.events + 10_000;
    config.mempool_max_bytes = 4 << 30;
    let node = Node::open(config, genesis, node_key)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let producer = tokio::spawn(node.clone().run_producer(stopped.clone()));
    let mut api_stop = stopped;
    let server = tokio::spawn(api::serve(node.clone(), listener, async move {
        let _ = api_stop.wait_for(|s| *s).await;
    }));
    let mut client = LedgerClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);

    // ---- build the chain ----
    let building = Instant::now();
    let minute = 60_000;
    let story_len = story(|_| 0).len();
    let spacing = (args.events / story_len).max(1);
    let places: Vec<String> = (0..100)
        .map(|i| format!("urn:epc:id:sgln:4012345.{:05}.0", 100 + i))
        .collect();
    let story = story(|k| T0 + (k * spacing) as i64 * minute);
    let mut actions: Vec<Action> = Vec::with_capacity(args.events + story_len);
    let mut next_story = story.into_iter();
    for i in 0..args.events {
        if i % spacing == 0
            && let Some(a) = next_story.next()
        {
            actions.push(a);
        }
        actions.push(observe(
            &format!("urn:epc:id:sgtin:4012345.011111.{i}"),
            &places[i % places.len()],
            T0 + i as i64 * minute + 1,
        ));
    }
    actions.extend(next_story);
    let admin_signer = pb::Signer {
        kind: pb::SignerKind::Member as i32,
        id: "farm".into(),
        scheme: pb::SignatureScheme::Ed25519 as i32,
        public_key: admin.public_key(),
    };
    let txs: Vec<pb::SignedTx> = actions
        .into_par_iter()
        .enumerate()
        .map(|(i, action)| {
            tx::sign_body(
                &pb::TxBody {
                    chain_id: CHAIN.into(),
                    signer: Some(admin_signer.clone()),
                    sequence: i as u64 + 1,
                    time_ms: T0,
                    action: Some(action),
                },
                &admin,
            )
        })
        .collect();
    let total = txs.len();
    eprintln!(
        "signed {total} transactions in {:.1} s",
        building.elapsed().as_secs_f64()
    );
    let last = blake3::hash(&txs[total - 1].body).as_bytes().to_vec();
    for chunk in txs.chunks(args.batch) {
        loop {
            let r = client
                .submit_txs(pb::SubmitTxsRequest {
                    txs: chunk.to_vec(),
                })
                .await;
            match r {
                Ok(r) => {
                    let refused: Vec<_> = r
                        .into_inner()
                        .outcomes
                        .into_iter()
                        .filter(|o| !o.accepted)
                        .collect();
                    if let Some(o) = refused.first() {
                        anyhow::bail!("{} refused at admission: {}", refused.len(), o.error);
                    }
                    break;
                }
                Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(s) => return Err(s.into()),
            }
        }
    }
    drop(txs);
    let committed = loop {
        let r = client
            .get_tx(pb::GetTxRequest {
                tx_id: last.clone(),
            })
            .await?
            .into_inner();
        if r.status == pb::TxStatus::Committed as i32 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let height = committed.height;
    let build_s = building.elapsed().as_secs_f64();
    eprintln!("built {total} transactions into {height} blocks in {build_s:.1} s");

    // ---- the answers, checked once ----
    let p = client
        .get_provenance(pb::GetProvenanceRequest {
            identifier: ITEM.into(),
        })
        .await?
        .into_inner();
    let direct = p.stays.iter().filter(|s| s.depth == 1).count();
    anyhow::ensure!(
        direct == PALLETS && p.stays.iter().any(|s| s.shipment_id == SHIPMENT),
        "the item's provenance lists {direct} direct stays: {:?}",
        p.reasons
    );
    let lineage = |identifier: &str| pb::GetLineageRequest {
        identifier: identifier.into(),
        max_depth: 0,
    };
    let up = client
        .get_lineage(lineage(&lot(TRANSFORMATIONS)))
        .await?
        .into_inner();
    anyhow::ensure!(up.upstream.len() == TRANSFORMATIONS, "lineage: {up:?}");
    let query = pb::QueryEventsRequest {
        params: vec![pb::QueryParam {
            name: "MATCH_epc".into(),
            values: vec![ITEM.into()],
        }],
        per_page: 100,
        next_page_token: String::new(),
    };
    let first = client.query_events(query.clone()).await?.into_inner();
    anyhow::ensure!(
        first.count as usize == PALLETS * 2,
        "MATCH_epc: {} events",
        first.count
    );

    // The EPCIS 2.0 REST gateway in front of the node, and an HTTP client.
    let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gw_addr = gw_listener.local_addr()?;
    let mut gw_stop = stop.subscribe();
    let gateway = tokio::spawn(gateway::serve(
        gateway::Gateway::new(client.clone(), TOKEN.into(), CHAIN.into()),
        gw_listener,
        async move {
            let _ = gw_stop.wait_for(|s| *s).await;
        },
    ));
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<prost::bytes::Bytes>>();
    let rest_url = format!("http://{gw_addr}/events?MATCH_epc={ITEM}&perPage=100");
    let rest = || {
        let request = axum::http::Request::get(rest_url.as_str())
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(http_body_util::Empty::new());
        let http = http.clone();
        async move {
            let response = http.request(request?).await?;
            anyhow::ensure!(
                response.status() == 200,
                "GET /events: {}",
                response.status()
            );
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await?
                .to_bytes();
            Ok::<_, anyhow::Error>(body)
        }
    };
    let page: serde_json::Value = serde_json::from_slice(&rest().await?)?;
    let listed = page
        .pointer("/epcisBody/queryResults/resultsBody/eventList")
        .and_then(|l| l.as_array())
        .map_or(0, Vec::len);
    anyhow::ensure!(listed == PALLETS * 2, "GET /events: {listed} events");

    // ---- measured ----
    let mut report = serde_json::Map::new();
    macro_rules! measure {
        ($name:expr, $call:expr) => {{
            let mut ms = Vec::with_capacity(args.queries);
            for _ in 0..args.queries {
                let t = Instant::now();
                $call.await?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            report.insert($name.into(), percentiles(ms));
        }};
    }
    measure!(
        "GetProvenance(item)",
        client.get_provenance(pb::GetProvenanceRequest {
            identifier: ITEM.into()
        })
    );
    measure!(
        "GetLineage(lot 5, upstream 5)",
        client.get_lineage(lineage(&lot(TRANSFORMATIONS)))
    );
    measure!(
        "GetLineage(item, downstream 5)",
        client.get_lineage(lineage(ITEM))
    );
    measure!(
        "QueryEvents(MATCH_epc item)",
        client.query_events(query.clone())
    );
    measure!("REST GET /events?MATCH_epc=item", rest());
    measure!(
        "GetContents(last pallet)",
        client.get_contents(pb::GetContentsRequest {
            identifier: pallet(PALLETS - 1),
            at_ms: None,
        })
    );

    println!(
        "chain: {total} transactions in {height} blocks, built in {build_s:.1} s ({:.0} tx/s)",
        total as f64 / build_s
    );
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>8}",
        "request", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for (name, v) in &report {
        println!(
            "{name:<34} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            v["p50_ms"].as_f64().unwrap_or_default(),
            v["p95_ms"].as_f64().unwrap_or_default(),
            v["p99_ms"].as_f64().unwrap_or_default(),
            v["max_ms"].as_f64().unwrap_or_default()
        );
    }
    println!(
        "{}",
        json!({
            "transactions": total, "blocks": height, "build_s": build_s,
            "queries_each": args.queries, "latency": report,
        })
    );
    let _ = stop.send(true);
    let _ = gateway.await;
    let _ = producer.await;
    let _ = server.await;
    Ok(())
}
