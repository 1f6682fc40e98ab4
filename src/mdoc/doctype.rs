//! Document types, their namespaces and data elements, and the validation of holder data (JSON)
//! into the CBOR values that get signed.
//!
//! The mDL (`org.iso.18013.5.1.mDL`, ISO/IEC 18013-5 §7.2.1 table 5) is built in. Other document
//! types (a national ID, say) are TOML files in the directory named by the `mdoc.doc_types_dir`
//! setting, in the same shape as [`DocTypeSpec`]; see docs/DOC_TYPES.md.
//!
//! Holder data arrives as `{ "<namespace>": { "<element>": <json> } }`. Every element must be known
//! to the doc type, every mandatory one present, and every value of its element's type and within
//! its bounds: text non-empty and free of control characters (and within `max_length`), numbers
//! within `min`/`max`, the document's expiry after its issue. Every problem is reported at once,
//! each naming its element.

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use ciborium::Value;
use serde::Deserialize;
use serde_json::Value as Json;

use super::cbor::{full_date, tdate};

/// The mDL document type.
pub const MDL_DOC_TYPE: &str = "org.iso.18013.5.1.mDL";
/// The mDL namespace.
pub const MDL_NAMESPACE: &str = "org.iso.18013.5.1";

/// The CBOR type of a data element, and how its JSON form reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementType {
    /// Text.
    Tstr,
    /// Two upper-case letters (ISO 3166-1 alpha-2), as text.
    CountryCode,
    /// Non-negative integer.
    Uint,
    /// Integer.
    Int,
    /// true / false.
    Bool,
    /// `"YYYY-MM-DD"` → tag 1004 full-date.
    FullDate,
    /// RFC 3339 date-time → tag 0 tdate (whole seconds, UTC).
    Tdate,
    /// `"YYYY-MM-DD"` → full-date, or an RFC 3339 date-time → tdate.
    FullDateOrTdate,
    /// Base64 (standard or URL-safe) → byte string, e.g. a JPEG portrait.
    Bstr,
    /// The mDL driving privileges array (ISO 18013-5 §7.2.4).
    DrivingPrivileges,
    /// Any JSON, mapped structurally (objects → maps with text keys).
    Any,
}

impl ElementType {
    fn describe(self) -> &'static str {
        match self {
            ElementType::Tstr => "a string",
            ElementType::CountryCode => "a two-letter upper-case country code",
            ElementType::Uint => "a non-negative integer",
            ElementType::Int => "an integer",
            ElementType::Bool => "true or false",
            ElementType::FullDate => "a date YYYY-MM-DD",
            ElementType::Tdate => "an RFC 3339 date-time",
            ElementType::FullDateOrTdate => "a date YYYY-MM-DD or an RFC 3339 date-time",
            ElementType::Bstr => "base64 bytes",
            ElementType::DrivingPrivileges => "an array of driving privileges",
            ElementType::Any => "any JSON value",
        }
    }
}

/// One data element of a namespace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElementSpec {
    /// The element identifier, e.g. `family_name`.
    pub id: String,
    /// Its CBOR type.
    #[serde(rename = "type")]
    pub ty: ElementType,
    /// Whether every credential of the doc type must have it.
    #[serde(default)]
    pub mandatory: bool,
    /// When set, the only JSON values allowed (e.g. sex: 0, 1, 2, 9).
    #[serde(default)]
    pub allowed: Option<Vec<Json>>,
    /// Smallest number allowed (integer elements).
    #[serde(default)]
    pub min: Option<i64>,
    /// Largest number allowed (integer elements).
    #[serde(default)]
    pub max: Option<i64>,
    /// Most characters allowed (text elements).
    #[serde(default)]
    pub max_length: Option<usize>,
}

/// A namespace and its elements.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    /// The namespace, e.g. `org.iso.18013.5.1`.
    pub name: String,
    /// Whether `age_over_NN` booleans (NN two digits) are allowed.
    #[serde(default)]
    pub age_over: bool,
    /// Its elements, in the order they are issued.
    pub elements: Vec<ElementSpec>,
}

/// A document type: its name and namespaces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocTypeSpec {
    /// The docType, e.g. `org.iso.18013.5.1.mDL`.
    pub doc_type: String,
    /// The elements that say when the document was issued and when it expires, if it has them:
    /// an MSO never outlives the expiry, and the expiry must follow the issue.
    #[serde(default)]
    pub validity: Option<DocumentValidity>,
    /// Its namespaces.
    #[serde(rename = "namespace")]
    pub namespaces: Vec<NamespaceSpec>,
}

/// Where a document keeps its own dates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentValidity {
    /// The namespace of both elements.
    pub namespace: String,
    /// The element with the issue date (a date or date-time).
    pub issue: String,
    /// The element with the expiry date (a date or date-time).
    pub expiry: String,
}

/// Holder data that passed validation: per namespace, `(element identifier, CBOR value)` in the
/// doc type's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementValues {
    /// The doc type the values belong to.
    pub doc_type: String,
    /// Namespaces and their values.
    pub namespaces: Vec<(String, Vec<(String, Value)>)>,
}

impl ElementValues {
    /// Number of elements over all namespaces.
    pub fn len(&self) -> usize {
        self.namespaces
            .iter()
            .map(|(_, elements)| elements.len())
            .sum()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every reason holder data was refused, each naming its element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementErrors(pub Vec<ElementError>);

impl std::fmt::Display for ElementErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join("; "))
    }
}

impl std::error::Error for ElementErrors {}

impl From<ElementError> for ElementErrors {
    fn from(error: ElementError) -> Self {
        Self(vec![error])
    }
}

impl ElementError {
    /// `namespace/element` of the element at fault, when one is.
    pub fn field(&self) -> Option<String> {
        match self {
            ElementError::UnknownElement(ns, id)
            | ElementError::Missing(ns, id)
            | ElementError::Invalid(ns, id, _) => Some(format!("{ns}/{id}")),
            ElementError::UnknownNamespace(ns, _) => Some(ns.clone()),
            _ => None,
        }
    }

    /// What is wrong, without the element's name.
    pub fn problem(&self) -> String {
        match self {
            ElementError::UnknownElement(..) => "not a data element of this namespace".into(),
            ElementError::Missing(..) => "mandatory element is missing".into(),
            ElementError::Invalid(_, _, why) => why.clone(),
            other => other.to_string(),
        }
    }
}

/// Why holder data was refused; the message names the element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElementError {
    /// The doc type is not configured.
    #[error("unknown doc type {0:?}")]
    UnknownDocType(String),
    /// The holder data is not a JSON object of namespaces.
    #[error("holder data must be an object of namespaces, each an object of elements")]
    NotAnObject,
    /// A namespace the doc type does not have.
    #[error("namespace {0:?} is not part of doc type {1:?}")]
    UnknownNamespace(String, String),
    /// An element the namespace does not have.
    #[error("{0}/{1}: not a data element of this namespace")]
    UnknownElement(String, String),
    /// A mandatory element is absent.
    #[error("{0}/{1}: mandatory element is missing")]
    Missing(String, String),
    /// A value of the wrong type or outside the allowed values.
    #[error("{0}/{1}: {2}")]
    Invalid(String, String, String),
}

/// A doc type definition file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("doc type file {path}: {reason}")]
pub struct DocTypeFileError {
    path: String,
    reason: String,
}

/// The doc types Brevet can issue.
#[derive(Debug, Clone)]
pub struct DocTypes {
    specs: BTreeMap<String, DocTypeSpec>,
}

impl Default for DocTypes {
    fn default() -> Self {
        Self::builtin()
    }
}

impl DocTypes {
    /// The built-in doc types (the mDL).
    pub fn builtin() -> Self {
        let mdl: DocTypeSpec =
            toml::from_str(include_str!("mdl.toml")).expect("built-in mDL definition parses");
        Self {
            specs: BTreeMap::from([(mdl.doc_type.clone(), mdl)]),
        }
    }

    /// The built-in doc types plus every `*.toml` file in `dir` (a file may replace a built-in one).
    pub fn load_dir(dir: &Path) -> Result<Self, DocTypeFileError> {
        let mut types = Self::builtin();
        let err = |path: &Path, reason: String| DocTypeFileError {
            path: path.display().to_string(),
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| err(dir, e.to_string()))?;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        {
            let text = std::fs::read_to_string(&path).map_err(|e| err(&path, e.to_string()))?;
            let spec: DocTypeSpec =
                toml::from_str(&text).map_err(|e| err(&path, one_line(&text, &e)))?;
            spec.check().map_err(|reason| err(&path, reason))?;
            types.specs.insert(spec.doc_type.clone(), spec);
        }
        Ok(types)
    }

    /// The definition of `doc_type`.
    pub fn get(&self, doc_type: &str) -> Option<&DocTypeSpec> {
        self.specs.get(doc_type)
    }

    /// Names of the configured doc types.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }

    /// Validates holder data for `doc_type`.
    pub fn validate(&self, doc_type: &str, holder: &Json) -> Result<ElementValues, ElementErrors> {
        self.get(doc_type)
            .ok_or_else(|| ElementError::UnknownDocType(doc_type.to_owned()))?
            .validate(holder)
    }

    /// When the document whose values these are expires, if its doc type says where to look.
    /// A date means 00:00 UTC of that day.
    pub fn expiry(&self, values: &ElementValues) -> Option<DateTime<Utc>> {
        let validity = self.get(&values.doc_type)?.validity.as_ref()?;
        date_value(values, &validity.namespace, &validity.expiry)
    }
}

/// A TOML error on one line: "line L, column C: message".
fn one_line(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

impl DocTypeSpec {
    fn check(&self) -> Result<(), String> {
        if self.doc_type.trim().is_empty() || self.namespaces.is_empty() {
            return Err("a doc type needs a name and at least one namespace".into());
        }
        for ns in &self.namespaces {
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = ns.elements.iter().find(|e| !seen.insert(e.id.as_str())) {
                return Err(format!(
                    "element {:?} is defined twice in {}",
                    dup.id, ns.name
                ));
            }
        }
        if let Some(validity) = &self.validity {
            let dated = |id: &str| {
                self.namespaces
                    .iter()
                    .find(|ns| ns.name == validity.namespace)
                    .and_then(|ns| ns.elements.iter().find(|e| e.id == id))
                    .is_some_and(|e| {
                        matches!(
                            e.ty,
                            ElementType::FullDate
                                | ElementType::Tdate
                                | ElementType::FullDateOrTdate
                        )
                    })
            };
            if !dated(&validity.issue) || !dated(&validity.expiry) {
                return Err(format!(
                    "validity: {}/{} and {}/{} must be date elements of the doc type",
                    validity.namespace, validity.issue, validity.namespace, validity.expiry
                ));
            }
        }
        Ok(())
    }

    /// Validates holder data against this doc type, reporting every problem.
    pub fn validate(&self, holder: &Json) -> Result<ElementValues, ElementErrors> {
        let given = holder.as_object().ok_or(ElementError::NotAnObject)?;
        let mut errors: Vec<ElementError> = given
            .keys()
            .filter(|name| !self.namespaces.iter().any(|ns| &ns.name == *name))
            .map(|unknown| ElementError::UnknownNamespace(unknown.clone(), self.doc_type.clone()))
            .collect();
        let mut namespaces = Vec::new();
        for ns in &self.namespaces {
            let empty = serde_json::Map::new();
            let elements = match given.get(&ns.name) {
                Some(Json::Object(map)) => map,
                Some(_) => return Err(ElementError::NotAnObject.into()),
                None => &empty,
            };
            let values = ns.validate(elements, &mut errors);
            if !values.is_empty() {
                namespaces.push((ns.name.clone(), values));
            }
        }
        let values = ElementValues {
            doc_type: self.doc_type.clone(),
            namespaces,
        };
        if let Some(validity) = &self.validity {
            let issued = date_value(&values, &validity.namespace, &validity.issue);
            let expires = date_value(&values, &validity.namespace, &validity.expiry);
            if let (Some(issued), Some(expires)) = (issued, expires) {
                if expires <= issued {
                    errors.push(ElementError::Invalid(
                        validity.namespace.clone(),
                        validity.expiry.clone(),
                        format!("must be after {}", validity.issue),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(values)
        } else {
            Err(ElementErrors(errors))
        }
    }
}

fn is_age_over(id: &str) -> bool {
    id.strip_prefix("age_over_")
        .is_some_and(|nn| nn.len() == 2 && nn.bytes().all(|b| b.is_ascii_digit()))
}

/// The instant an element holding a full-date (00:00 UTC) or a tdate names.
fn date_value(values: &ElementValues, namespace: &str, element: &str) -> Option<DateTime<Utc>> {
    let (_, elements) = values.namespaces.iter().find(|(ns, _)| ns == namespace)?;
    let (_, value) = elements.iter().find(|(id, _)| id == element)?;
    let Value::Tag(tag, inner) = value else {
        return None;
    };
    let Value::Text(text) = inner.as_ref() else {
        return None;
    };
    match *tag {
        super::cbor::TAG_FULL_DATE => parse_date(text)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc()),
        super::cbor::TAG_TDATE => parse_date_time(text),
        _ => None,
    }
}

impl ElementSpec {
    /// Checks one value's bounds beyond its type.
    fn check_bounds(&self, json: &Json) -> Result<(), String> {
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(json) {
                let list: Vec<String> = allowed.iter().map(Json::to_string).collect();
                return Err(format!("must be one of {}", list.join(", ")));
            }
        }
        if let Some(n) = json.as_i64() {
            if self.min.is_some_and(|min| n < min) || self.max.is_some_and(|max| n > max) {
                return Err(format!(
                    "must be between {} and {}",
                    self.min.map_or("-".into(), |m| m.to_string()),
                    self.max.map_or("-".into(), |m| m.to_string())
                ));
            }
        }
        if let (ElementType::Tstr, Some(text)) = (self.ty, json.as_str()) {
            check_text(text, self.max_length)?;
        }
        Ok(())
    }
}

/// Text elements are printed on readers' screens: never empty, never control characters.
fn check_text(text: &str, max_length: Option<usize>) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if let Some(max) = max_length.filter(|max| text.chars().count() > *max) {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(())
}

impl NamespaceSpec {
    /// The namespace's values in the doc type's order; problems go to `errors`.
    fn validate(
        &self,
        given: &serde_json::Map<String, Json>,
        errors: &mut Vec<ElementError>,
    ) -> Vec<(String, Value)> {
        let invalid =
            |id: &str, why: String| ElementError::Invalid(self.name.clone(), id.to_owned(), why);
        for id in given.keys() {
            let known =
                self.elements.iter().any(|e| &e.id == id) || (self.age_over && is_age_over(id));
            if !known {
                errors.push(ElementError::UnknownElement(self.name.clone(), id.clone()));
            }
        }
        let mut values = Vec::new();
        for spec in &self.elements {
            match given.get(&spec.id) {
                None | Some(Json::Null) if spec.mandatory => {
                    errors.push(ElementError::Missing(self.name.clone(), spec.id.clone()))
                }
                None | Some(Json::Null) => {}
                Some(json) => match to_cbor(spec.ty, json)
                    .and_then(|value| spec.check_bounds(json).map(|()| value))
                {
                    Ok(value) => values.push((spec.id.clone(), value)),
                    Err(why) => errors.push(invalid(&spec.id, why)),
                },
            }
        }
        // age_over_NN in ascending NN order, after the listed elements.
        let mut ages: Vec<(&String, &Json)> =
            given.iter().filter(|(id, _)| is_age_over(id)).collect();
        ages.sort_by_key(|(id, _)| id.as_str());
        for (id, json) in ages {
            match to_cbor(ElementType::Bool, json) {
                Ok(value) => values.push((id.clone(), value)),
                Err(why) => errors.push(invalid(id, why)),
            }
        }
        values
    }
}

fn expected(ty: ElementType) -> String {
    format!("expected {}", ty.describe())
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
}

fn parse_date_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Maps one JSON value to the CBOR of `ty`, or says why it cannot.
fn to_cbor(ty: ElementType, json: &Json) -> Result<Value, String> {
    let fail = || Err(expected(ty));
    match ty {
        ElementType::Tstr => json
            .as_str()
            .map(|s| Value::Text(s.to_owned()))
            .map_or_else(fail, Ok),
        ElementType::CountryCode => match json.as_str() {
            Some(s) if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) => {
                Ok(Value::Text(s.to_owned()))
            }
            _ => fail(),
        },
        ElementType::Uint => json
            .as_u64()
            .map(|n| Value::Integer(n.into()))
            .map_or_else(fail, Ok),
        ElementType::Int => json
            .as_i64()
            .map(|n| Value::Integer(n.into()))
            .map_or_else(fail, Ok),
        ElementType::Bool => json.as_bool().map(Value::Bool).map_or_else(fail, Ok),
        ElementType::FullDate => json
            .as_str()
            .and_then(parse_date)
            .map(full_date)
            .map_or_else(fail, Ok),
        ElementType::Tdate => json
            .as_str()
            .and_then(parse_date_time)
            .map(tdate)
            .map_or_else(fail, Ok),
        ElementType::FullDateOrTdate => match json.as_str() {
            Some(s) => parse_date(s)
                .map(full_date)
                .or_else(|| parse_date_time(s).map(tdate))
                .map_or_else(fail, Ok),
            None => fail(),
        },
        ElementType::Bstr => match json.as_str() {
            Some(s) => STANDARD
                .decode(s)
                .or_else(|_| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')))
                .map(Value::Bytes)
                .map_err(|_| expected(ty)),
            None => fail(),
        },
        ElementType::DrivingPrivileges => driving_privileges(json),
        ElementType::Any => Ok(any_to_cbor(json)),
    }
}

fn any_to_cbor(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Integer(i.into()),
            (_, Some(u), _) => Value::Integer(u.into()),
            (_, _, Some(f)) => Value::Float(f),
            _ => Value::Null,
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(any_to_cbor).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::Text(k.clone()), any_to_cbor(v)))
                .collect(),
        ),
    }
}

/// `driving_privileges`: `[{ vehicle_category_code, ? issue_date, ? expiry_date, ? codes: [{ code, ? sign, ? value }] }]`.
fn driving_privileges(json: &Json) -> Result<Value, String> {
    let items = json
        .as_array()
        .ok_or_else(|| expected(ElementType::DrivingPrivileges))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |why: &str| format!("privilege {i}: {why}");
        let map = item.as_object().ok_or_else(|| at("expected an object"))?;
        if let Some(key) = map.keys().find(|k| {
            ![
                "vehicle_category_code",
                "issue_date",
                "expiry_date",
                "codes",
            ]
            .contains(&k.as_str())
        }) {
            return Err(at(&format!("unknown field {key:?}")));
        }
        let mut entry = Vec::new();
        let code = map
            .get("vehicle_category_code")
            .and_then(Json::as_str)
            .ok_or_else(|| at("vehicle_category_code must be a string"))?;
        entry.push((
            Value::Text("vehicle_category_code".into()),
            Value::Text(code.to_owned()),
        ));
        for key in ["issue_date", "expiry_date"] {
            if let Some(value) = map.get(key) {
                let date = value
                    .as_str()
                    .and_then(parse_date)
                    .ok_or_else(|| at(&format!("{key} must be a date YYYY-MM-DD")))?;
                entry.push((Value::Text(key.into()), full_date(date)));
            }
        }
        if let Some(codes) = map.get("codes") {
            let codes = codes
                .as_array()
                .ok_or_else(|| at("codes must be an array"))?;
            let mut encoded = Vec::new();
            for code in codes {
                let code = code
                    .as_object()
                    .ok_or_else(|| at("each code must be an object"))?;
                let mut fields = Vec::new();
                for key in ["code", "sign", "value"] {
                    match code.get(key) {
                        Some(Json::String(s)) => {
                            fields.push((Value::Text(key.into()), Value::Text(s.clone())))
                        }
                        Some(_) => return Err(at(&format!("code field {key} must be a string"))),
                        None if key == "code" => return Err(at("each code needs a code")),
                        None => {}
                    }
                }
                encoded.push(Value::Map(fields));
            }
            entry.push((Value::Text("codes".into()), Value::Array(encoded)));
        }
        out.push(Value::Map(entry));
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mdoc::cbor::to_vec;

    pub(crate) fn sample_mdl() -> Json {
        json!({ "org.iso.18013.5.1": {
            "family_name": "Doe", "given_name": "Jane", "birth_date": "1990-05-17",
            "issue_date": "2024-01-02", "expiry_date": "2029-01-02", "issuing_country": "US",
            "issuing_authority": "Utopia DMV", "document_number": "D1234567",
            "portrait": "/9j/4AAQSkZJRg==", "un_distinguishing_sign": "USA",
            "driving_privileges": [{ "vehicle_category_code": "B", "issue_date": "2024-01-02",
                                     "codes": [{ "code": "D", "value": "1" }] }],
            "sex": 2, "height": 170, "age_over_21": true, "age_over_18": true,
        }})
    }

    #[test]
    fn valid_mdl_becomes_typed_cbor_in_definition_order() {
        let values = DocTypes::builtin()
            .validate(MDL_DOC_TYPE, &sample_mdl())
            .unwrap();
        assert_eq!(values.namespaces.len(), 1);
        let (ns, elements) = &values.namespaces[0];
        assert_eq!(ns, MDL_NAMESPACE);
        let ids: Vec<&str> = elements.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(&ids[..3], ["family_name", "given_name", "birth_date"]);
        assert_eq!(&ids[ids.len() - 2..], ["age_over_18", "age_over_21"]);
        let get = |id: &str| &elements.iter().find(|(i, _)| i == id).unwrap().1;
        assert_eq!(
            hex::encode(to_vec(get("birth_date"))),
            "d903ec6a313939302d30352d3137"
        );
        assert_eq!(
            get("portrait"),
            &Value::Bytes(vec![
                0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46
            ])
        );
        assert_eq!(get("sex"), &Value::Integer(2.into()));
        assert_eq!(get("age_over_21"), &Value::Bool(true));
        // driving_privileges: [{"vehicle_category_code": "B", "issue_date": 1004("2024-01-02"), "codes": [{"code": "D", "value": "1"}]}]
        assert_eq!(
            hex::encode(to_vec(get("driving_privileges"))),
            "81a37576656869636c655f63617465676f72795f636f646561426a69737375655f64617465d903ec6a323032342d30312d303265636f64657381a264636f646561446576616c75656131"
        );
    }

    #[test]
    fn errors_name_the_element() {
        let types = DocTypes::builtin();
        let mut data = sample_mdl();
        let check = |data: &Json, expected: &str| {
            let err = types.validate(MDL_DOC_TYPE, data).unwrap_err().to_string();
            assert_eq!(err, expected);
        };
        data["org.iso.18013.5.1"]
            .as_object_mut()
            .unwrap()
            .remove("family_name");
        check(
            &data,
            "org.iso.18013.5.1/family_name: mandatory element is missing",
        );
        data = sample_mdl();
        data["org.iso.18013.5.1"]["birth_date"] = json!("17/05/1990");
        check(
            &data,
            "org.iso.18013.5.1/birth_date: expected a date YYYY-MM-DD",
        );
        data = sample_mdl();
        data["org.iso.18013.5.1"]["height"] = json!(-3);
        check(
            &data,
            "org.iso.18013.5.1/height: expected a non-negative integer",
        );
        data = sample_mdl();
        data["org.iso.18013.5.1"]["sex"] = json!(5);
        check(&data, "org.iso.18013.5.1/sex: must be one of 0, 1, 2, 9");
        data = sample_mdl();
        data["org.iso.18013.5.1"]["issuing_country"] = json!("usa");
        check(
            &data,
            "org.iso.18013.5.1/issuing_country: expected a two-letter upper-case country code",
        );
        data = sample_mdl();
        data["org.iso.18013.5.1"]["favourite_colour"] = json!("blue");
        check(
            &data,
            "org.iso.18013.5.1/favourite_colour: not a data element of this namespace",
        );
        data = sample_mdl();
        data["org.iso.18013.5.1"]["age_over_1x"] = json!(true);
        check(
            &data,
            "org.iso.18013.5.1/age_over_1x: not a data element of this namespace",
        );
        data = sample_mdl();
        data["org.iso.18013.5.1"]["portrait"] = json!("not base64!");
        check(&data, "org.iso.18013.5.1/portrait: expected base64 bytes");
        data = sample_mdl();
        data["org.iso.18013.5.1"]["driving_privileges"] = json!([{ "issue_date": "2020-01-01" }]);
        check(&data, "org.iso.18013.5.1/driving_privileges: privilege 0: vehicle_category_code must be a string");
        let unknown_namespace = types
            .validate(MDL_DOC_TYPE, &json!({ "org.example": {} }))
            .unwrap_err();
        assert_eq!(
            unknown_namespace.0[0].to_string(),
            "namespace \"org.example\" is not part of doc type \"org.iso.18013.5.1.mDL\""
        );
        assert_eq!(
            unknown_namespace.0.len(),
            12,
            "the unknown namespace and the 11 mandatory elements missing"
        );
        assert_eq!(
            types.validate("org.example.id", &sample_mdl()).unwrap_err(),
            ElementErrors(vec![ElementError::UnknownDocType("org.example.id".into())])
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_each_named() {
        let mut data = sample_mdl();
        let licence = data["org.iso.18013.5.1"].as_object_mut().unwrap();
        licence.insert("family_name".into(), json!("  "));
        licence.insert("given_name".into(), json!("Jane\u{0007}"));
        licence.insert("height".into(), json!(9000));
        licence.insert("expiry_date".into(), json!("2023-12-31"));
        licence.remove("document_number");
        let errors = DocTypes::builtin()
            .validate(MDL_DOC_TYPE, &data)
            .unwrap_err();
        let named: Vec<(Option<String>, String)> =
            errors.0.iter().map(|e| (e.field(), e.problem())).collect();
        let ns = |id: &str| Some(format!("org.iso.18013.5.1/{id}"));
        assert_eq!(
            named,
            vec![
                (ns("family_name"), "must not be empty".into()),
                (
                    ns("given_name"),
                    "must not contain control characters".into()
                ),
                (ns("document_number"), "mandatory element is missing".into()),
                (ns("height"), "must be between 1 and 300".into()),
                (ns("expiry_date"), "must be after issue_date".into()),
            ]
        );
        let long = "x".repeat(151);
        let mut data = sample_mdl();
        data["org.iso.18013.5.1"]["family_name"] = json!(long);
        assert_eq!(
            DocTypes::builtin()
                .validate(MDL_DOC_TYPE, &data)
                .unwrap_err()
                .to_string(),
            "org.iso.18013.5.1/family_name: must be at most 150 characters"
        );
    }

    #[test]
    fn the_expiry_comes_from_the_doc_type() {
        let types = DocTypes::builtin();
        let values = types.validate(MDL_DOC_TYPE, &sample_mdl()).unwrap();
        assert_eq!(
            types.expiry(&values).unwrap().to_rfc3339(),
            "2029-01-02T00:00:00+00:00"
        );
    }

    #[test]
    fn other_doc_types_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("nid.toml"),
            r#"
doc_type = "org.example.nationalid.1"
[[namespace]]
name = "org.example.nationalid.1"
elements = [
  { id = "family_name", type = "tstr", mandatory = true },
  { id = "birth_date", type = "full_date", mandatory = true },
  { id = "photo", type = "bstr" },
]
"#,
        )
        .unwrap();
        let types = DocTypes::load_dir(dir.path()).unwrap();
        assert_eq!(
            types.names().collect::<Vec<_>>(),
            ["org.example.nationalid.1", MDL_DOC_TYPE]
        );
        let values = types
            .validate("org.example.nationalid.1", &json!({ "org.example.nationalid.1": { "family_name": "Doe", "birth_date": "1990-01-01" } }))
            .unwrap();
        assert_eq!(values.len(), 2);
        let err = types
            .validate(
                "org.example.nationalid.1",
                &json!({ "org.example.nationalid.1": { "family_name": "Doe" } }),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "org.example.nationalid.1/birth_date: mandatory element is missing"
        );

        std::fs::write(dir.path().join("bad.toml"), "doc_type = \"x\"\n[[namespace]]\nname = \"x\"\nelements = [{ id = \"a\", type = \"float\" }]\n").unwrap();
        let err = DocTypes::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains("unknown variant `float`"),
            "{err}"
        );
    }
}
