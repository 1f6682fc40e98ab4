//! Certificate profiles: what a process's certificate says, filled from the process's subject
//! (spec §7: the profile reference is a key into our own configuration).

use std::str::FromStr;
use std::time::Duration;

use x509_cert::der::asn1::Ia5String;
use x509_cert::der::flagset::FlagSet;
use x509_cert::der::oid::db::rfc5280::{
    ID_KP_CLIENT_AUTH, ID_KP_EMAIL_PROTECTION, ID_KP_SERVER_AUTH,
};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use super::config::ProfileConfig;
use super::wire::Process;
use crate::pki::certs::extension;

/// A profile, checked at start.
#[derive(Debug, Clone)]
pub struct Profile {
    config: ProfileConfig,
    key_usage: KeyUsage,
    extended_key_usage: Vec<ObjectIdentifier>,
}

/// What a certificate for one process says.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Subject name.
    pub subject: Name,
    /// SAN, KeyUsage and ExtendedKeyUsage.
    pub extensions: Vec<Extension>,
    /// Lifetime.
    pub lifetime: Duration,
}

impl Profile {
    /// Checks `config` (usages known, subject template well-formed with sample values).
    pub fn new(name: &str, config: ProfileConfig) -> Result<Self, String> {
        let mut key_usage = FlagSet::<KeyUsages>::default();
        for usage in &config.key_usages {
            key_usage |= match usage.as_str() {
                "digitalSignature" => KeyUsages::DigitalSignature,
                "keyEncipherment" => KeyUsages::KeyEncipherment,
                "keyAgreement" => KeyUsages::KeyAgreement,
                other => return Err(format!("profile {name}: unknown key usage {other:?}")),
            };
        }
        let mut extended_key_usage = Vec::new();
        for usage in &config.extended_key_usages {
            extended_key_usage.push(match usage.as_str() {
                "clientAuth" => ID_KP_CLIENT_AUTH,
                "serverAuth" => ID_KP_SERVER_AUTH,
                "emailProtection" => ID_KP_EMAIL_PROTECTION,
                dotted => ObjectIdentifier::new(dotted).map_err(|_| {
                    format!("profile {name}: unknown extended key usage {dotted:?}")
                })?,
            });
        }
        if config.validity_days == 0 {
            return Err(format!("profile {name}: validity_days must be at least 1"));
        }
        let sample = fill(&config.subject, &|_| Some("sample".into()), true)
            .map_err(|e| format!("profile {name}: subject: {e}"))?;
        Name::from_str(&sample).map_err(|e| format!("profile {name}: subject: {e}"))?;
        Ok(Self {
            config,
            key_usage: KeyUsage(key_usage),
            extended_key_usage,
        })
    }

    /// The certificate content for `process`, or why it cannot be made (shown to the user).
    pub fn render(&self, process: &Process) -> Result<Rendered, String> {
        let lookup = |field: &str| variable(process, field);
        let subject = fill(&self.config.subject, &lookup, true)?;
        let subject = Name::from_str(&subject)
            .map_err(|e| format!("the certificate subject is not a valid name: {e}"))?;
        let mut names = Vec::new();
        let ia5 = |value: String| {
            Ia5String::new(&value)
                .map_err(|_| format!("{value:?} cannot appear in a subject alternative name"))
        };
        for template in &self.config.dns_names {
            names.push(GeneralName::DnsName(ia5(fill(template, &lookup, false)?)?));
        }
        for template in &self.config.emails {
            names.push(GeneralName::Rfc822Name(ia5(fill(
                template, &lookup, false,
            )?)?));
        }
        for template in &self.config.uris {
            names.push(GeneralName::UniformResourceIdentifier(ia5(fill(
                template, &lookup, false,
            )?)?));
        }
        let internal = |e| format!("cannot encode the certificate extensions: {e}");
        let mut extensions = vec![extension(&self.key_usage, true).map_err(internal)?];
        if !self.extended_key_usage.is_empty() {
            extensions.push(
                extension(&ExtendedKeyUsage(self.extended_key_usage.clone()), false)
                    .map_err(internal)?,
            );
        }
        if !names.is_empty() {
            extensions.push(extension(&SubjectAltName(names), false).map_err(internal)?);
        }
        Ok(Rendered {
            subject,
            extensions,
            lifetime: self.lifetime(),
        })
    }

    /// How long its certificates live.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.config.validity_days) * 86_400)
    }
}

/// The value of a template variable for `process`.
fn variable(process: &Process, field: &str) -> Option<String> {
    let user = process.chrome_os_user_session.as_ref();
    let id = |name: &str, part: usize| name.split('/').nth(part).map(str::to_owned);
    match field {
        "device.serialNumber" => process.device()?.serial_number.clone(),
        "device.directoryApiId" => process.device()?.device_directory_api_id.clone(),
        "user.email" => user?.user_primary_email.clone(),
        "user.directoryApiId" => user?.user_directory_api_id.clone(),
        "process.id" => id(&process.name, 3),
        "customer.id" => id(&process.name, 1),
        _ => None,
    }
}

/// Replaces every `{field}` in `template`. In a distinguished name (`dn`) the values are escaped
/// as RFC 4514 asks, so that a value can never add or change an attribute.
fn fill(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    dn: bool,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("unclosed {{ in template {template:?}"))?;
        let field = &rest[start + 1..start + end];
        let value = lookup(field)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("the process has no {field}, which the profile needs"))?;
        if dn {
            out.push_str(&escape_dn_value(&value));
        } else {
            out.push_str(&value);
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let leading = i == 0 && (c == '#' || c == ' ');
        let trailing = i == value.chars().count() - 1 && c == ' ';
        if leading || trailing || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certprov::wire::{ChromeOsDevice, ChromeOsUserSession};

    fn profile(subject: &str, emails: &[&str]) -> Profile {
        Profile::new(
            "test",
            ProfileConfig {
                subject: subject.into(),
                dns_names: vec![],
                emails: emails.iter().map(|e| (*e).into()).collect(),
                uris: vec![],
                validity_days: 30,
                key_usages: vec!["digitalSignature".into(), "keyEncipherment".into()],
                extended_key_usages: vec!["clientAuth".into()],
            },
        )
        .expect("valid profile")
    }

    fn device_process(serial: &str) -> Process {
        Process {
            name: "customers/C01/certificateProvisioningProcesses/p1".into(),
            chrome_os_device: Some(ChromeOsDevice {
                serial_number: Some(serial.into()),
                device_directory_api_id: Some("dir-1".into()),
            }),
            ..Process::default()
        }
    }

    #[test]
    fn fills_device_fields_and_escapes_them_in_the_subject() {
        let p = profile("CN={device.serialNumber},O=Example", &[]);
        let rendered = p.render(&device_process("SN1")).expect("renders");
        assert_eq!(rendered.subject.to_string(), "CN=SN1,O=Example");
        // a crafted serial stays one CN value
        let rendered = p.render(&device_process("x,O=Evil")).expect("renders");
        assert_eq!(rendered.subject.0.len(), 2);
        // x509-cert prints the value without escaping "="; the two RDNs are what matters
        assert_eq!(rendered.subject.to_string(), "CN=x\\,O=Evil,O=Example");
        assert_eq!(rendered.lifetime, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn a_missing_field_is_a_reason_not_a_panic() {
        let p = profile("CN={user.email}", &["{user.email}"]);
        let error = p.render(&device_process("SN1")).expect_err("no user");
        assert_eq!(
            error,
            "the process has no user.email, which the profile needs"
        );
        let mut user = device_process("SN1");
        user.chrome_os_device = None;
        user.chrome_os_user_session = Some(ChromeOsUserSession {
            user_primary_email: Some("ada@example.com".into()),
            ..Default::default()
        });
        let rendered = p.render(&user).expect("renders");
        assert_eq!(rendered.extensions.len(), 3, "KU, EKU and SAN");
    }

    #[test]
    fn bad_profiles_are_refused_at_start() {
        let mut config = profile("CN=x", &[]).config;
        config.key_usages = vec!["keyCertSign".into()];
        assert!(Profile::new("p", config.clone()).is_err());
        config.key_usages = vec![];
        config.subject = "CN={device.serialNumber".into();
        assert!(Profile::new("p", config).is_err());
    }
}
