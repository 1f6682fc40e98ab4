//! Client of the Chrome Management API's certificate-provisioning methods (spec §3): `get`,
//! `:claim`, `:signData`, `operations.get`, `:uploadCertificate`, `:setFailure`, with a bearer
//! token for the spec's scope. Errors are sorted by what the caller should do about them.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::{send_with_token, AuthError, TokenSource};
use super::config::CHROME_SCOPE;
use super::metrics::AdapterMetrics;
use super::wire::{
    Bytes, ClaimRequest, ErrorBody, Operation, Process, SetFailureRequest, SignDataRequest,
    SignatureAlgorithm, UploadCertificateRequest,
};

/// What went wrong with a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 5xx, 429, 408, a timeout or no connection: try again later.
    #[error("transient: {0}")]
    Transient(String),
    /// 404: the process (or operation) does not exist for us.
    #[error("not found: {0}")]
    NotFound(String),
    /// Any other 4xx: Google refused; repeating the call will not help.
    #[error("refused: {http} {status}: {message}")]
    Refused {
        /// HTTP status.
        http: u16,
        /// `google.rpc.Code` name, when the body had one.
        status: String,
        /// Google's message.
        message: String,
    },
}

/// The Chrome Management API.
#[derive(Clone)]
pub struct ChromeClient {
    http: reqwest::Client,
    base: url::Url,
    tokens: Arc<dyn TokenSource>,
    metrics: Arc<AdapterMetrics>,
}

impl ChromeClient {
    /// A client for `base` (e.g. `https://chromemanagement.googleapis.com/`).
    pub fn new(
        base: &str,
        tokens: Arc<dyn TokenSource>,
        timeout: Duration,
        metrics: Arc<AdapterMetrics>,
    ) -> anyhow::Result<Self> {
        let mut base = url::Url::parse(base)?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .use_rustls_tls()
            .build()?;
        Ok(Self {
            http,
            base,
            tokens,
            metrics,
        })
    }

    /// `GET v1/{name}`.
    pub async fn get(&self, name: &str) -> Result<Process, ApiError> {
        self.call("get", reqwest::Method::GET, name, None::<&()>)
            .await
    }

    /// `POST v1/{name}:claim`.
    pub async fn claim(&self, name: &str, instance_id: &str) -> Result<(), ApiError> {
        let body = ClaimRequest {
            caller_instance_id: instance_id.to_owned(),
        };
        self.empty("claim", &format!("{name}:claim"), &body).await
    }

    /// `POST v1/{name}:signData`.
    pub async fn sign_data(
        &self,
        name: &str,
        data: &[u8],
        algorithm: SignatureAlgorithm,
    ) -> Result<Operation, ApiError> {
        let body = SignDataRequest {
            sign_data: Bytes(data.to_vec()),
            signature_algorithm: algorithm,
        };
        self.call(
            "signData",
            reqwest::Method::POST,
            &format!("{name}:signData"),
            Some(&body),
        )
        .await
    }

    /// `GET v1/{operation}`; `operation` must be an operation of `process`.
    pub async fn get_operation(
        &self,
        process: &str,
        operation: &str,
    ) -> Result<Operation, ApiError> {
        let inside = operation
            .strip_prefix(process)
            .and_then(|rest| rest.strip_prefix("/operations/"))
            .is_some_and(|id| {
                !id.is_empty()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
            });
        if !inside {
            return Err(ApiError::Refused {
                http: 0,
                status: "INVALID_OPERATION_NAME".into(),
                message: format!("operation name {operation:?} is not an operation of {process}"),
            });
        }
        self.call("operation", reqwest::Method::GET, operation, None::<&()>)
            .await
    }

    /// `POST v1/{name}:uploadCertificate`.
    pub async fn upload_certificate(&self, name: &str, pem: &str) -> Result<(), ApiError> {
        let body = UploadCertificateRequest {
            certificate_pem: pem.to_owned(),
        };
        self.empty(
            "uploadCertificate",
            &format!("{name}:uploadCertificate"),
            &body,
        )
        .await
    }

    /// `POST v1/{name}:setFailure`.
    pub async fn set_failure(&self, name: &str, message: &str) -> Result<(), ApiError> {
        let body = SetFailureRequest {
            error_message: message.to_owned(),
        };
        self.empty("setFailure", &format!("{name}:setFailure"), &body)
            .await
    }

    async fn empty<B: Serialize>(
        &self,
        label: &'static str,
        path: &str,
        body: &B,
    ) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .call(label, reqwest::Method::POST, path, Some(body))
            .await?;
        Ok(())
    }

    /// One call, counted and timed as `label`.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        label: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let timer = self.metrics.start("chrome", label);
        let result = self.send(method, path, body).await;
        timer.done(match &result {
            Ok(_) => "ok",
            Err(ApiError::Transient(_)) => "transient",
            Err(ApiError::NotFound(_)) => "not_found",
            Err(ApiError::Refused { .. }) => "refused",
        });
        result
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let url = self
            .base
            .join(&format!("v1/{path}"))
            .map_err(|e| ApiError::Transient(format!("bad URL for {path}: {e}")))?;
        let build = || {
            let request = self.http.request(method.clone(), url.clone());
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        let sent = send_with_token(self.tokens.as_ref(), CHROME_SCOPE, build, || {
            self.metrics.token_failed()
        })
        .await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(ApiError::Transient(e.without_url().to_string())),
            Err(AuthError::Unavailable(e)) => return Err(ApiError::Transient(e)),
            Err(AuthError::Refused(e)) => {
                return Err(ApiError::Refused {
                    http: 401,
                    status: "UNAUTHENTICATED".into(),
                    message: e,
                })
            }
        };
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| ApiError::Transient(format!("unreadable answer to {path}: {e}")));
        }
        let error = response
            .json::<ErrorBody>()
            .await
            .map(|b| b.error)
            .unwrap_or_default();
        let code = status.as_u16();
        Err(match code {
            408 | 429 | 500..=599 => ApiError::Transient(format!("{code} {}", error.message)),
            404 => ApiError::NotFound(error.message),
            _ => ApiError::Refused {
                http: code,
                status: error.status.unwrap_or_default(),
                message: error.message,
            },
        })
    }
}
