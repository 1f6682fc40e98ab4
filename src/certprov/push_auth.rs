//! Who may call the Pub/Sub push endpoint. Pub/Sub push subscriptions authenticate with a
//! Google-signed OIDC token (`Authorization: Bearer <JWT>`, RS256, issuer accounts.google.com,
//! audience chosen on the subscription, `email` = the push service account); the older way is a
//! secret in the push URL (`?token=`). Either or both may be configured; every configured check
//! must pass. Google's signing keys come from its JWKS document, cached and refetched (at most
//! once a minute) when a token names an unknown key.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

/// Where Google publishes the keys that sign OIDC tokens.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// Why a push was refused (kept for the log; the caller only sees 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The OIDC check.
pub struct OidcCheck {
    http: reqwest::Client,
    jwks_url: String,
    audience: String,
    email: Option<String>,
    keys: Mutex<(JwkSet, Option<Instant>)>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

impl OidcCheck {
    /// Tokens must carry `audience` and, when given, be for `email`.
    pub fn new(jwks_url: &str, audience: &str, email: Option<&str>) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .use_rustls_tls()
                .build()?,
            jwks_url: jwks_url.to_owned(),
            audience: audience.to_owned(),
            email: email.map(str::to_owned),
            keys: Mutex::new((JwkSet { keys: Vec::new() }, None)),
        })
    }

    async fn key(&self, kid: &str) -> Result<jsonwebtoken::DecodingKey, Refused> {
        let mut keys = self.keys.lock().await;
        if keys.0.find(kid).is_none()
            && keys
                .1
                .is_none_or(|at| at.elapsed() > Duration::from_secs(60))
        {
            keys.1 = Some(Instant::now());
            match self.http.get(&self.jwks_url).send().await {
                Ok(response) => match response.json::<JwkSet>().await {
                    Ok(set) => keys.0 = set,
                    Err(e) => tracing::warn!(error = %e, "Google's JWKS document is unreadable"),
                },
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), "cannot fetch Google's JWKS document")
                }
            }
        }
        let jwk = keys
            .0
            .find(kid)
            .ok_or_else(|| Refused(format!("no Google key {kid:?}")))?;
        jsonwebtoken::DecodingKey::from_jwk(jwk)
            .map_err(|e| Refused(format!("bad Google key: {e}")))
    }

    /// Checks `token`.
    pub async fn check(&self, token: &str) -> Result<(), Refused> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Refused(format!("not a JWT: {e}")))?;
        let kid = header
            .kid
            .ok_or_else(|| Refused("the token names no key".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_issuer(&["https://accounts.google.com", "accounts.google.com"]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| Refused(format!("invalid token: {e}")))?
            .claims;
        if let Some(expected) = &self.email {
            if claims.email.as_deref() != Some(expected) || claims.email_verified != Some(true) {
                return Err(Refused(
                    "the token is not for the push service account".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Every configured check of a push request.
pub struct PushAuth {
    /// The `?token=` secret.
    pub token: Option<SecretString>,
    /// The OIDC token check.
    pub oidc: Option<OidcCheck>,
}

impl PushAuth {
    /// Checks a request's `?token=` value and `Authorization` bearer token.
    pub async fn check(
        &self,
        query_token: Option<&str>,
        bearer: Option<&str>,
    ) -> Result<(), Refused> {
        if let Some(expected) = &self.token {
            let same: bool = query_token
                .unwrap_or_default()
                .as_bytes()
                .ct_eq(expected.expose_secret().as_bytes())
                .into();
            if !same {
                return Err(Refused("the push token is missing or wrong".into()));
            }
        }
        if let Some(oidc) = &self.oidc {
            let token = bearer.ok_or_else(|| Refused("no OIDC token".into()))?;
            oidc.check(token).await?;
        }
        Ok(())
    }
}
