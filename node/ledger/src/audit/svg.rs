//! A chart of temperature over time, hand-written SVG: one line per device, the policy
//! band shaded, excursions marked in red. For people who would rather look than read.

use std::{collections::BTreeMap, fmt::Write as _};

use super::report::Report;
use crate::units::fmt_time_ms;

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f",
];

/// Text escaped for XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart of `report` as an SVG document.
pub fn chart(report: &Report) -> String {
    let (band_lo, band_hi) = (report.policy_min_milli_c, report.policy_max_milli_c);
    let temps = report.readings.iter().map(|r| r.milli_c);
    let lo = temps.clone().chain([band_lo]).min().unwrap_or(0) as f64 - 1000.0;
    let hi = temps.chain([band_hi]).max().unwrap_or(0) as f64 + 1000.0;
    let times = report.readings.iter().map(|r| r.observed_at_ms).chain(
        report
            .excursions
            .iter()
            .flat_map(|x| [x.start_ms, x.end_ms]),
    );
    let t0 = times.clone().min().unwrap_or(0) as f64;
    let t1 = (times.max().unwrap_or(0) as f64).max(t0 + 60_000.0);
    let x = |t: i64| LEFT + (t as f64 - t0) / (t1 - t0) * (W - LEFT - RIGHT);
    let y = |mc: f64| TOP + (hi - mc) / (hi - lo) * (H - TOP - BOTTOM);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15">Shipment {} — temperature (°C), verdict {}</text>"#,
        esc(&report.shipment_id),
        esc(&report.verdict)
    );
    // The policy band.
    let (yb_hi, yb_lo) = (y(band_hi as f64), y(band_lo as f64));
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{yb_hi:.1}" width="{:.1}" height="{:.1}" fill="#d8f0d8"><title>policy band</title></rect>"##,
        W - LEFT - RIGHT,
        (yb_lo - yb_hi).max(0.0)
    );
    // Axes and grid.
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/><line x1="{LEFT}" y1="{0}" x2="{1}" y2="{0}" stroke="black"/>"#,
        H - BOTTOM,
        W - RIGHT
    );
    let step = (((hi - lo) / 8000.0).ceil().max(1.0)) * 1000.0;
    let mut g = (lo / step).ceil() * step;
    while g <= hi {
        let yy = y(g);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{:.0}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            g / 1000.0
        );
        g += step;
    }
    for (t, anchor) in [(t0, "start"), (t1, "end")] {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            x(t as i64),
            H - BOTTOM + 18.0,
            fmt_time_ms(t as i64)
        );
    }
    // Excursions: a red span along the time axis and over the band.
    for e in &report.excursions {
        let (xa, xb) = (x(e.start_ms), x(e.end_ms));
        let _ = writeln!(
            s,
            r##"<rect x="{xa:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#ff0000" fill-opacity="0.12" stroke="#d62728"><title>excursion {} peak {:.3} °C</title></rect>"##,
            (xb - xa).max(2.0),
            H - TOP - BOTTOM,
            esc(&e.device_id),
            e.peak_milli_c as f64 / 1000.0
        );
    }
    // One line per device, out-of-range points in red.
    let mut by_device: BTreeMap<&str, Vec<&super::report::ReadingRow>> = BTreeMap::new();
    for r in &report.readings {
        by_device.entry(&r.device_id).or_default().push(r);
    }
    for (i, (device, rows)) in by_device.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = rows
            .iter()
            .map(|r| format!("{:.1},{:.1}", x(r.observed_at_ms), y(r.milli_c as f64)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        for r in rows {
            let fill = if r.in_range { colour } else { "#d62728" };
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{fill}"><title>{} {} {:.3} °C</title></circle>"#,
                x(r.observed_at_ms),
                y(r.milli_c as f64),
                esc(device),
                fmt_time_ms(r.observed_at_ms),
                r.milli_c as f64 / 1000.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            LEFT + 10.0 + 150.0 * i as f64,
            H - 15.0,
            esc(device)
        );
    }
    s.push_str("</svg>\n");
    s
}
