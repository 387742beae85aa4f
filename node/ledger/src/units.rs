//! Exact decimal parsing for the CLI: "5.25" °C → 5250 m°C, without floats.

/// Why a decimal does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not an optionally signed decimal number.
    #[error("{input:?} is not a decimal number")]
    NotANumber {
        /// The text given.
        input: String,
    },
    /// More fractional digits than the unit keeps.
    #[error("{input:?} has more than {scale} decimal places")]
    TooPrecise {
        /// The text given.
        input: String,
        /// Fractional digits kept.
        scale: u32,
    },
    /// Outside the range of the integer it is stored in.
    #[error("{input:?} is out of range")]
    OutOfRange {
        /// The text given.
        input: String,
    },
}

/// Parses a decimal with at most `scale` fractional digits into an integer scaled by
/// 10^scale, e.g. `parse_fixed("-18.5", 3) == Ok(-18_500)`.
pub fn parse_fixed(s: &str, scale: u32) -> Result<i64, UnitError> {
    let out_of_range = || UnitError::OutOfRange { input: s.into() };
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return Err(UnitError::NotANumber { input: s.into() });
    }
    if frac.len() > scale as usize {
        return Err(UnitError::TooPrecise {
            input: s.into(),
            scale,
        });
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| out_of_range())?
    };
    let frac_value: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().map_err(|_| out_of_range())? * 10i64.pow(scale - frac.len() as u32)
    };
    let v = 10i64
        .checked_pow(scale)
        .and_then(|unit| int.checked_mul(unit))
        .and_then(|v| v.checked_add(frac_value))
        .ok_or_else(out_of_range)?;
    Ok(if neg { -v } else { v })
}

/// Parses a decimal as [`parse_fixed`] does, into any integer type it must fit.
pub fn parse_fixed_as<T: TryFrom<i64>>(s: &str, scale: u32) -> Result<T, UnitError> {
    T::try_from(parse_fixed(s, scale)?).map_err(|_| UnitError::OutOfRange { input: s.into() })
}

/// °C as text → m°C.
pub fn milli_c(s: &str) -> Result<i32, UnitError> {
    parse_fixed_as(s, 3)
}

/// m°C → "5.250 °C".
pub fn fmt_milli_c(v: i32) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:03} °C", a / 1000, a % 1000)
}

/// Unix ms → "2026-11-21 12:08:10Z" (UTC), by Howard Hinnant's civil-from-days.
pub fn fmt_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(milli_c("5"), Ok(5_000));
        assert_eq!(milli_c("5.25"), Ok(5_250));
        assert_eq!(milli_c("-18.5"), Ok(-18_500));
        assert_eq!(milli_c("+0.001"), Ok(1));
        assert_eq!(milli_c(".5"), Ok(500));
        assert!(milli_c("5.2501").is_err());
        assert!(milli_c("abc").is_err());
        assert!(milli_c("").is_err());
        assert!(milli_c("-").is_err());
        assert_eq!(
            milli_c("99999999999"),
            Err(UnitError::OutOfRange {
                input: "99999999999".into()
            })
        );
        assert_eq!(
            milli_c("5.2501"),
            Err(UnitError::TooPrecise {
                input: "5.2501".into(),
                scale: 3
            })
        );
        assert_eq!(
            milli_c("5,2"),
            Err(UnitError::NotANumber {
                input: "5,2".into()
            })
        );
        // A negative value does not fit an unsigned unit (humidity in ‰).
        assert!(parse_fixed_as::<u32>("-5", 1).is_err());
        assert_eq!(parse_fixed_as::<u32>("55.5", 1), Ok(555));
        assert_eq!(fmt_milli_c(-18_500), "-18.500 °C");
    }

    #[test]
    fn formats_utc() {
        assert_eq!(fmt_time_ms(0), "1970-01-01 00:00:00Z");
        assert_eq!(fmt_time_ms(1_709_370_000_000), "2024-03-02 09:00:00Z");
        assert_eq!(fmt_time_ms(951_782_400_000), "2000-02-29 00:00:00Z");
    }
}
