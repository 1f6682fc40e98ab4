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
