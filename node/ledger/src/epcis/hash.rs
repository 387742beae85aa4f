//! The EPCIS Event Hash ID of GS1's CBV 2.0: one identity per event, whatever its
//! serialisation (`ni:///sha-256;<hex>?ver=CBV2.0`, RFC 6920).
//!
//! An event's *pre-hash string* concatenates its fields without separators, `key=value`,
//! in a canonical property order; list members, and the lists and extensions that the
//! order does not place, are sorted by their text. Values are canonicalised first: times
//! to UTC with exactly three decimals (rounded half up), numbers without trailing zeros,
//! EPC URIs and Digital Link URIs to constrained canonical Digital Link URIs ([`super::dl`]),
//! CBV URNs, bare CBV words and CURIEs to their web URIs, extension keys to
//! `{namespace}local`. `eventID`, `recordTime`, `errorDeclaration` and comments stay out,
//! so an event keeps its hash when it is recorded, re-serialised or declared in error.
//!
//! Where the standard's prose and GS1's reference implementation differ, the reference
//! implementation's test vectors decide (`tests/interop.rs` reproduces every one):
//! `certificationInfo` follows `eventTimeZoneOffset`, `parentID` precedes `epcList`, a
//! business transaction or source/destination puts its type first, and the business
//! transaction, source and destination lists, `ilmd` and the event's own extensions come
//! last, sorted together by their text. Booleans are written `true` / `false`, as in XML,
//! so that the JSON and XML forms of one event agree.
//!
//! Consensus-critical: on a chain whose genesis has `EventIdentity::Cbv2Hash`, every node
//! computes this hash to decide whether an event is a duplicate, so a change of its output
//! (a fix included) changes what such a chain records. It needs a new genesis rule, and
//! chains keep the rule they were made with.

use std::{cell::Cell, collections::BTreeMap};

use serde_json::{Map, Value};

use super::{dl, export, vocab};

/// The version tag of the algorithm implemented here.
pub const VERSION: &str = "CBV2.0";

/// What the hash of an event reads besides the event: the namespace prefixes in force
/// (from the JSON-LD `@context`), and fields to leave out.
#[derive(Debug, Clone)]
pub struct Context {
    namespaces: BTreeMap<String, String>,
    ignore: Vec<String>,
}

/// The prefixes the EPCIS 2.0 JSON-LD context itself defines.
const STANDARD_PREFIXES: &[(&str, &str)] = &[
    ("epcis", "https://ref.gs1.org/epcis/"),
    ("cbv", "https://ref.gs1.org/cbv/"),
    ("cbvmda", "urn:epcglobal:cbv:mda:"),
    ("gs1", "https://gs1.org/voc/"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("dcterms", "http://purl.org/dc/terms/"),
];

impl Default for Context {
    fn default() -> Self {
        Self {
            namespaces: STANDARD_PREFIXES
                .iter()
                .map(|(p, ns)| (p.to_string(), ns.to_string()))
                .collect(),
            ignore: Vec::new(),
        }
    }
}

impl Context {
    /// The standard prefixes, then those a JSON-LD `@context` (a string, an object or a
    /// list of them) defines, later definitions winning.
    pub fn with_jsonld(mut self, context: Option<&Value>) -> Self {
        let items: Vec<&Value> = match context {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(other) => vec![other],
            None => Vec::new(),
        };
        for item in items {
            let Some(defs) = item.as_object() else {
                continue;
            };
            for (prefix, def) in defs {
                let ns = match def {
                    Value::String(s) => s.as_str(),
                    Value::Object(o) => match o.get("@id").and_then(Value::as_str) {
                        Some(id) => id,
                        None => continue,
                    },
                    _ => continue,
                };
                if !prefix.starts_with('@') && !ns.starts_with('@') {
                    self.namespaces.insert(prefix.clone(), ns.to_string());
                }
            }
        }
        self
    }

    /// Leaves these top-level fields (as written, e.g. `example:captureID`) out of the hash.
    pub fn ignoring(mut self, fields: impl IntoIterator<Item = String>) -> Self {
        self.ignore.extend(fields);
        self
    }

    /// `prefix:local` with a known prefix → the namespace and the local name.
    fn expand<'a>(&'a self, text: &'a str) -> Option<(&'a str, &'a str)> {
        let (prefix, local) = text.split_once(':')?;
        self.namespaces.get(prefix).map(|ns| (ns.as_str(), local))
    }

    fn key(&self, key: &str) -> String {
        match self.expand(key) {
            Some((ns, local)) => format!("{{{ns}}}{local}"),
            None => key.to_string(),
        }
    }
}

/// Why an event has no hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The event is not a JSON object.
    #[error("an EPCIS event must be a JSON object")]
    NotAnObject,
    /// The event has no `type`.
    #[error("an EPCIS event needs a type")]
    NoType,
    /// The recorded JSON does not parse.
    #[error("the event is not JSON: {0}")]
    NotJson(String),
    /// The pre-hash string would be longer than [`MAX_PRE_HASH_BYTES`].
    #[error("the event's pre-hash string is longer than {MAX_PRE_HASH_BYTES} bytes")]
    TooLarge,
}

/// The event's Event Hash ID, `ni:///sha-256;<hex>?ver=CBV2.0`.
pub fn event_hash(event: &Value, ctx: &Context) -> Result<String, HashError> {
    Ok(ni(&pre_hash(event, ctx)?))
}

/// The Event Hash ID of an event as the ledger records it: one JSON object whose own
/// `@context` (the document's, copied in at import) gives its prefixes.
pub fn recorded_event_hash(event_json: &str) -> Result<String, HashError> {
    let event: Value =
        serde_json::from_str(event_json).map_err(|e| HashError::NotJson(e.to_string()))?;
    recorded_event_hash_of(&event)
}

/// [`recorded_event_hash`] of the event already parsed.
pub fn recorded_event_hash_of(event: &Value) -> Result<String, HashError> {
    let ctx = Context::default().with_jsonld(event.get("@context"));
    event_hash(event, &ctx)
}

/// The `ni` URI (RFC 6920) of a pre-hash string: SHA-256, hex, and the CBV version.
pub fn ni(pre_hash: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, pre_hash.as_bytes());
    format!(
        "ni:///sha-256;{}?ver={VERSION}",
        hex::encode(digest.as_ref())
    )
}

/// Checks that `text` is an Event Hash ID as this ledger computes them
/// (`ni:///sha-256;` 64 lower-case hex digits `?ver=CBV2.0`); the error says why not.
pub fn check_hash_id(text: &str) -> Result<(), String> {
    let hex = text
        .strip_prefix("ni:///sha-256;")
        .and_then(|rest| rest.strip_suffix(&format!("?ver={VERSION}")))
        .ok_or_else(|| {
            format!("{text:?} is not an EPCIS Event Hash ID (ni:///sha-256;<hex>?ver={VERSION})")
        })?;
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(format!(
            "{text:?}: the digest must be 64 lower-case hex digits (SHA-256)"
        ))
    }
}

/// The canonical pre-hash string of an event.
pub fn pre_hash(event: &Value, ctx: &Context) -> Result<String, HashError> {
    let event = event.as_object().ok_or(HashError::NotAnObject)?;
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or(HashError::NoType)?;
    let mut out = format!("eventType={event_type}");
    let r = Render {
        ctx,
        spent: Cell::new(0),
    };
    for (name, kind) in TOP {
        if let Some(v) = event.get(*name) {
            out.push_str(&r.field(name, kind, v));
        }
    }
    let mut rest: Vec<String> = Vec::new();
    for (key, v) in event {
        if IGNORED_TOP.contains(&key.as_str())
            || ctx.ignore.iter().any(|i| i == key)
            || TOP.iter().any(|(name, _)| *name == key.as_str())
        {
            continue;
        }
        rest.extend(match key.as_str() {
            "bizTransactionList" => r.typed_list(
                key,
                "bizTransaction",
                v,
                vocab::BIZ_TRANSACTION_TYPES,
                "BTT-",
            ),
            "sourceList" => r.typed_list(key, "source", v, vocab::SOURCE_DEST_TYPES, "SDT-"),
            "destinationList" => {
                r.typed_list(key, "destination", v, vocab::SOURCE_DEST_TYPES, "SDT-")
            }
            _ => r.generic(key, v),
        });
    }
    rest.sort();
    out.extend(rest);
    if r.over() {
        return Err(HashError::TooLarge);
    }
    Ok(out)
}

/// The longest pre-hash string computed. An event of at most 32 KiB of JSON makes far
/// less; the bound stops one whose long namespace or key is repeated for each member of
/// a long list from costing every node a large allocation.
pub const MAX_PRE_HASH_BYTES: usize = 1 << 20;

/// Top-level fields that never enter the hash.
const IGNORED_TOP: &[&str] = &["type", "eventID", "recordTime", "errorDeclaration"];

/// Fields left out at every level: JSON-LD's own, and comments.
fn skipped(key: &str) -> bool {
    matches!(key, "@context" | "#text" | "comment" | "rdfs:comment")
}

/// How a field of the canonical order is written.
enum Kind {
    /// `name=value` (each member of a list, sorted).
    Value,
    /// A CBV vocabulary value: a bare word of `terms` becomes `prefix` + word.
    Term(&'static [&'static str], &'static str),
    /// `name` then `epc=...` for each member, sorted.
    Ids,
    /// `name` then `quantityElement...` for each member, sorted.
    Quantities,
    /// `name`, the fields in their order, then the extensions sorted.
    Object(&'static [(&'static str, Kind)]),
    /// `name` then, for each member, `item` and its fields, sorted.
    List(&'static str, &'static [(&'static str, Kind)]),
    /// Like `Object`, for each member of a list, under the field's own name, sorted.
    Repeated(&'static [(&'static str, Kind)]),
}

const QUANTITY: &[(&str, Kind)] = &[
    ("epcClass", Kind::Value),
    ("quantity", Kind::Value),
    ("uom", Kind::Value),
];
const PLACE: &[(&str, Kind)] = &[("id", Kind::Value)];
const DISPOSITION: Kind = Kind::Term(vocab::DISPOSITIONS, "https://ref.gs1.org/cbv/Disp-");
const PERSISTENT: &[(&str, Kind)] = &[("set", DISPOSITION), ("unset", DISPOSITION)];
const SENSOR_METADATA: &[(&str, Kind)] = &[
    ("time", Kind::Value),
    ("startTime", Kind::Value),
    ("endTime", Kind::Value),
    ("deviceID", Kind::Value),
    ("deviceMetadata", Kind::Value),
    ("rawData", Kind::Value),
    ("dataProcessingMethod", Kind::Value),
    ("bizRules", Kind::Value),
];
const SENSOR_REPORT: &[(&str, Kind)] = &[
    (
        "type",
        Kind::Term(MEASUREMENT_TYPES, "https://gs1.org/voc/"),
    ),
    (
        "exception",
        Kind::Term(
            &["ALARM_CONDITION", "ERROR_CONDITION"],
            "https://gs1.org/voc/",
        ),
    ),
    ("deviceID", Kind::Value),
    ("deviceMetadata", Kind::Value),
    ("rawData", Kind::Value),
    ("dataProcessingMethod", Kind::Value),
    ("time", Kind::Value),
    ("microorganism", Kind::Value),
    ("chemicalSubstance", Kind::Value),
    ("value", Kind::Value),
    (
        "component",
        Kind::Term(COMPONENTS, "https://ref.gs1.org/cbv/Comp-"),
    ),
    ("stringValue", Kind::Value),
    ("booleanValue", Kind::Value),
    ("hexBinaryValue", Kind::Value),
    ("uriValue", Kind::Value),
    ("minValue", Kind::Value),
    ("maxValue", Kind::Value),
    ("meanValue", Kind::Value),
    ("sDev", Kind::Value),
    ("percRank", Kind::Value),
    ("percValue", Kind::Value),
    ("uom", Kind::Value),
    ("coordinateReferenceSystem", Kind::Value),
];
const SENSOR_ELEMENT: &[(&str, Kind)] = &[
    ("sensorMetadata", Kind::Object(SENSOR_METADATA)),
    ("sensorReport", Kind::Repeated(SENSOR_REPORT)),
];

/// The canonical order of an event's fields (the lists of business transactions,
/// sources and destinations are sorted with the extensions, after these).
const TOP: &[(&str, Kind)] = &[
    ("eventTime", Kind::Value),
    ("eventTimeZoneOffset", Kind::Value),
    ("certificationInfo", Kind::Value),
    ("parentID", Kind::Value),
    ("epcList", Kind::Ids),
    ("inputEPCList", Kind::Ids),
    ("childEPCs", Kind::Ids),
    ("quantityList", Kind::Quantities),
    ("childQuantityList", Kind::Quantities),
    ("inputQuantityList", Kind::Quantities),
    ("outputEPCList", Kind::Ids),
    ("outputQuantityList", Kind::Quantities),
    ("action", Kind::Value),
    ("transformationID", Kind::Value),
    (
        "bizStep",
        Kind::Term(vocab::BIZ_STEPS, "https://ref.gs1.org/cbv/BizStep-"),
    ),
    ("disposition", DISPOSITION),
    ("persistentDisposition", Kind::Object(PERSISTENT)),
    ("readPoint", Kind::Object(PLACE)),
    ("bizLocation", Kind::Object(PLACE)),
    (
        "sensorElementList",
        Kind::List("sensorElement", SENSOR_ELEMENT),
    ),
];

/// The measurement types of the EPCIS 2.0 context (`gs1:` terms).
const MEASUREMENT_TYPES: &[&str] = &[
    "AbsoluteHumidity",
    "AbsorbedDose",
    "AbsorbedDoseRate",
    "Acceleration",
    "Altitude",
    "AmountOfSubstance",
    "AmountOfSubstancePerUnitVolume",
    "Angle",
    "AngularAcceleration",
    "AngularMomentum",
    "AngularVelocity",
    "Area",
    "Capacitance",
    "Conductance",
    "Conductivity",
    "Count",
    "Density",
    "Dimensionless",
    "DoseEquivalent",
    "DoseEquivalentRate",
    "DynamicViscosity",
    "ElectricCharge",
    "ElectricCurrent",
    "ElectricCurrentDensity",
    "ElectricFieldStrength",
    "Energy",
    "Exposure",
    "Force",
    "Frequency",
    "Illuminance",
    "Inductance",
    "Irradiance",
    "KinematicViscosity",
    "Length",
    "LinearMomentum",
    "Luminance",
    "LuminousFlux",
    "LuminousIntensity",
    "MagneticFlux",
    "MagneticFluxDensity",
    "MagneticVectorPotential",
    "Mass",
    "MassConcentration",
    "MassFlowRate",
    "MassPerAreaTime",
    "MemoryCapacity",
    "MolalityOfSolute",
    "MolarEnergy",
    "MolarMass",
    "MolarVolume",
    "Power",
    "Pressure",
    "RadiantFlux",
    "RadiantIntensity",
    "Radioactivity",
    "RelativeHumidity",
    "Resistance",
    "Resistivity",
    "SolidAngle",
    "SpecificVolume",
    "Speed",
    "SurfaceDensity",
    "SurfaceTension",
    "Temperature",
    "Time",
    "Torque",
    "Voltage",
    "Volume",
    "VolumeFlowRate",
    "VolumeFraction",
    "VolumetricFlux",
    "Wavenumber",
];

/// The sensor report components of CBV 2.0 (`cbv:Comp-` terms).
const COMPONENTS: &[&str] = &[
    "altitude",
    "axial_distance",
    "azimuth",
    "easting",
    "elevation_angle",
    "height",
    "latitude",
    "longitude",
    "northing",
    "polar_angle",
    "spherical_radius",
    "x",
    "y",
    "z",
];

struct Render<'a> {
    ctx: &'a Context,
    /// Bytes of text made so far; rendering stops adding members past the limit.
    spent: Cell<usize>,
}

impl Render<'_> {
    /// Counts a piece of the pre-hash string as it is made (each leaf once; what wraps
    /// members adds only their names).
    fn made(&self, text: String) -> String {
        self.count(text.len());
        text
    }

    fn count(&self, bytes: usize) {
        self.spent.set(self.spent.get().saturating_add(bytes));
    }

    fn over(&self) -> bool {
        self.spent.get() > MAX_PRE_HASH_BYTES
    }

    /// A JSON scalar as the text the hash reads: prefixes expanded.
    fn scalar(&self, v: &Value) -> Option<String> {
        Some(match v {
            Value::String(s) => match self.ctx.expand(s) {
                Some((ns, local)) => format!("{ns}{local}"),
                None => s.clone(),
            },
            Value::Number(n) => number_text(n),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    /// One field of the canonical order; empty if it holds nothing.
    fn field(&self, name: &str, kind: &Kind, v: &Value) -> String {
        match kind {
            Kind::Value | Kind::Term(..) => {
                let terms = match kind {
                    Kind::Term(terms, prefix) => Some((*terms, *prefix)),
                    _ => None,
                };
                if members(v).any(|m| m.is_object() || m.is_array()) {
                    // Not the shape the standard gives this field: written generically,
                    // so that nothing in it escapes the hash.
                    return self.generic(name, v).concat();
                }
                let mut items: Vec<String> = members(v)
                    .filter_map(|m| {
                        let text = match (self.scalar(m)?, terms) {
                            (s, Some((terms, prefix))) if terms.contains(&s.trim()) => {
                                format!("{prefix}{}", s.trim())
                            }
                            (s, _) => s,
                        };
                        let value = canonical_value(name, &text);
                        (!value.is_empty() && !self.over())
                            .then(|| self.made(format!("{name}={value}")))
                    })
                    .collect();
                items.sort();
                items.concat()
            }
            Kind::Ids => self.list(name, v, |m| {
                let value = canonical_value("epc", &self.scalar(m)?);
                (!value.is_empty()).then(|| self.made(format!("epc={value}")))
            }),
            Kind::Quantities => self.list(name, v, |m| {
                let inner = self.object(m.as_object()?, QUANTITY);
                (!inner.is_empty()).then(|| format!("quantityElement{inner}"))
            }),
            Kind::Object(fields) => match v.as_object() {
                Some(o) => {
                    let inner = self.object(o, fields);
                    if inner.is_empty() {
                        String::new()
                    } else {
                        format!("{name}{inner}")
                    }
                }
                None => self.generic(name, v).concat(),
            },
            Kind::List(item, fields) => self.list(name, v, |m| {
                let inner = self.object(m.as_object()?, fields);
                (!inner.is_empty()).then(|| format!("{item}{inner}"))
            }),
            Kind::Repeated(fields) => {
                let mut items: Vec<String> = members(v)
                    .take_while(|_| !self.over())
                    .filter_map(|m| {
                        let inner = self.object(m.as_object()?, fields);
                        (!inner.is_empty()).then(|| format!("{name}{inner}"))
                    })
                    .collect();
                items.sort();
                items.concat()
            }
        }
    }

    /// `name` and its members' texts, sorted; empty if no member has one. A member of
    /// an unexpected shape is written generically.
    fn list(&self, name: &str, v: &Value, item: impl Fn(&Value) -> Option<String>) -> String {
        let mut items: Vec<String> = Vec::new();
        for m in members(v) {
            if self.over() {
                break;
            }
            match item(m) {
                Some(text) => items.push(text),
                None if m.is_null() || m.as_str().is_some_and(|s| s.trim().is_empty()) => {}
                None => items.extend(self.generic(name, m)),
            }
        }
        if items.is_empty() {
            return String::new();
        }
        items.sort();
        format!("{name}{}", items.concat())
    }

    /// An object's fields in their order, then every other field (its extensions) sorted.
    fn object(&self, o: &Map<String, Value>, fields: &[(&str, Kind)]) -> String {
        let mut out = String::new();
        for (name, kind) in fields {
            if let Some(v) = o.get(*name) {
                out.push_str(&self.field(name, kind, v));
            }
        }
        let mut rest: Vec<String> = o
            .iter()
            .filter(|(k, _)| !skipped(k) && !fields.iter().any(|(name, _)| *name == k.as_str()))
            .take_while(|_| !self.over())
            .flat_map(|(k, v)| self.generic(k, v))
            .collect();
        rest.sort();
        out.extend(rest);
        out
    }

    /// A business transaction, source or destination list: each member `type=...` then
    /// `<value>=...`, members sorted.
    fn typed_list(
        &self,
        name: &str,
        value_key: &str,
        v: &Value,
        terms: &'static [&'static str],
        prefix: &str,
    ) -> Vec<String> {
        let mut items = Vec::new();
        for m in members(v) {
            if self.over() {
                break;
            }
            let Some(o) = m.as_object() else {
                items.extend(self.generic(name, m));
                continue;
            };
            let mut text = String::new();
            if let Some(t) = o.get("type").and_then(|t| self.scalar(t)) {
                let t = t.trim();
                let t = if terms.contains(&t) {
                    format!("https://ref.gs1.org/cbv/{prefix}{t}")
                } else {
                    t.to_string()
                };
                text.push_str(&format!("type={}", canonical_value("type", &t)));
            }
            if let Some(id) = o.get(value_key).and_then(|t| self.scalar(t)) {
                text.push_str(&format!("{value_key}={}", canonical_value(value_key, &id)));
            }
            let mut rest: Vec<String> = o
                .iter()
                .filter(|(k, _)| !skipped(k) && *k != "type" && *k != value_key)
                .flat_map(|(k, v)| self.generic(k, v))
                .collect();
            rest.sort();
            self.count(text.len());
            text.extend(rest);
            items.push(text);
        }
        if items.is_empty() {
            return Vec::new();
        }
        items.sort();
        vec![format!("{name}{}", items.concat())]
    }

    /// A field outside the canonical order (an extension, `ilmd`): `{ns}key=value`, or
    /// the key followed by its fields sorted; a list gives one entry per member.
    fn generic(&self, key: &str, v: &Value) -> Vec<String> {
        if skipped(key) {
            return Vec::new();
        }
        if self.over() {
            return Vec::new();
        }
        match v {
            Value::Array(items) => items
                .iter()
                .take_while(|_| !self.over())
                .flat_map(|m| self.generic(key, m))
                .collect(),
            Value::Object(o) => {
                let mut inner: Vec<String> = o
                    .iter()
                    .take_while(|_| !self.over())
                    .flat_map(|(k, v)| self.generic(k, v))
                    .collect();
                inner.sort();
                let key = self.made(self.ctx.key(key));
                vec![format!("{key}{}", inner.concat())]
            }
            scalar => {
                let text = self.scalar(scalar).unwrap_or_default();
                let text = text.trim();
                if text.is_empty() {
                    vec![self.made(self.ctx.key(key))]
                } else {
                    vec![self.made(format!("{}={}", self.ctx.key(key), canonize(text)))]
                }
            }
        }
    }
}

/// The members of a list, or the value itself.
fn members(v: &Value) -> impl Iterator<Item = &Value> {
    match v {
        Value::Array(items) => items.iter(),
        other => std::slice::from_ref(other).iter(),
    }
}

/// A value of a field of the canonical order: times normalised, others canonised.
fn canonical_value(name: &str, text: &str) -> String {
    let text = text.trim();
    let lower = name.to_ascii_lowercase();
    if lower.contains("time") && !lower.contains("offset") {
        utc_millis(text).unwrap_or_else(|| text.to_string())
    } else {
        canonize(text)
    }
}

/// CBV URNs to web URIs, numbers without trailing zeros, GS1 keys to Digital Link.
fn canonize(text: &str) -> String {
    let mut s = text.to_string();
    for (urn, web) in [
        (
            "urn:epcglobal:cbv:bizstep:",
            "https://ref.gs1.org/cbv/BizStep-",
        ),
        ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
        ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
        ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
        ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
    ] {
        if s.contains(urn) {
            s = s.replace(urn, web);
        }
    }
    if let Some(n) = numeric(&s) {
        return n;
    }
    dl::canonical(&s).unwrap_or(s)
}

/// A decimal number's shortest text: `1.0` → `1`, `0.50` → `0.5`, `1e-05` stays
/// scientific as it is short; anything that is not a finite number → `None`.
fn numeric(s: &str) -> Option<String> {
    let looks_numeric = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && s.bytes().any(|b| b.is_ascii_digit());
    if !looks_numeric {
        return None;
    }
    let x: f64 = s.parse().ok()?;
    x.is_finite().then(|| float_text(x))
}

/// A JSON number's text as the reference reads it: integers as written, others as the
/// shortest decimal that reads back as the same double.
fn number_text(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        n.as_f64().map_or_else(|| n.to_string(), float_text)
    }
}

/// The shortest text of a finite double: an integral value in full (`600`, `1e20` →
/// `100000000000000000000`), else the shortest round-trip digits, in scientific notation
/// below 1e-4 (`1e-05`, `2.5e-07`) as is usual for such numbers.
fn float_text(x: f64) -> String {
    if x == x.trunc() {
        let s = format!("{x:.0}");
        return if s == "-0" { "0".into() } else { s };
    }
    if x.abs() < 1e-4 {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    x.to_string()
}

/// An xsd:dateTime as UTC with milliseconds, the fourth decimal rounding half up.
fn utc_millis(text: &str) -> Option<String> {
    let (secs, fraction) = vocab::parse_instant(text).ok()?;
    let digit = |i: usize| i64::from(fraction.as_bytes().get(i).map_or(0, |b| b - b'0'));
    let mut ms = digit(0) * 100 + digit(1) * 10 + digit(2);
    if digit(3) >= 5 {
        ms += 1;
    }
    Some(export::time(secs.checked_mul(1000)?.checked_add(ms)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pre(v: Value) -> String {
        pre_hash(&v, &Context::default()).unwrap()
    }

    #[test]
    fn the_reference_single_event() {
        // GS1's reference implementation, epcisDocWithSingleEvent.
        let event = json!({
            "type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping",
            "disposition": "in_transit",
            "epcList": ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"],
            "eventTime": "2022-02-16T20:33:31.116000-06:00", "eventTimeZoneOffset": "-06:00",
            "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
            "bizTransactionList": [{"type": "po", "bizTransaction": "http://transaction.acme.com/po/12345678"}]
        });
        assert_eq!(
            pre(event.clone()),
            "eventType=ObjectEventeventTime=2022-02-17T02:33:31.116ZeventTimeZoneOffset=-06:00\
             epcListepc=https://id.gs1.org/01/10614141073464/21/2017epc=https://id.gs1.org/01/10614141073464/21/2018\
             action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-shipping\
             disposition=https://ref.gs1.org/cbv/Disp-in_transit\
             readPointid=https://id.gs1.org/414/0614141073467/254/1234\
             bizTransactionListtype=https://ref.gs1.org/cbv/BTT-pobizTransaction=http://transaction.acme.com/po/12345678"
        );
        assert_eq!(
            event_hash(&event, &Context::default()).unwrap(),
            "ni:///sha-256;ffa491b16867e34a7791a8d5389d826afc24e63a121026b6a4004ace38631b4b?ver=CBV2.0"
        );
    }

    #[test]
    fn two_serialisations_of_one_event_are_one_event() {
        let a = json!({
            "type": "ObjectEvent", "eventTime": "2024-03-02T09:00:00.5+01:00",
            "eventTimeZoneOffset": "+01:00", "action": "OBSERVE",
            "epcList": ["urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2018"],
            "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
            "example:temp": 4.50, "eventID": "urn:uuid:1", "recordTime": "2024-03-02T09:00:01Z",
            "@context": [{"example": "https://ns.example.com/"}]
        });
        let b = json!({
            "action": "OBSERVE", "bizStep": "shipping",
            "epcList": ["urn:epc:id:sgtin:0614141.107346.2018", "https://example.org/01/10614141073464/21/2017?x=1"],
            "https://ns.example.com/temp": 4.5,
            "eventTimeZoneOffset": "+01:00", "eventTime": "2024-03-02T08:00:00.500Z",
            "type": "ObjectEvent"
        });
        let ctx_a = Context::default().with_jsonld(a.get("@context"));
        // A full-URI key is a different key from a prefixed one for the reference
        // implementation; with the same spelling, the hashes agree.
        let mut b = b;
        b["example:temp"] = json!(4.5);
        b.as_object_mut()
            .unwrap()
            .remove("https://ns.example.com/temp");
        b["@context"] = json!({"example": "https://ns.example.com/"});
        let ctx_b = Context::default().with_jsonld(b.get("@context"));
        assert_eq!(
            event_hash(&a, &ctx_a).unwrap(),
            event_hash(&b, &ctx_b).unwrap()
        );
    }

    #[test]
    fn any_change_of_a_field_changes_the_hash() {
        let base = json!({
            "type": "ObjectEvent", "eventTime": "2024-03-02T09:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE",
            "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
            "ilmd": {"cbvmda:lotNumber": "L1"},
            "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 4.5, "uom": "CEL"}]}]
        });
        let h = |v: &Value| event_hash(v, &Context::default()).unwrap();
        let original = h(&base);
        for (path, value) in [
            ("/eventTime", json!("2024-03-02T09:00:00.001Z")),
            ("/action", json!("ADD")),
            ("/epcList/0", json!("urn:epc:id:sgtin:0614141.107346.2018")),
            ("/ilmd/cbvmda:lotNumber", json!("L2")),
            ("/sensorElementList/0/sensorReport/0/value", json!(4.6)),
            ("/sensorElementList/0/sensorReport/0/uom", json!("FAH")),
        ] {
            let mut changed = base.clone();
            *changed.pointer_mut(path).unwrap() = value;
            assert_ne!(h(&changed), original, "{path}");
        }
        let mut added = base.clone();
        added["bizStep"] = json!("shipping");
        assert_ne!(h(&added), original);
        // What the standard leaves out does not count.
        let mut recorded = base.clone();
        recorded["eventID"] = json!("urn:uuid:x");
        recorded["recordTime"] = json!("2030-01-01T00:00:00Z");
        recorded["errorDeclaration"] = json!({"declarationTime": "2030-01-01T00:00:00Z"});
        assert_eq!(h(&recorded), original);
    }

    #[test]
    fn times_round_half_up_to_milliseconds_in_utc() {
        assert_eq!(
            utc_millis("2023-01-18T11:04:03.1415Z").unwrap(),
            "2023-01-18T11:04:03.142Z"
        );
        assert_eq!(
            utc_millis("2023-01-18T11:04:03.1425Z").unwrap(),
            "2023-01-18T11:04:03.143Z"
        );
        assert_eq!(
            utc_millis("2023-01-18T11:04:03.1414Z").unwrap(),
            "2023-01-18T11:04:03.141Z"
        );
        assert_eq!(
            utc_millis("2023-12-31T23:59:59.9996Z").unwrap(),
            "2024-01-01T00:00:00.000Z"
        );
        assert_eq!(
            utc_millis("2020-03-04T11:00:30+01:00").unwrap(),
            "2020-03-04T10:00:30.000Z"
        );
        assert_eq!(utc_millis("yesterday"), None);
    }

    #[test]
    fn numbers_lose_trailing_zeros_only() {
        for (given, expected) in [
            ("1.0", "1"),
            ("452.0", "452"),
            ("0.3434", "0.3434"),
            ("0.50", "0.5"),
            ("-0.0", "0"),
            ("1e2", "100"),
            ("0.00001", "1e-05"),
            ("26", "26"),
        ] {
            assert_eq!(numeric(given).as_deref(), Some(expected), "{given}");
        }
        for not_a_number in ["2023-10-09", "inf", "NaN", "1.2.3", "abc", "+", ""] {
            assert_eq!(numeric(not_a_number), None, "{not_a_number}");
        }
        assert_eq!(float_text(0.1), "0.1");
        assert_eq!(float_text(42.698334), "42.698334");
        assert_eq!(float_text(2.5e-7), "2.5e-07");
    }

    #[test]
    fn hash_ids_are_checked() {
        let good = ni("x");
        assert_eq!(check_hash_id(&good), Ok(()));
        for bad in [
            "",
            "ni:///sha-256;abc?ver=CBV2.0",
            &good.to_uppercase(),
            &good.replace("sha-256", "sha3-256"),
            &good.replace("CBV2.0", "CBV2.1"),
            &format!("{good}\0"),
        ] {
            assert!(check_hash_id(bad).is_err(), "{bad}");
        }
    }

    /// A long namespace repeated for each member of a long list would make a pre-hash
    /// string of tens of MB from 32 KiB of JSON; it is refused at the bound instead.
    #[test]
    fn an_amplifying_event_is_refused_at_the_bound() {
        let ns = format!("https://example.com/{}/", "n".repeat(16_000));
        let event = json!({
            "@context": [{"x": ns}],
            "type": "ObjectEvent", "eventTime": "2024-03-02T09:00:00Z",
            "x:list": vec![0; 5_000],
        });
        assert!(serde_json::to_string(&event).unwrap().len() < 40 * 1024);
        let ctx = Context::default().with_jsonld(event.get("@context"));
        assert_eq!(pre_hash(&event, &ctx), Err(HashError::TooLarge));
        assert!(matches!(
            recorded_event_hash(&event.to_string()),
            Err(HashError::TooLarge)
        ));
    }

    #[test]
    fn what_is_not_an_event_has_no_hash() {
        assert_eq!(
            pre_hash(&json!([1]), &Context::default()),
            Err(HashError::NotAnObject)
        );
        assert_eq!(
            pre_hash(&json!({"action": "ADD"}), &Context::default()),
            Err(HashError::NoType)
        );
        assert!(matches!(
            recorded_event_hash("{"),
            Err(HashError::NotJson(_))
        ));
    }
}
