//! `tracechain audit export` (ask a node for a shipment's audit bundle) and
//! `tracechain audit verify` (check one offline: no node, no database, no network).

use std::path::PathBuf;

use anyhow::{Context, bail};
use prost::Message;
use serde_json::json;
use tracechain_proto::v1 as pb;

use super::{NodeAddr, ensure_parent, output};
use crate::{
    audit::{
        MAX_BUNDLE_BYTES,
        report::Report,
        svg,
        verify::{Expectations, verify_bytes},
    },
    genesis::Genesis,
};

#[derive(Debug, clap::Args)]
pub(super) struct AuditArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Fetch a shipment's audit bundle from a node and write it to a file.
    Export {
        #[command(flatten)]
        node: NodeAddr,
        /// The shipment.
        #[arg(long)]
        shipment: String,
        /// Where to write the bundle.
        #[arg(long, default_value = "audit-bundle.pb")]
        out: PathBuf,
    },
    /// Verify a bundle offline and report what it proves.
    Verify {
        /// The bundle file.
        file: PathBuf,
        /// The consortium's genesis file: the bundle must be of this consortium.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// The expected genesis hash (hex), as an alternative to --genesis.
        #[arg(long, conflicts_with = "genesis")]
        genesis_hash: Option<String>,
        /// Write readings and excursions as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write a temperature chart (SVG) here.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

pub(super) async fn audit(a: AuditArgs, json: bool) -> anyhow::Result<()> {
    match a.what {
        What::Export {
            node,
            shipment,
            out,
        } => export(&node.node, &shipment, &out, json).await,
        What::Verify {
            file,
            genesis,
            genesis_hash,
            csv,
            svg,
        } => verify(&file, genesis, genesis_hash, csv, svg, json),
    }
}

async fn export(url: &str, shipment: &str, out: &PathBuf, json: bool) -> anyhow::Result<()> {
    let mut client = output::connect(url).await?;
    let bundle = client
        .export_audit_bundle(pb::ExportAuditBundleRequest {
            shipment_id: shipment.to_string(),
        })
        .await
        .map_err(output::status_error)?
        .into_inner();
    let bytes = bundle.encode_to_vec();
    ensure_parent(out)?;
    std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    if json {
        output::print_json(&json!({
            "file": out.display().to_string(),
            "bytes": bytes.len(),
            "shipment_id": shipment,
            "blocks": bundle.blocks.len(),
            "txs": bundle.txs.len(),
            "exported_at_height": bundle.exported_at_height,
        }));
    } else {
        println!(
            "wrote {} ({} bytes): shipment {shipment}, {} transactions, {} block headers, head {}",
            out.display(),
            bytes.len(),
            bundle.txs.len(),
            bundle.blocks.len(),
            bundle.exported_at_height
        );
    }
    Ok(())
}

fn expected_hash(
    genesis: Option<PathBuf>,
    genesis_hash: Option<String>,
) -> anyhow::Result<Option<[u8; 32]>> {
    if let Some(path) = genesis {
        return Ok(Some(Genesis::load(&path)?.hash()));
    }
    genesis_hash
        .map(|h| {
            hex::decode(&h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .with_context(|| format!("--genesis-hash {h:?} is not 32 bytes of hex"))
        })
        .transpose()
}

fn verify(
    file: &PathBuf,
    genesis: Option<PathBuf>,
    genesis_hash: Option<String>,
    csv: Option<PathBuf>,
    svg_out: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let expect = Expectations {
        genesis_hash: expected_hash(genesis, genesis_hash)?,
    };
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_BUNDLE_BYTES as u64 {
        bail!(
            "{} is {size} bytes, more than a bundle may be",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let verified = match verify_bytes(&bytes, &expect) {
        Ok(v) => v,
        Err(e) => {
            if json {
                output::print_json(&json!({ "verified": false, "error": e.to_string() }));
            }
            bail!("NOT VERIFIED: {e}");
        }
    };
    let report = Report::new(&verified);
    if let Some(path) = &csv {
        ensure_parent(path)?;
        std::fs::write(path, report.to_csv())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &svg_out {
        ensure_parent(path)?;
        std::fs::write(path, svg::chart(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if json {
        output::print_json(&serde_json::to_value(&report)?);
    } else {
        print!("{}", report.to_text());
        if let Some(path) = &csv {
            println!("csv: {}", path.display());
        }
        if let Some(path) = &svg_out {
            println!("chart: {}", path.display());
        }
    }
    if !verified.anchored {
        return Err(NotAnchored {
            genesis_hash: report.genesis_hash,
        }
        .into());
    }
    Ok(())
}

/// A bundle whose checks all pass against the genesis it carries, verified against no
/// genesis the auditor trusts: not VERIFIED. `tracechain` exits with
/// [`NotAnchored::EXIT_CODE`] for it (docs/AUDIT.md).
#[derive(Debug, thiserror::Error)]
#[error(
    "not anchored: the bundle is internally consistent, but nothing ties its genesis {genesis_hash} \
     to your consortium; check that hash with the members and pass --genesis-hash or --genesis"
)]
pub struct NotAnchored {
    /// The genesis hash the bundle carries (hex).
    pub genesis_hash: String,
}

impl NotAnchored {
    /// The process exit code of `audit verify` for such a bundle (1 is NOT VERIFIED or any
    /// other failure, 2 a usage error).
    pub const EXIT_CODE: u8 = 3;
}
