//! Google's Android attestation status list: certificates of attestation keys that were revoked
//! or suspended (`{"entries": {"<serial, lower-case hex>": {"status": "REVOKED", ...}}}`, served at
//! `https://android.googleapis.com/attestation/status`). `brevet serve` fetches it at start and
//! then periodically; registerDevice refuses a chain holding any listed serial. A failed fetch
//! keeps the last good list (and is logged): the list adds to the chain checks, it does not
//! replace them.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::Duration;

use serde::Deserialize;

/// Why the status list could not be loaded (the previous list, if any, stays in force).
#[derive(Debug, thiserror::Error)]
pub enum StatusListError {
    /// The list could not be fetched.
    #[error("cannot fetch {url}: {source}")]
    Fetch {
        /// Where from.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}")]
    Refused {
        /// Where from.
        url: String,
        /// Its answer.
        status: reqwest::StatusCode,
    },
    /// The document is not a status list.
    #[error("not an attestation status list: {0}")]
    Unreadable(#[source] serde_json::Error),
}

/// Google's published list.
pub const GOOGLE_STATUS_URL: &str = "https://android.googleapis.com/attestation/status";

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    entries: HashMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    status: String,
}

/// The serials currently listed as revoked or suspended.
#[derive(Debug, Default)]
pub struct StatusList {
    serials: RwLock<Option<HashSet<String>>>,
}

/// A serial in the list's form: lower-case hex without leading zeros.
pub fn normalise(serial_hex: &str) -> String {
    let trimmed = serial_hex.trim_start_matches('0').to_ascii_lowercase();
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed
    }
}

impl StatusList {
    /// Whether `serial_hex` (any case, leading zeros allowed) is listed.
    pub fn is_listed(&self, serial_hex: &str) -> bool {
        let serials = self.serials.read().unwrap_or_else(|p| p.into_inner());
        serials
            .as_ref()
            .is_some_and(|set| set.contains(&normalise(serial_hex)))
    }

    /// Whether a list was ever loaded.
    pub fn is_loaded(&self) -> bool {
        self.serials
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Replaces the list with the entries of `json`; returns how many are listed.
    pub fn load(&self, json: &[u8]) -> Result<usize, StatusListError> {
        let document: Document =
            serde_json::from_slice(json).map_err(StatusListError::Unreadable)?;
        let listed: HashSet<String> = document
            .entries
            .into_iter()
            .filter(|(_, entry)| matches!(entry.status.as_str(), "REVOKED" | "SUSPENDED"))
            .map(|(serial, _)| normalise(&serial))
            .collect();
        let count = listed.len();
        *self.serials.write().unwrap_or_else(|p| p.into_inner()) = Some(listed);
        Ok(count)
    }

    /// Fetches `url` and loads it.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        url: &str,
    ) -> Result<usize, StatusListError> {
        let fetch = |e: reqwest::Error| StatusListError::Fetch {
            url: url.to_owned(),
            source: e.without_url(),
        };
        let response = http.get(url).send().await.map_err(fetch)?;
        if !response.status().is_success() {
            return Err(StatusListError::Refused {
                url: url.to_owned(),
                status: response.status(),
            });
        }
        let body = response.bytes().await.map_err(fetch)?;
        self.load(&body)
    }

    /// Refreshes every `interval` for as long as the process runs.
    pub async fn keep_fresh(&self, url: String, interval: Duration) {
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .use_rustls_tls()
            .build()
        {
            Ok(http) => http,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the attestation status client");
                return;
            }
        };
        loop {
            match self.refresh(&http, &url).await {
                Ok(count) => tracing::info!(listed = count, "attestation status list refreshed"),
                Err(e) => {
                    tracing::warn!(error = %e, "attestation status list not refreshed; keeping the last one")
                }
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_revoked_and_suspended_serials_in_any_spelling() {
        let list = StatusList::default();
        assert!(!list.is_listed("0A"));
        let json = br#"{"entries": {
            "2c8cdddfd5e03bfc": {"status": "REVOKED", "reason": "KEY_COMPROMISE"},
            "a":                {"status": "SUSPENDED"},
            "c35747a084470c3135aeefe2b8d40cd6": {"status": "OK"}
        }}"#;
        assert_eq!(list.load(json).unwrap(), 2);
        assert!(list.is_listed("2C8CDDDFD5E03BFC"));
        assert!(
            list.is_listed("000A"),
            "DER serials may carry a leading zero byte"
        );
        assert!(!list.is_listed("C35747A084470C3135AEEFE2B8D40CD6"));
        assert!(list.load(b"<html>").is_err());
        assert!(list.is_listed("0A"), "a bad document keeps the last list");
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_the_last_list() {
        use axum::routing::get;
        let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = healthy.clone();
        let app = axum::Router::new().route(
            "/status",
            get(move || {
                let flag = flag.clone();
                async move {
                    if flag.load(std::sync::atomic::Ordering::SeqCst) {
                        (
                            axum::http::StatusCode::OK,
                            r#"{"entries":{"ff":{"status":"REVOKED"}}}"#,
                        )
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/status", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let list = StatusList::default();
        let http = reqwest::Client::new();
        assert_eq!(list.refresh(&http, &url).await.unwrap(), 1);
        healthy.store(false, std::sync::atomic::Ordering::SeqCst);
        assert!(list
            .refresh(&http, &url)
            .await
            .unwrap_err()
            .to_string()
            .contains("503"));
        assert!(list.is_listed("00FF"));
    }
}
