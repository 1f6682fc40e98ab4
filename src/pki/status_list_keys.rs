//! The status-list signer: the key that signs Token Status Lists (docs/STATUS_LIST.md), certified
//! by the IACA so that a verifier who trusts the IACA for MSOs trusts the lists too.
//!
//! ```text
//! keys/status-list/NNNN.key.pem   (or NNNN.key.pkcs11 when it lives in the token)
//! keys/status-list/NNNN.cert.pem  its certificate, issued by the IACA
//! ```
//! The highest unexpired number signs. The draft's extended key usage for status signing
//! (`id-kp-oauthStatusSigning`) has no number yet, so the certificate carries key usage
//! digitalSignature only ([I], docs/ASSUMPTIONS.md).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::Certificate;

use super::certs::{self, CertTemplate};
use super::keystore::{
    check_key_of, private_dir, read, write_certificate, KeyStore, KeyStoreError,
};
use super::signer::Signer;

/// Lifetime of a new status-list signer certificate: a year, as a DS's ([I]).
pub const STATUS_LIST_SIGNER_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

/// A status-list signer with its key.
pub struct StatusListSigner {
    /// Its number.
    pub number: u32,
    /// Its certificate.
    pub certificate: Certificate,
    /// Its key.
    pub signer: Box<dyn Signer>,
}

impl KeyStore {
    fn status_list_dir(&self) -> PathBuf {
        self.dir().join("status-list")
    }

    fn status_list_stem(&self, number: u32) -> PathBuf {
        self.status_list_dir().join(format!("{number:04}"))
    }

    /// The number the next signer takes (its folder created when missing).
    fn next_status_list_number(&self) -> Result<u32, KeyStoreError> {
        let dir = self.status_list_dir();
        private_dir(&dir)?;
        Ok(super::wallet_keys::numbers(&dir)?
            .last()
            .map_or(1, |n| n + 1))
    }

    /// Every status-list signer certificate, oldest first.
    pub fn status_list_certificates(&self) -> Result<Vec<(u32, Certificate)>, KeyStoreError> {
        super::wallet_keys::numbers(&self.status_list_dir())?
            .into_iter()
            .map(|n| {
                let path = self.status_list_stem(n).with_extension("cert.pem");
                Ok((n, certs::from_pem(&read(&path)?)?))
            })
            .collect()
    }

    /// Adds a status-list signer certified by the IACA (whose key must be here) and makes it the
    /// one that signs; returns its number.
    pub fn rotate_status_list_signer(&self, lifetime: Duration) -> Result<u32, KeyStoreError> {
        let authority = self.authority()?;
        let (iaca_key, iaca) = self.iaca_for_certifying(
            "certify a status-list signer elsewhere and use `keys import-status-list`",
        )?;
        let number = self.next_status_list_number()?;
        // The key first: a certificate always has its key.
        let key = self.new_signing_key(&self.status_list_stem(number), "status-list")?;
        let template = CertTemplate {
            subject: format!(
                "CN={} Status List {number},C={}",
                authority.ds_common_name.replace(',', " "),
                authority.country
            ),
            issuer: Some(iaca.tbs_certificate.subject.clone()),
            serial: None,
            not_before: SystemTime::now(),
            lifetime,
            public_key: key.verifying_key().into(),
            ca: false,
            extensions: vec![certs::extension(
                &KeyUsage(KeyUsages::DigitalSignature.into()),
                true,
            )?],
        };
        let certificate = certs::issue_certificate(&template, iaca_key.as_ref())?;
        write_certificate(&self.status_list_stem(number), &certificate)?;
        Ok(number)
    }

    /// Imports a status-list signer certified elsewhere by this directory's IACA (whose key is
    /// kept offline): the certificate must be issued and signed by the IACA and valid now, the
    /// key (PKCS#8 PEM) must be its key. It signs from then on; returns its number.
    pub fn import_status_list_signer(
        &self,
        cert_path: &std::path::Path,
        key_path: &std::path::Path,
    ) -> Result<u32, KeyStoreError> {
        let certificate = certs::from_pem(&read(cert_path)?)?;
        let key = self.load_key(key_path)?;
        let iaca = self.iaca_certificate()?;
        if certificate.tbs_certificate.issuer != iaca.tbs_certificate.subject {
            return Err(KeyStoreError::State(format!(
                "{} was not issued by this directory's IACA",
                cert_path.display()
            )));
        }
        certs::check_signature(&certificate, &certs::public_key(&iaca)?)?;
        certs::check_validity(&certificate, SystemTime::now())?;
        check_key_of(&key, key_path, &certificate, cert_path)?;
        let number = self.next_status_list_number()?;
        self.write_imported(&self.status_list_stem(number), &key, &certificate)?;
        Ok(number)
    }

    /// Creates a status-list signer where there is none (and the IACA key is here).
    pub fn ensure_status_list_signer(&self) -> Result<(), KeyStoreError> {
        if self.status_list_certificates()?.is_empty() {
            self.rotate_status_list_signer(STATUS_LIST_SIGNER_LIFETIME)?;
        }
        Ok(())
    }

    /// The status-list signers whose certificates have not expired, oldest first, with their
    /// keys (checked to be their certificates' keys).
    pub fn status_list_signers(
        &self,
        now: SystemTime,
    ) -> Result<Vec<StatusListSigner>, KeyStoreError> {
        let mut signers = Vec::new();
        for (number, certificate) in self.status_list_certificates()? {
            if certificate
                .tbs_certificate
                .validity
                .not_after
                .to_system_time()
                < now
            {
                continue;
            }
            let signer = self.signing_key_of(
                &self.status_list_stem(number),
                &certificate,
                &format!("status-list signer {number:04}"),
            )?;
            signers.push(StatusListSigner {
                number,
                certificate,
                signer,
            });
        }
        Ok(signers)
    }
}
