//! The holder-data form of a doc type, generated from its definition: one control per data
//! element, typed by the element (text, number, date, choice, image upload, JSON for structured
//! elements), mandatory elements marked; and the way back, from the submitted form to holder data
//! JSON, with each problem attached to its field in words.
//!
//! Fields are named `<namespace>/<element>`, the way validation names elements, so that every
//! error of [`crate::mdoc::doctype`] lands next to its control. Elements the definition allows but
//! does not list (`age_over_NN`) are kept in a JSON field per namespace, `<namespace>/*`.

use std::collections::BTreeMap;

use axum::extract::Multipart;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use maud::{html, Markup};
use serde_json::{Map, Value as Json};

use super::page::ConsoleError;
use crate::mdoc::doctype::{DocTypeSpec, ElementSpec, ElementType};
use crate::protocol::wallet::MAX_ENCRYPTED_VALUE;

/// What a submitted form carried: text fields and uploaded files, by name.
#[derive(Debug, Default)]
pub struct Submitted {
    /// Text fields (including the CSRF token and hidden fields).
    pub text: BTreeMap<String, String>,
    /// Files, by field name (empty uploads are left out).
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Submitted {
    /// Reads a `multipart/form-data` body. A malformed body is a 400 page.
    pub async fn read(mut multipart: Multipart) -> Result<Self, ConsoleError> {
        let malformed = |e: axum::extract::multipart::MultipartError| {
            ConsoleError::BadRequest(format!("The form could not be read: {}", e.body_text()))
        };
        let mut submitted = Submitted::default();
        while let Some(field) = multipart.next_field().await.map_err(malformed)? {
            let Some(name) = field.name().map(str::to_owned) else {
                continue;
            };
            let is_file = field.file_name().is_some();
            let bytes = field.bytes().await.map_err(malformed)?;
            if is_file {
                if !bytes.is_empty() {
                    submitted.files.insert(name, bytes.to_vec());
                }
            } else {
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ConsoleError::BadRequest(format!("The field {name} is not text."))
                })?;
                submitted.text.insert(name, text);
            }
        }
        Ok(submitted)
    }

    /// A text field, or "" when absent.
    pub fn field(&self, name: &str) -> &str {
        self.text.get(name).map_or("", String::as_str)
    }
}

/// Problems with a submitted form: per field, and for the form as a whole.
#[derive(Debug, Default)]
pub struct Problems {
    /// By field name.
    pub fields: BTreeMap<String, String>,
    /// Not tied to one field.
    pub form: Vec<String>,
}

impl Problems {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.form.is_empty()
    }

    /// Adds the problems validation found, each to its field when it names one.
    pub fn add_validation(&mut self, errors: crate::mdoc::doctype::ElementErrors) {
        for error in errors.0 {
            match error.field() {
                Some(field) if !self.fields.contains_key(&field) => {
                    self.fields.insert(field, error.problem());
                }
                _ => self.form.push(error.to_string()),
            }
        }
    }
}

fn field_name(namespace: &str, element: &str) -> String {
    format!("{namespace}/{element}")
}

fn extra_name(namespace: &str) -> String {
    format!("{namespace}/*")
}

/// A label for people: `family_name` → "Family name".
fn label(id: &str) -> String {
    let spaced = id.replace('_', " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The form's text for a stored value of `element` (images are not text: they stay as they are
/// unless a new file is uploaded).
fn text_of(element: &ElementSpec, value: &Json) -> String {
    match (element.ty, value) {
        (ElementType::Bstr, _) => String::new(),
        (ElementType::Tdate, Json::String(s)) => s.trim_end_matches('Z').to_owned(),
        (ElementType::DrivingPrivileges | ElementType::Any, value) => {
            serde_json::to_string_pretty(value).unwrap_or_default()
        }
        (_, Json::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// The form's values for stored holder data.
pub fn values_of(spec: &DocTypeSpec, holder: &Json) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for namespace in &spec.namespaces {
        let Some(stored) = holder.get(&namespace.name).and_then(Json::as_object) else {
            continue;
        };
        let mut extra = Map::new();
        for (id, value) in stored {
            match namespace.elements.iter().find(|e| &e.id == id) {
                Some(element) => {
                    values.insert(field_name(&namespace.name, id), text_of(element, value));
                }
                None => {
                    extra.insert(id.clone(), value.clone());
                }
            }
        }
        if !extra.is_empty() {
            values.insert(
                extra_name(&namespace.name),
                serde_json::to_string_pretty(&extra).unwrap_or_default(),
            );
        }
    }
    values
}

fn control(
    element: &ElementSpec,
    name: &str,
    value: &str,
    invalid: bool,
    has_image: bool,
) -> Markup {
    let described = format!("{name}-note");
    let required = element.mandatory && !(element.ty == ElementType::Bstr && has_image);
    match element.ty {
        ElementType::Bstr => html! {
            input type="file" id=(name) name=(name) accept="image/jpeg,image/png,image/jp2"
                required[required] aria-invalid=[invalid.then_some("true")] aria-describedby=(described);
        },
        ElementType::DrivingPrivileges | ElementType::Any => html! {
            textarea id=(name) name=(name) rows="6" spellcheck="false" required[element.mandatory]
                aria-invalid=[invalid.then_some("true")] aria-describedby=(described) { (value) }
        },
        _ if element.allowed.is_some() => html! {
            select id=(name) name=(name) required[element.mandatory] aria-invalid=[invalid.then_some("true")] aria-describedby=(described) {
                option value="" { "—" }
                @for allowed in element.allowed.iter().flatten() {
                    @let text = match allowed { Json::String(s) => s.clone(), other => other.to_string() };
                    option value=(text) selected[text == value] { (text) }
                }
            }
        },
        ElementType::Bool => html! {
            select id=(name) name=(name) required[element.mandatory] aria-invalid=[invalid.then_some("true")] aria-describedby=(described) {
                option value="" { "—" }
                option value="true" selected[value == "true"] { "yes" }
                option value="false" selected[value == "false"] { "no" }
            }
        },
        ElementType::Uint | ElementType::Int => html! {
            input type="number" id=(name) name=(name) value=(value) step="1"
                min=[element.min.or((element.ty == ElementType::Uint).then_some(0))] max=[element.max]
                required[element.mandatory] aria-invalid=[invalid.then_some("true")] aria-describedby=(described);
        },
        ElementType::FullDate => html! {
            input type="date" id=(name) name=(name) value=(value)
                required[element.mandatory] aria-invalid=[invalid.then_some("true")] aria-describedby=(described);
        },
        // A date, unless the record already holds a date-time here.
        ElementType::FullDateOrTdate if !value.contains('T') => html! {
            input type="date" id=(name) name=(name) value=(value)
                required[element.mandatory] aria-invalid=[invalid.then_some("true")] aria-describedby=(described);
        },
        ElementType::Tdate => html! {
            input type="datetime-local" step="1" id=(name) name=(name) value=(value)
                required[element.mandatory] aria-invalid=[invalid.then_some("true")] aria-describedby=(described);
        },
        _ => html! {
            input type="text" id=(name) name=(name) value=(value)
                maxlength=[element.max_length.or((element.ty == ElementType::CountryCode).then_some(2))]
                required[element.mandatory] aria-invalid=[invalid.then_some("true")] aria-describedby=(described);
        },
    }
}

fn hint(element: &ElementSpec, has_image: bool) -> String {
    match element.ty {
        ElementType::Bstr => {
            let limit = MAX_ENCRYPTED_VALUE / 1024;
            if has_image {
                format!("JPEG or PNG. The record has one; choose a file only to replace it. The whole credential must fit in {limit} KB.")
            } else {
                format!("JPEG or PNG. The whole credential must fit in {limit} KB, so keep it well under that.")
            }
        }
        ElementType::CountryCode => "Two capital letters, e.g. US.".into(),
        ElementType::Tdate => "Date and time, in UTC.".into(),
        ElementType::FullDateOrTdate => "A date (or a date-time in RFC 3339).".into(),
        ElementType::DrivingPrivileges => {
            "JSON: an array of {\"vehicle_category_code\": \"B\", \"issue_date\": …, \"expiry_date\": …}.".into()
        }
        ElementType::Any => "JSON.".into(),
        _ => String::new(),
    }
}

/// The form's fieldsets for `spec`, filled with `values`, with `problems` next to their fields.
/// `images` names the image elements the record already has (kept unless replaced).
pub fn fieldsets(
    spec: &DocTypeSpec,
    values: &BTreeMap<String, String>,
    problems: &Problems,
    images: &[String],
) -> Markup {
    html! {
        @if !problems.is_empty() {
            div.error role="alert" #form-problems {
                p { "Nothing was saved. Please correct the fields marked below." }
                @if !problems.form.is_empty() {
                    ul { @for problem in &problems.form { li { (problem) } } }
                }
            }
        }
        @for namespace in &spec.namespaces {
            fieldset {
                legend { (namespace.name) }
                @for element in &namespace.elements {
                    @let name = field_name(&namespace.name, &element.id);
                    @let value = values.get(&name).map_or("", String::as_str);
                    @let problem = problems.fields.get(&name);
                    @let has_image = images.contains(&name);
                    div.field.invalid[problem.is_some()] {
                        label for=(name) {
                            (label(&element.id))
                            @if element.mandatory { span.mandatory title="mandatory" { " *" } }
                        }
                        (control(element, &name, value, problem.is_some(), has_image))
                        div.note id=(format!("{name}-note")) {
                            @if let Some(problem) = problem {
                                span.field-error { (problem) }
                            }
                            @let hint = hint(element, has_image);
                            @if !hint.is_empty() { span.hint { (hint) } }
                        }
                    }
                }
                @if namespace.age_over {
                    @let name = extra_name(&namespace.name);
                    @let problem = problems.fields.get(&name);
                    div.field.invalid[problem.is_some()] {
                        label for=(name) { "Other elements (age_over_NN)" }
                        textarea id=(name) name=(name) rows="3" spellcheck="false" aria-describedby=(format!("{name}-note")) {
                            (values.get(&name).map_or("", String::as_str))
                        }
                        div.note id=(format!("{name}-note")) {
                            @if let Some(problem) = problem { span.field-error { (problem) } }
                            span.hint { "JSON object, e.g. {\"age_over_18\": true}." }
                        }
                    }
                }
            }
        }
        p.hint { "* mandatory" }
    }
}

/// Reads one element's submitted text into its JSON value; `None` when left empty.
fn json_of(element: &ElementSpec, text: &str) -> Result<Option<Json>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let value = match element.ty {
        ElementType::Uint | ElementType::Int => text
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| "must be a whole number".to_owned())?,
        ElementType::Bool => Json::Bool(text == "true"),
        ElementType::Tdate => {
            // datetime-local sends minutes or seconds, without a zone: UTC, as labelled.
            let full = if text.len() == 16 {
                format!("{text}:00")
            } else {
                text.to_owned()
            };
            Json::String(format!("{full}Z"))
        }
        ElementType::DrivingPrivileges | ElementType::Any => {
            serde_json::from_str(text).map_err(|e| format!("is not valid JSON: {e}"))?
        }
        _ if element
            .allowed
            .as_ref()
            .is_some_and(|a| a.iter().any(Json::is_number)) =>
        {
            text.parse::<i64>()
                .map(Json::from)
                .map_err(|_| "choose one of the values offered".to_owned())?
        }
        _ => Json::String(text.to_owned()),
    };
    Ok(Some(value))
}

/// Holder data from a submitted form. Images come from uploads, or from `existing` holder data
/// when none was uploaded. Returns the data, or the problems of the fields that could not be read.
pub fn holder_data(
    spec: &DocTypeSpec,
    submitted: &Submitted,
    existing: Option<&Json>,
) -> Result<Json, Problems> {
    let mut problems = Problems::default();
    let mut holder = Map::new();
    for namespace in &spec.namespaces {
        let mut elements = Map::new();
        for element in &namespace.elements {
            let name = field_name(&namespace.name, &element.id);
            if element.ty == ElementType::Bstr {
                if let Some(bytes) = submitted.files.get(&name) {
                    if bytes.len() > MAX_ENCRYPTED_VALUE {
                        problems.fields.insert(
                            name,
                            format!(
                                "the file is {} KB; a credential holds at most {} KB",
                                bytes.len() / 1024,
                                MAX_ENCRYPTED_VALUE / 1024
                            ),
                        );
                    } else {
                        elements.insert(element.id.clone(), Json::String(STANDARD.encode(bytes)));
                    }
                } else if let Some(kept) = existing
                    .and_then(|h| h.get(&namespace.name))
                    .and_then(|ns| ns.get(&element.id))
                {
                    elements.insert(element.id.clone(), kept.clone());
                }
                continue;
            }
            match json_of(element, submitted.field(&name)) {
                Ok(Some(value)) => {
                    elements.insert(element.id.clone(), value);
                }
                Ok(None) => {}
                Err(problem) => {
                    problems.fields.insert(name, problem);
                }
            }
        }
        let extra = submitted.field(&extra_name(&namespace.name)).trim();
        if !extra.is_empty() {
            match serde_json::from_str::<Map<String, Json>>(extra) {
                Ok(more) => elements.extend(more),
                Err(e) => {
                    problems.fields.insert(
                        extra_name(&namespace.name),
                        format!("must be a JSON object: {e}"),
                    );
                }
            }
        }
        if !elements.is_empty() {
            holder.insert(namespace.name.clone(), Json::Object(elements));
        }
    }
    if problems.is_empty() {
        Ok(Json::Object(holder))
    } else {
        Err(problems)
    }
}

/// The image elements `holder` has (for "keep the current image").
pub fn images_of(spec: &DocTypeSpec, holder: &Json) -> Vec<String> {
    spec.namespaces
        .iter()
        .flat_map(|ns| {
            ns.elements
                .iter()
                .filter(|e| e.ty == ElementType::Bstr)
                .filter(|e| holder.get(&ns.name).and_then(|v| v.get(&e.id)).is_some())
                .map(|e| field_name(&ns.name, &e.id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdoc::doctype::DocTypes;

    #[test]
    fn stored_holder_data_survives_a_round_trip_through_the_form() {
        let types = DocTypes::builtin();
        let spec = types.get(crate::mdoc::doctype::MDL_DOC_TYPE).expect("mDL");
        let holder = crate::sim::wallet::flow::sample_holder();
        let mut submitted = Submitted {
            text: values_of(spec, &holder),
            files: BTreeMap::new(),
        };
        submitted.text.insert("csrf".into(), "x".into());
        let back = holder_data(spec, &submitted, Some(&holder)).expect("readable");
        assert_eq!(
            types.validate(crate::mdoc::doctype::MDL_DOC_TYPE, &back),
            types.validate(crate::mdoc::doctype::MDL_DOC_TYPE, &holder),
            "the same element values after the form"
        );
    }

    #[test]
    fn unreadable_fields_are_named_in_words() {
        let types = DocTypes::builtin();
        let spec = types.get(crate::mdoc::doctype::MDL_DOC_TYPE).expect("mDL");
        let mut submitted = Submitted::default();
        submitted
            .text
            .insert("org.iso.18013.5.1/height".into(), "tall".into());
        submitted
            .text
            .insert("org.iso.18013.5.1/driving_privileges".into(), "[".into());
        let problems = holder_data(spec, &submitted, None).expect_err("unreadable");
        assert_eq!(
            problems.fields["org.iso.18013.5.1/height"],
            "must be a whole number"
        );
        assert!(problems.fields["org.iso.18013.5.1/driving_privileges"]
            .starts_with("is not valid JSON"));
    }
}
