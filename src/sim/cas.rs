//! A fake of Google Cloud Certificate Authority Service's certificate methods, written from the
//! public API description (privateca v1): `POST v1/{pool}/certificates?certificateId=…&requestId=…`
//! with `{"pemCsr", "lifetime"}` → the `Certificate` (`name`, `pemCertificate`,
//! `pemCertificateChain`, …); a certificate id used before → 409 ALREADY_EXISTS; `GET
//! v1/{pool}/certificates/{id}`. A bearer token is required (401 UNAUTHENTICATED). Issued
//! certificates take the request's subject and extensions (a pool with passthrough issuance) for
//! the requested lifetime. It can be told to issue and then lose its answer.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::fake_ca::{requested_extensions, Served};
use crate::pki::certs;

#[derive(Default)]
struct Shared {
    /// certificate name → PEM
    certificates: HashMap<String, String>,
    lose_answers: u32,
    creates: usize,
}

type Ctx = super::fake_ca::Ctx<Shared>;

/// The fake, serving on loopback until dropped.
pub struct FakeCas {
    served: Served<Shared>,
}

impl FakeCas {
    /// Starts with a fresh CA.
    pub async fn start() -> anyhow::Result<Self> {
        let pool = "/v1/projects/{project}/locations/{location}/caPools/{pool}/certificates";
        let served = Served::start("CN=Simulated CAS Pool CA", |ctx| {
            Router::new()
                .route(pool, post(create))
                .route(&format!("{pool}/{{id}}"), get(read))
                .with_state(ctx)
        })
        .await?;
        Ok(Self { served })
    }

    /// Base URL (`http://127.0.0.1:PORT/`).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.served.address())
    }

    /// The pool's issuing CA.
    pub fn ca_certificate(&self) -> &x509_cert::Certificate {
        self.served.ca_certificate()
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
        self.served.lock()
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

/// Google's answer to a call without a valid bearer token.
fn unauthenticated() -> Response {
    error(
        401,
        "UNAUTHENTICATED",
        "Request is missing required authentication credential.",
    )
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
        return unauthenticated();
    }
    ctx.lock().creates += 1;
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
    let mut shared = ctx.lock();
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
        return unauthenticated();
    }
    let name = format!("projects/{project}/locations/{location}/caPools/{pool}/certificates/{id}");
    let shared = ctx.lock();
    match shared.certificates.get(&name) {
        Some(pem) => Json(view(&name, pem, ctx.ca.certificate())).into_response(),
        None => error(
            404,
            "NOT_FOUND",
            &format!("Resource '{name}' was not found"),
        ),
    }
}
