//! OAuth2 access tokens for Google's APIs from a service-account key: the JWT bearer grant
//! (RFC 7523; RS256 assertion with `iss`, `scope`, `aud`, `iat`, `exp` and, for domain-wide
//! delegation, `sub`), cached per scope until a minute before it expires. Tokens and the key are
//! secrets: they are never logged, and `Debug` shows neither.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// The token endpoint refused the assertion (a configuration problem).
    #[error("token refused: {0}")]
    Refused(String),
    /// The endpoint could not be reached or failed; worth retrying.
    #[error("token endpoint unavailable: {0}")]
    Unavailable(String),
}

/// Something that hands out bearer tokens.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for `scope`, or `None` when requests go unauthenticated (an emulator).
    async fn token(&self, scope: &str) -> Result<Option<SecretString>, AuthError>;

    /// Google answered 401 to `token`: forget it, so that the next [`Self::token`] for `scope`
    /// fetches a new one instead of using a revoked token until it would have expired.
    async fn refused(&self, _scope: &str, _token: &SecretString) {}
}

/// Sends the request `build` makes with a bearer token for `scope` from `tokens` (none when they
/// give none). A 401 means the cached token was revoked or expired early: it is dropped and the
/// request sent once more with a fresh one. `refused` hears of every token Google would not grant
/// or would not take.
pub async fn send_with_token(
    tokens: &dyn TokenSource,
    scope: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
    refused: impl Fn(),
) -> Result<Result<reqwest::Response, reqwest::Error>, AuthError> {
    let mut retried = false;
    loop {
        let token = tokens.token(scope).await.inspect_err(|e| {
            if matches!(e, AuthError::Refused(_)) {
                refused();
            }
        })?;
        let mut request = build();
        if let Some(token) = &token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Ok(Err(e)),
        };
        match token {
            Some(token) if response.status() == 401 && !retried => {
                refused();
                tokens.refused(scope, &token).await;
                retried = true;
            }
            _ => return Ok(Ok(response)),
        }
    }
}

/// No credentials (the Pub/Sub emulator).
pub struct Anonymous;

#[async_trait]
impl TokenSource for Anonymous {
    async fn token(&self, _scope: &str) -> Result<Option<SecretString>, AuthError> {
        Ok(None)
    }
}

/// The fields of Google's service-account key file that the grant needs.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: SecretString,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Google's token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Tokens from a service-account key.
pub struct ServiceAccount {
    http: reqwest::Client,
    email: String,
    key_id: Option<String>,
    key: jsonwebtoken::EncodingKey,
    token_url: String,
    subject: Option<String>,
    cache: Mutex<HashMap<String, (SecretString, Instant)>>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("email", &self.email)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl ServiceAccount {
    /// Reads `key_file`; `token_url` overrides the file's `token_uri`.
    pub fn load(
        key_file: &Path,
        token_url: Option<&str>,
        subject: Option<&str>,
        http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(key_file)
                .with_context(|| format!("cannot read {}", key_file.display()))?,
        );
        let file: KeyFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a service-account key file", key_file.display()))?;
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(file.private_key.expose_secret().as_bytes())
                .with_context(|| {
                    format!("{}: private_key is not an RSA PEM key", key_file.display())
                })?;
        Ok(Self {
            http,
            email: file.client_email,
            key_id: file.private_key_id,
            key,
            token_url: token_url
                .map(str::to_owned)
                .or(file.token_uri)
                .unwrap_or_else(|| GOOGLE_TOKEN_URL.to_owned()),
            subject: subject.map(str::to_owned),
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn assertion(&self, scope: &str) -> Result<String, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let mut claims = serde_json::json!({
            "iss": self.email,
            "scope": scope,
            "aud": self.token_url,
            "iat": now,
            "exp": now + 3600,
        });
        if let Some(subject) = &self.subject {
            claims["sub"] = subject.clone().into();
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| AuthError::Refused(format!("cannot sign the assertion: {e}")))
    }
}

#[async_trait]
impl TokenSource for ServiceAccount {
    async fn token(&self, scope: &str) -> Result<Option<SecretString>, AuthError> {
        // Held across the fetch so that concurrent callers wait for one grant, not make many.
        let mut cache = self.cache.lock().await;
        if let Some((token, until)) = cache.get(scope) {
            if Instant::now() < *until {
                return Ok(Some(token.clone()));
            }
        }
        let assertion = self.assertion(scope)?;
        let response = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(AuthError::Unavailable(format!(
                "token endpoint answered {status}"
            )));
        }
        if !status.is_success() {
            // OAuth error bodies carry `error` and `error_description`, never a token.
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            return Err(AuthError::Refused(format!(
                "{status}: {} {}",
                body.get("error").and_then(|v| v.as_str()).unwrap_or(""),
                body.get("error_description")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
            )));
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|e| AuthError::Unavailable(format!("token answer unreadable: {e}")))?;
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(3600));
        let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(60));
        cache.insert(scope.to_owned(), (body.access_token.clone(), until));
        Ok(Some(body.access_token))
    }

    async fn refused(&self, scope: &str, token: &SecretString) {
        let mut cache = self.cache.lock().await;
        // Only the refused token: a caller that already fetched its successor keeps that one.
        if cache
            .get(scope)
            .is_some_and(|(cached, _)| cached.expose_secret() == token.expose_secret())
        {
            cache.remove(scope);
            tracing::info!(
                scope,
                "Google refused the cached access token; fetching a new one"
            );
        }
    }
}
