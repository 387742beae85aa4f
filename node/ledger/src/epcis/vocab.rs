//! The CBV 2.0 vocabularies the importer checks, UN/ECE Recommendation 20 unit codes,
//! and EPCIS time values.
//!
//! A CBV value may be written bare (`shipping`), as a GS1 web URI
//! (`https://ref.gs1.org/cbv/BizStep-shipping`) or as an EPCglobal URN
//! (`urn:epcglobal:cbv:bizstep:shipping`); all three normalise to the bare word. Any
//! other URI or namespaced CURIE (`http://example.com/bizstep/x`, `ext1:x`) is a
//! user vocabulary, which EPCIS allows; a bare word outside the CBV is refused.

/// CBV 2.0 business steps (CBV 2.0 §7.1).
pub const BIZ_STEPS: &[&str] = &[
    "accepting",
    "arriving",
    "assembling",
    "collecting",
    "commissioning",
    "consigning",
    "creating_class_instance",
    "cycle_counting",
    "decommissioning",
    "departing",
    "destroying",
    "disassembling",
    "dispensing",
    "encoding",
    "entering_exiting",
    "holding",
    "inspecting",
    "installing",
    "killing",
    "loading",
    "other",
    "packing",
    "picking",
    "receiving",
    "removing",
    "repackaging",
    "repairing",
    "replacing",
    "reserving",
    "retail_selling",
    "sampling",
    "sensor_reporting",
    "shipping",
    "staging_outbound",
    "stock_taking",
    "stocking",
    "storing",
    "transporting",
    "unloading",
    "unpacking",
    "void_shipping",
];

/// CBV 2.0 dispositions (CBV 2.0 §7.2).
pub const DISPOSITIONS: &[&str] = &[
    "active",
    "available",
    "completeness_inferred",
    "completeness_verified",
    "conformant",
    "container_closed",
    "container_open",
    "damaged",
    "destroyed",
    "dispensed",
    "disposed",
    "encoded",
    "expired",
    "in_progress",
    "in_transit",
    "inactive",
    "mismatch_instance",
    "mismatch_class",
    "mismatch_quantity",
    "needs_replacement",
    "no_pedigree_match",
    "non_conformant",
    "non_sellable_other",
    "partially_dispensed",
    "recalled",
    "reserved",
    "retail_sold",
    "returned",
    "sellable_accessible",
    "sellable_not_accessible",
    "stolen",
    "unavailable",
    "unknown",
];

/// CBV 2.0 source/destination types.
pub const SOURCE_DEST_TYPES: &[&str] = &["owning_party", "possessing_party", "location"];

/// CBV 2.0 business transaction types.
pub const BIZ_TRANSACTION_TYPES: &[&str] = &[
    "bol",
    "cert",
    "desadv",
    "inv",
    "pedigree",
    "po",
    "poc",
    "prodorder",
    "recadv",
    "rma",
    "testprd",
    "testres",
    "upevt",
];

/// Units of UN/ECE Recommendation 20 this node accepts in sensor reports and
/// quantities: temperature, humidity and percentages, and the common physical units.
pub const REC20_UNITS: &[&str] = &[
    // temperature
    "CEL", "FAH", "KEL", // humidity, percentages, ratios
    "P1", "A93", "59", "61", "C62", // mass, volume, length, area
    "KGM", "GRM", "MGM", "TNE", "LBR", "ONZ", "LTR", "MLT", "MTQ", "MTR", "CMT", "MMT", "KMT",
    "MTK", // pieces
    "H87", "EA", // time
    "SEC", "MIN", "HUR", "DAY", // speed, acceleration
    "KMH", "MTS", "MSK", // pressure
    "PAL", "KPA", "BAR", "MBR", "HPA", // light, angle, radiation, concentration
    "LUX", "DD", "P71", "C35", "2N", // electricity, energy
    "AMP", "VLT", "WTT", "KWH", "HTZ",
];

/// Units a measurement type must use when it gives one (temperature and humidity are
/// what the cold chain depends on; other types accept any known unit).
pub fn units_for_type(measurement: &str) -> Option<&'static [&'static str]> {
    match measurement.trim_start_matches("gs1:") {
        "Temperature" => Some(&["CEL", "FAH", "KEL"]),
        "RelativeHumidity" => Some(&["P1"]),
        "AbsoluteHumidity" => Some(&["A93"]),
        _ => None,
    }
}

/// What a vocabulary value turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A standard CBV term, bare.
    Standard(String),
    /// A user-defined term (URI or namespaced CURIE), as given.
    Custom(String),
}

impl Term {
    /// The value to store: the bare word for a CBV term, else the URI.
    pub fn into_string(self) -> String {
        match self {
            Term::Standard(s) | Term::Custom(s) => s,
        }
    }
}

/// Normalises a CBV value of the vocabulary whose web-URI prefix is `web` (e.g.
/// `BizStep-`) and URN prefix `urn` (e.g. `urn:epcglobal:cbv:bizstep:`).
pub fn cbv_term(
    value: &str,
    list: &[&str],
    web: &str,
    urn: &str,
    what: &str,
) -> Result<Term, String> {
    let bare = if let Some(rest) = value
        .strip_prefix("https://ref.gs1.org/cbv/")
        .and_then(|r| r.strip_prefix(web))
    {
        Some(rest)
    } else if let Some(rest) = value.strip_prefix("cbv:").and_then(|r| r.strip_prefix(web)) {
        Some(rest)
    } else {
        value.strip_prefix(urn)
    };
    if let Some(word) = bare {
        return if list.contains(&word) {
            Ok(Term::Standard(word.to_string()))
        } else {
            Err(format!("{value:?} is not a CBV 2.0 {what}"))
        };
    }
    if list.contains(&value) {
        return Ok(Term::Standard(value.to_string()));
    }
    if value.starts_with("https://ref.gs1.org/cbv/") || value.starts_with("urn:epcglobal:cbv:") {
        return Err(format!("{value:?} is not a CBV 2.0 {what}"));
    }
    if is_uri_or_curie(value) {
        return Ok(Term::Custom(value.to_string()));
    }
    Err(format!(
        "{value:?} is not a CBV 2.0 {what} (a user vocabulary must be a URI or a namespaced term)"
    ))
}

/// `scheme:rest` with a letter-led scheme and no spaces: a URI or a CURIE.
pub fn is_uri_or_curie(value: &str) -> bool {
    match value.split_once(':') {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// A UN/ECE Rec 20 unit code this node knows.
pub fn check_unit(uom: &str) -> Result<(), String> {
    if REC20_UNITS.contains(&uom) {
        Ok(())
    } else {
        Err(format!(
            "unit {uom:?} is not a UN/ECE Recommendation 20 code this node accepts"
        ))
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `+HH:MM` / `-HH:MM` / `Z` → minutes east of UTC.
pub fn parse_offset(s: &str) -> Result<i32, String> {
    if s == "Z" {
        return Ok(0);
    }
    let bad = || format!("{s:?} is not a time-zone offset like +01:00");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m) = (digits(h).ok_or_else(bad)?, digits(m).ok_or_else(bad)?);
    if rest.len() != 5 || m > 59 || h * 60 + m > 14 * 60 {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m) as i32)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// An xsd:dateTime with a time zone (`2024-03-02T08:55:00.123+01:00`, `...Z`) → unix ms.
/// EPCIS requires the zone; fractions beyond milliseconds are truncated.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let (secs, frac) = parse_instant(s)?;
    let ms_frac: i64 = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
    Ok(secs * 1000 + ms_frac)
}

/// An xsd:dateTime with a time zone → unix seconds (UTC) and the digits of its fraction
/// of a second, as written (`"1415"` for `...:03.1415Z`).
pub fn parse_instant(s: &str) -> Result<(i64, &str), String> {
    let bad = |why: &str| format!("{s:?} is not a date-time with a time zone ({why})");
    let (date, rest) = s.split_once('T').ok_or_else(|| bad("no 'T'"))?;
    let mut parts = date.split('-');
    let (Some(y), Some(mo), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("date is not YYYY-MM-DD"));
    };
    if y.len() != 4 || mo.len() != 2 || d.len() != 2 {
        return Err(bad("date is not YYYY-MM-DD"));
    }
    let (y, mo, d) = (
        digits(y).ok_or_else(|| bad("year"))?,
        digits(mo).ok_or_else(|| bad("month"))?,
        digits(d).ok_or_else(|| bad("day"))?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return Err(bad("no such date"));
    }
    let zone_at = rest
        .find(['Z', '+', '-'])
        .ok_or_else(|| bad("no time zone"))?;
    let (clock, zone) = rest.split_at(zone_at);
    let offset = parse_offset(zone).map_err(|_| bad("time zone"))?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.split(':');
    let (Some(h), Some(mi), Some(sec), None) = (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return Err(bad("time is not hh:mm:ss"));
    };
    if h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return Err(bad("time is not hh:mm:ss"));
    }
    let (h, mi, sec) = (
        digits(h).ok_or_else(|| bad("hour"))?,
        digits(mi).ok_or_else(|| bad("minute"))?,
        digits(sec).ok_or_else(|| bad("second"))?,
    );
    if h > 23 || mi > 59 || sec > 59 {
        return Err(bad("no such time"));
    }
    if clock.contains('.') && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad("fraction"));
    }
    let secs =
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - i64::from(offset) * 60;
    Ok((secs, frac))
}

/// A JSON number as fixed point with six decimals (millionths), exactly, from its
/// decimal text (`26.1`, `-18.5`, `1e-6`, `2.5E3`): no float rounding reaches the ledger.
/// More than six decimals, or a magnitude of 10^12 or more, is refused (at most 18 digits).
pub fn micro(n: &serde_json::Number) -> Result<i64, String> {
    let text = n.to_string();
    let bad = || format!("{text} is not a decimal number below 10^12 with at most 6 decimals");
    let (neg, unsigned) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.as_str()),
    };
    let (mantissa, exp) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().map_err(|_| bad())?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // value = digits × 10^(exp − len(frac)); in millionths: × 10^(exp − len(frac) + 6).
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let shift = exp
        .checked_sub(i32::try_from(frac.len()).map_err(|_| bad())?)
        .and_then(|s| s.checked_add(6))
        .ok_or_else(bad)?;
    let value: i64 = if digits.is_empty() {
        0
    } else if shift >= 0 {
        if digits.len() as i64 + i64::from(shift) > 18 {
            return Err(bad());
        }
        format!("{digits}{}", "0".repeat(shift as usize))
            .parse()
            .map_err(|_| bad())?
    } else {
        let cut = shift.unsigned_abs() as usize;
        if cut >= digits.len() || !digits[digits.len() - cut..].bytes().all(|b| b == b'0') {
            // Non-zero digits beyond the sixth decimal.
            if !digits.bytes().all(|b| b == b'0') {
                return Err(bad());
            }
        }
        let kept = &digits[..digits.len().saturating_sub(cut)];
        if kept.is_empty() {
            0
        } else if kept.len() > 18 {
            return Err(bad());
        } else {
            kept.parse().map_err(|_| bad())?
        }
    };
    Ok(if neg { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbv_forms_normalise() {
        let step = |v| {
            cbv_term(
                v,
                BIZ_STEPS,
                "BizStep-",
                "urn:epcglobal:cbv:bizstep:",
                "bizStep",
            )
        };
        for v in [
            "shipping",
            "https://ref.gs1.org/cbv/BizStep-shipping",
            "urn:epcglobal:cbv:bizstep:shipping",
        ] {
            assert_eq!(step(v), Ok(Term::Standard("shipping".into())), "{v}");
        }
        assert!(step("transforming").is_err());
        assert!(step("https://ref.gs1.org/cbv/BizStep-transforming").is_err());
        assert!(step("urn:epcglobal:cbv:bizstep:nope").is_err());
        assert_eq!(
            step("http://epcis.example.org/hc/bizstep/summarising_discharge"),
            Ok(Term::Custom(
                "http://epcis.example.org/hc/bizstep/summarising_discharge".into()
            ))
        );
        assert!(matches!(
            step("ext1:summarising_discharge"),
            Ok(Term::Custom(_))
        ));
        let disp = |v| {
            cbv_term(
                v,
                DISPOSITIONS,
                "Disp-",
                "urn:epcglobal:cbv:disp:",
                "disposition",
            )
        };
        assert_eq!(
            disp("https://ref.gs1.org/cbv/Disp-in_transit"),
            Ok(Term::Standard("in_transit".into()))
        );
        assert!(disp("in_transport").is_err());
    }

    #[test]
    fn times_with_zones() {
        assert_eq!(parse_time("2024-03-02T09:00:00Z"), Ok(1_709_370_000_000));
        assert_eq!(
            parse_time("2024-03-02T10:00:00+01:00"),
            Ok(1_709_370_000_000)
        );
        assert_eq!(
            parse_time("2024-03-02T03:00:00.250-06:00"),
            Ok(1_709_370_000_250)
        );
        assert_eq!(parse_time("2005-07-11T11:30:47.0Z"), Ok(1_121_081_447_000));
        for bad in [
            "22-07-2026",
            "2024-03-02T09:00:00",
            "2024-02-30T09:00:00Z",
            "2024-03-02T25:00:00Z",
            "2024-03-02T09:00:00+1:00",
            "2024-03-02T09:00:00.Z",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_offset("+01:00"), Ok(60));
        assert_eq!(parse_offset("-06:00"), Ok(-360));
        assert!(parse_offset("+15:00").is_err());
        assert!(parse_offset("01:00").is_err());
    }

    #[test]
    fn numbers_are_fixed_point() {
        let n = |s: &str| micro(&serde_json::from_str::<serde_json::Number>(s).expect("number"));
        assert_eq!(n("26.1"), Ok(26_100_000));
        assert_eq!(n("-18.5"), Ok(-18_500_000));
        assert_eq!(n("150"), Ok(150_000_000));
        assert_eq!(n("0.000001"), Ok(1));
        assert!(n("0.0000001").is_err());
        assert!(n("1e300").is_err());
        assert_eq!(n("2.5E3"), Ok(2_500_000_000));
        assert_eq!(
            n("1.5e-6"),
            Err("1.5e-6 is not a decimal number below 10^12 with at most 6 decimals".into())
        );
        assert_eq!(n("12.340000"), Ok(12_340_000));
        assert_eq!(n("-0.0"), Ok(0));
        assert_eq!(check_unit("CEL"), Ok(()));
        assert!(check_unit("DEGC").is_err());
    }
}
