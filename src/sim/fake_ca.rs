//! What the fake CAs (step-ca, EST, Google CAS) share: an issuing CA of their own, and reading
//! what a certificate request asks for — with the simulators' own code, not the adapter's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use x509_cert::der::oid::AssociatedOid;
use x509_cert::ext::Extension;
use x509_cert::request::{CertReq, ExtensionReq};
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use crate::pki::certs::{self, CertError, CertTemplate, SubjectKey};
use crate::pki::signer::{Signer, SoftwareSigner};

/// A self-signed P-256 CA, valid for 400 days from a minute ago.
#[derive(Clone)]
pub struct FakeCa {
    key: Arc<SoftwareSigner>,
    certificate: Certificate,
}

impl FakeCa {
    /// A fresh CA named `subject` (an RFC 4514 name).
    pub fn new(subject: &str) -> Result<Self, CertError> {
        let key = SoftwareSigner::generate();
        let certificate = certs::issue_certificate(
            &CertTemplate {
                subject: subject.into(),
                issuer: None,
                serial: None,
                not_before: SystemTime::now() - Duration::from_secs(60),
                lifetime: Duration::from_secs(400 * 86_400),
                public_key: key.verifying_key().into(),
                ca: true,
                extensions: Vec::new(),
            },
            &key,
        )?;
        Ok(Self {
            key: Arc::new(key),
            certificate,
        })
    }

    /// Its certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// A leaf for `key` with `subject` and `extensions`, valid from `not_before` for `lifetime`.
    pub fn issue(
        &self,
        subject: String,
        key: SubjectPublicKeyInfoOwned,
        not_before: SystemTime,
        lifetime: Duration,
        extensions: Vec<Extension>,
    ) -> Result<Certificate, CertError> {
        certs::issue_certificate(
            &CertTemplate {
                subject,
                issuer: Some(self.certificate.tbs_certificate.subject.clone()),
                serial: None,
                not_before,
                lifetime,
                public_key: SubjectKey::Spki(key),
                ca: false,
                extensions,
            },
            self.key.as_ref(),
        )
    }
}

/// The extensions a request asks for in its extensionRequest attribute.
pub fn requested_extensions(csr: &CertReq) -> Vec<Extension> {
    let mut extensions = Vec::new();
    for attribute in csr.info.attributes.iter() {
        if attribute.oid != ExtensionReq::OID {
            continue;
        }
        for value in attribute.values.iter() {
            if let Ok(request) = value.decode_as::<ExtensionReq>() {
                extensions.extend(request.0);
            }
        }
    }
    extensions
}

/// What a fake CA's handlers get: its CA and its state.
pub struct Ctx<S> {
    /// The issuing CA.
    pub ca: FakeCa,
    /// What the fake remembers and has been told to do.
    pub shared: std::sync::Arc<std::sync::Mutex<S>>,
}

impl<S> Clone for Ctx<S> {
    fn clone(&self) -> Self {
        Self {
            ca: self.ca.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S> Ctx<S> {
    /// The state, also after a handler panicked holding it.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fake CA served on loopback until dropped: the part the EST and CAS fakes share.
pub struct Served<S> {
    address: std::net::SocketAddr,
    ctx: Ctx<S>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<S: Default + Send + 'static> Served<S> {
    /// Starts a fresh CA named `subject`, serving the routes `app` makes for it.
    pub async fn start(
        subject: &str,
        app: impl FnOnce(Ctx<S>) -> axum::Router,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let ctx = Ctx {
            ca: FakeCa::new(subject)?,
            shared: Arc::new(std::sync::Mutex::new(S::default())),
        };
        let stop = crate::sim::serve_until_stopped(listener, app(ctx.clone()));
        Ok(Self {
            address,
            ctx,
            stop: Some(stop),
        })
    }
}

impl<S> Served<S> {
    /// Where it listens.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// The issuing CA's certificate.
    pub fn ca_certificate(&self) -> &Certificate {
        self.ctx.ca.certificate()
    }

    /// The fake's state.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        self.ctx.lock()
    }
}

impl<S> Drop for Served<S> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
