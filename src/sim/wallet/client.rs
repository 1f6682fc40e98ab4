//! Google's servers calling an issuer (spec/wallet-api.md §1, §12): a fresh requestId per call,
//! the configured API version and issuer id, and a check that every answer echoes the requestId.
//! Also a small client of Brevet's admin API, for the steps issuer staff take in the flow.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

/// How to reach the issuer.
#[derive(Debug, Clone)]
pub struct IssuerEndpoint {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// The issuer id Google sends.
    pub issuer_id: String,
    /// `requestMetadata.version`.
    pub version: (i64, i64),
    /// PEM file with Google's client certificate and key (mutual TLS).
    pub client_identity: Option<PathBuf>,
    /// Extra CA (PEM) for the issuer's server certificate.
    pub ca_certificate: Option<PathBuf>,
}

/// An answer that was not a 200 with a well-formed body.
#[derive(Debug, Clone)]
pub struct CallError {
    /// HTTP status (0 when the call failed below HTTP).
    pub status: u16,
    /// The body (an ErrorResponse, for the issuer's refusals).
    pub body: Value,
    /// What went wrong, in words.
    pub message: String,
}

impl CallError {
    /// The ErrorResponse member, e.g. `invalidState`.
    pub fn member(&self) -> Option<&str> {
        const MEMBERS: [&str; 10] = [
            "invalidApiVersion",
            "invalidPayloadSignature",
            "invalidPayloadEncryption",
            "invalidIdentifier",
            "invalidFieldValue",
            "missingRequiredField",
            "invalidDecryptedRequest",
            "permissionDenied",
            "forbidden",
            "invalidState",
        ];
        MEMBERS.into_iter().find(|m| self.body.get(*m).is_some())
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {})", self.message, self.status)
    }
}

/// Google's client of the issuer-hosted methods.
#[derive(Clone)]
pub struct WalletClient {
    http: reqwest::Client,
    endpoint: IssuerEndpoint,
}

fn build_http(identity: Option<&PathBuf>, ca: Option<&PathBuf>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .use_rustls_tls();
    if let Some(path) = identity {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        builder = builder.identity(
            reqwest::Identity::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?,
        );
    }
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?,
        );
    }
    builder.build().map_err(|e| e.to_string())
}

impl WalletClient {
    /// A client for `endpoint`.
    pub fn new(endpoint: IssuerEndpoint) -> Result<Self, String> {
        Ok(Self {
            http: build_http(
                endpoint.client_identity.as_ref(),
                endpoint.ca_certificate.as_ref(),
            )?,
            endpoint,
        })
    }

    /// The HTTP client, for the issuer's other public resources (its status lists).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `POST /v1/vdc/{method}` with `body` plus fresh requestMetadata; checks the echo.
    pub async fn call(&self, method: &str, mut body: Value) -> Result<Value, CallError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        body["requestMetadata"] = json!({
            "requestId": request_id,
            "version": { "major": self.endpoint.version.0, "minor": self.endpoint.version.1 },
            "issuerId": self.endpoint.issuer_id,
        });
        let (status, answer) = self.post(method, Some(&body)).await?;
        let echoed = answer
            .pointer("/responseMetadata/requestId")
            .and_then(Value::as_str);
        if echoed != Some(request_id.as_str()) {
            return Err(CallError {
                status,
                body: answer,
                message: format!("{method}: responseMetadata.requestId does not echo the request"),
            });
        }
        if status != 200 {
            return Err(CallError {
                status,
                message: format!(
                    "{method} refused: {}",
                    answer["errorDescription"]
                        .as_str()
                        .unwrap_or("no description")
                ),
                body: answer,
            });
        }
        Ok(answer)
    }

    /// `POST /v1/vdc/{method}` with no body (the key methods).
    pub async fn call_empty(&self, method: &str) -> Result<Value, CallError> {
        let (status, answer) = self.post(method, None).await?;
        if status != 200 {
            return Err(CallError {
                status,
                body: answer,
                message: format!("{method} refused"),
            });
        }
        Ok(answer)
    }

    async fn post(&self, method: &str, body: Option<&Value>) -> Result<(u16, Value), CallError> {
        let url = format!(
            "{}/v1/vdc/{method}",
            self.endpoint.base_url.trim_end_matches('/')
        );
        let mut request = self.http.post(&url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| CallError {
            status: 0,
            body: Value::Null,
            message: format!("{method}: {e}"),
        })?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.map_err(|e| CallError {
            status,
            body: Value::Null,
            message: format!("{method}: the answer is not JSON ({e})"),
        })?;
        Ok((status, answer))
    }
}

/// Issuer staff at the admin API.
#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl AdminClient {
    /// A client for the admin API at `base_url` with `token`.
    pub fn new(base_url: &str, token: &str, ca: Option<&PathBuf>) -> Result<Self, String> {
        Ok(Self {
            http: build_http(None, ca)?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// Creates a holder record of `doc_type`; returns its id and ETag.
    pub async fn create_record(
        &self,
        doc_type: &str,
        holder_data: &Value,
    ) -> Result<(String, String), String> {
        let (_, etag, body) = self
            .send(
                reqwest::Method::POST,
                "/credentials",
                Some(&json!({ "docType": doc_type, "holderData": holder_data })),
                None,
            )
            .await?;
        let id = body["credentialId"].as_str().unwrap_or_default().to_owned();
        Ok((id, etag.unwrap_or_default()))
    }

    /// Sends `method path` with an optional JSON body and extra header; returns status, ETag
    /// and body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<(u16, Option<String>, Value), String> {
        let mut request = self
            .http
            .request(method, format!("{}/admin/v1{path}", self.base_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("admin {path}: {e}"))?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(format!("admin {path}: HTTP {status}: {body}"));
        }
        Ok((status, etag, body))
    }
}
