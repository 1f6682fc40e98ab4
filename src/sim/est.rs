//! A fake EST server (RFC 7030 §4.2.1 simpleenroll), written from the RFC: `POST
//! /.well-known/est/simpleenroll` (or `/.well-known/est/{label}/simpleenroll`) with HTTP Basic
//! credentials and a base64 DER PKCS#10 body (`application/pkcs10`); it answers 200 with a
//! base64, line-wrapped, certs-only CMS SignedData (`application/pkcs7-mime;
//! smime-type=certs-only`) holding a certificate with the request's subject and requested
//! extensions, for the server's own lifetime (EST servers do not take one from the client). 401
//! without valid credentials, 400 for a body that is not a valid request; it can be told to
//! hold requests for approval (202 + Retry-After) or to fail.

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use x509_cert::der::{Decode, Encode};

use super::fake_ca::{requested_extensions, Served};

/// The user the fake accepts.
pub const USER: &str = "brevet";
/// Its password.
pub const PASSWORD: &str = "est-sim-password";

#[derive(Default)]
struct Shared {
    /// Answer the next requests 202 (held for approval).
    pending: u32,
    /// Answer the next requests with this status.
    fail: Option<(u16, u32)>,
    issued: usize,
}

type Ctx = super::fake_ca::Ctx<Shared>;

/// The fake, serving on loopback until dropped.
pub struct FakeEst {
    served: Served<Shared>,
}

impl FakeEst {
    /// Starts with a fresh CA.
    pub async fn start() -> anyhow::Result<Self> {
        let served = Served::start("CN=Simulated EST CA", |ctx| {
            Router::new()
                .route("/.well-known/est/simpleenroll", post(simpleenroll))
                .route("/.well-known/est/{label}/simpleenroll", post(simpleenroll))
                .with_state(ctx)
        })
        .await?;
        Ok(Self { served })
    }

    /// `http://127.0.0.1:PORT/.well-known/est`.
    pub fn url(&self) -> String {
        format!("http://{}/.well-known/est", self.served.address())
    }

    /// The issuing CA.
    pub fn ca_certificate(&self) -> &x509_cert::Certificate {
        self.served.ca_certificate()
    }

    /// The next `count` requests are held for approval (202).
    pub fn hold_next(&self, count: u32) {
        self.lock().pending = count;
    }

    /// The next `count` requests answer `status`.
    pub fn fail_next(&self, status: u16, count: u32) {
        self.lock().fail = Some((status, count));
    }

    /// Certificates issued.
    pub fn issued(&self) -> usize {
        self.lock().issued
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.served.lock()
    }
}

fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        message.to_owned(),
    )
        .into_response()
}

fn authorised(headers: &HeaderMap) -> bool {
    let expected = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

async fn simpleenroll(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorised(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"est\"")],
            "authentication required",
        )
            .into_response();
    }
    {
        let mut shared = ctx.lock();
        if let Some((status, left)) = shared.fail.as_mut() {
            if *left > 0 {
                *left -= 1;
                let status =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return text(status, "injected fault");
            }
        }
        if shared.pending > 0 {
            shared.pending -= 1;
            return (StatusCode::ACCEPTED, [(header::RETRY_AFTER, "1")], "").into_response();
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/pkcs10") {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/pkcs10",
        );
    }
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let Ok(der) = STANDARD.decode(compact) else {
        return text(StatusCode::BAD_REQUEST, "the body is not base64");
    };
    let Ok(csr) = x509_cert::request::CertReq::from_der(&der) else {
        return text(StatusCode::BAD_REQUEST, "the body is not a PKCS#10 request");
    };
    let Ok(pem) = x509_cert::der::EncodePem::to_pem(&csr, x509_cert::der::pem::LineEnding::LF)
    else {
        return text(StatusCode::BAD_REQUEST, "the request cannot be re-encoded");
    };
    if let Err(e) = crate::certprov::pop::verify_csr_pem(&pem) {
        return text(
            StatusCode::BAD_REQUEST,
            &format!("the request's signature is invalid: {e}"),
        );
    }
    let extensions = requested_extensions(&csr);
    let Ok(issued) = ctx.ca.issue(
        csr.info.subject.to_string(),
        csr.info.public_key.clone(),
        SystemTime::now() - Duration::from_secs(60),
        Duration::from_secs(90 * 86_400),
        extensions,
    ) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot issue");
    };
    let Ok(message) = cms::content_info::ContentInfo::try_from(issued).and_then(|m| m.to_der())
    else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode");
    };
    ctx.lock().issued += 1;
    // MIME-style base64: lines of 64 characters
    let encoded = STANDARD.encode(message);
    let wrapped = encoded
        .as_bytes()
        .chunks(64)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n");
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "application/pkcs7-mime; smime-type=certs-only",
            ),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                "base64",
            ),
        ],
        wrapped,
    )
        .into_response()
}
