//! GS1 identifiers in the form the EPCIS Event Hash ID needs (CBV 2.0, rule 17 and 18):
//! the *constrained canonical GS1 Digital Link URI*. EPC URIs (`urn:epc:id:`), EPC class
//! URIs (`urn:epc:class:lgtin:`), EPC pattern URIs (`urn:epc:idpat:`) and Digital Link
//! URIs of any domain all become `https://id.gs1.org/<key>/<value>[/<qualifier>/<value>]`,
//! with check digits computed, GTINs padded to 14 digits, only the finest level of
//! identification kept (a serial drops the lot, the consumer product variant goes) and no
//! query string. Anything that is not a well-formed GS1 identifier gives `None` and is
//! hashed as written.
//!
//! The rules are those of GS1's EPC Tag Data Standard (URI forms and field lengths) and
//! GS1 Digital Link 1.2 (§4.11, canonical form); the test vectors are GS1's reference
//! implementation's (`tests/interop.rs`).

/// The domain of canonical Digital Link URIs (the identifier index's keys).
pub(crate) const DOMAIN: &str = "https://id.gs1.org";

/// The constrained canonical Digital Link URI of `uri`, if it names a GS1 key.
pub fn canonical(uri: &str) -> Option<String> {
    if let Some(rest) = uri.strip_prefix("urn:epc:id:") {
        epc_id(rest)
    } else if let Some(rest) = uri.strip_prefix("urn:epc:class:lgtin:") {
        let [cp, item, lot] = split::<3>(rest)?;
        let gtin = gtin(cp, item)?;
        epc_chars(lot, 20).then(|| format!("{DOMAIN}/01/{gtin}/10/{}", escape(lot)))
    } else if let Some(rest) = uri.strip_prefix("urn:epc:idpat:") {
        epc_pattern(rest)
    } else if uri.starts_with("https://") || uri.starts_with("http://") {
        digital_link(uri, false)
    } else {
        None
    }
}

/// [`canonical`] for a Digital Link URI whose values hold percent escapes (`a%2Fb`),
/// which the Event Hash ID leaves as written (as GS1's reference implementation does)
/// but an index of identifiers must not: the EPC URI of the same item has them too.
/// Escapes are kept, their hex digits upper-cased.
pub fn canonical_lenient(uri: &str) -> Option<String> {
    if uri.starts_with("https://") || uri.starts_with("http://") {
        digital_link(uri, true)
    } else {
        None
    }
}

/// The GS1 check digit (GS1 General Specifications §7.9.1) of a string of digits.
pub fn check_digit(digits: &str) -> char {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

/// `s` split at its first `N - 1` dots (the last part keeps any further dots).
fn split<const N: usize>(s: &str) -> Option<[&str; N]> {
    let mut parts = s.splitn(N, '.');
    let out: [&str; N] = std::array::from_fn(|_| parts.next().unwrap_or(""));
    // Every part but the last must have been there (a missing dot is not an empty part).
    (s.matches('.').count() >= N - 1).then_some(out)
}

fn digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// A GS1 company prefix (6 to 12 digits) and a reference of digits, `total` long together.
fn prefixed(cp: &str, reference: &str, total: usize) -> bool {
    (6..=12).contains(&cp.len())
        && digits(cp)
        && digits(reference)
        && cp.len() + reference.len() == total
}

/// The GTIN-14 of an SGTIN's company prefix and item reference (indicator digit first).
fn gtin(cp: &str, item: &str) -> Option<String> {
    if !prefixed(cp, item, 13) {
        return None;
    }
    Some(with_check(&format!("{}{cp}{}", &item[..1], &item[1..])))
}

fn with_check(digits: &str) -> String {
    format!("{digits}{}", check_digit(digits))
}

/// Whether `s` is 1 to `max` characters of the EPC URI alphanumeric set (GS1 AI encodable
/// character set 82, some of it percent-escaped), an escape counting as one.
fn epc_chars(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(&hi), Some(&lo)) = (b.get(i + 1), b.get(i + 2)) else {
                return false;
            };
            let lo = lo.to_ascii_uppercase();
            let ok = lo.is_ascii_hexdigit()
                && match hi {
                    b'2' => !matches!(lo, b'0' | b'3' | b'4'),
                    b'3' => true,
                    b'4' | b'6' => lo != b'0',
                    b'5' => lo.is_ascii_digit() || matches!(lo, b'A' | b'F'),
                    b'7' => lo.is_ascii_digit() || lo == b'A',
                    _ => false,
                };
            if !ok {
                return false;
            }
            i += 3;
        } else if b[i].is_ascii_alphanumeric() || b"!')(*+,.:;=_-".contains(&b[i]) {
            i += 1;
        } else {
            return false;
        }
        n += 1;
    }
    (1..=max).contains(&n)
}

/// The characters a Digital Link URI path must percent-encode that an EPC URI may hold raw.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '!' => out.push_str("%21"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '*' => out.push_str("%2A"),
            '+' => out.push_str("%2B"),
            ',' => out.push_str("%2C"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

/// A CPI's component/part reference: upper-case letters, digits, `-`, and `#`, `-`, `/`
/// escaped; 1 to `max` characters.
fn cpi_chars(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] == b'%' {
            let ok = match (b.get(i + 1), b.get(i + 2).map(u8::to_ascii_uppercase)) {
                (Some(b'2'), Some(lo)) => matches!(lo, b'3' | b'D' | b'F'),
                (Some(b'3'), Some(lo)) => lo.is_ascii_digit(),
                (Some(b'4'), Some(lo)) => lo.is_ascii_hexdigit() && lo != b'0',
                (Some(b'5'), Some(lo)) => lo.is_ascii_digit() || lo == b'A',
                _ => false,
            };
            if !ok {
                return false;
            }
            i += 3;
        } else if b[i].is_ascii_digit() || b[i].is_ascii_uppercase() || b[i] == b'-' {
            i += 1;
        } else {
            return false;
        }
        n += 1;
    }
    (1..=max).contains(&n)
}

fn epc_id(rest: &str) -> Option<String> {
    let (scheme, body) = rest.split_once(':')?;
    match scheme {
        "sgtin" => {
            let [cp, item, serial] = split::<3>(body)?;
            let gtin = gtin(cp, item)?;
            epc_chars(serial, 20).then(|| format!("{DOMAIN}/01/{gtin}/21/{}", escape(serial)))
        }
        "sscc" => {
            let [cp, serial] = split::<2>(body)?;
            prefixed(cp, serial, 17).then(|| {
                let sscc = with_check(&format!("{}{cp}{}", &serial[..1], &serial[1..]));
                format!("{DOMAIN}/00/{sscc}")
            })
        }
        "sgln" => {
            let [cp, location, ext] = split::<3>(body)?;
            if !prefixed(cp, location, 12) || !epc_chars(ext, 20) {
                return None;
            }
            let gln = with_check(&format!("{cp}{location}"));
            Some(if ext == "0" {
                format!("{DOMAIN}/414/{gln}")
            } else {
                format!("{DOMAIN}/414/{gln}/254/{}", escape(ext))
            })
        }
        "grai" => {
            let [cp, asset, serial] = split::<3>(body)?;
            (prefixed(cp, asset, 12) && epc_chars(serial, 16)).then(|| {
                let grai = with_check(&format!("0{cp}{asset}"));
                format!("{DOMAIN}/8003/{grai}{}", escape(serial))
            })
        }
        "giai" => {
            let [cp, asset] = split::<2>(body)?;
            ((6..=12).contains(&cp.len()) && digits(cp) && epc_chars(asset, 30 - cp.len()))
                .then(|| format!("{DOMAIN}/8004/{cp}{}", escape(asset)))
        }
        "gsrn" | "gsrnp" => {
            let [cp, service] = split::<2>(body)?;
            let ai = if scheme == "gsrn" { "8018" } else { "8017" };
            prefixed(cp, service, 17)
                .then(|| format!("{DOMAIN}/{ai}/{}", with_check(&format!("{cp}{service}"))))
        }
        "gdti" => {
            let [cp, doc_type, serial] = split::<3>(body)?;
            (prefixed(cp, doc_type, 12) && epc_chars(serial, 17)).then(|| {
                let gdti = with_check(&format!("{cp}{doc_type}"));
                format!("{DOMAIN}/253/{gdti}{}", escape(serial))
            })
        }
        "cpi" => {
            let (head, serial) = body.rsplit_once('.')?;
            let (cp, part) = head.split_once('.')?;
            ((6..=12).contains(&cp.len())
                && digits(cp)
                && cpi_chars(part, 30 - cp.len())
                && (1..=12).contains(&serial.len())
                && digits(serial))
            .then(|| {
                format!(
                    "{DOMAIN}/8010/{}/8011/{serial}",
                    escape(&format!("{cp}{part}"))
                )
            })
        }
        "sgcn" => {
            let [cp, coupon, serial] = split::<3>(body)?;
            (prefixed(cp, coupon, 12) && (1..=12).contains(&serial.len()) && digits(serial)).then(
                || {
                    let gcn = with_check(&format!("{cp}{coupon}"));
                    format!("{DOMAIN}/255/{gcn}{serial}")
                },
            )
        }
        "ginc" => {
            let [cp, consignment] = split::<2>(body)?;
            ((6..=12).contains(&cp.len()) && digits(cp) && epc_chars(consignment, 30 - cp.len()))
                .then(|| format!("{DOMAIN}/401/{cp}{}", escape(consignment)))
        }
        "gsin" => {
            let [cp, shipper] = split::<2>(body)?;
            prefixed(cp, shipper, 16)
                .then(|| format!("{DOMAIN}/402/{}", with_check(&format!("{cp}{shipper}"))))
        }
        "itip" => {
            let [cp, item, piece, total, serial] = split::<5>(body)?;
            let gtin = gtin(cp, item)?;
            (piece.len() == 2
                && total.len() == 2
                && digits(piece)
                && digits(total)
                && epc_chars(serial, 20))
            .then(|| format!("{DOMAIN}/8006/{gtin}{piece}{total}/21/{}", escape(serial)))
        }
        "upui" => {
            let [cp, item, tpx] = split::<3>(body)?;
            let gtin = gtin(cp, item)?;
            epc_chars(tpx, 28).then(|| format!("{DOMAIN}/01/{gtin}/235/{}", escape(tpx)))
        }
        "pgln" => {
            let [cp, party] = split::<2>(body)?;
            prefixed(cp, party, 12)
                .then(|| format!("{DOMAIN}/417/{}", with_check(&format!("{cp}{party}"))))
        }
        _ => None,
    }
}

fn epc_pattern(rest: &str) -> Option<String> {
    let (scheme, body) = rest.split_once(':')?;
    let body = body.strip_suffix(".*")?;
    match scheme {
        "sgtin" | "upui" => {
            let [cp, item] = split::<2>(body)?;
            Some(format!("{DOMAIN}/01/{}", gtin(cp, item)?))
        }
        "grai" => {
            let [cp, asset] = split::<2>(body)?;
            prefixed(cp, asset, 12)
                .then(|| format!("{DOMAIN}/8003/{}", with_check(&format!("0{cp}{asset}"))))
        }
        "gdti" | "sgcn" => {
            let [cp, reference] = split::<2>(body)?;
            let ai = if scheme == "gdti" { "253" } else { "255" };
            prefixed(cp, reference, 12)
                .then(|| format!("{DOMAIN}/{ai}/{}", with_check(&format!("{cp}{reference}"))))
        }
        "cpi" => {
            let [cp, part] = split::<2>(body)?;
            ((6..=12).contains(&cp.len()) && digits(cp) && cpi_chars(part, 30 - cp.len()))
                .then(|| format!("{DOMAIN}/8010/{}", escape(&format!("{cp}{part}"))))
        }
        "itip" => {
            let [cp, item, piece, total] = split::<4>(body)?;
            let gtin = gtin(cp, item)?;
            (piece.len() == 2 && total.len() == 2 && digits(piece) && digits(total))
                .then(|| format!("{DOMAIN}/8006/{gtin}{piece}{total}"))
        }
        _ => None,
    }
}

/// Primary keys in the order a Digital Link URI on another domain is searched for them.
const PRIMARY_KEYS: &[&str] = &[
    "00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8017",
    "8018",
];

/// The numeric application identifier of a Digital Link short name.
fn ai_of(segment: &str) -> &str {
    match segment {
        "gtin" => "01",
        "itip" => "8006",
        "cpid" => "8010",
        "gln" => "414",
        "party" => "417",
        "gsrnp" => "8017",
        "gsrn" => "8018",
        "gcn" => "255",
        "sscc" => "00",
        "gdti" => "253",
        "ginc" => "401",
        "gsin" => "402",
        "grai" => "8003",
        "giai" => "8004",
        "cpv" => "22",
        "lot" => "10",
        "ser" => "21",
        other => other,
    }
}

/// A Digital Link value: 0 to `max` characters of `"'-.0-9;<=>?A-Z_a-z`, and with
/// `escapes` also `%XX` (one character each).
fn dl_chars(s: &str, max: usize, escapes: bool) -> bool {
    let b = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if escapes && b[i] == b'%' {
            if !b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else if b[i].is_ascii_alphanumeric() || b"\"'-.;<=>?_".contains(&b[i]) {
            i += 1;
        } else {
            return false;
        }
        n += 1;
    }
    n <= max
}

/// Upper-cases the hex digits of every percent escape.
pub(crate) fn upper_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_uppercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// `n` digits, then 0 to `max` Digital Link characters (`usize::MAX`: anything).
fn digits_then(s: &str, n: usize, max: usize, escapes: bool) -> bool {
    s.len() >= n
        && s.as_bytes()[..n].iter().all(u8::is_ascii_digit)
        && (max == usize::MAX || dl_chars(&s[n..], max, escapes))
}

fn n_digits(s: &str, n: usize) -> bool {
    s.len() == n && digits(s)
}

fn digital_link(uri: &str, escapes: bool) -> Option<String> {
    let uri = uri.split('?').next().unwrap_or(uri);
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))?;
    let (_authority, path) = rest.split_once('/')?;
    let segments: Vec<&str> = path.split('/').map(ai_of).collect();
    let starts_with_key = |i: usize| {
        segments.get(i + 1).is_some_and(|v| {
            digits_then(v, 4, usize::MAX, false) && PRIMARY_KEYS.contains(&segments[i])
        })
    };
    let start = if starts_with_key(0) {
        0
    } else {
        PRIMARY_KEYS.iter().find_map(|key| {
            (0..segments.len()).find(|&i| segments[i] == *key && starts_with_key(i))
        })?
    };
    let mut parts: Vec<String> = segments[start..].iter().map(|s| s.to_string()).collect();
    let key = parts[0].clone();
    if key == "01" {
        let padding = match parts[1].len() {
            13 => "0",
            12 => "00",
            8 => "000000",
            _ => "",
        };
        if digits(&parts[1]) {
            parts[1] = format!("{padding}{}", parts[1]);
        }
    }
    if key == "01" || key == "8006" {
        // The consumer product variant is not part of the identity; a serial makes the
        // lot redundant.
        if let Some(i) = (2..parts.len()).step_by(2).find(|&i| parts[i] == "22") {
            parts.drain(i..(i + 2).min(parts.len()));
        }
        if parts.len() == 6 && parts[2] == "10" && parts[4] == "21" {
            parts.drain(2..4);
        }
    }
    let value = parts[1].as_str();
    let qualifiers: Vec<&str> = parts[2..].iter().map(String::as_str).collect();
    let valid = match (key.as_str(), qualifiers.as_slice()) {
        ("00", []) => n_digits(value, 18),
        ("01", q) => {
            n_digits(value, 14)
                && match q {
                    [] => true,
                    ["21" | "10", v] => dl_chars(v, 20, escapes),
                    ["235", v] => dl_chars(v, 28, escapes),
                    _ => false,
                }
        }
        ("253", []) => digits_then(value, 13, 17, escapes),
        ("255", []) => value.len() >= 13 && value.len() <= 25 && digits(value),
        ("401" | "8004", []) => dl_chars(value, 30, escapes),
        ("402", []) => n_digits(value, 17),
        ("414", q) => {
            n_digits(value, 13)
                && match q {
                    [] => true,
                    ["254", v] => dl_chars(v, 20, escapes),
                    _ => false,
                }
        }
        ("417", []) => n_digits(value, 13),
        ("8003", []) => digits_then(value, 14, 16, escapes),
        ("8006", q) => {
            n_digits(value, 18)
                && match q {
                    [] => true,
                    ["21" | "10", v] => dl_chars(v, 20, escapes),
                    _ => false,
                }
        }
        ("8010", q) => {
            let allowed: &[u8] = if escapes { b"#-/%" } else { b"#-/" };
            let cpid = |s: &str| {
                s.len() <= if escapes { 90 } else { 30 }
                    && s.bytes().all(|b| {
                        b.is_ascii_digit() || b.is_ascii_uppercase() || allowed.contains(&b)
                    })
            };
            cpid(value)
                && match q {
                    [] => true,
                    ["8011", v] => v.len() <= 12 && digits(v),
                    _ => false,
                }
        }
        ("8017" | "8018", []) => n_digits(value, 18),
        _ => false,
    };
    valid.then(|| {
        let path = parts.join("/");
        let path = if escapes { upper_escapes(&path) } else { path };
        format!("{DOMAIN}/{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<String> {
        canonical(s)
    }

    #[test]
    fn check_digits() {
        // GS1 General Specifications examples.
        assert_eq!(check_digit("0061414112345"), '2');
        assert_eq!(check_digit("401234500011"), '5');
        assert_eq!(check_digit("04012345000000333"), '8');
    }

    #[test]
    fn epc_uris() {
        assert_eq!(
            c("urn:epc:id:sgtin:0614141.107346.2017").as_deref(),
            Some("https://id.gs1.org/01/10614141073464/21/2017")
        );
        assert_eq!(
            c("urn:epc:id:sscc:4012345.0000000333").as_deref(),
            Some("https://id.gs1.org/00/040123450000003338")
        );
        assert_eq!(
            c("urn:epc:id:sgln:4012345.00011.987").as_deref(),
            Some("https://id.gs1.org/414/4012345000115/254/987")
        );
        assert_eq!(
            c("urn:epc:id:sgln:4012345.00011.0").as_deref(),
            Some("https://id.gs1.org/414/4012345000115")
        );
        assert_eq!(
            c("urn:epc:id:pgln:999999999999.").as_deref(),
            Some("https://id.gs1.org/417/9999999999994")
        );
        assert_eq!(
            c("urn:epc:class:lgtin:4012345.012345.Lot987").as_deref(),
            Some("https://id.gs1.org/01/04012345123456/10/Lot987")
        );
        assert_eq!(
            c("urn:epc:idpat:sgtin:4012345.066666.*").as_deref(),
            Some("https://id.gs1.org/01/04012345666663")
        );
        // Characters a Digital Link path must escape are escaped; escapes stay.
        assert_eq!(
            c("urn:epc:id:sgtin:0614141.812345.6789%2F%26%25%22!%3F()").as_deref(),
            Some("https://id.gs1.org/01/80614141123458/21/6789%2F%26%25%22%21%3F%28%29")
        );
    }

    #[test]
    fn digital_link_uris() {
        assert_eq!(
            c("https://example.com/gtin/09780345418913/21/765tz?abc=211121").as_deref(),
            Some("https://id.gs1.org/01/09780345418913/21/765tz")
        );
        assert_eq!(
            c("https://id.gs1.de/01/4012345999990/10/L1/21/S1").as_deref(),
            Some("https://id.gs1.org/01/04012345999990/21/S1")
        );
        assert_eq!(
            c("https://id.gs1.org/01/04012345999990/22/V2/10/L1").as_deref(),
            Some("https://id.gs1.org/01/04012345999990/10/L1")
        );
    }

    proptest::proptest! {
        /// Whatever the text, no panic; what comes out is a Digital Link URI on the
        /// canonical domain, which canonicalises to itself (or, holding a percent
        /// escape, is not read as a Digital Link again, as the reference does).
        #[test]
        fn any_text_is_safe(s in "(urn:epc:(id|class|idpat):[a-z]{3,5}:|https?://[a-z.]{1,12}/)?[0-9A-Za-z.%/*!()é:-]{0,40}") {
            if let Some(dl) = canonical(&s) {
                proptest::prop_assert!(dl.starts_with("https://id.gs1.org/"));
                match canonical(&dl) {
                    Some(again) => proptest::prop_assert_eq!(again, dl),
                    None => proptest::prop_assert!(dl.contains('%'), "{}", dl),
                }
            }
        }
    }

    #[test]
    fn what_is_not_a_gs1_key_stays() {
        for s in [
            "urn:epc:id:sgtin:0614141.107346",
            "urn:epc:id:sgtin:061414.107346.1",
            "urn:epc:id:sgtin:0614141.107346.",
            "urn:epc:id:sgtin:0614141.107346.a/b",
            "urn:epc:id:sscc:4012345.000000033",
            "urn:epc:id:gid:95100000.12345.400",
            "urn:epc:idpat:sgtin:0614141.107346.1",
            "https://example.com/po/1234",
            "https://id.gs1.org/01/12345/21/x",
            "https://id.gs1.org/01/04012345999990/21/a%2Fb",
            "geo:50.9,6.9",
            "urn:epcglobal:cbv:bt:5200001000008:4711",
            "",
            "%",
            "urn:epc:id:sgtin:0614141.107346.%2",
        ] {
            assert_eq!(c(s), None, "{s}");
        }
    }
}
