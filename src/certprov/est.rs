//! An EST server (RFC 7030) as a CA connection: `POST {url}/simpleenroll` with the device's
//! PKCS#10 request (base64 DER, `application/pkcs10`), authenticated by HTTP Basic and/or a TLS
//! client certificate; the answer is a certs-only CMS SignedData (`application/pkcs7-mime`,
//! base64) holding the new certificate. A 202 (the server holds the request for approval) is a
//! transient failure: the adapter asks again after its retry delay, as RFC 7030 §4.2.3 says.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use x509_cert::der::{Decode, DecodePem, Encode};

use super::ca::{CaError, CertificateAuthority, IssueRequest, Issued};

/// An EST server.
pub struct Est {
    http: reqwest::Client,
    /// `https://host/.well-known/est` or `…/est/{label}`, without a trailing slash.
    url: String,
    basic: Option<(String, SecretString)>,
}

impl Est {
    /// A connector for `url`; `basic` is the HTTP Basic user and password, `root` an extra CA
    /// trusted for the server's TLS certificate, `identity` a PEM client certificate and key.
    pub fn new(
        url: &str,
        basic: Option<(String, SecretString)>,
        root: Option<&[u8]>,
        identity: Option<&[u8]>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(timeout).use_rustls_tls();
        if let Some(root) = root {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(root)?);
        }
        if let Some(identity) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(identity)?);
        }
        Ok(Self {
            http: builder.build()?,
            url: url.trim_end_matches('/').to_owned(),
            basic,
        })
    }
}

#[async_trait]
impl CertificateAuthority for Est {
    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, CaError> {
        let csr = x509_cert::request::CertReq::from_pem(request.csr_pem)
            .and_then(|csr| csr.to_der())
            .map_err(|e| {
                CaError::Refused(format!("the certificate request cannot be encoded: {e}"))
            })?;
        let mut call = self
            .http
            .post(format!("{}/simpleenroll", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/pkcs10")
            .header("Content-Transfer-Encoding", "base64")
            .body(STANDARD.encode(csr));
        if let Some((user, password)) = &self.basic {
            call = call.basic_auth(user, Some(password.expose_secret()));
        }
        let response = call.send().await.map_err(|e| {
            CaError::Unavailable(format!("EST server unreachable: {}", e.without_url()))
        })?;
        let status = response.status();
        if status.as_u16() == 202 {
            let after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("unspecified")
                .to_owned();
            return Err(CaError::Unavailable(format!(
                "the EST server holds the request for approval (Retry-After: {after})"
            )));
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(CaError::Unavailable(format!(
                "EST server answered {status}"
            )));
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let reason = text.trim().chars().take(200).collect::<String>();
            return Err(CaError::Refused(format!(
                "The certificate authority refused the request: {} {reason}",
                status.as_u16()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| CaError::Unavailable(format!("EST answer unreadable: {e}")))?;
        Issued::from_certificate(&certificate_for(&body, &request.key.der)?)
    }
}

/// The certificate for `spki` in a base64 certs-only SignedData (whitespace allowed, as MIME
/// line-wraps it).
fn certificate_for(body: &[u8], spki: &[u8]) -> Result<x509_cert::Certificate, CaError> {
    let unreadable = |why: String| {
        CaError::Refused(format!(
            "The certificate authority's answer cannot be read: {why}"
        ))
    };
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = STANDARD
        .decode(text)
        .map_err(|e| unreadable(format!("not base64 ({e})")))?;
    let info = cms::content_info::ContentInfo::from_der(&der)
        .map_err(|e| unreadable(format!("not a CMS message ({e})")))?;
    if info.content_type != x509_cert::der::oid::db::rfc5911::ID_SIGNED_DATA {
        return Err(unreadable("not a SignedData".into()));
    }
    let signed: cms::signed_data::SignedData = info
        .content
        .decode_as()
        .map_err(|e| unreadable(format!("bad SignedData ({e})")))?;
    let certificates = signed
        .certificates
        .map(|set| set.0.into_vec())
        .unwrap_or_default();
    certificates
        .into_iter()
        .filter_map(|choice| match choice {
            cms::cert::CertificateChoices::Certificate(c) => Some(c),
            cms::cert::CertificateChoices::Other(_) => None,
        })
        .find(|c| {
            c.tbs_certificate
                .subject_public_key_info
                .to_der()
                .is_ok_and(|der| der == spki)
        })
        .ok_or_else(|| unreadable("it holds no certificate for the device's key".into()))
}
