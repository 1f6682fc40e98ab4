//! The HTTP server: one router per audience ([`surfaces`]), assembled by [`build_surfaces`] under
//! one set of middleware (request ids, tracing span, access log and metrics, panic catcher,
//! timeout, body limit). [`serve::serve`] serves a bound listener until a shutdown future
//! completes, so tests can bind port 0 and stop the server when they like.

pub mod admin;
pub mod console;
pub mod crl;
pub mod json;
pub mod metrics;
mod observe;
pub mod openapi;
pub mod ops;
pub mod pubsub_push;
pub mod serve;
pub mod status_list;
pub mod surfaces;
pub mod tls;
pub mod wallet;
pub mod worker_ops;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{AdminError, ErrorDetail};
use crate::mdoc::doctype::DocTypes;
use crate::protocol::wallet::ApiVersion;
use crate::service::{Services, WalletContext};
use crate::store::{SharedStore, Store};
use metrics::Metrics;

/// Header that carries the request id, set when the client sent none and echoed on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The use cases' dependencies: store, clock, doc types, Wallet keys.
    pub services: Services,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Wallet API versions accepted in `requestMetadata.version`.
    pub wallet_versions: Arc<[ApiVersion]>,
    /// The issuer id Google assigned (`google.issuer_id`); when set, requests naming another are
    /// refused with `permissionDenied`.
    pub wallet_issuer_id: Option<Arc<str>>,
    /// Which client certificates may call the Wallet surface.
    pub client_auth: Arc<tls::ClientAuth>,
    /// How Pub/Sub push requests are authenticated; `None` disables the push route.
    pub push_auth: Option<Arc<crate::certprov::push_auth::PushAuth>>,
    /// Whether the process runs in development mode (shown on `/readyz`).
    pub development: bool,
    /// The certificate-provisioning CA connections that are built-in CAs (whose certificates
    /// staff may revoke here).
    pub builtin_device_cas: Arc<[String]>,
    /// Whether notifications to Google are configured (`google.base_url`); when not, they are
    /// queued but not delivered, and `/readyz` and `/metrics` say so.
    pub notifications_configured: bool,
    /// Readiness probes beyond the standard ones (added by the components that need them).
    pub extra_probes: Vec<Arc<dyn crate::readiness::Probe>>,
    /// The certificates in use whose expiry `/metrics` exports.
    pub watched_certificates: Arc<[crate::pki::expiry::Watched]>,
    /// The staff console's settings.
    pub console: console::Settings,
    /// `ttl` of the status list tokens (their HTTP `max-age`).
    pub status_list_ttl_secs: u64,
}

impl AppState {
    /// State for a store and the settings in `config`.
    pub fn new(store: SharedStore, config: &Config) -> Self {
        let wallet_versions = config
            .wallet
            .api_versions
            .iter()
            .filter_map(|v| ApiVersion::parse(v))
            .collect::<Vec<_>>()
            .into();
        Self {
            services: Services {
                store,
                clock: Clock::system(),
                doc_types: Arc::new(DocTypes::builtin()),
                wallet: Arc::new(WalletContext::without_keys(config)),
                nonce_ttl: Duration::from_secs(config.wallet.nonce_ttl_secs),
                bulk_update_started: Arc::default(),
                bulk_records_per_sec: config.bulk_update.records_per_sec,
            },
            metrics: Arc::new(Metrics::new()),
            wallet_versions,
            wallet_issuer_id: config.google.issuer_id.as_deref().map(Arc::from),
            client_auth: Arc::new(tls::ClientAuth::from_config(config.tls.as_ref())),
            development: config.is_development(),
            builtin_device_cas: crate::certprov::builtin_ca_names(&config.certprov).into(),
            notifications_configured: config.google.base_url.is_some(),
            extra_probes: Vec::new(),
            watched_certificates: Arc::new([]),
            console: console::Settings::from_config(config),
            status_list_ttl_secs: config.status_list.ttl_secs,
            push_auth: match crate::certprov::push_auth(&config.certprov.pubsub) {
                Ok(auth) => auth.map(Arc::new),
                Err(error) => {
                    // Fails closed: without its checks the push route does not exist.
                    tracing::error!(error = %error, "Pub/Sub push authentication unavailable; push disabled");
                    None
                }
            },
        }
    }

    /// The same state with the Wallet surface's keys and policy.
    pub fn with_wallet(mut self, wallet: WalletContext) -> Self {
        self.services.wallet = Arc::new(wallet);
        self
    }

    /// The same state validating holder data against `doc_types`.
    pub fn with_doc_types(mut self, doc_types: DocTypes) -> Self {
        self.services.doc_types = Arc::new(doc_types);
        self
    }

    /// The same state exporting the expiry of `watched` certificates.
    pub fn with_watched_certificates(mut self, watched: Vec<crate::pki::expiry::Watched>) -> Self {
        self.watched_certificates = watched.into();
        self
    }

    /// The same state reading time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.services.clock = clock;
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.services.store
    }

    /// Every certificate this process uses: the fixed ones and the current key set's.
    pub fn certificates_in_use(&self) -> Vec<crate::pki::expiry::Watched> {
        let mut watched = self.watched_certificates.to_vec();
        watched.extend(crate::pki::expiry::of_key_set(&self.services.wallet.keys()));
        watched
    }

    /// Every readiness probe of this process: the standard ones, then the added ones.
    pub fn probes(&self) -> Vec<Arc<dyn crate::readiness::Probe>> {
        let mut probes =
            crate::readiness::standard(self.store(), &self.services.wallet, &self.services.clock);
        probes.extend(self.extra_probes.iter().cloned());
        probes
    }
}

/// Limits applied by [`build_app`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request still running after this gets 408.
    pub request_timeout: Duration,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
}

impl Limits {
    /// The limits configured in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            request_timeout: Duration::from_secs(config.http.request_timeout_secs),
            body_limit_bytes: config.http.body_limit_bytes,
        }
    }
}

/// The whole HTTP application, every surface on one router (the zero-configuration set-up and
/// most tests).
pub fn build_app(state: AppState, limits: Limits) -> Router {
    build_surfaces(state, limits, &surfaces::Surface::ALL)
}

/// The routes of `wanted` surfaces on one router, under the common middleware.
pub fn build_surfaces(state: AppState, limits: Limits, wanted: &[surfaces::Surface]) -> Router {
    use surfaces::Surface;
    let request_span = |request: &Request| {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .and_then(|id| id.header_value().to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("http", request_id = %request_id)
    };
    let served = surfaces::Served(wanted.to_vec());
    let mut router: Router<AppState> = Router::new();
    for surface in wanted {
        router = router.merge(match surface {
            Surface::Wallet => {
                openapi::wallet_surface()
                    .0
                    .layer(axum::middleware::from_fn_with_state(
                        state.clone(),
                        tls::require_client_certificate,
                    ))
            }
            Surface::Admin if state.console.enabled => {
                openapi::admin_routes().merge(console::router())
            }
            Surface::Admin => openapi::admin_routes(),
            Surface::Ops => openapi::ops_routes(),
            Surface::Public => pubsub_push::router()
                .merge(crl::router())
                .merge(status_list::router()),
        });
    }
    let deadline = surfaces::Deadline {
        served: served.clone(),
        limit: limits.request_timeout,
    };
    let not_found = served.clone();
    router
        .fallback(move |uri: axum::http::Uri| {
            let served = not_found.clone();
            async move { surfaces::not_found(&served, &uri) }
        })
        .method_not_allowed_fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
            let served = served.clone();
            async move { surfaces::method_not_allowed(&served, &method, &uri) }
        })
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(
            // Listed outermost first.
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(surfaces::sanitise_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(())
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    observe::observe,
                ))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(axum::middleware::from_fn_with_state(
                    deadline,
                    surfaces::deadline,
                )),
        )
        .with_state(state)
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned());
    let mut response = AdminError::Internal(String::new()).into_response();
    response
        .extensions_mut()
        .insert(ErrorDetail(format!("handler panicked: {detail}")));
    response
}

/// Completes on SIGINT or SIGTERM. Call it early: the handlers are installed by the call.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    // Registered now, not when first polled: a signal that arrives between "started" in the log
    // and the first poll must still shut down gracefully instead of killing the process.
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |registered: std::io::Result<tokio::signal::unix::Signal>,
                    name: &'static str| async move {
            match registered {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for {name}");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = wait(interrupt, "SIGINT") => tracing::info!("SIGINT received, shutting down"),
            () = wait(terminate, "SIGTERM") => tracing::info!("SIGTERM received, shutting down"),
        }
    }
}
