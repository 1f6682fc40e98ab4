//! The JSON of the Chrome Management certificate-provisioning API and of Pub/Sub, field by field
//! as spec/cert-provisioning.md §3–§6 gives them, shared by the worker's clients and by the
//! simulator. `bytes` fields travel as base64 (standard on output; URL-safe also read).

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `SignatureAlgorithm` (spec §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    /// Default, never valid.
    #[serde(rename = "SIGNATURE_ALGORITHM_UNSPECIFIED")]
    Unspecified,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "SIGNATURE_ALGORITHM_RSA_PKCS1_V1_5_SHA256")]
    RsaPkcs1V15Sha256,
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "SIGNATURE_ALGORITHM_ECDSA_SHA256")]
    EcdsaSha256,
}

/// Bytes as base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        decode_base64(&text)
            .map(Bytes)
            .ok_or_else(|| serde::de::Error::custom("not base64"))
    }
}

/// Standard or URL-safe base64, padded or not.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

/// `ChromeOsDevice` (spec §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChromeOsDevice {
    /// Directory API id of the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_directory_api_id: Option<String>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

/// `ChromeOsUserSession` (spec §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChromeOsUserSession {
    /// Directory API id of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_directory_api_id: Option<String>,
    /// The user's primary email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_primary_email: Option<String>,
    /// The device, when the user is affiliated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chrome_os_device: Option<ChromeOsDevice>,
}

/// `GenericCaConnection` / `ScepCaConnection` (spec §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaConnection {
    /// Key into the adapter's own CA configuration.
    pub ca_connection_adapter_config_reference: String,
}

/// `GenericProfile` (spec §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenericProfile {
    /// Key into the adapter's own profile configuration.
    pub profile_adapter_config_reference: String,
}

/// `CertificateProvisioningProcess` (spec §4.1). The SCEP variants are kept as opaque JSON: this
/// adapter serves generic connections and profiles only and leaves SCEP processes alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// `customers/{customer}/certificateProvisioningProcesses/{id}`.
    pub name: String,
    /// Id of the certificate provisioning profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_profile_id: Option<String>,
    /// DER SubjectPublicKeyInfo of the on-device key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_public_key_info: Option<Bytes>,
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// What the device was asked to sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_data: Option<Bytes>,
    /// How.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_algorithm: Option<SignatureAlgorithm>,
    /// The device's signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Bytes>,
    /// The uploaded certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_certificate: Option<String>,
    /// Present when the process failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    /// Generic CA connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_ca_connection: Option<CaConnection>,
    /// SCEP CA connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scep_ca_connection: Option<serde_json::Value>,
    /// Generic profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_profile: Option<GenericProfile>,
    /// SCEP profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scep_profile: Option<serde_json::Value>,
    /// A device certificate's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chrome_os_device: Option<ChromeOsDevice>,
    /// A user certificate's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chrome_os_user_session: Option<ChromeOsUserSession>,
    /// Early v1 / v1alpha1 flat reference (spec §4.10), read for tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_connection_adapter_config_reference: Option<String>,
    /// Early v1 / v1alpha1 flat reference (spec §4.10), read for tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_adapter_config_reference: Option<String>,
}

impl Process {
    /// The generic CA-connection reference, in either the nested or the historical flat form.
    pub fn ca_reference(&self) -> Option<&str> {
        self.generic_ca_connection
            .as_ref()
            .map(|c| c.ca_connection_adapter_config_reference.as_str())
            .or(self.ca_connection_adapter_config_reference.as_deref())
    }

    /// The generic profile reference, in either form.
    pub fn profile_reference(&self) -> Option<&str> {
        self.generic_profile
            .as_ref()
            .map(|p| p.profile_adapter_config_reference.as_str())
            .or(self.profile_adapter_config_reference.as_deref())
    }

    /// The device: the device subject's, or an affiliated user's.
    pub fn device(&self) -> Option<&ChromeOsDevice> {
        self.chrome_os_device.as_ref().or(self
            .chrome_os_user_session
            .as_ref()
            .and_then(|u| u.chrome_os_device.as_ref()))
    }
}

/// Body of `:claim`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimRequest {
    /// This adapter instance.
    pub caller_instance_id: String,
}

/// Body of `:signData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignDataRequest {
    /// The bytes to sign.
    pub sign_data: Bytes,
    /// How to sign them.
    pub signature_algorithm: SignatureAlgorithm,
}

/// Body of `:uploadCertificate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadCertificateRequest {
    /// Exactly one PEM certificate.
    pub certificate_pem: String,
}

/// Body of `:setFailure`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetFailureRequest {
    /// Shown on the ChromeOS device.
    pub error_message: String,
}

/// `google.rpc.Status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Status {
    /// gRPC code (int) in an Operation; the HTTP status in an error body.
    #[serde(default)]
    pub code: i32,
    /// Developer-facing text.
    #[serde(default)]
    pub message: String,
    /// The code's name (`FAILED_PRECONDITION`, …) in an HTTP error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Google's HTTP error body `{"error": Status}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: Status,
}

/// `google.longrunning.Operation` (spec §4.8). `metadata` and `response` are read by field,
/// ignoring `@type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Operation {
    /// Server-assigned name, used verbatim with operations.get.
    pub name: String,
    /// `SignDataMetadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Finished?
    #[serde(default)]
    pub done: bool,
    /// The failure, when finished unsuccessfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
    /// `SignDataResponse`, when finished successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
}

impl Operation {
    /// The signature in `response.certificateProvisioningProcess.signature`, if any.
    pub fn signature(&self) -> Option<Vec<u8>> {
        let text = self
            .response
            .as_ref()?
            .get("certificateProvisioningProcess")?
            .get("signature")?
            .as_str()?;
        decode_base64(text)
    }
}

/// A `PubsubMessage`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PubsubMessage {
    /// The payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Bytes>,
    /// Attributes (none are documented for this topic).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// RFC 3339 publish time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_time: Option<String>,
}

/// One message of a pull answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedMessage {
    /// The handle to acknowledge it with.
    pub ack_id: String,
    /// The message.
    pub message: PubsubMessage,
    /// Delivery count (only with a dead-letter policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_attempt: Option<i32>,
}

/// Answer of `:pull` (may be `{}`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PullResponse {
    /// The messages.
    #[serde(default)]
    pub received_messages: Vec<ReceivedMessage>,
}

/// What a push subscription POSTs (the default "wrapped" form).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushEnvelope {
    /// The message.
    pub message: PubsubMessage,
    /// The subscription it came through.
    #[serde(default)]
    pub subscription: Option<String>,
}

/// `CertificateProvisioningProcessCreatedEventData` (spec §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessCreated {
    /// The process id.
    pub process_id: String,
    /// The customer id.
    pub customer_id: String,
}

impl ProcessCreated {
    /// The resource name the message points at.
    pub fn name(&self) -> String {
        format!(
            "customers/{}/certificateProvisioningProcesses/{}",
            self.customer_id, self.process_id
        )
    }

    /// Reads `data` as proto3 JSON (camelCase or snake_case) or, failing that, as binary protobuf
    /// (fields 1 and 2, length-delimited UTF-8; others skipped). The encoding is not documented,
    /// so both are accepted (spec §6.1). `None` when neither yields both ids.
    pub fn decode(data: &[u8]) -> Option<Self> {
        Self::from_json(data).or_else(|| Self::from_protobuf(data))
    }

    fn from_json(data: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(data).ok()?;
        let field = |camel: &str, snake: &str| {
            value
                .get(camel)
                .or_else(|| value.get(snake))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Self::checked(
            field(
                "certificateProvisioningProcessId",
                "certificate_provisioning_process_id",
            )?,
            field("customerId", "customer_id")?,
        )
    }

    fn from_protobuf(mut data: &[u8]) -> Option<Self> {
        let (mut process_id, mut customer_id) = (None, None);
        while !data.is_empty() {
            let (key, rest) = varint(data)?;
            data = rest;
            match key & 7 {
                0 => data = varint(data)?.1,
                1 => data = data.get(8..)?,
                5 => data = data.get(4..)?,
                2 => {
                    let (len, rest) = varint(data)?;
                    let len = usize::try_from(len).ok()?;
                    let value = rest.get(..len)?;
                    data = &rest[len..];
                    match key >> 3 {
                        1 => process_id = Some(String::from_utf8(value.to_vec()).ok()?),
                        2 => customer_id = Some(String::from_utf8(value.to_vec()).ok()?),
                        _ => {}
                    }
                }
                _ => return None,
            }
        }
        Self::checked(process_id?, customer_id?)
    }

    /// Ids must be non-empty path segments: they go into URLs.
    fn checked(process_id: String, customer_id: String) -> Option<Self> {
        let segment = |s: &str| {
            !s.is_empty()
                && s.len() <= 256
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        };
        (segment(&process_id) && segment(&customer_id)).then_some(Self {
            process_id,
            customer_id,
        })
    }

    /// The binary protobuf encoding (what the simulator publishes in binary mode).
    pub fn to_protobuf(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, value) in [(0x0a, &self.process_id), (0x12, &self.customer_id)] {
            out.push(tag);
            let mut len = value.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
            out.extend_from_slice(value.as_bytes());
        }
        out
    }

    /// The proto3 JSON encoding.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::json!({
            "certificateProvisioningProcessId": self.process_id,
            "customerId": self.customer_id,
        })
        .to_string()
        .into_bytes()
    }
}

fn varint(data: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &data[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_spec_example_in_both_encodings() {
        let binary = [0x0a, 0x02, b'p', b'1', 0x12, 0x03, b'C', b'0', b'1'];
        let expected = ProcessCreated {
            process_id: "p1".into(),
            customer_id: "C01".into(),
        };
        assert_eq!(ProcessCreated::decode(&binary), Some(expected.clone()));
        assert_eq!(expected.to_protobuf(), binary);
        assert_eq!(
            ProcessCreated::decode(&expected.to_json()),
            Some(expected.clone())
        );
        let snake = br#"{"certificate_provisioning_process_id":"p1","customer_id":"C01"}"#;
        assert_eq!(ProcessCreated::decode(snake), Some(expected.clone()));
        assert_eq!(
            expected.name(),
            "customers/C01/certificateProvisioningProcesses/p1"
        );
    }

    #[test]
    fn skips_unknown_protobuf_fields_and_refuses_garbage() {
        // field 3 varint, field 4 length-delimited, then the two known fields
        let data = [
            0x18, 0x96, 0x01, 0x22, 0x01, b'x', 0x0a, 0x01, b'a', 0x12, 0x01, b'b',
        ];
        assert_eq!(
            ProcessCreated::decode(&data).map(|p| p.name()),
            Some("customers/b/certificateProvisioningProcesses/a".into())
        );
        assert_eq!(ProcessCreated::decode(b""), None);
        assert_eq!(ProcessCreated::decode(&[0x0a, 0x05, b'a']), None);
        assert_eq!(ProcessCreated::decode(b"{\"customerId\":\"c\"}"), None);
        // a path traversal in an id never reaches a URL
        assert_eq!(
            ProcessCreated::decode(
                br#"{"certificateProvisioningProcessId":"../x","customerId":"c"}"#
            ),
            None
        );
    }
}
