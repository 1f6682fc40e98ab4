//! Google Cloud Certificate Authority Service as a CA connection (the natural CA of a Chrome
//! Enterprise customer, reached with the same service account): `POST
//! v1/{pool}/certificates?certificateId=…&requestId=…` with `{"pemCsr", "lifetime"}`, scope
//! cloud-platform. The certificate id is derived from the process, so the one window an
//! external CA leaves open — a worker dying inside the call — closes: asking again answers 409
//! ALREADY_EXISTS, and the certificate issued the first time is read back instead of a second
//! one being made.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::auth::{AuthError, TokenSource};
use super::ca::{CaError, CertificateAuthority, IssueRequest, Issued};

/// The OAuth scope of the Certificate Authority Service API.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A CA pool of Google's Certificate Authority Service.
pub struct GoogleCas {
    http: reqwest::Client,
    /// `{base}v1/projects/{p}/locations/{l}/caPools/{pool}`.
    pool_url: String,
    tokens: Arc<dyn TokenSource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CasCertificate {
    pem_certificate: String,
}

impl GoogleCas {
    /// A connector for `pool` (`projects/{p}/locations/{l}/caPools/{pool}`) at `base`
    /// (`https://privateca.googleapis.com/`).
    pub fn new(
        base: &str,
        pool: &str,
        tokens: Arc<dyn TokenSource>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let parts: Vec<&str> = pool.split('/').collect();
        if parts.len() != 6
            || parts[0] != "projects"
            || parts[2] != "locations"
            || parts[4] != "caPools"
        {
            anyhow::bail!("{pool:?} is not of the form projects/P/locations/L/caPools/POOL");
        }
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .use_rustls_tls()
                .build()?,
            pool_url: format!("{}/v1/{pool}", base.trim_end_matches('/')),
            tokens,
        })
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, CaError> {
        let token = match self.tokens.token(CLOUD_PLATFORM_SCOPE).await {
            Ok(token) => token,
            Err(AuthError::Unavailable(e)) => return Err(CaError::Unavailable(e)),
            Err(AuthError::Refused(e)) => {
                return Err(CaError::Refused(format!(
                    "The certificate authority refused the request: no access token ({e})"
                )))
            }
        };
        let request = match &token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            CaError::Unavailable(format!("CA Service unreachable: {}", e.without_url()))
        })?;
        if response.status() == 401 {
            if let Some(token) = &token {
                self.tokens.refused(CLOUD_PLATFORM_SCOPE, token).await;
            }
            return Err(CaError::Unavailable(
                "CA Service refused the access token (401)".into(),
            ));
        }
        Ok(response)
    }
}

/// The certificate id for a process: stable across attempts and workers, within the API's
/// `[a-z0-9-]{1,63}`.
fn certificate_id(process: &str) -> String {
    let digest = Sha256::digest(process.as_bytes());
    format!("brevet-{}", hex::encode(&digest[..20]))
}

#[async_trait]
impl CertificateAuthority for GoogleCas {
    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, CaError> {
        let id = certificate_id(request.process);
        // Also stable, so that the API's own 60-minute deduplication recognises a repeat.
        let digest = Sha256::digest(id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let request_id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let response = self
            .call(
                self.http
                    .post(format!("{}/certificates", self.pool_url))
                    .query(&[
                        ("certificateId", id.as_str()),
                        ("requestId", &request_id.to_string()),
                    ])
                    .json(&serde_json::json!({
                        "pemCsr": request.csr_pem,
                        "lifetime": format!("{}s", request.rendered.lifetime.as_secs()),
                    })),
            )
            .await?;
        let status = response.status();
        let response = if status.as_u16() == 409 {
            // Issued by an earlier attempt whose answer was lost: read it back.
            tracing::info!(certificate_id = %id, "CA Service already issued this process's certificate; reading it back");
            let again = self
                .call(
                    self.http
                        .get(format!("{}/certificates/{id}", self.pool_url)),
                )
                .await?;
            if !again.status().is_success() {
                return Err(CaError::Unavailable(format!(
                    "CA Service answered {} reading certificate {id}",
                    again.status()
                )));
            }
            again
        } else if status.is_server_error() || status.as_u16() == 429 {
            return Err(CaError::Unavailable(format!(
                "CA Service answered {status}"
            )));
        } else if !status.is_success() {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no reason given");
            return Err(CaError::Refused(format!(
                "The certificate authority refused the request: {message}"
            )));
        } else {
            response
        };
        let body: CasCertificate = response
            .json()
            .await
            .map_err(|e| CaError::Unavailable(format!("CA Service answer unreadable: {e}")))?;
        Issued::from_pem(&body.pem_certificate)
    }
}
