//! A fake of Google Cloud Certificate Authority Service's certificate methods, written from the
//! public API description (privateca v1): `POST v1/{pool}/certificates?certificateId=…&requestId=…`
//! with `{"pemCsr", "lifetime"}` → the `Certificate` (`name`, `pemCertificate`,
//! `pemCertificateChain`, …); a certificate id used before → 409 ALREADY_EXISTS; `GET
//! v1/{pool}/certificates/{id}`. A bearer token is required (401 UNAUTHENTICATED). Issued
//! certificates take the request's subject and extensions (a pool with passthrough issuance) for
//! the requested lifetime. It can be told to issue and then lose its answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::fake_ca::{requested_extensions, FakeCa};
use crate::pki::certs;

#[derive(Default)]
struct Shared {
    /// certificate name → PEM
    certificates: HashMap<String, String>,
    lose_answers: u32,
    creates: usize,
}

#[derive(Clone)]
struct Ctx {
    ca: FakeCa,
    shared: Arc<Mutex<Shared>>,
}

/// The fake, serving on loopback until dropped.
pub struct FakeCas {
    address: SocketAddr,
    ca_certificate: x509_cert::Certificate,
    shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeCas {
    /// Starts with a fresh CA.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let ca = FakeCa::new("CN=Simulated CAS Pool CA")?;
        let ca_certificate = ca.certificate().clone();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let ctx = Ctx {
            ca,
            shared: shared.clone(),
        };
        let pool = "/v1/projects/{project}/locations/{location}/caPools/{pool}/certificates";
        let app = Router::new()
            .route(pool, post(create))
            .route(&format!("{pool}/{{id}}"), get(read))
            .with_state(ctx);
        let stop = crate::sim::serve_until_stopped(listener, app);
        Ok(Self {
            address,
            ca_certificate,
            shared,
            stop: Some(stop),
        })
    }

    /// Base URL (`http://127.0.0.1:PORT/`).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// The pool's issuing CA.
    pub fn ca_certificate(&self) -> &x509_cert::Certificate {
        &self.ca_certificate
    }

    /// The next `count` creations issue, but answer 503.
    pub fn lose_answers(&self, count: u32) {
        self.lock().lose_answers = count;
    }

    /// Certificates issued.
    pub fn issued(&self) -> usize {
        self.lock().certificates.len()
    }

    /// Create calls received.
    pub fn creates(&self) -> usize {
        self.lock().creates
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeCas {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn error(code: u16, status: &str, message: &str) -> Response {
    let http = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        http,
        Json(json!({ "error": { "code": code, "message": message, "status": status } })),
    )
        .into_response()
}

fn authenticated(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ya29."))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateQuery {
    certificate_id: Option<String>,
    #[serde(default)]
    _request_id: Option<String>,
}

fn view(name: &str, pem: &str, ca: &x509_cert::Certificate) -> Value {
    json!({
        "name": name,
        "pemCertificate": pem,
        "pemCertificateChain": [certs::to_pem(ca).unwrap_or_default()],
    })
}

async fn create(
    State(ctx): State<Ctx>,
    Path((project, location, pool)): Path<(String, String, String)>,
    Query(query): Query<CreateQuery>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authenticated(&headers) {
        return error(
            401,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential.",
        );
    }
    ctx.shared.lock().unwrap_or_else(|p| p.into_inner()).creates += 1;
    let Some(id) = query.certificate_id.filter(|id| {
        !id.is_empty()
            && id.len() <= 63
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }) else {
        return error(400, "INVALID_ARGUMENT", "certificate_id is invalid");
    };
    let name = format!("projects/{project}/locations/{location}/caPools/{pool}/certificates/{id}");
    if ctx
        .shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .certificates
        .contains_key(&name)
    {
        return error(
            409,
            "ALREADY_EXISTS",
            &format!("Resource '{name}' already exists"),
        );
    }
    let Some(pem_csr) = body.get("pemCsr").and_then(Value::as_str) else {
        return error(400, "INVALID_ARGUMENT", "pem_csr is required");
    };
    let lifetime = body
        .get("lifetime")
        .and_then(Value::as_str)
        .and_then(|l| l.strip_suffix('s'))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(30 * 86_400);
    let csr = match crate::certprov::pop::verify_csr_pem(pem_csr) {
        Ok(csr) => csr,
        Err(e) => return error(400, "INVALID_ARGUMENT", &format!("invalid CSR: {e}")),
    };
    let extensions = requested_extensions(&csr);
    let Ok(pem) = ctx
        .ca
        .issue(
            csr.info.subject.to_string(),
            csr.info.public_key.clone(),
            SystemTime::now() - Duration::from_secs(60),
            Duration::from_secs(lifetime),
            extensions,
        )
        .and_then(|c| certs::to_pem(&c))
    else {
        return error(500, "INTERNAL", "cannot issue");
    };
    let mut shared = ctx.shared.lock().unwrap_or_else(|p| p.into_inner());
    shared.certificates.insert(name.clone(), pem.clone());
    if shared.lose_answers > 0 {
        shared.lose_answers -= 1;
        return error(503, "UNAVAILABLE", "The service is currently unavailable.");
    }
    Json(view(&name, &pem, ctx.ca.certificate())).into_response()
}

async fn read(
    State(ctx): State<Ctx>,
    Path((project, location, pool, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authenticated(&headers) {
        return error(
            401,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential.",
        );
    }
    let name = format!("projects/{project}/locations/{location}/caPools/{pool}/certificates/{id}");
    let shared = ctx.shared.lock().unwrap_or_else(|p| p.into_inner());
    match shared.certificates.get(&name) {
        Some(pem) => Json(view(&name, pem, ctx.ca.certificate())).into_response(),
        None => error(
            404,
            "NOT_FOUND",
            &format!("Resource '{name}' was not found"),
        ),
    }
}
