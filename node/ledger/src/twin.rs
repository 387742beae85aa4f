//! The shipment twin's cold-chain summary: readings, excursions, MKT and the verdict.
//!
//! Rules (a reading is "in range" when `min ≤ T ≤ max` of the shipment's policy):
//! - An out-of-range reading opens an excursion for its device, or extends the open
//!   one (end, duration, peak). The next in-range reading of that device closes it at
//!   that reading's time: the product is assumed out of range until seen back in range.
//! - Each reading after a device's first covers the interval since that device's
//!   previous reading; that interval is its MKT weight (USP <1079.2>, uneven sampling).
//!   A device's first reading covers the interval to its next one, so evenly spaced
//!   readings weigh equally (what a logger's own report computes): it is weighed when
//!   that next reading arrives. Chains whose genesis keeps the earlier rule
//!   ([`MktRule::FirstReadingUnweighted`]) give it no weight.
//! - A silence longer than the policy's maximum gap between two readings of one device
//!   is a finding.
//! - Verdict: non-conformant when cumulative excursion time exceeds the budget, any
//!   reading is beyond the hard limits, a gap finding exists, or MKT exceeds its limit.
//!
//! Readings of one device are applied in sequence order and their times never go
//! backwards (checked by the caller), so all arithmetic here is on ordered times.

use tracechain_proto::v1 as pb;

use crate::genesis::MktRule;
use crate::mkt::MktAccumulator;

/// At most this many excursions are stored per shipment; beyond it the shipment is
/// non-conformant anyway and the rest are only counted.
pub const MAX_STORED_EXCURSIONS: usize = 1024;

/// A checked reading to apply.
pub struct Reading<'a> {
    /// The reporting device.
    pub device_id: &'a str,
    /// Device time of the reading, unix ms.
    pub observed_at_ms: i64,
    /// Temperature, m°C.
    pub milli_c: i32,
    /// Location, if the device reported one.
    pub location: Option<pb::GeoPoint>,
}

fn distance_outside(policy: &pb::ColdChainPolicy, t: i32) -> i64 {
    if t < policy.min_milli_c {
        i64::from(policy.min_milli_c) - i64::from(t)
    } else if t > policy.max_milli_c {
        i64::from(t) - i64::from(policy.max_milli_c)
    } else {
        0
    }
}

fn span_ms(from: i64, to: i64) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}

/// Applies one reading to the twin under the chain's MKT rule and recomputes the verdict.
pub fn apply_reading(twin: &mut pb::ShipmentTwin, r: &Reading<'_>, rule: MktRule) {
    let policy = twin.policy.unwrap_or_default();
    let t = r.milli_c;

    twin.reading_count += 1;
    twin.min_milli_c = Some(twin.min_milli_c.map_or(t, |m| m.min(t)));
    twin.max_milli_c = Some(twin.max_milli_c.map_or(t, |m| m.max(t)));
    if twin.reading_count == 1 || r.observed_at_ms < twin.first_reading_ms {
        twin.first_reading_ms = r.observed_at_ms;
    }
    twin.last_reading_ms = twin.last_reading_ms.max(r.observed_at_ms);
    if let Some(geo) = r.location {
        twin.last_geo = Some(geo);
    }

    let track_index = match twin.tracks.iter().position(|k| k.device_id == r.device_id) {
        Some(i) => i,
        None => {
            twin.tracks.push(pb::DeviceTrack {
                device_id: r.device_id.to_string(),
                ..Default::default()
            });
            twin.tracks.len() - 1
        }
    };
    let (previous, second) = {
        let track = &twin.tracks[track_index];
        let previous = (track.readings > 0).then_some((track.last_observed_ms, track.last_milli_c));
        (previous, track.readings == 1)
    };

    // Interval since this device's previous reading: MKT weight and gap check.
    if let Some((prev_ms, prev_milli_c)) = previous {
        let interval = span_ms(prev_ms, r.observed_at_ms);
        let mut acc = MktAccumulator::from_parts(&twin.mkt_weighted_sum, twin.mkt_weight_ms);
        if second && rule == MktRule::FirstReadingToNext {
            // The device's first reading covers the interval to this one.
            acc.add(prev_milli_c, interval);
        }
        acc.add(t, interval);
        twin.mkt_weighted_sum = acc.sum_bytes();
        twin.mkt_weight_ms = acc.weight_ms;
        twin.mkt_milli_c = acc.mkt_milli_c();
        let max_gap_ms = u64::from(policy.max_reading_gap_minutes) * 60_000;
        if max_gap_ms > 0 && interval > max_gap_ms {
            twin.gap_violations += 1;
        }
    }

    // Hard limits.
    let below = policy.hard_min_milli_c.is_some_and(|h| t < h);
    let above = policy.hard_max_milli_c.is_some_and(|h| t > h);
    if below || above {
        twin.hard_limit_violations += 1;
    }

    // Excursions.
    let outside = distance_outside(&policy, t);
    let open = twin.tracks[track_index].open_excursion;
    match (outside > 0, open) {
        (true, Some(i)) => {
            if let Some(e) = twin.excursions.get_mut(i as usize) {
                let before = e.duration_ms;
                e.end_ms = r.observed_at_ms;
                e.duration_ms = span_ms(e.start_ms, e.end_ms);
                if outside > distance_outside(&policy, e.peak_milli_c) {
                    e.peak_milli_c = t;
                }
                twin.excursion_ms_total += e.duration_ms.saturating_sub(before);
            }
        }
        (true, None) => {
            if twin.excursions.len() < MAX_STORED_EXCURSIONS {
                twin.excursions.push(pb::Excursion {
                    start_ms: r.observed_at_ms,
                    end_ms: r.observed_at_ms,
                    duration_ms: 0,
                    peak_milli_c: t,
                    device_id: r.device_id.to_string(),
                    open: true,
                });
                twin.tracks[track_index].open_excursion = Some((twin.excursions.len() - 1) as u32);
            } else {
                twin.excursions_dropped += 1;
            }
        }
        (false, Some(i)) => {
            if let Some(e) = twin.excursions.get_mut(i as usize) {
                let before = e.duration_ms;
                e.end_ms = r.observed_at_ms;
                e.duration_ms = span_ms(e.start_ms, e.end_ms);
                e.open = false;
                twin.excursion_ms_total += e.duration_ms.saturating_sub(before);
            }
            twin.tracks[track_index].open_excursion = None;
        }
        (false, None) => {}
    }

    let track = &mut twin.tracks[track_index];
    track.readings += 1;
    track.last_observed_ms = r.observed_at_ms;
    track.last_milli_c = t;

    recompute_verdict(twin);
}

fn fmt_c(milli_c: i64) -> String {
    let sign = if milli_c < 0 { "-" } else { "" };
    let a = milli_c.unsigned_abs();
    format!("{sign}{}.{:03} °C", a / 1000, a % 1000)
}

/// Recomputes the verdict and its reasons from the twin's summary.
pub fn recompute_verdict(twin: &mut pb::ShipmentTwin) {
    let policy = twin.policy.unwrap_or_default();
    let mut reasons = Vec::new();
    let budget_ms = u64::from(policy.excursion_budget_minutes) * 60_000;
    if twin.excursion_ms_total > budget_ms {
        reasons.push(format!(
            "excursion budget exceeded: {} min outside {}..{} (budget {} min)",
            twin.excursion_ms_total.div_ceil(60_000),
            fmt_c(policy.min_milli_c.into()),
            fmt_c(policy.max_milli_c.into()),
            policy.excursion_budget_minutes
        ));
    }
    if twin.excursions_dropped > 0 {
        reasons.push(format!(
            "more than {MAX_STORED_EXCURSIONS} excursions ({} not itemised)",
            twin.excursions_dropped
        ));
    }
    if twin.hard_limit_violations > 0 {
        reasons.push(format!(
            "{} reading(s) beyond the hard limits",
            twin.hard_limit_violations
        ));
    }
    if twin.gap_violations > 0 {
        reasons.push(format!(
            "{} gap(s) between readings longer than {} min",
            twin.gap_violations, policy.max_reading_gap_minutes
        ));
    }
    if let (Some(limit), Some(mkt)) = (policy.mkt_limit_milli_c, twin.mkt_milli_c)
        && mkt > limit
    {
        reasons.push(format!(
            "mean kinetic temperature {} above limit {}",
            fmt_c(mkt.into()),
            fmt_c(limit.into())
        ));
    }
    twin.verdict = if reasons.is_empty() {
        pb::Verdict::Conformant
    } else {
        pb::Verdict::NonConformant
    } as i32;
    twin.reasons = reasons;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn twin(policy: pb::ColdChainPolicy) -> pb::ShipmentTwin {
        let mut t = pb::ShipmentTwin {
            shipment_id: "s".into(),
            policy: Some(policy),
            ..Default::default()
        };
        recompute_verdict(&mut t);
        t
    }

    fn fridge() -> pb::ColdChainPolicy {
        pb::ColdChainPolicy {
            min_milli_c: 2_000,
            max_milli_c: 8_000,
            excursion_budget_minutes: 30,
            max_reading_gap_minutes: 20,
            mkt_limit_milli_c: Some(8_000),
            hard_min_milli_c: Some(-1_000),
            hard_max_milli_c: Some(15_000),
        }
    }

    fn feed(t: &mut pb::ShipmentTwin, device: &str, series: &[(i64, i32)]) {
        feed_under(MktRule::CURRENT, t, device, series);
    }

    fn feed_under(rule: MktRule, t: &mut pb::ShipmentTwin, device: &str, series: &[(i64, i32)]) {
        for &(minute, milli_c) in series {
            apply_reading(
                t,
                &Reading {
                    device_id: device,
                    observed_at_ms: 1_000_000 + minute * MIN,
                    milli_c,
                    location: None,
                },
                rule,
            );
        }
    }

    fn verdict(t: &pb::ShipmentTwin) -> pb::Verdict {
        pb::Verdict::try_from(t.verdict).unwrap_or_default()
    }

    #[test]
    fn in_range_series_is_conformant() {
        let mut t = twin(fridge());
        assert_eq!(verdict(&t), pb::Verdict::Conformant);
        feed(&mut t, "d1", &[(0, 4_000), (10, 5_000), (20, 6_000)]);
        assert_eq!(verdict(&t), pb::Verdict::Conformant, "{:?}", t.reasons);
        assert_eq!(t.reading_count, 3);
        assert_eq!((t.min_milli_c, t.max_milli_c), (Some(4_000), Some(6_000)));
        assert!(t.excursions.is_empty());
        // Each reading covers 10 minutes, the first one too (the interval to its next).
        assert_eq!(t.mkt_weight_ms, 30 * MIN as u64);
    }

    /// DOMAIN.md's 12-hour logger vector: every reading counted (as the logger's own
    /// report) under the current rule; the last 11 under the rule of older chains.
    #[test]
    fn twelve_hourly_readings_weigh_equally() {
        let series: Vec<(i64, i32)> = [
            3_000, 3_500, 4_000, 7_500, 10_000, 12_500, 9_000, 6_000, 5_000, 4_500, 4_000, 3_500,
        ]
        .iter()
        .enumerate()
        .map(|(h, &c)| (h as i64 * 60, c))
        .collect();
        for (rule, expected) in [
            (MktRule::FirstReadingToNext, 6_604),
            (MktRule::FirstReadingUnweighted, 6_865),
        ] {
            let mut t = twin(pb::ColdChainPolicy {
                mkt_limit_milli_c: None,
                max_reading_gap_minutes: 0,
                ..fridge()
            });
            feed_under(rule, &mut t, "logger", &series);
            let mkt = t.mkt_milli_c.expect("weighted");
            assert!(
                (mkt - expected).abs() <= 1,
                "{rule:?}: {mkt} m°C, expected {expected}"
            );
        }
    }

    #[test]
    fn excursion_opens_extends_and_closes_at_next_in_range_reading() {
        // No MKT limit here: this series' MKT (9.5 °C) would breach an 8 °C one.
        let mut t = twin(pb::ColdChainPolicy {
            mkt_limit_milli_c: None,
            ..fridge()
        });
        feed(&mut t, "d1", &[(0, 5_000), (10, 9_000), (20, 11_000)]);
        assert_eq!(t.excursions.len(), 1);
        let e = &t.excursions[0];
        assert!(e.open);
        assert_eq!((e.duration_ms, e.peak_milli_c), (10 * MIN as u64, 11_000));
        feed(&mut t, "d1", &[(25, 7_000)]);
        let e = &t.excursions[0];
        assert!(!e.open);
        assert_eq!(e.duration_ms, 15 * MIN as u64);
        assert_eq!(t.excursion_ms_total, 15 * MIN as u64);
        // 15 min is within the 30 min budget.
        assert_eq!(verdict(&t), pb::Verdict::Conformant, "{:?}", t.reasons);
    }

    #[test]
    fn budget_exceeded_is_non_conformant() {
        let mut t = twin(fridge());
        feed(
            &mut t,
            "d1",
            &[(0, 9_000), (15, 9_500), (30, 10_000), (45, 5_000)],
        );
        assert_eq!(t.excursion_ms_total, 45 * MIN as u64);
        assert_eq!(verdict(&t), pb::Verdict::NonConformant);
        assert!(
            t.reasons[0].contains("excursion budget exceeded"),
            "{:?}",
            t.reasons
        );
    }

    #[test]
    fn cold_side_peak_is_furthest_from_range() {
        let mut t = twin(fridge());
        feed(
            &mut t,
            "d1",
            &[(0, 1_000), (5, 0), (10, 1_500), (15, 3_000)],
        );
        assert_eq!(t.excursions[0].peak_milli_c, 0);
    }

    #[test]
    fn excursions_are_per_device() {
        let mut t = twin(fridge());
        feed(&mut t, "a", &[(0, 9_000)]);
        feed(&mut t, "b", &[(1, 5_000)]);
        feed(&mut t, "a", &[(5, 5_000)]);
        assert_eq!(t.excursions.len(), 1);
        assert_eq!(t.excursions[0].device_id, "a");
        assert_eq!(t.excursions[0].duration_ms, 5 * MIN as u64);
    }

    #[test]
    fn hard_limit_and_gap_findings() {
        let mut t = twin(fridge());
        feed(&mut t, "d1", &[(0, 5_000), (5, 16_000), (6, 5_000)]);
        assert_eq!(t.hard_limit_violations, 1);
        assert_eq!(verdict(&t), pb::Verdict::NonConformant);

        let mut t = twin(fridge());
        feed(&mut t, "d1", &[(0, 5_000), (21, 5_000)]);
        assert_eq!(t.gap_violations, 1);
        assert!(
            t.reasons.iter().any(|r| r.contains("gap")),
            "{:?}",
            t.reasons
        );
    }

    #[test]
    fn mkt_limit() {
        let mut policy = fridge();
        policy.excursion_budget_minutes = 10_000;
        policy.max_reading_gap_minutes = 0;
        policy.hard_max_milli_c = None;
        let mut t = twin(policy);
        feed(&mut t, "d1", &[(0, 5_000), (60, 12_000), (120, 12_000)]);
        // 5, 12 and 12 °C for an hour each.
        let mkt = t.mkt_milli_c.expect("weighted");
        assert!((10_000..12_000).contains(&mkt), "{mkt}");
        assert!(
            t.reasons.iter().any(|r| r.contains("mean kinetic")),
            "{:?}",
            t.reasons
        );
        // Under the older rule the first reading weighs nothing: 12 °C for two hours.
        let mut old = twin(t.policy.unwrap_or_default());
        feed_under(
            MktRule::FirstReadingUnweighted,
            &mut old,
            "d1",
            &[(0, 5_000), (60, 12_000), (120, 12_000)],
        );
        assert_eq!(old.mkt_milli_c, Some(12_000));
    }

    #[test]
    fn stored_excursions_are_bounded() {
        let mut policy = fridge();
        policy.max_reading_gap_minutes = 0;
        let mut t = twin(policy);
        for i in 0..(MAX_STORED_EXCURSIONS as i64 + 10) {
            feed(&mut t, "d1", &[(2 * i, 9_000), (2 * i + 1, 5_000)]);
        }
        assert_eq!(t.excursions.len(), MAX_STORED_EXCURSIONS);
        assert_eq!(t.excursions_dropped, 10);
        assert_eq!(verdict(&t), pb::Verdict::NonConformant);
    }
}
