//! A fake of Google's Wallet backend for the methods Brevet calls (spec/wallet-api.md §5): it checks
//! each request as Google would (path issuer id, requestMetadata, API version, required fields),
//! records what it accepted, and misbehaves on demand (5xx, 4xx ErrorResponse, hanging, being down).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// How the fake answers the next notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Accept.
    Accept,
    /// Answer 500.
    ServerError,
    /// Answer 400 with an ErrorResponse (`invalidIdentifier`).
    Reject,
    /// Never answer (the caller times out).
    Hang,
}

/// One notification Google accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `notifyCredentialStatusUpdateAvailable` or `notifyProofingStatusUpdateAvailable`.
    pub method: String,
    /// `deviceReferenceId`.
    pub device_reference_id: String,
    /// `credentialId` or `proofingId`, as the method names it.
    pub subject_id: String,
    /// `requestMetadata.requestId`.
    pub request_id: String,
}

#[derive(Default)]
struct Shared {
    /// Behaviours to use, one per request, before falling back to `then`.
    script: Vec<Behaviour>,
    then: Option<Behaviour>,
    accepted: Vec<Notification>,
    /// Every request that arrived, accepted or not.
    received: usize,
}

/// The fake, serving on a loopback port.
pub struct FakeGoogle {
    issuer_id: String,
    shared: Arc<Mutex<Shared>>,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    tls: Option<TlsAcceptor>,
}

/// PEM material for the fake's mutual TLS, as Google and the issuer exchange at onboarding.
pub struct MutualTls<'a> {
    /// The fake's server certificate chain (leaf first) for `localhost`.
    pub server_chain_pem: &'a str,
    /// Its private key (PKCS#8).
    pub server_key_pem: &'a str,
    /// The CA whose client certificates are accepted (Google pins the issuer's certificate).
    pub client_ca_pem: &'a str,
}

fn tls_acceptor(tls: &MutualTls<'_>) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(tls.server_chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("server chain: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(tls.server_key_pem.as_bytes())
        .map_err(|e| format!("server key: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(tls.client_ca_pem.as_bytes()) {
        roots
            .add(ca.map_err(|e| format!("client CA: {e}"))?)
            .map_err(|e| format!("client CA: {e}"))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("client verifier: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over TLS: connections whose handshake fails (no or an untrusted client
/// certificate) are dropped before any request is read, as at Google's front end.
fn serve_tls(
    listener: TcpListener,
    app: Router,
    acceptor: TlsAcceptor,
    stopped: oneshot::Receiver<()>,
) {
    tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let service = hyper_util::service::TowerToHyperService::new(app);
                        let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                            .await;
                    });
                }
            }
        }
    });
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error_response(request_id: &str, description: &str, member: &str) -> Json<Value> {
    Json(json!({
        "responseMetadata": { "requestId": request_id },
        "errorDescription": description,
        member: {},
    }))
}

async fn notify(
    State((issuer_id, shared)): State<(String, Arc<Mutex<Shared>>)>,
    Path((path_issuer, method)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> (StatusCode, Json<Value>) {
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let request_id = body
        .pointer("/requestMetadata/requestId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let subject_field = match method.as_str() {
        "notifyCredentialStatusUpdateAvailable" => "credentialId",
        "notifyProofingStatusUpdateAvailable" => "proofingId",
        "healthCheck" => "clientMessage",
        _ => {
            return (
                StatusCode::NOT_FOUND,
                error_response(&request_id, "unknown method", "invalidIdentifier"),
            )
        }
    };
    if path_issuer != issuer_id
        || body
            .pointer("/requestMetadata/issuerId")
            .and_then(Value::as_str)
            != Some(issuer_id.as_str())
    {
        return (
            StatusCode::FORBIDDEN,
            error_response(&request_id, "issuer id does not match", "permissionDenied"),
        );
    }
    if request_id.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            error_response(
                "",
                "requestMetadata.requestId is required",
                "missingRequiredField",
            ),
        );
    }
    if body.pointer("/requestMetadata/version") != Some(&json!({ "major": 0, "minor": 1 })) {
        return (
            StatusCode::BAD_REQUEST,
            error_response(&request_id, "unsupported version", "invalidApiVersion"),
        );
    }
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    if method == "healthCheck" {
        // Echoes clientMessage (spec §5.1); health checks are not notifications.
        return match field("clientMessage") {
            Some(message) => (
                StatusCode::OK,
                Json(
                    json!({ "responseMetadata": { "requestId": request_id }, "clientMessage": message }),
                ),
            ),
            None => (
                StatusCode::BAD_REQUEST,
                error_response(
                    &request_id,
                    "clientMessage is required",
                    "missingRequiredField",
                ),
            ),
        };
    }
    let behaviour = {
        let mut s = lock(&shared);
        s.received += 1;
        if s.script.is_empty() {
            s.then.unwrap_or(Behaviour::Accept)
        } else {
            s.script.remove(0)
        }
    };
    let (Some(device_reference_id), Some(subject_id)) =
        (field("deviceReferenceId"), field(subject_field))
    else {
        let description = format!("deviceReferenceId and {subject_field} are required");
        return (
            StatusCode::BAD_REQUEST,
            error_response(&request_id, &description, "missingRequiredField"),
        );
    };
    match behaviour {
        Behaviour::Accept => {
            lock(&shared).accepted.push(Notification {
                method,
                device_reference_id,
                subject_id,
                request_id: request_id.clone(),
            });
            (
                StatusCode::OK,
                Json(json!({ "responseMetadata": { "requestId": request_id } })),
            )
        }
        Behaviour::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({}))),
        Behaviour::Reject => (
            StatusCode::BAD_REQUEST,
            error_response(&request_id, "unknown credentialId", "invalidIdentifier"),
        ),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (StatusCode::GATEWAY_TIMEOUT, Json(json!({})))
        }
    }
}

impl FakeGoogle {
    /// Starts on an ephemeral loopback port.
    pub async fn start(issuer_id: &str) -> std::io::Result<Self> {
        Self::start_with(issuer_id, None).await
    }

    /// Starts on an ephemeral loopback port behind mutual TLS: only clients presenting a
    /// certificate from `tls.client_ca_pem` get past the handshake.
    pub async fn start_mtls(issuer_id: &str, tls: &MutualTls<'_>) -> std::io::Result<Self> {
        let acceptor = tls_acceptor(tls).map_err(std::io::Error::other)?;
        Self::start_with(issuer_id, Some(acceptor)).await
    }

    async fn start_with(issuer_id: &str, tls: Option<TlsAcceptor>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut fake = Self {
            issuer_id: issuer_id.to_owned(),
            shared: Arc::default(),
            address: listener.local_addr()?,
            stop: None,
            tls,
        };
        fake.serve(listener);
        Ok(fake)
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/be/mdl/canonical/{issuer_id}/v1/{method}", post(notify))
            .with_state((self.issuer_id.clone(), self.shared.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        if let Some(acceptor) = &self.tls {
            serve_tls(listener, app, acceptor.clone(), stopped);
            return;
        }
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
    }

    /// The base URL to configure as `google.base_url`.
    pub fn base_url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}", self.address.port()),
            None => format!("http://{}", self.address),
        }
    }

    /// Goes down: new connections are refused until [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Comes back on the same address.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.address).await?;
        self.serve(listener);
        Ok(())
    }

    /// Answers the next requests with `script`, one each, then with `then`.
    pub fn behave(&self, script: &[Behaviour], then: Behaviour) {
        let mut s = lock(&self.shared);
        s.script = script.to_vec();
        s.then = Some(then);
    }

    /// Notifications accepted so far.
    pub fn accepted(&self) -> Vec<Notification> {
        lock(&self.shared).accepted.clone()
    }

    /// Requests received so far, accepted or not.
    pub fn received(&self) -> usize {
        lock(&self.shared).received
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.stop();
    }
}
