//! The stateless rules of a transaction's fields: identifiers, text, times, keys and
//! physically possible values, per action, and which kind of signer may sign each action.
//! [`super::decode`] applies them; nothing here needs state or a signature check.

use tracechain_proto::v1 as pb;

use super::{
    MAX_ABS_LAT_E7, MAX_ABS_LON_E7, MAX_HUMIDITY_PERMILLE, MAX_ID_BYTES, MAX_PRODUCTS,
    MAX_SHIPMENT_DEVICES, MAX_TEMPERATURE_MILLI_C, MAX_TEXT_BYTES, MAX_TIME_MS,
    MIN_TEMPERATURE_MILLI_C, SignerKind, SignerRef, TxError, invalid,
};
use crate::crypto::{self, Scheme};

pub(super) fn check_signer(signer: Option<pb::Signer>) -> Result<SignerRef, TxError> {
    let signer = signer.ok_or(TxError::MissingField { field: "signer" })?;
    let kind = match pb::SignerKind::try_from(signer.kind) {
        Ok(pb::SignerKind::Member) => SignerKind::Member,
        Ok(pb::SignerKind::Device) => SignerKind::Device,
        Ok(pb::SignerKind::Unspecified) | Err(_) => {
            return Err(TxError::UnknownSignerKind { value: signer.kind });
        }
    };
    if signer.id.is_empty() {
        return Err(TxError::MissingField { field: "signer.id" });
    }
    check_id("signer.id", &signer.id)?;
    let scheme = check_scheme("signer.scheme", signer.scheme)?;
    crypto::check_public_key_format(scheme, &signer.public_key).map_err(|e| {
        TxError::InvalidPublicKey {
            field: "signer.public_key",
            reason: e.to_string(),
        }
    })?;
    Ok(SignerRef {
        kind,
        id: signer.id,
        scheme,
        public_key: signer.public_key,
    })
}

fn check_scheme(field: &'static str, value: i32) -> Result<Scheme, TxError> {
    Scheme::try_from(value).map_err(|_| TxError::UnknownScheme { field, value })
}

/// An identifier: 1..=256 bytes, no control characters (they break logs, terminals
/// and CSV exports of audit reports, and are never part of an EPC or a member id). The
/// same rule applies to every id a query names, so that no request reaches a key that no
/// transaction could have written.
pub fn check_id(field: &str, value: &str) -> Result<(), TxError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(invalid(
            field,
            format!("is {} bytes, at most {MAX_ID_BYTES} allowed", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An identifier that may be left empty.
fn check_optional_id(field: &str, value: &str) -> Result<(), TxError> {
    if value.is_empty() {
        Ok(())
    } else {
        check_id(field, value)
    }
}

/// Free text: at most 1024 bytes; tab and newline allowed, other control characters not.
fn check_text(field: &str, value: &str) -> Result<(), TxError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(invalid(
            field,
            format!("is {} bytes, at most {MAX_TEXT_BYTES} allowed", value.len()),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

pub(super) fn check_time(field: &str, ms: i64) -> Result<(), TxError> {
    if ms <= 0 {
        return Err(invalid(
            field,
            format!("{ms} is not a time: must be unix milliseconds > 0"),
        ));
    }
    if ms >= MAX_TIME_MS {
        return Err(invalid(
            field,
            format!(
                "{ms} is after the year 2200: must be unix milliseconds (not micro- or nanoseconds)"
            ),
        ));
    }
    Ok(())
}

fn check_temperature(field: &str, milli_c: i32) -> Result<(), TxError> {
    if !(MIN_TEMPERATURE_MILLI_C..=MAX_TEMPERATURE_MILLI_C).contains(&milli_c) {
        return Err(invalid(
            field,
            format!(
                "{milli_c} m°C is outside the physical range {MIN_TEMPERATURE_MILLI_C}..={MAX_TEMPERATURE_MILLI_C} m°C (-100 °C to +150 °C)"
            ),
        ));
    }
    Ok(())
}

fn check_new_key(
    field: &'static str,
    scheme_field: &'static str,
    scheme: i32,
    key: &[u8],
) -> Result<(), TxError> {
    let scheme = check_scheme(scheme_field, scheme)?;
    // A key that gets registered is checked fully (on the curve, not weak, no torsion):
    // registrations are rare, and it keeps odd points away from every later check.
    crypto::validate_public_key(scheme, key).map_err(|e| TxError::InvalidPublicKey {
        field,
        reason: e.to_string(),
    })
}

fn require_signer(
    action: &'static str,
    expected: SignerKind,
    got: SignerKind,
) -> Result<(), TxError> {
    if expected == got {
        Ok(())
    } else {
        Err(TxError::WrongSignerKind {
            action,
            expected,
            got,
        })
    }
}

/// Stateless sanity of one action, and who may sign it: sensor reports come from
/// devices, everything else from members.
pub(super) fn check_action(
    action: &pb::tx_body::Action,
    signer: SignerKind,
) -> Result<(), TxError> {
    use pb::tx_body::Action;
    match action {
        Action::RegisterDevice(a) => {
            require_signer("register_device", SignerKind::Member, signer)?;
            check_id("register_device.device_id", &a.device_id)?;
            check_new_key(
                "register_device.public_key",
                "register_device.scheme",
                a.scheme,
                &a.public_key,
            )?;
            check_text("register_device.device_type", &a.device_type)
        }
        Action::RotateDeviceKey(a) => {
            require_signer("rotate_device_key", SignerKind::Member, signer)?;
            check_id("rotate_device_key.device_id", &a.device_id)?;
            check_new_key(
                "rotate_device_key.public_key",
                "rotate_device_key.scheme",
                a.scheme,
                &a.public_key,
            )
        }
        Action::RevokeDevice(a) => {
            require_signer("revoke_device", SignerKind::Member, signer)?;
            check_id("revoke_device.device_id", &a.device_id)?;
            check_text("revoke_device.reason", &a.reason)
        }
        Action::CreateShipment(a) => {
            require_signer("create_shipment", SignerKind::Member, signer)?;
            check_create_shipment(a)
        }
        Action::AttachDevice(a) => {
            require_signer("attach_device", SignerKind::Member, signer)?;
            check_id("attach_device.shipment_id", &a.shipment_id)?;
            check_id("attach_device.device_id", &a.device_id)
        }
        Action::Ship(a) => {
            require_signer("ship", SignerKind::Member, signer)?;
            check_id("ship.shipment_id", &a.shipment_id)?;
            check_id("ship.to_custodian", &a.to_custodian)?;
            check_optional_id("ship.new_owner", &a.new_owner)?;
            check_optional_id("ship.location", &a.location)
        }
        Action::Receive(a) => {
            require_signer("receive", SignerKind::Member, signer)?;
            check_id("receive.shipment_id", &a.shipment_id)?;
            check_optional_id("receive.location", &a.location)
        }
        Action::Customs(a) => {
            require_signer("customs", SignerKind::Member, signer)?;
            check_id("customs.shipment_id", &a.shipment_id)?;
            match pb::CustomsOutcome::try_from(a.outcome) {
                Ok(pb::CustomsOutcome::Cleared | pb::CustomsOutcome::Held) => {}
                Ok(pb::CustomsOutcome::Unspecified) | Err(_) => {
                    return Err(invalid(
                        "customs.outcome",
                        format!("{} is not an outcome (1 = cleared, 2 = held)", a.outcome),
                    ));
                }
            }
            check_text("customs.reason", &a.reason)?;
            check_optional_id("customs.location", &a.location)
        }
        Action::SensorReport(a) => {
            require_signer("sensor_report", SignerKind::Device, signer)?;
            check_sensor_report(a)
        }
        Action::RecordEpcisEvent(a) => {
            require_signer("record_epcis_event", SignerKind::Member, signer)?;
            check_epcis_event(a)
        }
        Action::ReportDeviceConflict(a) => {
            require_signer("report_device_conflict", SignerKind::Member, signer)?;
            // The two signatures are checked at execution (crate::conflicts), which only
            // a proof that decodes this far reaches.
            for (field, bytes) in [
                ("report_device_conflict.first", &a.first),
                ("report_device_conflict.second", &a.second),
            ] {
                if bytes.is_empty() {
                    return Err(invalid(
                        field,
                        "is empty: a device-signed SignedTx is required",
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Most identifiers one EPCIS event may name.
pub const MAX_EPCIS_EPCS: usize = 1000;
/// Most sensor readings in one EPCIS event.
pub const MAX_EPCIS_READINGS: usize = 1000;
/// Largest `event_json` (the rest of the 64 KiB body holds the typed fields).
pub const MAX_EPCIS_JSON_BYTES: usize = 32 * 1024;

/// The stateless limits of an imported EPCIS event. The vocabulary checks (CBV, units,
/// required fields per type) are the importer's (`crate::epcis`); here only what keeps
/// the ledger and its indexes sane.
fn check_epcis_event(a: &pb::RecordEpcisEvent) -> Result<(), TxError> {
    let event_type = pb::EpcisEventType::try_from(a.event_type)
        .ok()
        .filter(|t| *t != pb::EpcisEventType::Unspecified)
        .ok_or_else(|| {
            invalid(
                "record_epcis_event.event_type",
                format!("{} is not an EPCIS event type", a.event_type),
            )
        })?;
    check_optional_id("record_epcis_event.event_id", &a.event_id)?;
    check_time("record_epcis_event.event_time_ms", a.event_time_ms)?;
    if a.event_time_zone_offset_minutes.abs() > 14 * 60 {
        return Err(invalid(
            "record_epcis_event.event_time_zone_offset_minutes",
            format!("{} is beyond ±14:00", a.event_time_zone_offset_minutes),
        ));
    }
    match (a.action.as_str(), event_type) {
        ("", pb::EpcisEventType::Transformation) | ("ADD" | "OBSERVE" | "DELETE", _) => {}
        (other, _) => {
            return Err(invalid(
                "record_epcis_event.action",
                format!("{other:?} is not ADD, OBSERVE or DELETE"),
            ));
        }
    }
    for (field, value) in [
        ("record_epcis_event.biz_step", &a.biz_step),
        ("record_epcis_event.disposition", &a.disposition),
        ("record_epcis_event.read_point", &a.read_point),
        ("record_epcis_event.biz_location", &a.biz_location),
    ] {
        check_optional_id(field, value)?;
    }
    if a.epcs.len() > MAX_EPCIS_EPCS {
        return Err(invalid(
            "record_epcis_event.epcs",
            format!(
                "{} identifiers, at most {MAX_EPCIS_EPCS} allowed",
                a.epcs.len()
            ),
        ));
    }
    for epc in &a.epcs {
        check_id("record_epcis_event.epcs", epc)?;
    }
    if a.sensor_readings.len() > MAX_EPCIS_READINGS {
        return Err(invalid(
            "record_epcis_event.sensor_readings",
            format!(
                "{} readings, at most {MAX_EPCIS_READINGS} allowed",
                a.sensor_readings.len()
            ),
        ));
    }
    for r in &a.sensor_readings {
        check_text("record_epcis_event.sensor_readings.type", &r.r#type)?;
        check_optional_id("record_epcis_event.sensor_readings.uom", &r.uom)?;
        check_optional_id("record_epcis_event.sensor_readings.device_id", &r.device_id)?;
        check_text("record_epcis_event.sensor_readings.exception", &r.exception)?;
        if r.time_ms != 0 {
            check_time("record_epcis_event.sensor_readings.time_ms", r.time_ms)?;
        }
    }
    if a.event_json.is_empty() || a.event_json.len() > MAX_EPCIS_JSON_BYTES {
        return Err(invalid(
            "record_epcis_event.event_json",
            format!(
                "is {} bytes; 1..={MAX_EPCIS_JSON_BYTES} allowed",
                a.event_json.len()
            ),
        ));
    }
    Ok(())
}

fn check_create_shipment(a: &pb::CreateShipment) -> Result<(), TxError> {
    check_id("create_shipment.shipment_id", &a.shipment_id)?;
    check_optional_id("create_shipment.owner", &a.owner)?;
    check_optional_id("create_shipment.origin_location", &a.origin_location)?;
    if a.products.len() > MAX_PRODUCTS {
        return Err(invalid(
            "create_shipment.products",
            format!(
                "{} products, at most {MAX_PRODUCTS} allowed",
                a.products.len()
            ),
        ));
    }
    for (i, product) in a.products.iter().enumerate() {
        check_id(&format!("create_shipment.products[{i}].epc"), &product.epc)?;
        check_text(
            &format!("create_shipment.products[{i}].description"),
            &product.description,
        )?;
        check_optional_id(&format!("create_shipment.products[{i}].uom"), &product.uom)?;
        if product.quantity == 0 {
            return Err(invalid(
                format!("create_shipment.products[{i}].quantity"),
                "must be greater than 0",
            ));
        }
    }
    if a.device_ids.len() > MAX_SHIPMENT_DEVICES {
        return Err(invalid(
            "create_shipment.device_ids",
            format!(
                "{} devices, at most {MAX_SHIPMENT_DEVICES} allowed",
                a.device_ids.len()
            ),
        ));
    }
    for (i, device) in a.device_ids.iter().enumerate() {
        let field = format!("create_shipment.device_ids[{i}]");
        check_id(&field, device)?;
        // Quadratic, but bounded by 64 entries.
        if a.device_ids[..i].contains(device) {
            return Err(invalid(field, format!("device {device:?} is listed twice")));
        }
    }
    if let Some(policy) = &a.policy {
        check_policy(policy)?;
    }
    Ok(())
}

fn check_policy(p: &pb::ColdChainPolicy) -> Result<(), TxError> {
    check_temperature("create_shipment.policy.min_milli_c", p.min_milli_c)?;
    check_temperature("create_shipment.policy.max_milli_c", p.max_milli_c)?;
    if p.min_milli_c > p.max_milli_c {
        return Err(invalid(
            "create_shipment.policy",
            format!(
                "min_milli_c {} is above max_milli_c {}",
                p.min_milli_c, p.max_milli_c
            ),
        ));
    }
    if let Some(mkt) = p.mkt_limit_milli_c {
        check_temperature("create_shipment.policy.mkt_limit_milli_c", mkt)?;
    }
    if let Some(hard_min) = p.hard_min_milli_c {
        check_temperature("create_shipment.policy.hard_min_milli_c", hard_min)?;
        if hard_min > p.min_milli_c {
            return Err(invalid(
                "create_shipment.policy.hard_min_milli_c",
                format!(
                    "{hard_min} is above min_milli_c {}: a hard limit lies outside the allowed range",
                    p.min_milli_c
                ),
            ));
        }
    }
    if let Some(hard_max) = p.hard_max_milli_c {
        check_temperature("create_shipment.policy.hard_max_milli_c", hard_max)?;
        if hard_max < p.max_milli_c {
            return Err(invalid(
                "create_shipment.policy.hard_max_milli_c",
                format!(
                    "{hard_max} is below max_milli_c {}: a hard limit lies outside the allowed range",
                    p.max_milli_c
                ),
            ));
        }
    }
    Ok(())
}

fn check_sensor_report(a: &pb::SensorReport) -> Result<(), TxError> {
    check_id("sensor_report.shipment_id", &a.shipment_id)?;
    check_time("sensor_report.observed_at_ms", a.observed_at_ms)?;
    check_temperature("sensor_report.temperature_milli_c", a.temperature_milli_c)?;
    if let Some(humidity) = a.humidity_permille
        && humidity > MAX_HUMIDITY_PERMILLE
    {
        return Err(invalid(
            "sensor_report.humidity_permille",
            format!("{humidity} is above {MAX_HUMIDITY_PERMILLE} (100.0 %)"),
        ));
    }
    if let Some(location) = &a.location {
        if !(-MAX_ABS_LAT_E7..=MAX_ABS_LAT_E7).contains(&location.lat_e7) {
            return Err(invalid(
                "sensor_report.location.lat_e7",
                format!("{} is outside ±{MAX_ABS_LAT_E7} (±90°)", location.lat_e7),
            ));
        }
        if !(-MAX_ABS_LON_E7..=MAX_ABS_LON_E7).contains(&location.lon_e7) {
            return Err(invalid(
                "sensor_report.location.lon_e7",
                format!("{} is outside ±{MAX_ABS_LON_E7} (±180°)", location.lon_e7),
            ));
        }
    }
    Ok(())
}
