//! What a verified bundle says, for people: a text report, a JSON-able summary, and a
//! CSV of readings and excursions (the sortable spreadsheet FSMA 204 asks for).
//!
//! Everything here is derived from [`Verified`]: proven transactions and the twin the
//! verifier recomputed. Nothing comes from the exporting node's word.

use std::fmt::Write as _;

use serde::Serialize;
use tracechain_proto::v1::{self as pb, tx_body::Action};

use super::verify::Verified;
use crate::units::{fmt_milli_c, fmt_time_ms};

/// One proven temperature reading.
#[derive(Debug, Clone, Serialize)]
pub struct ReadingRow {
    /// Observation time, unix ms.
    pub observed_at_ms: i64,
    /// Reporting device.
    pub device_id: String,
    /// Temperature, m°C.
    pub milli_c: i32,
    /// Within the policy's band.
    pub in_range: bool,
    /// Block height.
    pub height: u64,
    /// Transaction id (hex).
    pub tx_id: String,
}

/// One line of the event timeline.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Position in the shipment's history (None for a device lifecycle transaction).
    pub seq: Option<u64>,
    /// Block height.
    pub height: u64,
    /// Block time, unix ms.
    pub block_time_ms: i64,
    /// Signer ("member farm", "device logger-1").
    pub signer: String,
    /// What happened.
    pub what: String,
    /// Transaction id (hex).
    pub tx_id: String,
}

/// The report of a verified bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the bundle is verified: every check passed *and* its genesis is the one the
    /// auditor expected. A report exists only for a bundle whose checks all passed; without
    /// an expected genesis it is `false` (see [`Report::anchored`]).
    pub verified: bool,
    /// Whether the genesis was checked against one the auditor trusts. Without that the
    /// bundle is only internally consistent, whoever made it.
    pub anchored: bool,
    /// Genesis hash (hex): the consortium the proofs are relative to.
    pub genesis_hash: String,
    /// Chain id.
    pub chain_id: String,
    /// Shipment.
    pub shipment_id: String,
    /// Newest certified height in the bundle.
    pub proven_height: u64,
    /// Certified headers checked.
    pub blocks_checked: usize,
    /// Transactions proven.
    pub txs_proven: usize,
    /// Successive custodians.
    pub custody_chain: Vec<String>,
    /// Status, owner, custodian, verdict and reasons as recomputed.
    pub status: String,
    /// Owner.
    pub owner: String,
    /// Custodian.
    pub custodian: String,
    /// Policy band, m°C.
    pub policy_min_milli_c: i32,
    /// Policy band, m°C.
    pub policy_max_milli_c: i32,
    /// Events and lifecycle transactions in chain order.
    pub events: Vec<EventRow>,
    /// Readings in chain order.
    pub readings: Vec<ReadingRow>,
    /// Excursions as recomputed.
    pub excursions: Vec<ExcursionRow>,
    /// MKT, m°C.
    pub mkt_milli_c: Option<i32>,
    /// CONFORMANT / NON_CONFORMANT.
    pub verdict: String,
    /// Why not conformant.
    pub reasons: Vec<String>,
    /// Devices the verdict rests on that were proven to be cloned.
    pub device_flags: Vec<String>,
    /// Whether the history is closed (delivered): then no later event can exist.
    pub history_closed: bool,
}

/// One excursion.
#[derive(Debug, Clone, Serialize)]
pub struct ExcursionRow {
    /// Device.
    pub device_id: String,
    /// Start, unix ms.
    pub start_ms: i64,
    /// End, unix ms (last reading so far if still open).
    pub end_ms: i64,
    /// Duration, ms.
    pub duration_ms: u64,
    /// Peak, m°C.
    pub peak_milli_c: i32,
    /// Still open.
    pub open: bool,
}

/// " at <location>", or nothing when no location was given.
fn at(location: &str) -> String {
    if location.is_empty() {
        String::new()
    } else {
        format!(" at {location:?}")
    }
}

fn describe(action: &Action) -> String {
    match action {
        Action::RegisterDevice(a) => format!("register device {}", a.device_id),
        Action::RotateDeviceKey(a) => format!("rotate the key of device {}", a.device_id),
        Action::RevokeDevice(a) => format!("revoke device {} ({})", a.device_id, a.reason),
        Action::ReportDeviceConflict(_) => "report a device's conflicting readings".to_string(),
        Action::CreateShipment(a) => format!(
            "create shipment {}{} with devices [{}]",
            a.shipment_id,
            at(&a.origin_location),
            a.device_ids.join(", ")
        ),
        Action::AttachDevice(a) => format!("attach device {}", a.device_id),
        Action::Ship(a) => format!("ship to {}{}", a.to_custodian, at(&a.location)),
        Action::Receive(a) => format!(
            "receive{}{}",
            at(&a.location),
            if a.final_delivery {
                " (final delivery)"
            } else {
                ""
            }
        ),
        Action::Customs(a) => format!(
            "customs {} ({})",
            match pb::CustomsOutcome::try_from(a.outcome) {
                Ok(pb::CustomsOutcome::Cleared) => "cleared",
                Ok(pb::CustomsOutcome::Held) => "held",
                _ => "unspecified",
            },
            a.reason
        ),
        Action::RecordEpcisEvent(e) => format!(
            "EPCIS {}{}{}{}",
            pb::EpcisEventType::try_from(e.event_type)
                .map(|t| t
                    .as_str_name()
                    .trim_start_matches("EPCIS_EVENT_TYPE_")
                    .to_lowercase())
                .unwrap_or_default(),
            if e.biz_step.is_empty() {
                String::new()
            } else {
                format!(" {}", e.biz_step)
            },
            if e.disposition.is_empty() {
                String::new()
            } else {
                format!(" / {}", e.disposition)
            },
            at(&e.read_point)
        ),
        Action::SensorReport(r) => format!(
            "reading {} at {}",
            fmt_milli_c(r.temperature_milli_c),
            fmt_time_ms(r.observed_at_ms)
        ),
    }
}

fn status_name(s: i32) -> String {
    pb::ShipmentStatus::try_from(s)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("SHIPMENT_STATUS_")
                .to_string()
        })
        .unwrap_or_else(|_| s.to_string())
}

impl Report {
    /// The report of a verified bundle.
    pub fn new(v: &Verified) -> Self {
        let policy = v.twin.policy.unwrap_or_default();
        let mut custody_chain = Vec::new();
        let mut events = Vec::new();
        let mut readings = Vec::new();
        for e in &v.events {
            let tx = &e.tx;
            if e.shipment_seq.is_some() {
                match &tx.action {
                    Action::CreateShipment(_) | Action::Receive(_) => {
                        custody_chain.push(tx.signer.id.clone())
                    }
                    Action::SensorReport(r) => readings.push(ReadingRow {
                        observed_at_ms: r.observed_at_ms,
                        device_id: tx.signer.id.clone(),
                        milli_c: r.temperature_milli_c,
                        in_range: (policy.min_milli_c..=policy.max_milli_c)
                            .contains(&r.temperature_milli_c),
                        height: e.height,
                        tx_id: tx.id.to_string(),
                    }),
                    _ => {}
                }
            }
            events.push(EventRow {
                seq: e.shipment_seq,
                height: e.height,
                block_time_ms: e.block_time_ms,
                signer: format!("{} {}", tx.signer.kind, tx.signer.id),
                what: describe(&tx.action),
                tx_id: tx.id.to_string(),
            });
        }
        let t = &v.twin;
        Self {
            verified: v.anchored,
            anchored: v.anchored,
            genesis_hash: hex::encode(v.genesis_hash),
            chain_id: v.genesis.chain_id().to_string(),
            shipment_id: v.shipment_id.clone(),
            proven_height: v.proven_height,
            blocks_checked: v.blocks_checked,
            txs_proven: v.events.len(),
            custody_chain,
            status: status_name(t.status),
            owner: t.owner.clone(),
            custodian: t.custodian.clone(),
            policy_min_milli_c: policy.min_milli_c,
            policy_max_milli_c: policy.max_milli_c,
            events,
            readings,
            excursions: t
                .excursions
                .iter()
                .map(|x| ExcursionRow {
                    device_id: x.device_id.clone(),
                    start_ms: x.start_ms,
                    end_ms: x.end_ms,
                    duration_ms: x.duration_ms,
                    peak_milli_c: x.peak_milli_c,
                    open: x.open,
                })
                .collect(),
            mkt_milli_c: t.mkt_milli_c,
            verdict: pb::Verdict::try_from(t.verdict)
                .map(|s| s.as_str_name().trim_start_matches("VERDICT_").to_string())
                .unwrap_or_default(),
            reasons: t.reasons.clone(),
            device_flags: v.device_flags.clone(),
            history_closed: t.status == pb::ShipmentStatus::Delivered as i32,
        }
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if self.anchored {
            let _ = writeln!(s, "VERIFIED  shipment {}", self.shipment_id);
        } else {
            let _ = writeln!(
                s,
                "NOT ANCHORED  shipment {}: internally consistent, but its genesis was not checked",
                self.shipment_id
            );
            let _ = writeln!(
                s,
                "  anyone can sign a consistent bundle with a consortium of their own; compare \
                 genesis {} with the hash the consortium's members publish, then run again with \
                 --genesis-hash {} (or --genesis FILE)",
                self.genesis_hash, self.genesis_hash
            );
        }
        let _ = writeln!(
            s,
            "  chain {}, genesis {}",
            self.chain_id, self.genesis_hash
        );
        let _ = writeln!(
            s,
            "  {} transactions proven under {} certified block headers (newest: height {})",
            self.txs_proven, self.blocks_checked, self.proven_height
        );
        let _ = writeln!(
            s,
            "  history: {}",
            if self.history_closed {
                "complete (the shipment is delivered and closed; no later event can exist)"
            } else {
                "events 1..n proven without gaps; events after the newest one cannot be ruled out \
                 (the shipment is still open)"
            }
        );
        let _ = writeln!(
            s,
            "  status {}, owner {}, custodian {}",
            self.status, self.owner, self.custodian
        );
        let _ = writeln!(s, "  custody chain: {}", self.custody_chain.join(" -> "));
        let _ = writeln!(
            s,
            "  policy band {} .. {}",
            fmt_milli_c(self.policy_min_milli_c),
            fmt_milli_c(self.policy_max_milli_c)
        );
        let _ = writeln!(s, "events:");
        for e in &self.events {
            let seq = e.seq.map_or("  -".to_string(), |n| format!("{n:>3}"));
            let _ = writeln!(
                s,
                "  {seq}  h{:<5} {}  {:<20} {}",
                e.height,
                fmt_time_ms(e.block_time_ms),
                e.signer,
                e.what
            );
        }
        let out = self.readings.iter().filter(|r| !r.in_range).count();
        let _ = writeln!(
            s,
            "readings: {} ({} out of range)",
            self.readings.len(),
            out
        );
        let _ = writeln!(s, "excursions: {}", self.excursions.len());
        for x in &self.excursions {
            let _ = writeln!(
                s,
                "  {} {} .. {} ({} min{}) peak {}",
                x.device_id,
                fmt_time_ms(x.start_ms),
                fmt_time_ms(x.end_ms),
                x.duration_ms.div_ceil(60_000),
                if x.open { ", open" } else { "" },
                fmt_milli_c(x.peak_milli_c)
            );
        }
        let _ = writeln!(
            s,
            "MKT: {}",
            self.mkt_milli_c.map_or("n/a".to_string(), fmt_milli_c)
        );
        let _ = writeln!(s, "verdict: {}", self.verdict);
        for r in &self.reasons {
            let _ = writeln!(s, "  - {r}");
        }
        if !self.device_flags.is_empty() {
            let _ = writeln!(
                s,
                "warning: the verdict rests on a device flagged as cloned:"
            );
            for f in &self.device_flags {
                let _ = writeln!(s, "  ! {f}");
            }
        }
        s
    }

    /// Readings, then excursions, as CSV (RFC 4180; times in UTC, temperatures in °C).
    pub fn to_csv(&self) -> String {
        let mut s = String::new();
        s.push_str("record,time_utc,device_id,temperature_c,in_range,height,tx_id\r\n");
        for r in &self.readings {
            let _ = write!(
                s,
                "reading,{},{},{},{},{},{}\r\n",
                iso(r.observed_at_ms),
                csv_field(&r.device_id),
                celsius(r.milli_c),
                if r.in_range { "in" } else { "out" },
                r.height,
                r.tx_id
            );
        }
        s.push_str("\r\nrecord,start_utc,end_utc,device_id,duration_min,peak_c,open\r\n");
        for x in &self.excursions {
            let _ = write!(
                s,
                "excursion,{},{},{},{},{},{}\r\n",
                iso(x.start_ms),
                iso(x.end_ms),
                csv_field(&x.device_id),
                x.duration_ms.div_ceil(60_000),
                celsius(x.peak_milli_c),
                x.open
            );
        }
        s
    }
}

/// "2024-03-02T09:00:00Z": sortable as text.
fn iso(ms: i64) -> String {
    fmt_time_ms(ms).replacen(' ', "T", 1)
}

/// m°C as a plain decimal, for spreadsheets.
fn celsius(milli_c: i32) -> String {
    let sign = if milli_c < 0 { "-" } else { "" };
    let a = milli_c.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// A field quoted if it needs to be (ids are printable, but a comma must not split it).
/// A leading `=`, `+`, `-` or `@` is prefixed with `'` so that a spreadsheet never runs
/// a device id as a formula (CSV injection).
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
