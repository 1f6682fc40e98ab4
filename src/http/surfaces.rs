//! The HTTP surfaces by audience, and what answers on them when no handler does:
//!
//! - *Wallet* (`/v1/vdc/…`): Google's calls, mutual TLS when configured;
//! - *admin* (`/admin/v1/…`): issuer staff with bearer tokens;
//! - *ops* (`/healthz`, `/readyz`, `/metrics`): the platform's probes and scrapers;
//! - *public* (`/certprov/v1/pubsub/push`, later status lists and CRLs): anyone, each route with
//!   its own authentication.
//!
//! Each surface may get its own address (`listen`, `http.admin_listen`, `http.ops_listen`,
//! `http.public_listen`); surfaces on the same address share one listener. Unknown paths, wrong
//! methods and requests that run out of time are answered in the shape of the surface the path
//! belongs to: the Wallet API's ErrorResponse under `/v1/vdc` (or on a listener serving the
//! Wallet surface alone), the admin envelope elsewhere.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::error::{AdminError, WalletError, WalletErrorKind};

/// Who a group of routes is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Surface {
    /// Google's calls to the issuer-hosted Wallet API.
    Wallet,
    /// Issuer staff.
    Admin,
    /// Probes and metrics.
    Ops,
    /// Anyone, each route with its own authentication.
    Public,
}

impl Surface {
    /// Every surface.
    pub const ALL: [Surface; 4] = [
        Surface::Wallet,
        Surface::Admin,
        Surface::Ops,
        Surface::Public,
    ];

    /// Lowercase name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Wallet => "wallet",
            Surface::Admin => "admin",
            Surface::Ops => "ops",
            Surface::Public => "public",
        }
    }

    /// The address this surface listens on in `config`.
    pub fn address(self, config: &Config) -> SocketAddr {
        let http = &config.http;
        match self {
            Surface::Wallet => config.listen,
            Surface::Admin => http.admin_listen.unwrap_or(config.listen),
            Surface::Ops => http.ops_listen.unwrap_or(config.listen),
            Surface::Public => http.public_listen.unwrap_or(config.listen),
        }
    }
}

/// The listeners `config` asks for: each address with the surfaces it serves.
pub fn plan(config: &Config) -> Vec<(SocketAddr, Vec<Surface>)> {
    let mut listeners: Vec<(SocketAddr, Vec<Surface>)> = Vec::new();
    for surface in Surface::ALL {
        let address = surface.address(config);
        match listeners.iter_mut().find(|(a, _)| *a == address) {
            Some((_, surfaces)) => surfaces.push(surface),
            None => listeners.push((address, vec![surface])),
        }
    }
    listeners
}

/// The surfaces one router serves, so that its fallbacks answer in the right shape.
#[derive(Debug, Clone)]
pub struct Served(pub Vec<Surface>);

impl Served {
    /// Whether a request for `path` gets the Wallet API's ErrorResponse.
    fn wallet_shaped(&self, path: &str) -> bool {
        let only_wallet = self.0 == [Surface::Wallet];
        self.0.contains(&Surface::Wallet) && (only_wallet || path.starts_with("/v1/vdc"))
    }

    fn answer(&self, path: &str, status: StatusCode, description: String) -> Response {
        if self.wallet_shaped(path) {
            return WalletError::new(WalletErrorKind::Transport(status), description)
                .into_response();
        }
        match status {
            StatusCode::METHOD_NOT_ALLOWED => AdminError::MethodNotAllowed(description),
            StatusCode::REQUEST_TIMEOUT => AdminError::Timeout,
            _ => AdminError::NotFound(description),
        }
        .into_response()
    }
}

/// Fallback for paths no route matches.
pub fn not_found(served: &Served, uri: &Uri) -> Response {
    let description = if served.wallet_shaped(uri.path()) {
        "no such Wallet API method".to_owned()
    } else {
        "no such route".to_owned()
    };
    served.answer(uri.path(), StatusCode::NOT_FOUND, description)
}

/// Fallback for a route called with a method it does not take.
pub fn method_not_allowed(served: &Served, method: &Method, uri: &Uri) -> Response {
    let description = if served.wallet_shaped(uri.path()) {
        format!("Wallet API methods are called with POST, not {method}")
    } else {
        method.to_string()
    };
    served.answer(uri.path(), StatusCode::METHOD_NOT_ALLOWED, description)
}

/// What the timeout middleware needs.
#[derive(Debug, Clone)]
pub struct Deadline {
    /// The surfaces served.
    pub served: Served,
    /// How long a request may take.
    pub limit: Duration,
}

/// Middleware: a request still running after the limit is answered 408 in its surface's shape.
pub async fn deadline(State(deadline): State<Deadline>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(deadline.limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => deadline.served.answer(
            &path,
            StatusCode::REQUEST_TIMEOUT,
            "the request took longer than the server allows".to_owned(),
        ),
    }
}

/// Longest client-sent request id kept.
const MAX_REQUEST_ID: usize = 64;

/// Whether a client-sent `x-request-id` is kept: 1 to 64 characters of letters, digits and
/// `-_.:`, so that it can go into logs and the audit log as it is. Anything else is replaced.
pub fn acceptable_request_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware (outermost): drops a client's request id that does not pass
/// [`acceptable_request_id`], so that a fresh one is made.
pub async fn sanitise_request_id(mut request: Request, next: Next) -> Response {
    let header = super::REQUEST_ID_HEADER;
    if request
        .headers()
        .get(&header)
        .is_some_and(|value| !acceptable_request_id(value.as_bytes()))
    {
        request.headers_mut().remove(&header);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_plain_and_short() {
        for good in ["abc", "8ae2aae4-0ece-11ed-861d-0242ac120002", "req:1.2_x"] {
            assert!(acceptable_request_id(good.as_bytes()), "{good}");
        }
        let long = "a".repeat(65);
        for bad in ["", "a b", "<script>", "line\nbreak", long.as_str(), "é"] {
            assert!(!acceptable_request_id(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn listeners_group_surfaces_by_address() {
        let mut config = Config::default();
        assert_eq!(plan(&config), vec![(config.listen, Surface::ALL.to_vec())]);
        let admin: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        config.http.admin_listen = Some(admin);
        config.http.ops_listen = Some(admin);
        assert_eq!(
            plan(&config),
            vec![
                (config.listen, vec![Surface::Wallet, Surface::Public]),
                (admin, vec![Surface::Admin, Surface::Ops]),
            ]
        );
    }
}
