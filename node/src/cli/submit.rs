//! `tracechain submit`: builds a transaction body, signs it with a key file, and submits
//! it over gRPC. The key file's sequence counter is advanced and saved before sending,
//! so a crash can never hand out one sequence twice.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::json;
use tracechain_proto::v1::{self as pb, tx_body::Action};

use super::{NodeAddr, output, units::milli_c};
use crate::{
    crypto::{KeyFile, KeyKind},
    tx,
};

#[derive(Debug, clap::Args)]
pub(super) struct SubmitArgs {
    #[command(flatten)]
    node: NodeAddr,
    /// Key file that signs: a member admin key, or a device key for `reading`.
    #[arg(long)]
    key: PathBuf,
    /// Return as soon as the node accepts, without waiting for the commit.
    #[arg(long)]
    no_wait: bool,
    #[command(subcommand)]
    action: ActionArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ActionArgs {
    /// Register a device from its key file (public part only is used).
    RegisterDevice {
        /// The device's key file.
        #[arg(long)]
        device_key: PathBuf,
        /// Device type, e.g. temperature_logger.
        #[arg(long, default_value = "temperature_logger")]
        device_type: String,
    },
    /// Replace a device's key with the one in a new key file.
    RotateKey {
        /// The device's new key file (its id names the device).
        #[arg(long)]
        device_key: PathBuf,
    },
    /// Revoke a device: its readings are rejected from now on.
    RevokeDevice {
        #[arg(long)]
        device_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Create a shipment with a cold-chain policy.
    CreateShipment {
        /// Shipment id, e.g. urn:epc:id:sscc:4012345.0000000001
        #[arg(long)]
        id: String,
        /// Product as EPC,DESCRIPTION,QUANTITY,UOM. Repeat.
        #[arg(long = "product")]
        products: Vec<String>,
        /// Lowest allowed temperature, °C.
        #[arg(long, allow_hyphen_values = true)]
        min: String,
        /// Highest allowed temperature, °C.
        #[arg(long, allow_hyphen_values = true)]
        max: String,
        /// Cumulative minutes outside the range the product tolerates.
        #[arg(long, default_value_t = 0)]
        budget_min: u32,
        /// Longest silence between readings, minutes (0 = none).
        #[arg(long, default_value_t = 0)]
        max_gap_min: u32,
        /// Mean kinetic temperature limit, °C.
        #[arg(long, allow_hyphen_values = true)]
        mkt_limit: Option<String>,
        /// Hard lower limit, °C.
        #[arg(long, allow_hyphen_values = true)]
        hard_min: Option<String>,
        /// Hard upper limit, °C.
        #[arg(long, allow_hyphen_values = true)]
        hard_max: Option<String>,
        /// Owner member id (default: the signer).
        #[arg(long, default_value = "")]
        owner: String,
        /// Origin location (SGLN).
        #[arg(long, default_value = "")]
        origin: String,
        /// Monitoring device ids. Repeat.
        #[arg(long = "device")]
        devices: Vec<String>,
    },
    /// Attach one of the signer's devices to a shipment.
    AttachDevice {
        #[arg(long)]
        shipment: String,
        #[arg(long)]
        device_id: String,
    },
    /// Hand a shipment over to the next custodian (EPCIS shipping).
    Ship {
        #[arg(long)]
        shipment: String,
        /// Next custodian's member id.
        #[arg(long)]
        to: String,
        /// Transfer ownership to this member on receipt.
        #[arg(long, default_value = "")]
        new_owner: String,
        #[arg(long, default_value = "")]
        location: String,
    },
    /// Take custody of a shipment (EPCIS receiving).
    Receive {
        #[arg(long)]
        shipment: String,
        #[arg(long, default_value = "")]
        location: String,
        /// Final delivery: the shipment is closed.
        #[arg(long)]
        r#final: bool,
    },
    /// Customs: clear or hold a shipment.
    Customs {
        #[arg(long)]
        shipment: String,
        /// Clear the shipment.
        #[arg(long, conflicts_with = "hold")]
        clear: bool,
        /// Hold the shipment.
        #[arg(long)]
        hold: bool,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long, default_value = "")]
        location: String,
    },
    /// Prove to the ledger that a device's key signed conflicting readings (a clone),
    /// with a pair the node saw (`tracechain query conflicts`): the device is flagged
    /// and its key refused until its owner rotates it. Any member may report it.
    ReportConflict {
        /// The device whose conflicting pair the node saw.
        #[arg(long)]
        device: String,
    },
    /// A sensor reading, signed with the device's key.
    Reading {
        #[arg(long)]
        shipment: String,
        /// Temperature, °C (e.g. 4.25).
        #[arg(long, allow_hyphen_values = true)]
        temp: String,
        /// Relative humidity, % (e.g. 55.5).
        #[arg(long)]
        humidity: Option<String>,
        /// Latitude, degrees.
        #[arg(long, allow_hyphen_values = true)]
        lat: Option<String>,
        /// Longitude, degrees.
        #[arg(long, allow_hyphen_values = true)]
        lon: Option<String>,
        /// Time of the reading, unix ms (default: now).
        #[arg(long)]
        time_ms: Option<i64>,
    },
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn parse_product(s: &str) -> anyhow::Result<pb::Product> {
    let parts: Vec<&str> = s.splitn(4, ',').collect();
    let [epc, description, quantity, uom] = parts.as_slice() else {
        bail!("product {s:?} is not EPC,DESCRIPTION,QUANTITY,UOM");
    };
    Ok(pb::Product {
        epc: epc.to_string(),
        description: description.to_string(),
        quantity: quantity
            .parse()
            .with_context(|| format!("quantity {quantity:?}"))?,
        uom: uom.to_string(),
    })
}

fn opt_milli(v: &Option<String>) -> anyhow::Result<Option<i32>> {
    v.as_deref()
        .map(milli_c)
        .transpose()
        .map_err(anyhow::Error::msg)
}

fn degrees_e7(s: &str) -> anyhow::Result<i32> {
    Ok(super::units::parse_fixed_as(s, 7)?)
}

fn device_key_action(
    path: &std::path::Path,
    rotate: bool,
    device_type: String,
) -> anyhow::Result<Action> {
    let device = KeyFile::load(path).with_context(|| format!("reading {}", path.display()))?;
    if device.kind != KeyKind::Device {
        bail!("{} is not a device key file", path.display());
    }
    let scheme = pb::SignatureScheme::from(device.scheme) as i32;
    let public_key = device.public_key_bytes()?;
    Ok(if rotate {
        Action::RotateDeviceKey(pb::RotateDeviceKey {
            device_id: device.id,
            scheme,
            public_key,
        })
    } else {
        Action::RegisterDevice(pb::RegisterDevice {
            device_id: device.id,
            scheme,
            public_key,
            device_type,
        })
    })
}

/// The proof of `device`'s conflict the node kept, as an action to sign.
async fn seen_conflict(client: &mut output::Client, device: String) -> anyhow::Result<Action> {
    let seen = client
        .get_device_conflicts(pb::GetDeviceConflictsRequest {
            device_id: device.clone(),
        })
        .await
        .map_err(output::status_error)?
        .into_inner()
        .conflicts;
    // The newest: an older one may be about a key rotated since.
    let Some(report) = seen.into_iter().rev().find_map(|c| c.report) else {
        bail!("the node has seen no conflicting readings of device {device}");
    };
    Ok(Action::ReportDeviceConflict(report))
}

fn build_action(a: ActionArgs) -> anyhow::Result<Action> {
    Ok(match a {
        ActionArgs::ReportConflict { .. } => bail!("a conflict report is built from the node's"),
        ActionArgs::RegisterDevice {
            device_key,
            device_type,
        } => device_key_action(&device_key, false, device_type)?,
        ActionArgs::RotateKey { device_key } => {
            device_key_action(&device_key, true, String::new())?
        }
        ActionArgs::RevokeDevice { device_id, reason } => {
            Action::RevokeDevice(pb::RevokeDevice { device_id, reason })
        }
        ActionArgs::CreateShipment {
            id,
            products,
            min,
            max,
            budget_min,
            max_gap_min,
            mkt_limit,
            hard_min,
            hard_max,
            owner,
            origin,
            devices,
        } => Action::CreateShipment(pb::CreateShipment {
            shipment_id: id,
            products: products
                .iter()
                .map(|p| parse_product(p))
                .collect::<anyhow::Result<_>>()?,
            owner,
            policy: Some(pb::ColdChainPolicy {
                min_milli_c: milli_c(&min)?,
                max_milli_c: milli_c(&max)?,
                excursion_budget_minutes: budget_min,
                max_reading_gap_minutes: max_gap_min,
                mkt_limit_milli_c: opt_milli(&mkt_limit)?,
                hard_min_milli_c: opt_milli(&hard_min)?,
                hard_max_milli_c: opt_milli(&hard_max)?,
            }),
            origin_location: origin,
            device_ids: devices,
        }),
        ActionArgs::AttachDevice {
            shipment,
            device_id,
        } => Action::AttachDevice(pb::AttachDevice {
            shipment_id: shipment,
            device_id,
        }),
        ActionArgs::Ship {
            shipment,
            to,
            new_owner,
            location,
        } => Action::Ship(pb::ShipShipment {
            shipment_id: shipment,
            to_custodian: to,
            new_owner,
            location,
        }),
        ActionArgs::Receive {
            shipment,
            location,
            r#final,
        } => Action::Receive(pb::ReceiveShipment {
            shipment_id: shipment,
            location,
            final_delivery: r#final,
        }),
        ActionArgs::Customs {
            shipment,
            clear,
            hold,
            reason,
            location,
        } => {
            let outcome = match (clear, hold) {
                (true, false) => pb::CustomsOutcome::Cleared,
                (false, true) => pb::CustomsOutcome::Held,
                _ => bail!("give --clear or --hold"),
            };
            Action::Customs(pb::CustomsDecision {
                shipment_id: shipment,
                outcome: outcome as i32,
                reason,
                location,
            })
        }
        ActionArgs::Reading {
            shipment,
            temp,
            humidity,
            lat,
            lon,
            time_ms,
        } => Action::SensorReport(pb::SensorReport {
            shipment_id: shipment,
            observed_at_ms: time_ms.unwrap_or_else(now_ms),
            temperature_milli_c: milli_c(&temp)?,
            humidity_permille: humidity
                .as_deref()
                .map(|h| super::units::parse_fixed_as::<u32>(h, 1))
                .transpose()?,
            location: match (lat, lon) {
                (Some(lat), Some(lon)) => Some(pb::GeoPoint {
                    lat_e7: degrees_e7(&lat)?,
                    lon_e7: degrees_e7(&lon)?,
                }),
                (None, None) => None,
                _ => bail!("give both --lat and --lon"),
            },
        }),
    })
}

/// Signs `action` with the key file at `path` (advancing and saving its sequence).
pub(crate) fn sign_with_file(
    path: &std::path::Path,
    chain_id: &str,
    action: Action,
) -> anyhow::Result<pb::SignedTx> {
    let mut file = KeyFile::load(path).with_context(|| format!("reading {}", path.display()))?;
    let kind = match file.kind {
        KeyKind::Member => pb::SignerKind::Member,
        KeyKind::Device => pb::SignerKind::Device,
        KeyKind::Node => bail!(
            "{} is a node key; sign with a member or device key",
            path.display()
        ),
    };
    let key = file.secret_key()?;
    let sequence = file.take_sequence();
    file.save(path)?;
    let body = pb::TxBody {
        chain_id: chain_id.to_string(),
        signer: Some(pb::Signer {
            kind: kind as i32,
            id: file.id.clone(),
            scheme: pb::SignatureScheme::from(file.scheme) as i32,
            public_key: key.public_key(),
        }),
        sequence,
        time_ms: now_ms(),
        action: Some(action),
    };
    Ok(tx::sign_body(&body, &key))
}

pub(super) async fn submit(a: SubmitArgs, json: bool) -> anyhow::Result<()> {
    let mut client = output::connect(&a.node.node).await?;
    let action = match a.action {
        ActionArgs::ReportConflict { device } => seen_conflict(&mut client, device).await?,
        other => build_action(other)?,
    };
    let status = client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await?
        .into_inner();
    let signed = sign_with_file(&a.key, &status.chain_id, action)?;
    let response = client
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(signed),
            wait_for_commit: !a.no_wait,
        })
        .await
        .map_err(output::status_error)?
        .into_inner();
    let result = response.result.clone().unwrap_or_default();
    let code = pb::ResultCode::try_from(result.code).unwrap_or_default();
    if json {
        println!(
            "{}",
            json!({
                "tx_id": hex::encode(&response.tx_id),
                "status": output::tx_status(response.status),
                "height": response.height,
                "index": response.index,
                "result": output::result_name(result.code),
                "message": result.message,
            })
        );
    } else {
        println!("tx {}", hex::encode(&response.tx_id));
        println!("status {}", output::tx_status(response.status));
        if response.status == pb::TxStatus::Committed as i32 {
            println!("block {} index {}", response.height, response.index);
            println!("result {}", output::result_name(result.code));
            if !result.message.is_empty() {
                println!("reason {}", result.message);
            }
        }
    }
    if response.status == pb::TxStatus::Committed as i32 && code != pb::ResultCode::Ok {
        bail!(
            "the transaction was committed but rejected: {}",
            result.message
        );
    }
    Ok(())
}
