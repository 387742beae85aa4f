//! `tracechain fsma export`: the FSMA 204 records of a traceability lot from a node, as
//! the sortable spreadsheet the FDA asks for: CSV, and an .xlsx workbook.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;
use tracechain_proto::v1 as pb;

use super::{NodeAddr, output};

#[derive(Debug, clap::Args)]
pub(super) struct FsmaArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Write the records of a lot (and of the lots transformations link to it).
    Export {
        /// The traceability lot: an LGTIN (urn:epc:class:lgtin:...) or its Digital Link.
        #[arg(long)]
        lot: String,
        /// Events from this time (RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Events before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Transformations to follow each way (default 8, at most 32).
        #[arg(long, default_value_t = 0)]
        depth: u32,
        /// The CSV file.
        #[arg(long, default_value = "fsma204.csv")]
        out: PathBuf,
        /// Also write the records as an .xlsx workbook here.
        #[arg(long)]
        xlsx: Option<PathBuf>,
        #[command(flatten)]
        node: NodeAddr,
    },
}

fn time(flag: &str, t: Option<String>) -> anyhow::Result<Option<i64>> {
    t.map(|t| crate::ledger::epcis::vocab::parse_time(&t))
        .transpose()
        .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

pub(super) async fn fsma(a: FsmaArgs, json: bool) -> anyhow::Result<()> {
    let What::Export {
        lot,
        from,
        to,
        depth,
        out,
        xlsx,
        node,
    } = a.what;
    let mut client = output::connect(&node.node).await?;
    let r = client
        .get_fsma_records(pb::GetFsmaRecordsRequest {
            lot,
            from_ms: time("--from", from)?,
            to_ms: time("--to", to)?,
            max_depth: depth,
        })
        .await
        .map_err(output::status_error)?
        .into_inner();
    let rows: Vec<crate::ledger::fsma::Row> = r
        .rows
        .iter()
        .map(|row| crate::ledger::fsma::Row {
            time_ms: 0,
            cells: row.cells.clone(),
        })
        .collect();
    super::ensure_parent(&out)?;
    std::fs::write(&out, crate::ledger::fsma::to_csv(&rows))
        .with_context(|| format!("writing {}", out.display()))?;
    if let Some(path) = &xlsx {
        super::ensure_parent(path)?;
        workbook(&r.columns, &r.rows, path)?;
    }
    if json {
        output::print_json(&json!({
            "rows": r.rows.len(), "lots": r.lots, "csv": out,
            "xlsx": xlsx,
        }));
    } else {
        println!(
            "{} records of {} lot(s) written to {}{}",
            r.rows.len(),
            r.lots.len(),
            out.display(),
            xlsx.map(|p| format!(" and {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The records as a workbook: one sheet, a bold frozen header row with a filter, so that
/// the FDA's reviewer can sort and filter at once.
fn workbook(columns: &[String], rows: &[pb::FsmaRow], path: &PathBuf) -> anyhow::Result<()> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("FSMA 204")?;
    let bold = Format::new().set_bold();
    for (c, name) in columns.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, name, &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.cells.iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16, cell)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    if !columns.is_empty() {
        sheet.autofilter(0, 0, rows.len() as u32, columns.len() as u16 - 1)?;
    }
    sheet.autofit();
    book.save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
