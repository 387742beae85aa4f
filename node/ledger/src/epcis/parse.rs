//! Checking an EPCIS 2.0 JSON / JSON-LD document, event by event.
//!
//! Every event is checked completely, so that the report lists every problem of every
//! event, not just the first. The checks follow the EPCIS 2.0 JSON Schema and CBV 2.0:
//! the document needs `@context`, `type: EPCISDocument`, `schemaVersion` 2.0 and
//! `epcisBody.eventList`; each event its required fields per type; standard fields have
//! their types; extension fields must be namespaced (`prefix:name` or a URI).

use serde_json::{Map, Value};
use tracechain_proto::v1 as pb;

use super::{EpcisError, Events, RejectedEvent, vocab};

/// Largest document accepted (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// Most events in one document.
pub const MAX_EVENTS: usize = 10_000;

const EVENT_TYPES: &[(&str, pb::EpcisEventType)] = &[
    ("ObjectEvent", pb::EpcisEventType::Object),
    ("AggregationEvent", pb::EpcisEventType::Aggregation),
    ("TransactionEvent", pb::EpcisEventType::Transaction),
    ("TransformationEvent", pb::EpcisEventType::Transformation),
    ("AssociationEvent", pb::EpcisEventType::Association),
];

/// Standard EPCIS 2.0 event fields (any other field must be a namespaced extension).
const STANDARD_FIELDS: &[&str] = &[
    "@context",
    "type",
    "eventID",
    "eventTime",
    "eventTimeZoneOffset",
    "recordTime",
    "errorDeclaration",
    "certificationInfo",
    "action",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
    "ilmd",
    "epcList",
    "quantityList",
    "parentID",
    "childEPCs",
    "childQuantityList",
    "inputEPCList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "transformationID",
];

/// Parses and checks a document. All-or-nothing: any rejected event rejects the whole
/// document, with every rejected event listed.
pub fn parse_document(text: &str) -> Result<Events, EpcisError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(EpcisError::Document(format!(
            "{} bytes is more than the {MAX_DOCUMENT_BYTES}-byte limit",
            text.len()
        )));
    }
    let root: Value = serde_json::from_str(text).map_err(|e| EpcisError::NotJson(e.to_string()))?;
    let doc = root
        .as_object()
        .ok_or_else(|| EpcisError::Document("the top level is not a JSON object".into()))?;
    check_context(doc.get("@context")).map_err(EpcisError::Document)?;
    // The document's @context travels with each of its events (a single event carries
    // its own): a recorded event names its extensions' namespaces by itself, for export
    // and for its Event Hash ID.
    let mut inherited = doc.get("@context");
    let events: Vec<&Value> = match doc.get("type").and_then(Value::as_str) {
        Some("EPCISDocument") => {
            match doc.get("schemaVersion").and_then(Value::as_str) {
                Some("2.0" | "2.0.0") => {}
                other => {
                    return Err(EpcisError::Document(format!(
                        "schemaVersion is {other:?}, this importer reads 2.0"
                    )));
                }
            }
            let created = doc
                .get("creationDate")
                .and_then(Value::as_str)
                .ok_or_else(|| EpcisError::Document("creationDate is missing".into()))?;
            vocab::parse_time(created)
                .map_err(|e| EpcisError::Document(format!("creationDate: {e}")))?;
            let list = doc
                .get("epcisBody")
                .and_then(|b| b.get("eventList"))
                .and_then(Value::as_array)
                .ok_or_else(|| EpcisError::Document("epcisBody.eventList is missing".into()))?;
            list.iter().collect()
        }
        // A single event with its own @context (the "Events" form of the examples).
        Some(t) if EVENT_TYPES.iter().any(|(name, _)| *name == t) => {
            inherited = None;
            vec![&root]
        }
        other => {
            return Err(EpcisError::Document(format!(
                "type is {other:?}, expected \"EPCISDocument\""
            )));
        }
    };
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(EpcisError::Document(format!(
            "{} events; 1..={MAX_EVENTS} allowed",
            events.len()
        )));
    }
    let total = events.len();
    let mut out = Vec::with_capacity(total);
    let mut rejected = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        match check_event(event, inherited) {
            Ok(e) => out.push(e),
            Err((event_type, reasons)) => rejected.push(RejectedEvent {
                index,
                event_type,
                reasons,
            }),
        }
    }
    if rejected.is_empty() {
        Ok(out)
    } else {
        Err(EpcisError::Rejected { total, rejected })
    }
}

fn check_context(ctx: Option<&Value>) -> Result<(), String> {
    let ok = match ctx {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => {
            !items.is_empty()
                && items
                    .iter()
                    .all(|i| matches!(i, Value::String(_) | Value::Object(_)))
        }
        Some(Value::Object(_)) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("@context is missing: a JSON-LD EPCIS document must name the EPCIS context".into())
    }
}

/// Collects reasons while the event is being read.
struct Check<'a> {
    event: &'a Map<String, Value>,
    reasons: Vec<String>,
}

impl<'a> Check<'a> {
    fn fail(&mut self, reason: impl Into<String>) {
        self.reasons.push(reason.into());
    }

    fn str_field(&mut self, name: &str) -> Option<&'a str> {
        match self.event.get(name) {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(_) => {
                self.fail(format!("{name} must be a non-empty string"));
                None
            }
        }
    }

    fn id_list(&mut self, name: &str, out: &mut Vec<String>) -> usize {
        match self.event.get(name) {
            None => 0,
            Some(Value::Array(items)) => {
                let mut n = 0;
                for item in items {
                    match item.as_str() {
                        Some(s) if !s.is_empty() => {
                            if let Err(e) = crate::identifiers::check_epc(s) {
                                self.fail(format!("{name}: {e}"));
                            }
                            out.push(s.to_string());
                            n += 1;
                        }
                        _ => self.fail(format!("{name} must hold identifier strings")),
                    }
                }
                n
            }
            Some(_) => {
                self.fail(format!("{name} must be a list"));
                0
            }
        }
    }

    fn quantity_list(&mut self, name: &str, out: &mut Vec<String>) -> usize {
        let Some(v) = self.event.get(name) else {
            return 0;
        };
        let Some(items) = v.as_array() else {
            self.fail(format!("{name} must be a list"));
            return 0;
        };
        for (i, q) in items.iter().enumerate() {
            let Some(q) = q.as_object() else {
                self.fail(format!("{name}[{i}] must be an object"));
                continue;
            };
            for key in q.keys() {
                if !["epcClass", "quantity", "uom"].contains(&key.as_str()) {
                    self.fail(format!("{name}[{i}] has an unknown field {key:?}"));
                }
            }
            match q.get("epcClass").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => {
                    if let Err(e) = crate::identifiers::check_epc(c) {
                        self.fail(format!("{name}[{i}].epcClass: {e}"));
                    }
                    out.push(c.to_string())
                }
                _ => self.fail(format!("{name}[{i}].epcClass is missing")),
            }
            match q.get("quantity") {
                None => {}
                Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => {}
                Some(other) => self.fail(format!(
                    "{name}[{i}].quantity {other} is not a non-negative number"
                )),
            }
            match q.get("uom") {
                None => {}
                Some(Value::String(u)) => {
                    if let Err(e) = vocab::check_unit(u) {
                        self.fail(format!("{name}[{i}].uom: {e}"));
                    }
                    if q.get("quantity").is_none() {
                        self.fail(format!("{name}[{i}] has a uom but no quantity"));
                    }
                }
                Some(_) => self.fail(format!("{name}[{i}].uom must be a string")),
            }
        }
        items.len()
    }

    fn place(&mut self, name: &str) -> String {
        match self.event.get(name) {
            None => String::new(),
            Some(Value::Object(o)) => match o.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => {
                    self.fail(format!("{name}.id is missing"));
                    String::new()
                }
            },
            Some(_) => {
                self.fail(format!("{name} must be an object with an id"));
                String::new()
            }
        }
    }

    fn term(&mut self, name: &str, list: &[&str], web: &str, urn: &str) -> String {
        match self.str_field(name) {
            None => String::new(),
            Some(v) => match vocab::cbv_term(v, list, web, urn, name) {
                Ok(t) => t.into_string(),
                Err(e) => {
                    self.fail(e);
                    String::new()
                }
            },
        }
    }

    fn time(&mut self, what: &str, v: Option<&Value>) -> Option<i64> {
        match v {
            None => None,
            Some(Value::String(s)) => match vocab::parse_time(s) {
                Ok(ms) => Some(ms),
                Err(e) => {
                    self.fail(format!("{what}: {e}"));
                    None
                }
            },
            Some(_) => {
                self.fail(format!("{what} must be a date-time string"));
                None
            }
        }
    }
}

fn disposition(c: &mut Check<'_>, v: &str, what: &str) {
    if let Err(e) = vocab::cbv_term(
        v,
        vocab::DISPOSITIONS,
        "Disp-",
        "urn:epcglobal:cbv:disp:",
        what,
    ) {
        c.fail(e);
    }
}

fn check_parties(c: &mut Check<'_>, name: &str, key: &str) {
    let Some(v) = c.event.get(name) else { return };
    let Some(items) = v.as_array() else {
        c.fail(format!("{name} must be a list"));
        return;
    };
    for (i, p) in items.iter().enumerate() {
        let t = p.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Err(e) = vocab::cbv_term(
            t,
            vocab::SOURCE_DEST_TYPES,
            "SDT-",
            "urn:epcglobal:cbv:sdt:",
            "source/destination type",
        ) {
            c.fail(format!("{name}[{i}].type: {e}"));
        }
        if p.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
            c.fail(format!("{name}[{i}].{key} is missing"));
        }
    }
}

fn check_biz_transactions(c: &mut Check<'_>) -> usize {
    let Some(v) = c.event.get("bizTransactionList") else {
        return 0;
    };
    let Some(items) = v.as_array() else {
        c.fail("bizTransactionList must be a list");
        return 0;
    };
    for (i, t) in items.iter().enumerate() {
        if t.get("bizTransaction")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            c.fail(format!("bizTransactionList[{i}].bizTransaction is missing"));
        }
        if let Some(ty) = t.get("type") {
            let ty = ty.as_str().unwrap_or_default();
            if let Err(e) = vocab::cbv_term(
                ty,
                vocab::BIZ_TRANSACTION_TYPES,
                "BTT-",
                "urn:epcglobal:cbv:btt:",
                "business transaction type",
            ) {
                c.fail(format!("bizTransactionList[{i}].type: {e}"));
            }
        }
    }
    items.len()
}

fn namespaced_keys(c: &mut Check<'_>, what: &str, v: &Value) {
    if let Some(o) = v.as_object() {
        for key in o.keys() {
            if key != "@context" && !vocab::is_uri_or_curie(key) {
                c.fail(format!(
                    "{what} field {key:?} has no namespace (use prefix:name)"
                ));
            }
        }
    }
}

fn sensor_elements(c: &mut Check<'_>) -> Vec<pb::EpcisSensorReading> {
    let mut out = Vec::new();
    let Some(v) = c.event.get("sensorElementList") else {
        return out;
    };
    let Some(elements) = v.as_array() else {
        c.fail("sensorElementList must be a list");
        return out;
    };
    for (i, el) in elements.iter().enumerate() {
        let meta = el.get("sensorMetadata");
        let meta_time = c.time(
            &format!("sensorElementList[{i}].sensorMetadata.time"),
            meta.and_then(|m| m.get("time")),
        );
        let meta_device = meta
            .and_then(|m| m.get("deviceID"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(reports) = el.get("sensorReport").and_then(Value::as_array) else {
            c.fail(format!("sensorElementList[{i}].sensorReport is missing"));
            continue;
        };
        if reports.is_empty() {
            c.fail(format!("sensorElementList[{i}].sensorReport is empty"));
        }
        for (j, r) in reports.iter().enumerate() {
            let at = format!("sensorElementList[{i}].sensorReport[{j}]");
            let Some(r) = r.as_object() else {
                c.fail(format!("{at} must be an object"));
                continue;
            };
            let kind = match r.get("type") {
                None => String::new(),
                Some(Value::String(t)) if !t.is_empty() => t.clone(),
                Some(_) => {
                    c.fail(format!("{at}.type must be a non-empty string"));
                    String::new()
                }
            };
            let uom = match r.get("uom") {
                None => String::new(),
                Some(Value::String(u)) => {
                    if let Err(e) = vocab::check_unit(u) {
                        c.fail(format!("{at}.uom: {e}"));
                    }
                    if let Some(allowed) = vocab::units_for_type(&kind)
                        && !allowed.contains(&u.as_str())
                    {
                        c.fail(format!(
                            "{at}: a {kind} is measured in {}, not {u:?}",
                            allowed.join(", ")
                        ));
                    }
                    u.clone()
                }
                Some(_) => {
                    c.fail(format!("{at}.uom must be a string"));
                    String::new()
                }
            };
            let mut number = |name: &str| -> Option<i64> {
                match r.get(name) {
                    None => None,
                    Some(Value::Number(n)) => match vocab::micro(n) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            c.fail(format!("{at}.{name}: {e}"));
                            None
                        }
                    },
                    Some(other) => {
                        c.fail(format!("{at}.{name} {other} is not a number"));
                        None
                    }
                }
            };
            let (value, min, max, mean) = (
                number("value"),
                number("minValue"),
                number("maxValue"),
                number("meanValue"),
            );
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                c.fail(format!("{at}: minValue is above maxValue"));
            }
            if kind.is_empty() && !r.contains_key("exception") {
                c.fail(format!("{at}.type is missing"));
            }
            let exception = match r.get("exception").and_then(Value::as_str) {
                None => String::new(),
                Some(e) => {
                    let bare = e
                        .trim_start_matches("gs1:")
                        .trim_start_matches("https://ref.gs1.org/voc/");
                    if !["ALARM_CONDITION", "ERROR_CONDITION"].contains(&bare) {
                        c.fail(format!(
                            "{at}.exception {e:?} is not ALARM_CONDITION or ERROR_CONDITION"
                        ));
                    }
                    bare.to_string()
                }
            };
            let time = c.time(&format!("{at}.time"), r.get("time")).or(meta_time);
            let device = r
                .get("deviceID")
                .and_then(Value::as_str)
                .unwrap_or(meta_device);
            out.push(pb::EpcisSensorReading {
                r#type: kind,
                uom,
                value_micro: value,
                min_micro: min,
                max_micro: max,
                mean_micro: mean,
                time_ms: time.unwrap_or(0),
                device_id: device.to_string(),
                exception,
            });
        }
    }
    out
}

/// The event with the document's `@context` before its own (JSON-LD applies an
/// object's own context on top of the one it inherits); an item the event's own context
/// already has is not repeated, so an exported event re-imports unchanged.
fn with_context(event: &Map<String, Value>, inherited: Option<&Value>) -> Value {
    let Some(inherited) = inherited else {
        return Value::Object(event.clone());
    };
    let as_list = |v: &Value| match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let own = event.get("@context").map(as_list).unwrap_or_default();
    let mut context: Vec<Value> = as_list(inherited)
        .into_iter()
        .filter(|item| !own.contains(item))
        .collect();
    context.extend(own);
    let mut out = Map::with_capacity(event.len() + 1);
    out.insert("@context".into(), Value::Array(context));
    for (k, v) in event {
        if k != "@context" {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// Checks one event; on failure, its type (if readable) and every reason.
fn check_event(
    v: &Value,
    inherited: Option<&Value>,
) -> Result<pb::RecordEpcisEvent, (String, Vec<String>)> {
    let Some(event) = v.as_object() else {
        return Err((String::new(), vec!["the event is not a JSON object".into()]));
    };
    let mut c = Check {
        event,
        reasons: Vec::new(),
    };
    let type_name = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let event_type = EVENT_TYPES
        .iter()
        .find(|(n, _)| *n == type_name)
        .map(|(_, t)| *t);
    if event_type.is_none() {
        c.fail(format!("type {type_name:?} is not an EPCIS 2.0 event type"));
    }
    for key in event.keys() {
        if !STANDARD_FIELDS.contains(&key.as_str()) && !vocab::is_uri_or_curie(key) {
            c.fail(format!(
                "field {key:?} is neither an EPCIS field nor a namespaced extension"
            ));
        }
    }
    let event_time = match event.get("eventTime") {
        None => {
            c.fail("eventTime is missing");
            None
        }
        some => c.time("eventTime", some),
    };
    let offset = match c.str_field("eventTimeZoneOffset") {
        None => {
            c.fail("eventTimeZoneOffset is missing");
            0
        }
        Some(o) => vocab::parse_offset(o).unwrap_or_else(|e| {
            c.fail(format!("eventTimeZoneOffset: {e}"));
            0
        }),
    };
    c.time("recordTime", event.get("recordTime"));
    let action = c.str_field("action").unwrap_or_default().to_string();
    match (event_type, action.as_str()) {
        (Some(pb::EpcisEventType::Transformation), "") => {}
        (Some(pb::EpcisEventType::Transformation), _) => {
            c.fail("a TransformationEvent has no action")
        }
        (_, "ADD" | "OBSERVE" | "DELETE") => {}
        (_, "") => c.fail("action is missing"),
        (_, other) => c.fail(format!("action {other:?} is not ADD, OBSERVE or DELETE")),
    }
    let biz_step = c.term(
        "bizStep",
        vocab::BIZ_STEPS,
        "BizStep-",
        "urn:epcglobal:cbv:bizstep:",
    );
    let disp = c.term(
        "disposition",
        vocab::DISPOSITIONS,
        "Disp-",
        "urn:epcglobal:cbv:disp:",
    );
    if let Some(p) = event.get("persistentDisposition") {
        for key in ["set", "unset"] {
            for d in p.get(key).and_then(Value::as_array).into_iter().flatten() {
                disposition(
                    &mut c,
                    d.as_str().unwrap_or_default(),
                    "persistentDisposition",
                );
            }
        }
    }
    let read_point = c.place("readPoint");
    let biz_location = c.place("bizLocation");
    check_parties(&mut c, "sourceList", "source");
    check_parties(&mut c, "destinationList", "destination");
    let biz_transactions = check_biz_transactions(&mut c);
    if let Some(ilmd) = event.get("ilmd") {
        if ilmd.is_object() {
            namespaced_keys(&mut c, "ilmd", ilmd);
        } else {
            c.fail("ilmd must be an object");
        }
    }
    match event.get("certificationInfo") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(_) => c.fail("certificationInfo must be a URI string or a list of them"),
    }
    if let Some(e) = event.get("errorDeclaration") {
        let t = e.get("declarationTime");
        if t.is_none() {
            c.fail("errorDeclaration.declarationTime is missing");
        }
        c.time("errorDeclaration.declarationTime", t);
        if let Some(reason) = e.get("reason").and_then(Value::as_str) {
            let ok = ["did_not_occur", "incorrect_data"].iter().any(|r| {
                reason == *r
                    || reason.ends_with(&format!("ER-{r}"))
                    || reason.ends_with(&format!(":{r}"))
            }) || vocab::is_uri_or_curie(reason);
            if !ok {
                c.fail(format!(
                    "errorDeclaration.reason {reason:?} is not a CBV error reason"
                ));
            }
        }
    }
    let mut epcs = Vec::new();
    let parent = c.str_field("parentID").map(str::to_string);
    if let Some(p) = &parent {
        if let Err(e) = crate::identifiers::check_epc(p) {
            c.fail(format!("parentID: {e}"));
        }
        epcs.push(p.clone());
    }
    let n_epc = c.id_list("epcList", &mut epcs);
    let n_qty = c.quantity_list("quantityList", &mut epcs);
    let n_child = c.id_list("childEPCs", &mut epcs);
    let n_child_qty = c.quantity_list("childQuantityList", &mut epcs);
    let n_in =
        c.id_list("inputEPCList", &mut epcs) + c.quantity_list("inputQuantityList", &mut epcs);
    let n_out =
        c.id_list("outputEPCList", &mut epcs) + c.quantity_list("outputQuantityList", &mut epcs);
    match event_type {
        // The schema requires one of the lists to be present, not non-empty: a
        // sensor-only observation of a place may name no object.
        Some(pb::EpcisEventType::Object)
            if !event.contains_key("epcList") && !event.contains_key("quantityList") =>
        {
            c.fail("an ObjectEvent needs an epcList or a quantityList")
        }
        Some(pb::EpcisEventType::Aggregation | pb::EpcisEventType::Association) => {
            if parent.is_none() && action != "OBSERVE" {
                c.fail(format!(
                    "a {type_name} with action {action} needs a parentID"
                ));
            }
            if n_child + n_child_qty == 0 && action != "DELETE" {
                c.fail(format!(
                    "a {type_name} needs childEPCs or childQuantityList"
                ));
            }
        }
        Some(pb::EpcisEventType::Transaction) => {
            if biz_transactions == 0 {
                c.fail("a TransactionEvent needs a non-empty bizTransactionList");
            }
            if n_epc + n_qty == 0 && parent.is_none() {
                c.fail("a TransactionEvent needs an epcList, a quantityList or a parentID");
            }
        }
        Some(pb::EpcisEventType::Transformation) if n_in + n_out == 0 => {
            c.fail("a TransformationEvent needs inputs or outputs")
        }
        _ => {}
    }
    let sensor_readings = sensor_elements(&mut c);
    let event_id = c.str_field("eventID").unwrap_or_default().to_string();
    let event_json = serde_json::to_string(&with_context(event, inherited)).unwrap_or_default();
    if event_json.len() > crate::tx::MAX_EPCIS_JSON_BYTES {
        c.fail(format!(
            "the event is {} bytes of JSON, at most {} allowed",
            event_json.len(),
            crate::tx::MAX_EPCIS_JSON_BYTES
        ));
    }
    if epcs.len() > crate::tx::MAX_EPCIS_EPCS {
        c.fail(format!(
            "the event names {} identifiers, at most {} allowed",
            epcs.len(),
            crate::tx::MAX_EPCIS_EPCS
        ));
    }
    if !c.reasons.is_empty() {
        return Err((type_name.to_string(), c.reasons));
    }
    Ok(pb::RecordEpcisEvent {
        event_type: event_type.map_or(0, |t| t as i32),
        event_id,
        event_time_ms: event_time.unwrap_or(0),
        event_time_zone_offset_minutes: offset,
        action,
        biz_step,
        disposition: disp,
        read_point,
        biz_location,
        epcs,
        sensor_readings,
        event_json,
    })
}
