//! The Wallet API's JSON objects that both directions share (spec/wallet-api.md §3): request and
//! response metadata, the API version, and the nested objects of the methods. The server, the
//! Google client and the simulators all read and write these; nothing here knows how a payload
//! is built or checked.
//!
//! Google's pages give the names of these objects but, for several, not their fields
//! (spec/wallet-api.md §13.1). Every field name marked [I] below is our assumption; they are all in
//! this one module so that a correction is one rename. docs/wallet-api.md lists them.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `Version`: "major.minor" as two integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiVersion {
    /// Major version.
    pub major: i64,
    /// Minor version.
    pub minor: i64,
}

impl ApiVersion {
    /// Parses "MAJOR.MINOR".
    pub fn parse(raw: &str) -> Option<Self> {
        let (major, minor) = raw.split_once('.')?;
        Some(Self {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// `RequestMetadata`, present in every Wallet request that has a body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    /// Different on every retry; for correlation only, never for idempotency.
    pub request_id: String,
    /// The API version the caller speaks (Brevet accepts `wallet.api_versions`, default 0.1).
    #[schema(schema_with = supported_version)]
    pub version: ApiVersion,
    /// The issuer Google believes it is talking to.
    pub issuer_id: String,
}

/// The schema of the version a request may carry as Brevet is configured by default: 0.1 (the
/// only version Google publishes). Other configured versions answer as well.
fn supported_version() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let exactly = |n: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(n))
            .maximum(Some(n))
    };
    ObjectBuilder::new()
        .property("major", exactly(0))
        .property("minor", exactly(1))
        .required("major")
        .required("minor")
        .description(Some(
            "The API version: 0.1 unless wallet.api_versions says otherwise.",
        ))
        .build()
}

/// `ResponseMetadata`, in every Wallet response and ErrorResponse.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseMetadata {
    /// The `requestId` of the request answered; empty when the request could not be read.
    pub request_id: String,
}

impl ResponseMetadata {
    /// Metadata answering the request with this id.
    pub fn answering(request_id: &str) -> Self {
        Self {
            request_id: request_id.to_owned(),
        }
    }
}

/// Schemas whose fields are [I]; the OpenAPI document marks them `x-brevet-unconfirmed`.
pub const UNCONFIRMED_SCHEMAS: [&str; 4] = [
    "AuthKey",
    "ProofOfProvisioning",
    "MobileSecurityObject",
    "UserActionRequired",
];

/// `DeviceEncryptionKey` [G]: the device's ephemeral HPKE key for one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceEncryptionKey {
    /// Base64 uncompressed P-256 point (65 bytes).
    pub public_key: String,
    /// Base64 COSE_Sign1 ProofOfOwnership by the device identity key, challenge
    /// SHA-256(public key bytes).
    pub signature: String,
    /// The device's id of this key; Brevet's `recipientKeyId` when encrypting to it.
    pub key_id: String,
}

/// `EncryptedData` [G]: an HPKE-encrypted value with what the recipient needs to open it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptedData {
    /// Base64 ciphertext ‖ tag; at most 65,536 bytes.
    pub encrypted_value: String,
    /// Base64 HPKE encapsulated key.
    pub encapsulated_key: String,
    /// Base64 COSE_Sign1 over SHA-256(plaintext ‖ recipient public key).
    pub signature: String,
    /// Which recipient key: an issuer certificate serial in upper-case hex, or the device's keyId.
    pub recipient_key_id: String,
}

/// Largest `encryptedValue` the spec allows, in bytes.
pub const MAX_ENCRYPTED_VALUE: usize = 65_536;

/// `Credential` [G]: exactly one of the two members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// The credential payload encrypted to the device.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub encrypted_data: Option<EncryptedData>,
    /// Base64 of the credential payload (sandbox onboarding only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unencrypted_value: Option<String>,
}

/// `AuthKey` [I]: one auth-key certificate to certify.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthKey {
    /// [I] Base64 DER X.509 certificate of the auth key, signed by the device identity key.
    pub certificate: String,
}

/// `ProofOfProvisioning` [I].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProofOfProvisioning {
    /// [I] Base64 COSE_Sign1 whose payload is the ProofOfProvisioning CBOR.
    pub signature: String,
}

/// `MobileSecurityObject` [I]: the static auth data of one auth key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MobileSecurityObject {
    /// [I] Base64 DER of the auth-key certificate this MSO certifies.
    pub auth_key_certificate: String,
    /// [I] StaticAuthData CBOR encrypted to the device.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub encrypted_data: Option<EncryptedData>,
    /// [I] Base64 StaticAuthData CBOR (sandbox onboarding only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unencrypted_value: Option<String>,
}

/// `UserActionRequired` [I]: the holder must prove their identity again or lose the credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserActionRequired {
    /// [I] `{"submitProofing": {"unlimitedAttempts": {}}}`.
    pub submit_proofing: serde_json::Value,
}

impl UserActionRequired {
    /// Re-proof with proofUser (reverificationContext), any number of attempts.
    pub fn reverification() -> Self {
        Self {
            submit_proofing: serde_json::json!({ "unlimitedAttempts": {} }),
        }
    }
}

/// The HPKE context of an encrypted evidence member of `ProofingEvidence` [G for FrontOfLicense
/// and Barcode; I for the member names and the rest].
pub fn evidence_context(member: &str) -> Option<&'static str> {
    match member {
        "frontOfLicenseImage" => Some("FrontOfLicense"),
        "backOfLicenseImage" => Some("BackOfLicense"),
        "barcode" => Some("Barcode"),
        "selfieVideo" => Some("SelfieVideo"),
        _ => None,
    }
}

/// Default HPKE context of the credential payload ([I], `wallet.hpke.credential`).
pub const CREDENTIAL_CONTEXT: &str = "Credential";
/// Default HPKE context of each MSO ([I], `wallet.hpke.mobile_security_object`).
pub const MOBILE_SECURITY_OBJECT_CONTEXT: &str = "MobileSecurityObject";

/// Evidence member carrying a code the issuer handed the user itself [G].
pub const PRE_AUTHORIZED_CODE: &str = "preAuthorizedCode";

/// Base64 as the Wallet API sends it: standard alphabet with padding.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Reads base64 in any of the four usual forms (standard or URL-safe, padded or not).
pub fn decode(raw: &str) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(raw).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            ApiVersion::parse("0.1"),
            Some(ApiVersion { major: 0, minor: 1 })
        );
        assert_eq!(
            ApiVersion::parse("12.34"),
            Some(ApiVersion {
                major: 12,
                minor: 34
            })
        );
        assert_eq!(ApiVersion { major: 1, minor: 2 }.to_string(), "1.2");
        for bad in ["", "1", "1.", ".1", "a.b", "1.2.3"] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_in_every_form() {
        let bytes = [0xfb, 0xff, 0x01];
        for form in ["+/8B", "-_8B", "+/8B", "-_8B"] {
            assert_eq!(decode(form), Some(bytes.to_vec()), "{form}");
        }
        assert_eq!(decode("+w=="), Some(vec![0xfb]));
        assert_eq!(decode("+w"), Some(vec![0xfb]));
        assert_eq!(decode("not base64!"), None);
        assert_eq!(encode(&[0xfb]), "+w==");
    }
}
