//! The identifiers a transaction names, as index keys: one key per thing, whatever form
//! it was written in. A GS1 key (an EPC URI, an EPC class or pattern URI, or a Digital
//! Link URI of any domain, with or without a query string) becomes its constrained
//! canonical Digital Link URI (`https://id.gs1.org/01/<gtin>/21/<serial>`, see
//! [`crate::epcis::dl`]), so that `urn:epc:id:sgtin:0614141.712345.2017` and
//! `https://example.com/gtin/70614141123451/21/2017?x=1` are one key; anything else (a
//! shipment id of the consortium's own, a location URI) is its own key, as written.
//!
//! The node keeps an index entry `i/<key>\0<height><index>` for every identifier of every
//! successful transaction (state::identifier_key), so an item, a lot, a container or a
//! place is found by any of its names. A device's readings are not indexed here: they
//! join their shipment's history, which the shipment's own entries lead to, and the
//! hot path of ingest stays as it was.

use std::collections::BTreeSet;

use tracechain_proto::v1::{self as pb, tx_body::Action};

use crate::epcis::dl;

/// The index key of an identifier: its canonical Digital Link URI if it names a GS1 key,
/// else the identifier as written.
pub fn key(identifier: &str) -> String {
    match dl::canonical(identifier).or_else(|| dl::canonical_lenient(identifier)) {
        // Percent escapes in one case: `%2f` and `%2F` are one character.
        Some(canonical) => dl::upper_escapes(&canonical),
        None => identifier.to_string(),
    }
}

/// An EPC pattern URI (`urn:epc:idpat:<scheme>:<fields>`, TDS §6.5) as the index keys it
/// matches: the keys of every instance it stands for start with one of its prefixes (and
/// have the shape of that scheme's key). Served: `*` in the last field (every serial of a
/// product, every asset of a company, ...), and for SGTIN and SSCC every instance of a
/// company prefix (`CP.*.*`, `CP.*`). A pattern must name at least a company prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    prefixes: Vec<String>,
    /// The GS1 key's digits after the prefix base: a key matches only with this many
    /// digits there, followed by `then` (an SGTIN's `/21/`) or by nothing.
    digits: Option<(usize, usize, &'static str)>,
}

impl Pattern {
    /// Parses a pattern URI; `class` when it stands for classes (`MATCH_epcClass`): an
    /// SGTIN pattern `CP.IR.*` then matches the product's classes (the GTIN, its lots).
    pub fn parse(uri: &str, class: bool) -> Result<Pattern, String> {
        let bad = |why: &str| Err(format!("{uri:?}: {why}"));
        let Some((scheme, fields)) = uri
            .strip_prefix("urn:epc:idpat:")
            .and_then(|rest| rest.split_once(':'))
        else {
            return bad("is not an EPC pattern URI (urn:epc:idpat:<scheme>:<fields>)");
        };
        let parts: Vec<&str> = fields.split('.').collect();
        let stars = parts.iter().rev().take_while(|p| **p == "*").count();
        if stars == 0 || parts[..parts.len() - stars].contains(&"*") {
            return bad("only `*` in the last field(s) of a pattern is served");
        }
        if stars == parts.len() {
            return bad("a pattern must name at least its company prefix");
        }
        let cp = parts[0];
        // Every key of a company: <base><one digit><CP>..., the digit before the company
        // prefix being an SSCC's extension digit or a GTIN-14's indicator.
        let company = |base: &str| -> Result<Vec<String>, String> {
            if !(6..=12).contains(&cp.len()) || !cp.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{uri:?}: {cp:?} is not a GS1 company prefix"));
            }
            Ok((0..10).map(|d| format!("{base}{d}{cp}")).collect())
        };
        match (scheme, parts.len(), stars) {
            // Every SSCC of a company: 00/<extension digit><CP><serial reference><check>.
            ("sscc", 2, 1) => {
                let base = format!("{}/00/", dl::DOMAIN);
                Ok(Pattern {
                    prefixes: company(&base)?,
                    digits: Some((base.len(), 18, "")),
                })
            }
            // Every SGTIN (or, for classes, every GTIN) of a company:
            // 01/<indicator><CP><item reference><check>[/21/<serial>].
            ("sgtin", 3, 2) => {
                let base = format!("{}/01/", dl::DOMAIN);
                Ok(Pattern {
                    prefixes: company(&base)?,
                    digits: Some((base.len(), 14, if class { "" } else { "/21/" })),
                })
            }
            (_, _, 1) => {
                // The key of one instance with a placeholder last field, less the
                // placeholder: the prefix of every instance's key.
                const PLACEHOLDER: &str = "Z9";
                let head = &fields[..fields.len() - 1];
                let one = format!("urn:epc:id:{scheme}:{head}{PLACEHOLDER}");
                let Some(k) = dl::canonical(&one) else {
                    return bad("is not a pattern of a GS1 key this node serves");
                };
                let Some(mut prefix) = k.strip_suffix(PLACEHOLDER).map(str::to_string) else {
                    return bad("is not a pattern of a GS1 key this node serves");
                };
                if class && scheme == "sgtin" {
                    // The product's classes: the GTIN and its lots.
                    prefix = prefix.trim_end_matches("/21/").to_string();
                }
                Ok(Pattern {
                    prefixes: vec![prefix],
                    digits: None,
                })
            }
            _ => bad(
                "only `*` in the last field of a pattern is served, or `CP.*.*` (sgtin) and `CP.*` (sscc)",
            ),
        }
    }

    /// Whether the index key `key` is one of an instance the pattern stands for.
    pub fn matches(&self, key: &str) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
            && self.digits.is_none_or(|(at, n, then)| {
                key.get(at..at + n)
                    .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
                    && key.get(at + n..).is_some_and(|rest| {
                        if then.is_empty() {
                            rest.is_empty() || rest.starts_with('/')
                        } else {
                            rest.starts_with(then)
                        }
                    })
            })
    }
}

/// EPC schemes of the Tag Data Standard that are not GS1 keys (US DoD, aerospace and
/// defence, BIC container codes, IMO vessel numbers): they have no Digital Link and are
/// their own keys.
const OTHER_EPC_SCHEMES: &[&str] = &["usdod", "adi", "bic", "imovn"];

/// Checks that an identifier an EPCIS event names as an object (an EPC, a parent, a
/// child, an input or output, a quantity's class) is what the standard expects there: an
/// EPC URI (instance, class or pattern) or a GS1 Digital Link URI; the error says which
/// it is not. The consortium's own `urn:tracechain:` URIs, which an export writes for
/// ids that are not URIs, are accepted too, so that an export imports again.
pub fn check_epc(identifier: &str) -> Result<(), String> {
    if identifier
        .strip_prefix("urn:tracechain:")
        .is_some_and(|rest| rest.contains(':') && !rest.ends_with(':'))
    {
        return Ok(());
    }
    if dl::canonical(identifier)
        .or_else(|| dl::canonical_lenient(identifier))
        .is_some()
    {
        return Ok(());
    }
    if let Some((scheme, body)) = identifier
        .strip_prefix("urn:epc:id:")
        .and_then(|rest| rest.split_once(':'))
        && OTHER_EPC_SCHEMES.contains(&scheme)
        && !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_graphic())
    {
        return Ok(());
    }
    Err(if identifier.starts_with("urn:epc:") {
        format!("{identifier:?} is not a well-formed EPC URI")
    } else {
        format!("{identifier:?} is neither an EPC URI nor a GS1 Digital Link URI")
    })
}

/// The index keys of what `action` names, each once, sorted. Empty for a sensor report.
pub fn of_action(action: &Action) -> Vec<String> {
    let mut ids: Vec<&str> = Vec::new();
    match action {
        Action::RegisterDevice(a) => ids.push(&a.device_id),
        Action::RotateDeviceKey(a) => ids.push(&a.device_id),
        Action::RevokeDevice(a) => ids.push(&a.device_id),
        Action::CreateShipment(a) => {
            ids.push(&a.shipment_id);
            ids.push(&a.origin_location);
            ids.extend(a.products.iter().map(|p| p.epc.as_str()));
            ids.extend(a.device_ids.iter().map(String::as_str));
        }
        Action::AttachDevice(a) => {
            ids.push(&a.shipment_id);
            ids.push(&a.device_id);
        }
        Action::Ship(a) => {
            ids.push(&a.shipment_id);
            ids.push(&a.location);
        }
        Action::Receive(a) => {
            ids.push(&a.shipment_id);
            ids.push(&a.location);
        }
        Action::Customs(a) => {
            ids.push(&a.shipment_id);
            ids.push(&a.location);
        }
        Action::SensorReport(_) => {}
        Action::ReportDeviceConflict(a) => {
            // The device the proof is about: its first transaction's signer (checked at
            // execution; an index entry of a refused report is never written).
            use prost::Message as _;
            let signer = pb::SignedTx::decode(a.first.as_slice())
                .ok()
                .and_then(|t| pb::TxBody::decode(t.body.as_slice()).ok())
                .and_then(|b| b.signer)
                .map(|s| s.id)
                .filter(|id| !id.is_empty());
            return signer.map(|id| key(&id)).into_iter().collect();
        }
        Action::RecordEpcisEvent(a) => {
            ids.extend(a.epcs.iter().map(String::as_str));
            ids.push(&a.read_point);
            ids.push(&a.biz_location);
        }
    }
    ids.into_iter()
        .filter(|id| !id.is_empty())
        .map(key)
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use tracechain_proto::v1 as pb;

    use super::*;

    #[test]
    fn every_form_of_one_item_is_one_key() {
        let forms = [
            "urn:epc:id:sgtin:0614141.712345.2017",
            "https://id.gs1.org/01/70614141123451/21/2017",
            "https://example.com/gtin/70614141123451/21/2017?linkType=all",
            "http://id.gs1.org/01/70614141123451/10/L1/21/2017",
        ];
        for f in forms {
            assert_eq!(
                key(f),
                "https://id.gs1.org/01/70614141123451/21/2017",
                "{f}"
            );
        }
        assert_eq!(
            key("urn:epc:class:lgtin:4012345.012345.998877"),
            key("https://id.gs1.org/01/04012345123456/10/998877")
        );
        assert_eq!(
            key("urn:epc:id:sscc:0614141.1234567890"),
            "https://id.gs1.org/00/106141412345678908"
        );
        // Percent escapes, in either case: the URN and a Digital Link of another
        // domain agree.
        assert_eq!(
            key("urn:epc:id:sgtin:0614141.712345.a%2Fb"),
            key("https://brand.example/01/70614141123451/21/a%2Fb")
        );
        assert_eq!(
            key("urn:epc:id:sgtin:0614141.712345.a%2fb"),
            "https://id.gs1.org/01/70614141123451/21/a%2Fb"
        );
        // Not a GS1 key: as written.
        assert_eq!(key("S-1"), "S-1");
        assert_eq!(key("urn:example:pallet:9"), "urn:example:pallet:9");
    }

    #[test]
    fn objects_are_epc_uris_or_digital_links() {
        for ok in [
            "urn:epc:id:sgtin:0614141.712345.2017",
            "urn:epc:class:lgtin:4012345.012345.998877",
            "urn:epc:idpat:sgtin:4012345.011111.*",
            "https://example.com/gtin/70614141123451/21/2017?linkType=all",
            "https://id.gs1.org/00/106141412345678908",
            "urn:epc:id:bic:CSQU3054383",
            "urn:tracechain:product:lettuce",
        ] {
            assert_eq!(check_epc(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            (
                "urn:epc:id:sgtin:0614141.712345",
                "is not a well-formed EPC URI",
            ),
            ("urn:epc:id:sscc:12.x", "is not a well-formed EPC URI"),
            ("urn:epc:id:bic:", "is not a well-formed EPC URI"),
            (
                "pallet-9",
                "is neither an EPC URI nor a GS1 Digital Link URI",
            ),
            ("urn:example:pallet:9", "is neither"),
            ("https://example.com/pallet/9", "is neither"),
        ] {
            let err = check_epc(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn an_event_names_each_identifier_once_and_a_reading_none() {
        let event = Action::RecordEpcisEvent(pb::RecordEpcisEvent {
            epcs: vec![
                "urn:epc:id:sgtin:0614141.712345.2017".into(),
                "https://id.gs1.org/01/70614141123451/21/2017".into(),
                "urn:epc:id:sscc:0614141.1234567890".into(),
            ],
            read_point: "urn:epc:id:sgln:0614141.00777.0".into(),
            ..Default::default()
        });
        assert_eq!(
            of_action(&event),
            [
                "https://id.gs1.org/00/106141412345678908",
                "https://id.gs1.org/01/70614141123451/21/2017",
                "https://id.gs1.org/414/0614141007776",
            ]
        );
        assert!(of_action(&Action::SensorReport(pb::SensorReport::default())).is_empty());
    }
}
