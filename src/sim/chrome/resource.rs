//! The simulator's own `CertificateProvisioningProcess` and request bodies, written from the
//! spec's field tables (§3, §4) — deliberately not the adapter's `certprov::wire` types, so that a
//! field-name mistake there cannot be agreed with here.

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Map, Value};

/// `SignatureAlgorithm` values (spec §4.7).
pub const RSA_PKCS1_V1_5_SHA256: &str = "SIGNATURE_ALGORITHM_RSA_PKCS1_V1_5_SHA256";
/// See [`RSA_PKCS1_V1_5_SHA256`].
pub const ECDSA_SHA256: &str = "SIGNATURE_ALGORITHM_ECDSA_SHA256";

/// The device or user a process certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `chromeOsDevice`.
    Device {
        /// `deviceDirectoryApiId`.
        directory_id: String,
        /// `serialNumber`.
        serial: String,
    },
    /// `chromeOsUserSession`, with the affiliated device.
    User {
        /// `userDirectoryApiId`.
        directory_id: String,
        /// `userPrimaryEmail`.
        email: String,
        /// Its `chromeOsDevice` (directory id, serial).
        device: (String, String),
    },
}

/// A process as the simulated Google holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `name`.
    pub name: String,
    /// `provisioningProfileId`.
    pub provisioning_profile_id: String,
    /// `subjectPublicKeyInfo` (DER).
    pub subject_public_key_info: Vec<u8>,
    /// `startTime` (RFC 3339).
    pub start_time: String,
    /// `signData`.
    pub sign_data: Option<Vec<u8>>,
    /// `signatureAlgorithm`.
    pub signature_algorithm: Option<&'static str>,
    /// `signature`.
    pub signature: Option<Vec<u8>>,
    /// `issuedCertificate` (PEM).
    pub issued_certificate: Option<String>,
    /// `failureMessage`.
    pub failure_message: Option<String>,
    /// `genericCaConnection.caConnectionAdapterConfigReference`.
    pub ca_reference: String,
    /// `genericProfile.profileAdapterConfigReference`.
    pub profile_reference: String,
    /// `chromeOsDevice` or `chromeOsUserSession`.
    pub subject: Subject,
}

impl Resource {
    /// The JSON `get` answers (bytes as standard base64; absent fields left out).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert(
            "provisioningProfileId".into(),
            json!(self.provisioning_profile_id),
        );
        out.insert(
            "subjectPublicKeyInfo".into(),
            json!(STANDARD.encode(&self.subject_public_key_info)),
        );
        out.insert("startTime".into(), json!(self.start_time));
        if let Some(data) = &self.sign_data {
            out.insert("signData".into(), json!(STANDARD.encode(data)));
        }
        if let Some(algorithm) = self.signature_algorithm {
            out.insert("signatureAlgorithm".into(), json!(algorithm));
        }
        if let Some(signature) = &self.signature {
            out.insert("signature".into(), json!(STANDARD.encode(signature)));
        }
        if let Some(pem) = &self.issued_certificate {
            out.insert("issuedCertificate".into(), json!(pem));
        }
        if let Some(message) = &self.failure_message {
            out.insert("failureMessage".into(), json!(message));
        }
        out.insert(
            "genericCaConnection".into(),
            json!({ "caConnectionAdapterConfigReference": self.ca_reference }),
        );
        out.insert(
            "genericProfile".into(),
            json!({ "profileAdapterConfigReference": self.profile_reference }),
        );
        match &self.subject {
            Subject::Device {
                directory_id,
                serial,
            } => {
                out.insert(
                    "chromeOsDevice".into(),
                    json!({ "deviceDirectoryApiId": directory_id, "serialNumber": serial }),
                );
            }
            Subject::User {
                directory_id,
                email,
                device,
            } => {
                out.insert(
                    "chromeOsUserSession".into(),
                    json!({
                        "userDirectoryApiId": directory_id,
                        "userPrimaryEmail": email,
                        "chromeOsDevice": { "deviceDirectoryApiId": device.0, "serialNumber": device.1 },
                    }),
                );
            }
        }
        Value::Object(out)
    }
}

/// A request body's fields, checked as Google checks them: a JSON object with only the method's
/// fields, the required ones present and strings.
pub fn fields<'a>(
    body: &'a Value,
    required: &[&str],
    optional: &[&str],
) -> Result<Vec<&'a str>, String> {
    let object = body
        .as_object()
        .ok_or("Invalid JSON payload received. Expected an object.")?;
    if let Some(unknown) = object
        .keys()
        .find(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        return Err(format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        ));
    }
    required
        .iter()
        .map(|field| match object.get(*field) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(format!("Invalid value at '{field}'")),
            None => Ok(""),
        })
        .collect()
}

/// Base64 as Google reads `bytes` fields: standard or URL-safe, padded or not.
pub fn bytes(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}
