//! Mean kinetic temperature (USP <1079.2>), computed deterministically.
//!
//! ```text
//! MKT = (ΔH/R) / ( −ln( Σ wᵢ·exp(−ΔH/(R·Tᵢ)) / Σ wᵢ ) ),   ΔH/R = 10 000 K,  T in kelvin (°C + 273.15)
//! ```
//!
//! State must be bit-for-bit identical on every node, so no float is ever stored.
//! Each reading contributes an integer term `round(w · exp(ΔH/R/T₀ − ΔH/R/T) · 2⁴⁰)`
//! (T₀ = 273.15 K keeps the exponent in range) to a `u128` accumulator. The float
//! work uses `libm`, a pure-Rust port of musl's libm, so `exp`/`log` give the same
//! bits on every platform; Rust guarantees IEEE-754 results for the basic operations.

/// ΔH/R in kelvin: 83.144 kJ/mol ÷ 8.3144 J/(mol·K).
const DELTA_H_OVER_R: f64 = 10_000.0;
/// 0 °C in kelvin (USP: 273.15, not 273.2).
const ZERO_CELSIUS_K: f64 = 273.15;
/// Fixed-point scale of accumulator terms: 2⁴⁰.
const SCALE: f64 = 1_099_511_627_776.0;

/// Running sums for the MKT of a series of weighted readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MktAccumulator {
    /// Σ wᵢ·exp(ΔH/R/T₀ − ΔH/R/Tᵢ), fixed point 2⁻⁴⁰, weights in ms.
    pub weighted_sum: u128,
    /// Σ wᵢ in ms.
    pub weight_ms: u64,
}

impl MktAccumulator {
    /// Adds a reading of `milli_c` thousandths of a °C covering `weight_ms`.
    pub fn add(&mut self, milli_c: i32, weight_ms: u64) {
        if weight_ms == 0 {
            return;
        }
        let kelvin = f64::from(milli_c) / 1000.0 + ZERO_CELSIUS_K;
        let factor = libm::exp(DELTA_H_OVER_R / ZERO_CELSIUS_K - DELTA_H_OVER_R / kelvin);
        // `as` saturates for out-of-range floats; inputs are bounded (−100..150 °C) so
        // the term is far below u128::MAX for any realistic weight.
        let term = libm::round(factor * weight_ms as f64 * SCALE) as u128;
        self.weighted_sum = self.weighted_sum.saturating_add(term);
        self.weight_ms = self.weight_ms.saturating_add(weight_ms);
    }

    /// The MKT in thousandths of a °C, or `None` before any weighted reading.
    pub fn mkt_milli_c(&self) -> Option<i32> {
        if self.weight_ms == 0 || self.weighted_sum == 0 {
            return None;
        }
        let mean = self.weighted_sum as f64 / SCALE / self.weight_ms as f64;
        let kelvin = DELTA_H_OVER_R / (DELTA_H_OVER_R / ZERO_CELSIUS_K - libm::log(mean));
        Some(libm::round((kelvin - ZERO_CELSIUS_K) * 1000.0) as i32)
    }

    /// Encodes the sum as 16 little-endian bytes (for the twin record).
    pub fn sum_bytes(&self) -> Vec<u8> {
        self.weighted_sum.to_le_bytes().to_vec()
    }

    /// Rebuilds an accumulator from stored parts; an absent or malformed sum is zero.
    pub fn from_parts(sum: &[u8], weight_ms: u64) -> Self {
        let weighted_sum = <[u8; 16]>::try_from(sum).map_or(0, u128::from_le_bytes);
        Self {
            weighted_sum,
            weight_ms,
        }
    }
}

/// The MKT of `(milli_c, weight)` readings; `None` if all weights are zero.
pub fn mkt_milli_c(readings: &[(i32, u64)]) -> Option<i32> {
    let mut acc = MktAccumulator::default();
    for &(t, w) in readings {
        acc.add(t, w);
    }
    acc.mkt_milli_c()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn hourly(spec: &[(i32, usize)]) -> Vec<(i32, u64)> {
        spec.iter()
            .flat_map(|&(c, hours)| std::iter::repeat_n((c * 1000, HOUR), hours))
            .collect()
    }

    /// Test vectors from DOMAIN.md (USP <1079.2>), given to 0.001 °C; our result is
    /// rounded to the nearest 0.001 °C, so it may differ from the printed figure by
    /// at most one unit in the last place.
    #[test]
    fn usp_vectors() {
        type Case = (&'static str, Vec<(i32, u64)>, i32);
        let cases: [Case; 4] = [
            ("24 h at 5 °C", hourly(&[(5, 24)]), 5_000),
            ("23 h at 5 + 1 h at 15", hourly(&[(5, 23), (15, 1)]), 5_764),
            ("20 h at 5 + 4 h at 25", hourly(&[(5, 20), (25, 4)]), 12_879),
            (
                "2, 4, 6, 8 °C",
                vec![(2_000, 1), (4_000, 1), (6_000, 1), (8_000, 1)],
                5_302,
            ),
        ];
        for (name, readings, expected) in cases {
            let got = mkt_milli_c(&readings).expect("weighted readings");
            assert!(
                (got - expected).abs() <= 1,
                "{name}: MKT {got} m°C, expected {expected} m°C"
            );
        }
    }

    #[test]
    fn order_and_weights() {
        // MKT weighs by time, not by reading count.
        let a = mkt_milli_c(&[(5_000, 23 * HOUR), (15_000, HOUR)]);
        let b = mkt_milli_c(&hourly(&[(5, 23), (15, 1)]));
        assert_eq!(a, b);
        // Readings with zero weight do not count.
        assert_eq!(mkt_milli_c(&[(40_000, 0), (5_000, HOUR)]), Some(5_000));
        assert_eq!(mkt_milli_c(&[]), None);
    }

    #[test]
    fn extremes_stay_finite() {
        assert!(mkt_milli_c(&[(-100_000, HOUR)]).is_some_and(|m| (m + 100_000).abs() <= 1));
        assert!(mkt_milli_c(&[(150_000, 1_000 * HOUR)]).is_some_and(|m| (m - 150_000).abs() <= 1));
    }

    #[test]
    fn accumulator_roundtrips_through_bytes() {
        let mut acc = MktAccumulator::default();
        acc.add(7_250, 600_000);
        acc.add(9_100, 300_000);
        let back = MktAccumulator::from_parts(&acc.sum_bytes(), acc.weight_ms);
        assert_eq!(back, acc);
    }
}
