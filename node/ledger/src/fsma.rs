//! FSMA 204 records: the key data elements of each critical tracking event of a
//! traceability lot, as the sortable spreadsheet the FDA asks for within 24 hours.
//!
//! Events are read as EPCIS JSON (imported events as recorded, native actions as the
//! export writes them), so one mapping serves both. The critical tracking event comes
//! from the business step (any of its forms: a CBV word, its URN or web URI, or a
//! vocabulary's URI whose last word is the step): `harvesting`, `cooling`, `commissioning`
//! or `packing` (initial packing), `first_land_based_receiving`, `shipping` or
//! `departing`, `receiving` or `arriving`; and every TransformationEvent is a
//! transformation. Other events are not critical tracking events and make no row.

use serde_json::Value;

use crate::{epcis::vocab, identifiers, units::fmt_time_ms};

/// The spreadsheet's columns, in order.
pub const COLUMNS: [&str; 16] = [
    "Event Date-Time (UTC)",
    "Critical Tracking Event",
    "Traceability Lot Code",
    "GTIN",
    "Product Description",
    "Quantity",
    "Unit of Measure",
    "Location",
    "Ship-From",
    "Ship-To",
    "TLC Source Location",
    "Reference Document Type",
    "Reference Document Number",
    "Recorded By",
    "Block Height",
    "Event ID",
];

/// FSMA 204's critical tracking events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cte {
    /// Harvesting.
    Harvesting,
    /// Cooling (before initial packing).
    Cooling,
    /// Initial packing.
    InitialPacking,
    /// First land-based receiving (seafood).
    FirstLandBasedReceiving,
    /// Shipping.
    Shipping,
    /// Receiving.
    Receiving,
    /// Transformation.
    Transformation,
}

impl Cte {
    /// The name the rule uses.
    pub fn name(self) -> &'static str {
        match self {
            Cte::Harvesting => "Harvesting",
            Cte::Cooling => "Cooling",
            Cte::InitialPacking => "Initial Packing",
            Cte::FirstLandBasedReceiving => "First Land-Based Receiving",
            Cte::Shipping => "Shipping",
            Cte::Receiving => "Receiving",
            Cte::Transformation => "Transformation",
        }
    }
}

/// The critical tracking event an EPCIS event is, if any.
pub fn cte_of(event: &Value) -> Option<Cte> {
    if event["type"] == "TransformationEvent" {
        return Some(Cte::Transformation);
    }
    let step = event["bizStep"].as_str()?;
    // The last word of any form: "shipping", "urn:epcglobal:cbv:bizstep:shipping",
    // "https://ref.gs1.org/cbv/BizStep-shipping", "https://example.org/vocab/harvesting".
    let word = step
        .rsplit(['/', ':', '-', '#'])
        .next()
        .unwrap_or(step)
        .to_ascii_lowercase();
    Some(match word.as_str() {
        "harvesting" => Cte::Harvesting,
        "cooling" => Cte::Cooling,
        "commissioning" | "packing" => Cte::InitialPacking,
        "first_land_based_receiving" => Cte::FirstLandBasedReceiving,
        "shipping" | "departing" => Cte::Shipping,
        "receiving" | "arriving" => Cte::Receiving,
        _ => return None,
    })
}

/// One row of the spreadsheet, in [`COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Event time, unix ms (sorts the rows).
    pub time_ms: i64,
    /// The cells.
    pub cells: Vec<String>,
}

/// A recorded event about a lot: the EPCIS JSON, who recorded it, where in the chain,
/// and, for a native shipment's event, the lot's quantity and unit on that shipment.
pub struct LotEvent<'a> {
    /// The event.
    pub event: &'a Value,
    /// The member that recorded it.
    pub member: &'a str,
    /// Block height.
    pub height: u64,
    /// The lot's quantity and unit when the event does not list it (a shipment's).
    pub quantity: Option<(String, String)>,
}

/// The GTIN and lot of a lot's key (`https://id.gs1.org/01/<gtin>/10/<lot>`), else the key.
fn gtin_and_lot(key: &str) -> (String, String) {
    key.strip_prefix("https://id.gs1.org/01/")
        .and_then(|rest| rest.split_once("/10/"))
        .map(|(gtin, lot)| (gtin.to_string(), lot.to_string()))
        .unwrap_or_else(|| (String::new(), key.to_string()))
}

fn place(event: &Value) -> String {
    event["bizLocation"]["id"]
        .as_str()
        .or_else(|| event["readPoint"]["id"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The parties or places of a source or destination list: locations first.
fn ends(list: &Value) -> String {
    let Some(items) = list.as_array() else {
        return String::new();
    };
    let of = |kind: &str| -> Vec<&str> {
        items
            .iter()
            .filter(|i| i["type"].as_str().is_some_and(|t| t.ends_with(kind)))
            .filter_map(|i| i["source"].as_str().or_else(|| i["destination"].as_str()))
            .collect()
    };
    let locations = of("location");
    if !locations.is_empty() {
        return locations.join(" ");
    }
    of("possessing_party").join(" ")
}

/// The quantity and unit of the lot `key` in the event's quantity lists.
fn quantity_of(event: &Value, key: &str) -> Option<(String, String)> {
    [
        "quantityList",
        "childQuantityList",
        "inputQuantityList",
        "outputQuantityList",
    ]
    .iter()
    .filter_map(|list| event[*list].as_array())
    .flatten()
    .find(|q| {
        q["epcClass"]
            .as_str()
            .is_some_and(|c| identifiers::key(c) == key)
    })
    .map(|q| {
        (
            q["quantity"]
                .as_number()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            q["uom"].as_str().unwrap_or_default().to_string(),
        )
    })
}

/// The rows of the lot `key` from the events about it (in chain order), with event times
/// in `[from_ms, to_ms)`; sorted by time. `tlc_source` is where the lot was made (the
/// location of the event that commissioned or transformed it into being), if known.
pub fn rows(
    key: &str,
    events: &[LotEvent<'_>],
    from_ms: i64,
    to_ms: i64,
    tlc_source: &str,
) -> Vec<Row> {
    let (gtin, lot) = gtin_and_lot(key);
    let mut out = Vec::new();
    for e in events {
        let Some(cte) = cte_of(e.event) else {
            continue;
        };
        let Some(time_ms) = e.event["eventTime"]
            .as_str()
            .and_then(|t| vocab::parse_time(t).ok())
        else {
            continue;
        };
        if time_ms < from_ms || time_ms >= to_ms {
            continue;
        }
        let (quantity, uom) = quantity_of(e.event, key)
            .or_else(|| e.quantity.clone())
            .unwrap_or_default();
        let description = e.event["ilmd"]["cbvmda:descriptionShort"]
            .as_str()
            .unwrap_or_default();
        let documents = e.event["bizTransactionList"].as_array();
        let first_doc = documents.and_then(|d| d.first());
        let cells = vec![
            fmt_time_ms(time_ms),
            cte.name().to_string(),
            lot.clone(),
            gtin.clone(),
            description.to_string(),
            quantity,
            uom,
            place(e.event),
            ends(&e.event["sourceList"]),
            ends(&e.event["destinationList"]),
            tlc_source.to_string(),
            first_doc
                .and_then(|d| d["type"].as_str())
                .unwrap_or_default()
                .to_string(),
            first_doc
                .and_then(|d| d["bizTransaction"].as_str())
                .unwrap_or_default()
                .to_string(),
            e.member.to_string(),
            e.height.to_string(),
            e.event["eventID"].as_str().unwrap_or_default().to_string(),
        ];
        out.push(Row { time_ms, cells });
    }
    out.sort_by(|a, b| (a.time_ms, &a.cells).cmp(&(b.time_ms, &b.cells)));
    out
}

/// Where the lot `key` was made: the place of the first event that commissioned it
/// (an ADD naming it) or output it (a transformation).
pub fn tlc_source(key: &str, events: &[LotEvent<'_>]) -> String {
    events
        .iter()
        .find(|e| {
            let out = quantity_of(e.event, key).is_some()
                && (e.event["action"] == "ADD" || e.event["type"] == "TransformationEvent");
            let made_by_transformation =
                e.event["outputQuantityList"].as_array().is_some_and(|l| {
                    l.iter().any(|q| {
                        q["epcClass"]
                            .as_str()
                            .is_some_and(|c| identifiers::key(c) == key)
                    })
                });
            (out && e.event["type"] != "TransformationEvent") || made_by_transformation
        })
        .map(|e| place(e.event))
        .unwrap_or_default()
}

/// RFC 4180 CSV of the rows, with the header.
pub fn to_csv(rows: &[Row]) -> String {
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let fields: Vec<String> = cells.map(crate::audit::report::csv_field).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    };
    line(&mut COLUMNS.iter().copied(), &mut out);
    for r in rows {
        line(&mut r.cells.iter().map(String::as_str), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LOT: &str = "urn:epc:class:lgtin:4012345.012345.L1";

    fn ev(step: &str, time: &str, extra: Value) -> Value {
        let mut e = json!({
            "type": "ObjectEvent", "action": "OBSERVE", "bizStep": step, "eventTime": time,
            "quantityList": [{"epcClass": LOT, "quantity": 40, "uom": "KGM"}],
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        });
        if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        e
    }

    #[test]
    fn each_critical_tracking_event_is_one_sorted_row_with_its_kdes() {
        let key = identifiers::key(LOT);
        let harvest = ev(
            "https://example.org/fsma/harvesting",
            "2024-03-01T06:00:00Z",
            json!({"action": "ADD", "ilmd": {"cbvmda:descriptionShort": "Romaine"}}),
        );
        let ship = ev(
            "urn:epcglobal:cbv:bizstep:shipping",
            "2024-03-02T09:00:00Z",
            json!({
                "bizTransactionList": [{"type": "bol", "bizTransaction": "urn:epcglobal:cbv:bt:4012345000009:BOL7"}],
                "sourceList": [{"type": "location", "source": "urn:epc:id:sgln:4012345.00001.0"}],
                "destinationList": [{"type": "location", "destination": "urn:epc:id:sgln:0614141.00002.0"}],
            }),
        );
        let inspect = ev("inspecting", "2024-03-02T10:00:00Z", json!({}));
        let receive = ev("receiving", "2024-03-02T08:00:00Z", json!({}));
        let events: Vec<LotEvent<'_>> = [&ship, &harvest, &inspect, &receive]
            .into_iter()
            .map(|event| LotEvent {
                event,
                member: "farm",
                height: 3,
                quantity: None,
            })
            .collect();
        let source = tlc_source(&key, &events);
        assert_eq!(source, "urn:epc:id:sgln:4012345.00001.0");
        let rows = rows(&key, &events, 0, i64::MAX, &source);
        let ctes: Vec<&str> = rows.iter().map(|r| r.cells[1].as_str()).collect();
        assert_eq!(ctes, ["Harvesting", "Receiving", "Shipping"]);
        let ship = &rows[2].cells;
        assert_eq!(&ship[2..7], ["L1", "04012345123456", "", "40", "KGM"]);
        assert_eq!(ship[8], "urn:epc:id:sgln:4012345.00001.0");
        assert_eq!(ship[9], "urn:epc:id:sgln:0614141.00002.0");
        assert_eq!(
            &ship[11..13],
            ["bol", "urn:epcglobal:cbv:bt:4012345000009:BOL7"]
        );
        assert_eq!(rows[0].cells[4], "Romaine");
        // The time window.
        let t = vocab::parse_time("2024-03-02T08:30:00Z").unwrap();
        let late = super::rows(&key, &events, t, i64::MAX, &source);
        assert_eq!(late.len(), 1);
        let csv = to_csv(&rows);
        assert!(csv.starts_with("Event Date-Time (UTC),Critical Tracking Event,"));
        assert_eq!(csv.lines().count(), 4);
    }
}
