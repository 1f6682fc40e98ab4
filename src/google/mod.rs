//! Client for the Google-hosted methods Brevet calls (spec/wallet-api.md §5):
//! `POST {base}/be/mdl/canonical/{issuerId}/v1/{method}` over mutual TLS.
//!
//! Every attempt carries a fresh `requestId` (Google's rule) and the answer must echo it. 2xx is
//! success; 408, 429, 5xx, timeouts and connection failures are transient; other 4xx are
//! permanent, with Google's `errorDescription` kept for the operator.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::GoogleConfig;
use crate::protocol::wallet::ApiVersion;

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying later.
    #[error("transient: {0}")]
    Transient(String),
    /// Google refused the request; retrying the same request will not help.
    #[error("refused: {0}")]
    Permanent(String),
}

/// Something that can tell Google a credential's status may have changed.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// `notifyCredentialStatusUpdateAvailable` for one device copy.
    async fn notify_credential_status(
        &self,
        device_reference_id: &str,
        credential_id: &str,
    ) -> Result<(), NotifyError>;

    /// `notifyProofingStatusUpdateAvailable` for one proofing.
    async fn notify_proofing_status(
        &self,
        device_reference_id: &str,
        proofing_id: &str,
    ) -> Result<(), NotifyError>;
}

/// The HTTP client for Google's backend.
#[derive(Debug, Clone)]
pub struct GoogleClient {
    http: reqwest::Client,
    base_url: String,
    issuer_id: String,
    version: ApiVersion,
}

/// The client could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
#[error("google client: {0}")]
pub struct ClientError(String);

impl GoogleClient {
    /// A client for `config`, or `None` when notifications are not configured.
    pub fn from_config(config: &GoogleConfig) -> Result<Option<Self>, ClientError> {
        let (Some(base_url), Some(issuer_id)) = (&config.base_url, &config.issuer_id) else {
            return Ok(None);
        };
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(Duration::from_secs(5))
            .use_rustls_tls()
            .https_only(base_url.starts_with("https://"));
        if let Some(path) = &config.client_identity {
            let pem =
                std::fs::read(path).map_err(|e| ClientError(format!("{}: {e}", path.display())))?;
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                ClientError(format!(
                    "{}: not a PEM certificate and key ({e})",
                    path.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        if let Some(path) = &config.ca_certificate {
            let pem =
                std::fs::read(path).map_err(|e| ClientError(format!("{}: {e}", path.display())))?;
            let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                ClientError(format!("{}: not a PEM certificate ({e})", path.display()))
            })?;
            builder = builder.add_root_certificate(ca);
        }
        let http = builder.build().map_err(|e| ClientError(e.to_string()))?;
        Ok(Some(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            issuer_id: issuer_id.clone(),
            version: config
                .api_version
                .as_deref()
                .and_then(ApiVersion::parse)
                .unwrap_or(ApiVersion { major: 0, minor: 1 }),
        }))
    }

    /// Google's `healthCheck` (spec §5.1) over the configured identity: the `clientMessage` it
    /// echoed. For onboarding (`brevet google check`).
    pub async fn health_check(&self, message: &str) -> Result<String, NotifyError> {
        let answer = self
            .call("healthCheck", json!({ "clientMessage": message }))
            .await?;
        match answer.get("clientMessage").and_then(Value::as_str) {
            Some(echoed) if echoed == message => Ok(echoed.to_owned()),
            other => Err(NotifyError::Permanent(format!(
                "healthCheck: clientMessage not echoed (got {other:?})"
            ))),
        }
    }

    /// The API version Brevet's calls carry.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    async fn call(&self, method: &str, mut body: Value) -> Result<Value, NotifyError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        body["requestMetadata"] =
            json!({ "requestId": request_id, "version": self.version, "issuerId": self.issuer_id });
        let url = format!(
            "{}/be/mdl/canonical/{}/v1/{method}",
            self.base_url, self.issuer_id
        );
        let response = self.http.post(&url).json(&body).send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            NotifyError::Transient(format!("{method}: {what}: {e}"))
        })?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            let echoed = answer
                .pointer("/responseMetadata/requestId")
                .and_then(Value::as_str);
            if echoed != Some(request_id.as_str()) {
                return Err(NotifyError::Transient(format!(
                    "{method}: answer does not echo requestId {request_id}"
                )));
            }
            return Ok(answer);
        }
        let description = answer
            .get("errorDescription")
            .and_then(Value::as_str)
            .unwrap_or("no errorDescription");
        let message = format!("{method}: HTTP {}: {description}", status.as_u16());
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(NotifyError::Transient(message))
        } else {
            Err(NotifyError::Permanent(message))
        }
    }
}

#[async_trait]
impl Notifier for GoogleClient {
    async fn notify_credential_status(
        &self,
        device_reference_id: &str,
        credential_id: &str,
    ) -> Result<(), NotifyError> {
        let body =
            json!({ "deviceReferenceId": device_reference_id, "credentialId": credential_id });
        self.call("notifyCredentialStatusUpdateAvailable", body)
            .await
            .map(drop)
    }

    async fn notify_proofing_status(
        &self,
        device_reference_id: &str,
        proofing_id: &str,
    ) -> Result<(), NotifyError> {
        let body = json!({ "deviceReferenceId": device_reference_id, "proofingId": proofing_id });
        self.call("notifyProofingStatusUpdateAvailable", body)
            .await
            .map(drop)
    }
}
