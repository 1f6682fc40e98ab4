//! The settings in force and where each came from, for `brevet config print`: every value of the
//! loaded [`Config`], secrets replaced by a marker, with its source (default, file or variable).

use figment::Figment;
use serde_json::Value;

use super::reference;
use super::Config;

/// One setting in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// Path of keys, e.g. `["http", "admin_listen"]`.
    pub path: Vec<String>,
    /// The value; `None` when unset. Secrets are replaced by `"(secret, set)"`.
    pub value: Option<Value>,
    /// `default`, `file <path>` or `env BREVET_…`.
    pub source: String,
}

impl Effective {
    /// The path as a TOML key (segments with dots quoted).
    pub fn key(&self) -> String {
        self.path
            .iter()
            .map(|segment| {
                if segment.contains('.') {
                    format!("{segment:?}")
                } else {
                    segment.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

const REDACTED: &str = "(secret, set)";

/// Every setting of `config`, in the order of its fields, with its source in `figment`.
pub fn effective(config: &Config, figment: &Figment) -> Vec<Effective> {
    let mut tree = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Some(url) = &config.database_url {
        // The URL's own redaction keeps host and database readable.
        tree["database_url"] = Value::String(url.to_string());
    }
    let mut out = Vec::new();
    walk(&mut Vec::new(), &tree, figment, &mut out);
    if config.keys.pkcs11.as_ref().is_some_and(|p| p.pin.is_some()) {
        let path: Vec<String> = ["keys", "pkcs11", "pin"].map(String::from).to_vec();
        out.push(Effective {
            source: source_of(figment, &path),
            path,
            value: Some(Value::String(REDACTED.into())),
        });
    }
    if config.certprov.pubsub.push_token.is_some() {
        // Never serialised (a secret); shown as set.
        let path: Vec<String> = ["certprov", "pubsub", "push_token"]
            .map(String::from)
            .to_vec();
        out.push(Effective {
            source: source_of(figment, &path),
            path,
            value: Some(Value::String(REDACTED.into())),
        });
    }
    out
}

fn walk(path: &mut Vec<String>, value: &Value, figment: &Figment, out: &mut Vec<Effective>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            path.push(key.clone());
            walk(path, child, figment, out);
            path.pop();
        }
        return;
    }
    let secret = reference::find(path).is_some_and(|s| s.secret);
    let value = match value {
        Value::Null => None,
        _ if secret => Some(Value::String(REDACTED.into())),
        other => Some(other.clone()),
    };
    out.push(Effective {
        path: path.clone(),
        value,
        source: source_of(figment, path),
    });
}

fn source_of(figment: &Figment, path: &[String]) -> String {
    let dotted = path.join(".");
    let Some(meta) = figment.find_metadata(&dotted) else {
        return "default".into();
    };
    match &meta.source {
        Some(figment::Source::File(file)) => format!("file {}", file.display()),
        _ if meta.name.contains("environment") => {
            format!("env BREVET_{}", dotted.to_uppercase().replace('.', "__"))
        }
        _ => "default".into(),
    }
}

/// The settings as TOML-style lines, each with its source as a comment; unset ones commented out.
pub fn render(settings: &[Effective]) -> String {
    let width = settings
        .iter()
        .map(|s| s.key().len() + s.value.as_ref().map_or(8, |v| v.to_string().len() + 3))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for setting in settings {
        let line = match &setting.value {
            Some(value) => format!("{} = {value}", setting.key()),
            None => format!("# {} (unset)", setting.key()),
        };
        out.push_str(&format!("{line:<width$}  # {}\n", setting.source));
    }
    out
}
