//! TLS termination by `brevet serve` (spec/wallet-api.md §2): rustls with the configured server
//! certificate; client certificates are requested on every connection and required on the Wallet
//! surface only, so that staff reach the admin API with a bearer token alone.
//!
//! A client certificate is accepted when it chains to `tls.client_ca` (checked in the handshake)
//! or when its SHA-256 fingerprint is in `tls.client_pins` (checked per request, since a pinned
//! certificate may be self-signed). Wallet requests without an accepted certificate get the
//! spec's `forbidden` ErrorResponse.

use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use super::AppState;
use crate::config::TlsConfig;
use crate::error::{WalletError, WalletErrorKind};

/// The leaf certificate the client presented on this connection, if any (DER).
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<Vec<u8>>);

/// Which client certificates may call the Wallet API.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    /// Whether a certificate is required at all.
    pub required: bool,
    /// Whether the handshake checked it against `tls.client_ca`.
    pub ca_checked: bool,
    /// SHA-256 fingerprints accepted without a CA.
    pub pins: Vec<[u8; 32]>,
}

impl ClientAuth {
    /// The rule configured in `tls`.
    pub fn from_config(tls: Option<&TlsConfig>) -> Self {
        let Some(tls) = tls else {
            return Self::default();
        };
        Self {
            required: tls.requires_client_certificate(),
            ca_checked: tls.client_ca.is_some(),
            pins: tls
                .client_pins
                .iter()
                .filter_map(|pin| hex::decode(pin).ok()?.try_into().ok())
                .collect(),
        }
    }

    fn accepts(&self, peer: Option<&PeerCertificate>) -> bool {
        if !self.required {
            return true;
        }
        let Some(der) = peer.and_then(|p| p.0.as_deref()) else {
            return false;
        };
        let fingerprint: [u8; 32] = Sha256::digest(der).into();
        self.pins.contains(&fingerprint) || self.ca_checked
    }
}

/// Middleware on the Wallet surface: refuses callers without an accepted client certificate.
pub async fn require_client_certificate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state
        .client_auth
        .accepts(request.extensions().get::<PeerCertificate>())
    {
        return next.run(request).await;
    }
    WalletError::new(
        WalletErrorKind::Forbidden,
        "the Wallet API requires a client certificate from Google",
    )
    .into_response()
}

/// Accepts any client certificate in the handshake (checking only its handshake signature), for
/// pin-only set-ups; the pin is checked per request.
#[derive(Debug)]
struct AnyClientCertificate {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS acceptor for `tls`.
pub fn acceptor(tls: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.certificate)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .with_context(|| format!("tls.certificate: cannot read {}", tls.certificate.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.private_key)
        .with_context(|| format!("tls.private_key: cannot read {}", tls.private_key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let verifier: Arc<dyn ClientCertVerifier> = match &tls.client_ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("tls.client_ca: cannot read {}", path.display()))?
            {
                roots
                    .add(cert.with_context(|| format!("tls.client_ca: {}", path.display()))?)
                    .with_context(|| format!("tls.client_ca: {}", path.display()))?;
            }
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .allow_unauthenticated()
            .build()
            .context("tls.client_ca")?
        }
        None if !tls.client_pins.is_empty() => Arc::new(AnyClientCertificate {
            provider: provider.clone(),
        }),
        None => rustls::server::WebPkiClientVerifier::no_client_auth(),
    };
    let config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("tls: the key does not match the certificate")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
