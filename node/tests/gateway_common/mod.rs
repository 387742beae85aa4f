//! Shared by the tests of the EPCIS 2.0 REST gateway (default tier and interop tier):
//! a one-member node with three committed EPCIS events, its API and the gateway in this
//! process on ephemeral ports, and a real HTTP client.

#![allow(dead_code)]

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::bytes::Bytes;
use tokio::sync::watch;
use tonic::transport::Channel;
use tracechain_node::{
    api,
    crypto::{Scheme, SecretKey},
    gateway::{self, Gateway},
    genesis::{Genesis, GenesisFile},
    loadgen,
    node::{Node, NodeConfig},
};
use tracechain_proto::v1::ledger_client::LedgerClient;

pub const CHAIN: &str = "rest-chain";
pub const TOKEN: &str = "a-token-of-some-length";

pub struct Served {
    pub base: String,
    /// The committed events' transaction ids (hex), in order.
    pub tx_ids: Vec<String>,
    _stop: watch::Sender<bool>,
    _data: tempfile::TempDir,
}

/// A node with three committed EPCIS ObjectEvents (OBSERVE, inspecting; items
/// `urn:epc:id:sgtin:4012345.011111.farm0` .. `farm2`), its API and the gateway.
pub async fn serve() -> Served {
    let admin = SecretKey::generate(Scheme::Ed25519);
    let node_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let genesis = Genesis::from_file(GenesisFile::single_member(
        CHAIN,
        1_700_000_000_000,
        &node_key.verifying_key(),
        &admin.public_key(),
    ))
    .expect("genesis");
    let data = tempfile::tempdir().expect("tempdir");
    let node = Node::open(
        NodeConfig::new(data.path().join("db"), "farm".into()),
        genesis,
        node_key,
    )
    .expect("node");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let events = loadgen::epcis_observations(CHAIN, "farm", &admin, 1, 3, now - 60_000);
    let tx_ids = events
        .iter()
        .map(|t| blake3::hash(&t.body).to_hex().to_string())
        .collect();
    assert!(node.submit(events).await.iter().all(Result::is_ok));
    node.produce_block().await.expect("block");
    let (stop, stopped) = watch::channel(false);
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api_addr = api_listener.local_addr().expect("addr");
    let mut until = stopped.clone();
    tokio::spawn(api::serve(node, api_listener, async move {
        let _ = until.wait_for(|s| *s).await;
    }));
    let channel = Channel::from_shared(format!("http://{api_addr}"))
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut until = stopped;
    tokio::spawn(gateway::serve(
        Gateway::new(LedgerClient::new(channel), TOKEN.into(), CHAIN.into()),
        listener,
        async move {
            let _ = until.wait_for(|s| *s).await;
        },
    ));
    Served {
        base,
        tx_ids,
        _stop: stop,
        _data: data,
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: serde_json::Value,
}

pub async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = axum::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = client
        .request(req.body(Empty::new()).expect("request"))
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

pub const AUTH: (&str, &str) = ("authorization", "Bearer a-token-of-some-length");

pub fn events(a: &Answer) -> Vec<serde_json::Value> {
    a.body
        .pointer("/epcisBody/queryResults/resultsBody/eventList")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default()
}

pub fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}
