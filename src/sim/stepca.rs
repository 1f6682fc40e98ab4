//! A fake smallstep step-ca sign API (spec §10): `POST /1.0/sign {csr, ott}` → 201
//! `{crt, ca, certChain}`. Like the real one it checks the provisioner's one-time token (ES256,
//! its `kid`, audience, expiry, single use) and the CSR's self-signature, and it can be told to
//! refuse or to fail.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::certprov::pop::verify_csr_pem;
use crate::pki::certs::{self, CertTemplate, SubjectKey};
use crate::pki::signer::{Signer, SoftwareSigner};

/// The provisioner key id the fake expects.
pub const KEY_ID: &str = "sim-provisioner-key";
/// The provisioner name.
pub const PROVISIONER: &str = "brevet-adapter";

#[derive(Default)]
struct Shared {
    used_tokens: HashSet<String>,
    /// Answer the next requests with this status.
    fail_next: Option<(u16, u32)>,
    issued: usize,
}

/// The fake CA, serving on loopback until dropped.
pub struct FakeStepCa {
    address: SocketAddr,
    provisioner: SoftwareSigner,
    ca_certificate: x509_cert::Certificate,
    shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
}

#[derive(Clone)]
struct Ctx {
    url: String,
    provisioner_point: Vec<u8>,
    ca_key: Arc<SoftwareSigner>,
    ca_certificate: x509_cert::Certificate,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequest {
    csr: String,
    ott: String,
    #[serde(default, rename = "notBefore")]
    _not_before: Option<String>,
    #[serde(default, rename = "notAfter")]
    _not_after: Option<String>,
}

impl FakeStepCa {
    /// Starts a CA with fresh keys on a loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let provisioner = SoftwareSigner::generate();
        let ca_key = SoftwareSigner::generate();
        let ca_certificate = certs::issue_certificate(
            &CertTemplate {
                subject: "CN=Simulated step-ca Intermediate".into(),
                issuer: None,
                serial: None,
                not_before: SystemTime::now() - Duration::from_secs(60),
                lifetime: Duration::from_secs(86_400),
                public_key: ca_key.verifying_key().into(),
                ca: true,
                extensions: Vec::new(),
            },
            &ca_key,
        )?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let ctx = Ctx {
            url: format!("http://{address}"),
            // jsonwebtoken's EC keys are the bare SEC1 point
            provisioner_point: provisioner
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            ca_key: Arc::new(ca_key),
            ca_certificate: ca_certificate.clone(),
            shared: shared.clone(),
        };
        let app = Router::new().route("/1.0/sign", post(sign)).with_state(ctx);
        let stop = crate::sim::serve_until_stopped(listener, app);
        Ok(Self {
            address,
            provisioner,
            ca_certificate,
            shared,
            stop: Some(stop),
        })
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The provisioner's private key (PKCS#8 PEM), for the adapter's configuration.
    pub fn provisioner_key_pem(&self) -> String {
        self.provisioner
            .to_pkcs8_pem()
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    /// The issuing CA's certificate.
    pub fn ca_certificate(&self) -> &x509_cert::Certificate {
        &self.ca_certificate
    }

    /// The next `count` requests answer `status`.
    pub fn fail_next(&self, status: u16, count: u32) {
        self.lock().fail_next = Some((status, count));
    }

    /// Certificates issued so far.
    pub fn issued(&self) -> usize {
        self.lock().issued
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeStepCa {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "status": status.as_u16(), "message": message })),
    )
        .into_response()
}

async fn sign(State(ctx): State<Ctx>, body: axum::body::Bytes) -> Response {
    {
        let mut shared = ctx.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((status, left)) = shared.fail_next.as_mut() {
            if *left > 0 {
                *left -= 1;
                let code =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return refuse(code, "injected fault");
            }
        }
    }
    let Ok(request) = serde_json::from_slice::<SignRequest>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid request body");
    };
    let key = jsonwebtoken::DecodingKey::from_ec_der(&ctx.provisioner_point);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[format!("{}/1.0/sign", ctx.url)]);
    validation.set_issuer(&[PROVISIONER]);
    let header = match jsonwebtoken::decode_header(&request.ott) {
        Ok(header) => header,
        Err(_) => return refuse(StatusCode::UNAUTHORIZED, "invalid token"),
    };
    if header.kid.as_deref() != Some(KEY_ID) {
        return refuse(StatusCode::UNAUTHORIZED, "unknown provisioner key");
    }
    let claims = match jsonwebtoken::decode::<serde_json::Value>(&request.ott, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &format!("invalid token: {e}")),
    };
    let jti = claims
        .get("jti")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    {
        let mut shared = ctx.shared.lock().unwrap_or_else(|p| p.into_inner());
        if jti.is_empty() || !shared.used_tokens.insert(jti) {
            return refuse(StatusCode::UNAUTHORIZED, "token already used");
        }
    }
    let csr = match verify_csr_pem(&request.csr) {
        Ok(csr) => csr,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("invalid CSR: {e}")),
    };
    let template = CertTemplate {
        subject: csr.info.subject.to_string(),
        issuer: Some(ctx.ca_certificate.tbs_certificate.subject.clone()),
        serial: None,
        not_before: SystemTime::now() - Duration::from_secs(60),
        lifetime: Duration::from_secs(86_400),
        public_key: SubjectKey::Spki(csr.info.public_key.clone()),
        ca: false,
        extensions: Vec::new(),
    };
    let issued = match certs::issue_certificate(&template, ctx.ca_key.as_ref()) {
        Ok(cert) => cert,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (Ok(crt), Ok(ca)) = (certs::to_pem(&issued), certs::to_pem(&ctx.ca_certificate)) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed");
    };
    ctx.shared.lock().unwrap_or_else(|p| p.into_inner()).issued += 1;
    (
        StatusCode::CREATED,
        Json(json!({ "crt": crt, "ca": ca, "certChain": [crt, ca] })),
    )
        .into_response()
}
