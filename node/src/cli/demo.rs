//! `tracechain demo`: a node and a live cold-chain feed, driven through the gRPC API.
//!
//! The consortium: farm (the validator), carrier, retailer and customs (members that
//! sign their own transactions through the farm's node). Two shipments leave the farm
//! with temperature loggers (one Ed25519, one P-256); they are handed to the carrier,
//! cleared by customs and delivered to the retailer while the loggers report every 10
//! minutes of (simulated) transit. The vaccine shipment's reefer fails for a while and
//! the shipment turns non-conformant.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use tonic::transport::Channel;
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient, tx_body::Action};

use super::{output, run};
use crate::{
    crypto::{Scheme, SecretKey},
    genesis::{
        AttestationRule, ContainmentRule, DeviceConflictRule, EventIdentity, Genesis, GenesisFile,
        LineageRule, MemberEntry, MktRule, Role,
    },
    node::{Node, NodeConfig},
    tx,
};

#[derive(Debug, clap::Args)]
pub(super) struct DemoArgs {
    /// Data directory (default: a temporary directory removed at exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// gRPC listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Hours of simulated transit (one reading per logger every 10 minutes).
    #[arg(long, default_value_t = 8)]
    hours: u32,
    /// Keep the node running after the demo, until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
}

const LETTUCE: &str = "urn:epc:id:sscc:4012345.0000000001";
const VACCINE: &str = "urn:epc:id:sscc:4012345.0000000002";
const LOGGER_1: &str = "urn:epc:id:giai:4012345.1001";
const LOGGER_2: &str = "urn:epc:id:giai:4012345.1002";
const MINUTE: i64 = 60_000;

pub(super) struct Signer {
    key: SecretKey,
    kind: pb::SignerKind,
    id: String,
    sequence: u64,
}

pub(super) struct Feed {
    chain_id: String,
    /// Where transactions go unless a signer has its own route.
    client: LedgerClient<Channel>,
    /// Per-signer node (on a devnet each member submits to its own node).
    routes: BTreeMap<String, LedgerClient<Channel>>,
    signers: BTreeMap<String, Signer>,
}

impl Feed {
    fn sign(&mut self, signer: &str, time_ms: i64, action: Action) -> anyhow::Result<pb::SignedTx> {
        let s = self
            .signers
            .get_mut(signer)
            .with_context(|| format!("no key for {signer}"))?;
        s.sequence += 1;
        let body = pb::TxBody {
            chain_id: self.chain_id.clone(),
            signer: Some(pb::Signer {
                kind: s.kind as i32,
                id: s.id.clone(),
                scheme: pb::SignatureScheme::from(s.key.scheme()) as i32,
                public_key: s.key.public_key(),
            }),
            sequence: s.sequence,
            time_ms,
            action: Some(action),
        };
        Ok(tx::sign_body(&body, &s.key))
    }

    /// Submits one transaction to the signer's node and waits for its commit; fails
    /// unless it succeeded.
    async fn step(&mut self, what: &str, signer: &str, action: Action) -> anyhow::Result<()> {
        let tx = self.sign(signer, now_ms(), action)?;
        let client = match self.routes.get_mut(signer) {
            Some(c) => c,
            None => &mut self.client,
        };
        let r = client
            .submit_tx(pb::SubmitTxRequest {
                tx: Some(tx),
                wait_for_commit: true,
            })
            .await
            .map_err(output::status_error)?
            .into_inner();
        let result = r.result.unwrap_or_default();
        if result.code != pb::ResultCode::Ok as i32 {
            bail!(
                "{what}: {} {}",
                output::result_name(result.code),
                result.message
            );
        }
        println!("  ✓ {what:<52} block {}", r.height);
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn policy(budget_min: u32, mkt_limit: Option<i32>) -> pb::ColdChainPolicy {
    pb::ColdChainPolicy {
        min_milli_c: 2_000,
        max_milli_c: 8_000,
        excursion_budget_minutes: budget_min,
        max_reading_gap_minutes: 30,
        mkt_limit_milli_c: mkt_limit,
        hard_min_milli_c: Some(-2_000),
        hard_max_milli_c: Some(25_000),
    }
}

/// A plausible reefer trace in m°C: 4–6 °C with a slow wobble; the vaccine reefer
/// fails between 3 h and 4 h 10 min into transit.
fn temperature(shipment: &str, minute: i64) -> i32 {
    let wobble = ((minute * 37) % 120 - 60) as i32 * 15;
    let base = 5_000 + wobble;
    if shipment == VACCINE && (180..250).contains(&minute) {
        let into = (minute - 180) as i32;
        return 8_500 + into.min(40) * 110;
    }
    base
}

pub(super) async fn demo(a: DemoArgs) -> anyhow::Result<()> {
    let temp = tempfile::TempDir::new()?;
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().join("farm"));
    let start_ms = now_ms();

    // The consortium: keys in memory, genesis with farm as the only validator.
    let roles = [
        ("farm", "Green Valley Farm", Role::Producer),
        ("carrier", "Polar Freight", Role::Carrier),
        ("retailer", "FreshMart", Role::Retailer),
        ("customs", "Border Customs", Role::Customs),
    ];
    let node_key = SecretKey::generate(Scheme::Ed25519);
    let mut signers = BTreeMap::new();
    let mut members = Vec::new();
    for (i, (id, name, role)) in roles.iter().enumerate() {
        let admin = SecretKey::generate(Scheme::Ed25519);
        let node_pub = if i == 0 {
            node_key.public_key()
        } else {
            SecretKey::generate(Scheme::Ed25519).public_key()
        };
        members.push(MemberEntry {
            id: id.to_string(),
            name: name.to_string(),
            role: *role,
            node_key: hex::encode(node_pub),
            admin_key: hex::encode(admin.public_key()),
            address: String::new(),
            validator: i == 0,
            gs1_company_prefixes: Vec::new(),
        });
        signers.insert(
            id.to_string(),
            Signer {
                key: admin,
                kind: pb::SignerKind::Member,
                id: id.to_string(),
                sequence: 0,
            },
        );
    }
    for (id, scheme) in [(LOGGER_1, Scheme::Ed25519), (LOGGER_2, Scheme::P256)] {
        signers.insert(
            id.to_string(),
            Signer {
                key: SecretKey::generate(scheme),
                kind: pb::SignerKind::Device,
                id: id.to_string(),
                sequence: 0,
            },
        );
    }
    let genesis = Genesis::from_file(GenesisFile {
        chain_id: "tracechain-demo".into(),
        genesis_time_ms: start_ms - 24 * 60 * MINUTE,
        max_clock_skew_ms: 5 * MINUTE as u64,
        mkt_rule: MktRule::CURRENT,
        epcis_event_identity: EventIdentity::CURRENT,
        containment: ContainmentRule::CURRENT,
        lineage: LineageRule::CURRENT,
        attestation: AttestationRule::CURRENT,
        device_conflicts: DeviceConflictRule::CURRENT,
        members,
    })?;
    let SecretKey::Ed25519(node_signing) = node_key else {
        bail!("node key must be Ed25519");
    };
    let mut config = NodeConfig::new(data_dir.clone(), "farm".into());
    config.block_interval = Duration::from_millis(100);
    let node = Node::open(config, genesis, node_signing)?;
    let (addr, stop, joined) = run::start(node, a.listen).await?;
    println!(
        "tracechain demo: node 'farm' serving gRPC on {addr}, data in {}",
        data_dir.display()
    );

    let url = format!("http://{addr}");
    let client = output::connect(&url).await?;
    let mut watcher = output::connect(&url).await?;
    let mut blocks = watcher
        .subscribe_blocks(pb::SubscribeBlocksRequest { from_height: 1 })
        .await?
        .into_inner();
    let printer = tokio::spawn(async move {
        let mut count = 0u64;
        while let Ok(Some(b)) = blocks.message().await {
            let ok = b
                .results
                .iter()
                .filter(|r| r.code == pb::ResultCode::Ok as i32)
                .count();
            count += 1;
            if b.results.len() > 1 {
                println!(
                    "  ▪ committed block with {} transactions ({ok} ok)",
                    b.results.len()
                );
            }
        }
        count
    });

    let mut feed = Feed {
        chain_id: "tracechain-demo".into(),
        client,
        routes: BTreeMap::new(),
        signers,
    };
    let result = scenario(&mut feed, a.hours, start_ms).await;

    if let Err(e) = &result {
        println!("demo failed: {e:#}");
    }
    for id in [LETTUCE, VACCINE] {
        println!();
        let t = feed
            .client
            .get_shipment(pb::GetShipmentRequest {
                shipment_id: id.into(),
            })
            .await
            .map_err(output::status_error)?
            .into_inner();
        output::print_twin(&t);
    }
    let status = feed
        .client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await?
        .into_inner();
    println!();
    println!(
        "chain {} at height {}, head {}, state {}",
        status.chain_id,
        status.height,
        hex::encode(&status.head_hash),
        hex::encode(&status.state_commitment)
    );
    if a.keep_running {
        println!(
            "node keeps running on {addr}; try: tracechain query --node {url} shipment {VACCINE}"
        );
        println!("Ctrl-C to stop");
        run::shutdown_signal().await;
    }
    let _ = stop.send(true);
    let _ = joined.await;
    printer.abort();
    result
}

impl Feed {
    /// A feed whose signers submit through `routes` (falling back to `client`).
    pub(super) fn new(
        chain_id: String,
        client: LedgerClient<Channel>,
        routes: BTreeMap<String, LedgerClient<Channel>>,
        signers: BTreeMap<String, Signer>,
    ) -> Self {
        Self {
            chain_id,
            client,
            routes,
            signers,
        }
    }
}

/// A member signer from its admin key.
pub(super) fn member_signer(id: &str, key: SecretKey) -> Signer {
    Signer {
        key,
        kind: pb::SignerKind::Member,
        id: id.to_string(),
        sequence: 0,
    }
}

/// The demo's two temperature loggers: one Ed25519, one P-256 (fresh keys).
pub(super) fn logger_signers() -> Vec<(String, Signer)> {
    [(LOGGER_1, Scheme::Ed25519), (LOGGER_2, Scheme::P256)]
        .into_iter()
        .map(|(id, scheme)| {
            (
                id.to_string(),
                Signer {
                    key: SecretKey::generate(scheme),
                    kind: pb::SignerKind::Device,
                    id: id.to_string(),
                    sequence: 0,
                },
            )
        })
        .collect()
}

/// Prints the twins of the demo's shipments as `client` sees them.
pub(super) async fn print_verdicts(client: &mut LedgerClient<Channel>) -> anyhow::Result<()> {
    for id in [LETTUCE, VACCINE] {
        println!();
        let t = client
            .get_shipment(pb::GetShipmentRequest {
                shipment_id: id.into(),
            })
            .await
            .map_err(output::status_error)?
            .into_inner();
        output::print_twin(&t);
    }
    Ok(())
}

pub(super) async fn scenario(feed: &mut Feed, hours: u32, now: i64) -> anyhow::Result<()> {
    println!("\n— setting up");
    let register = |id: &str, signers: &BTreeMap<String, Signer>| {
        let key = &signers[id].key;
        Action::RegisterDevice(pb::RegisterDevice {
            device_id: id.into(),
            scheme: pb::SignatureScheme::from(key.scheme()) as i32,
            public_key: key.public_key(),
            device_type: "temperature_logger".into(),
        })
    };
    let r1 = register(LOGGER_1, &feed.signers);
    let r2 = register(LOGGER_2, &feed.signers);
    feed.step("farm registers logger 1 (Ed25519)", "farm", r1)
        .await?;
    feed.step("farm registers logger 2 (P-256)", "farm", r2)
        .await?;
    for (id, product, logger, budget, mkt) in [
        (
            LETTUCE,
            (
                "urn:epc:class:lgtin:4012345.012345.L1",
                "Romaine lettuce",
                800,
                "KGM",
            ),
            LOGGER_1,
            60,
            None,
        ),
        (
            VACCINE,
            (
                "urn:epc:class:lgtin:4012345.099999.V7",
                "Influenza vaccine",
                2_000,
                "EA",
            ),
            LOGGER_2,
            15,
            Some(8_000),
        ),
    ] {
        let action = Action::CreateShipment(pb::CreateShipment {
            shipment_id: id.into(),
            products: vec![pb::Product {
                epc: product.0.into(),
                description: product.1.into(),
                quantity: product.2,
                uom: product.3.into(),
            }],
            owner: String::new(),
            policy: Some(policy(budget, mkt)),
            origin_location: "urn:epc:id:sgln:4012345.00001.0".into(),
            device_ids: vec![logger.into()],
        });
        feed.step(
            &format!("farm creates {}", product.1.to_lowercase()),
            "farm",
            action,
        )
        .await?;
        let ship = Action::Ship(pb::ShipShipment {
            shipment_id: id.into(),
            to_custodian: "carrier".into(),
            new_owner: String::new(),
            location: "urn:epc:id:sgln:4012345.00001.0".into(),
        });
        feed.step("farm ships to carrier", "farm", ship).await?;
        let receive = Action::Receive(pb::ReceiveShipment {
            shipment_id: id.into(),
            location: "urn:epc:id:sgln:0614141.00777.0".into(),
            final_delivery: false,
        });
        feed.step("carrier takes custody", "carrier", receive)
            .await?;
    }

    println!("\n— in transit: loggers report every 10 minutes ({hours} h simulated)");
    let steps = i64::from(hours) * 6;
    let t0 = now - steps * 10 * MINUTE;
    for chunk in (0..steps).collect::<Vec<_>>().chunks(6) {
        let mut txs = Vec::new();
        for &i in chunk {
            let minute = i * 10;
            for (shipment, logger) in [(LETTUCE, LOGGER_1), (VACCINE, LOGGER_2)] {
                let observed = t0 + minute * MINUTE;
                let action = Action::SensorReport(pb::SensorReport {
                    shipment_id: shipment.into(),
                    observed_at_ms: observed,
                    temperature_milli_c: temperature(shipment, minute),
                    humidity_permille: Some(900),
                    location: Some(pb::GeoPoint {
                        lat_e7: 520_000_000 + (i as i32) * 20_000,
                        lon_e7: 48_000_000 + (i as i32) * 35_000,
                    }),
                });
                txs.push(feed.sign(logger, observed, action)?);
            }
        }
        let r = feed
            .client
            .submit_txs(pb::SubmitTxsRequest { txs })
            .await
            .map_err(output::status_error)?
            .into_inner();
        if let Some(bad) = r.outcomes.iter().find(|o| !o.accepted) {
            bail!("reading rejected: {} {}", bad.error_code, bad.error);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    println!("\n— customs and delivery");
    for id in [LETTUCE, VACCINE] {
        let clear = Action::Customs(pb::CustomsDecision {
            shipment_id: id.into(),
            outcome: pb::CustomsOutcome::Cleared as i32,
            reason: "documents in order".into(),
            location: "urn:epc:id:sgln:0614141.00999.0".into(),
        });
        feed.step("customs clears", "customs", clear).await?;
        let ship = Action::Ship(pb::ShipShipment {
            shipment_id: id.into(),
            to_custodian: "retailer".into(),
            new_owner: "retailer".into(),
            location: String::new(),
        });
        feed.step(
            "carrier ships to retailer (ownership transfers)",
            "carrier",
            ship,
        )
        .await?;
        let receive = Action::Receive(pb::ReceiveShipment {
            shipment_id: id.into(),
            location: "urn:epc:id:sgln:7654321.00001.0".into(),
            final_delivery: true,
        });
        feed.step("retailer receives: delivered", "retailer", receive)
            .await?;
    }
    Ok(())
}
