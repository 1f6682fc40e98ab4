//! The key directory (`keys_dir`, default `<data_dir>/keys`): the IACA root, the document signers,
//! and the naming of the issuing authority. Private keys are PKCS#8 PEM files created 0600 in a
//! 0700 directory and never overwritten; nothing here logs key material.
//!
//! ```text
//! keys/authority.toml      country, state, IACA name, contact, CRL URL (used by rotate-ds)
//! keys/iaca.cert.pem       IACA root certificate
//! keys/iaca.key.pem        IACA private key (optional: an IACA kept offline is imported without it)
//! keys/ds/NNNN.cert.pem    DS certificates; the highest NNNN is the active one
//! keys/ds/NNNN.key.pem     their private keys
//! keys/identity/NNNN.*     Wallet API identity keys and certificates (see wallet_keys.rs)
//! keys/hybrid/NNNN.*       Wallet API hybrid-encryption keys and certificates
//! ```
//! Older DS keys stay: MSOs they signed remain valid until they expire, and `keys show` lists them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::der::Encode;
use x509_cert::Certificate;

use super::certs::{self, Authority, CertError};
use super::pkcs11::Token;
use super::signer::{fast_signer, Signer, SignerError, SoftwareSigner};

/// Failures of the key directory.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Keys exist where none were expected, or the reverse.
    #[error("{0}")]
    State(String),
    /// A certificate problem.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A key problem.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: SignerError,
    },
    /// The PKCS#11 token could not be used.
    #[error(transparent)]
    Token(#[from] super::pkcs11::TokenError),
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The naming of the issuing authority, as kept in `authority.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityFile {
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Optional subdivision.
    pub state: Option<String>,
    /// IACA common name.
    pub iaca_common_name: String,
    /// Common name given to DS certificates (a number is appended).
    pub ds_common_name: String,
    /// Email or URL for IssuerAlternativeName.
    pub contact: String,
    /// CRL distribution point, if any.
    pub crl_url: Option<String>,
}

impl AuthorityFile {
    /// As the certificate module's authority.
    pub fn authority(&self) -> Authority {
        Authority {
            country: self.country.clone(),
            state: self.state.clone(),
            iaca_common_name: self.iaca_common_name.clone(),
            contact: self.contact.clone(),
            crl_url: self.crl_url.clone(),
        }
    }
}

/// One document signer on disk.
pub struct DocumentSignerKey {
    /// Its number (file stem).
    pub number: u32,
    /// Its certificate.
    pub certificate: Certificate,
    /// Its key: in memory, or in the token.
    pub signer: Box<dyn Signer>,
}

/// The key directory, and the PKCS#11 token its new signing keys are made in, if any.
///
/// A signing key `<stem>` is a PKCS#8 file `<stem>.key.pem`, or, when it lives in the token,
/// `<stem>.key.pkcs11`: a text file holding the key's label in the token (the key itself never
/// leaves it). Certificates are PEM files beside, in both cases.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
    token: Option<std::sync::Arc<Token>>,
}

/// A fresh label for a key of `role`: unique, so that key directories sharing a token never
/// collide.
pub fn new_label(role: &str) -> String {
    format!(
        "brevet-{role}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Suffix of the file that names a token-held key.
const TOKEN_KEY_SUFFIX: &str = "key.pkcs11";

/// Validity lifetimes used by `init` and `rotate-ds`.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// IACA certificate lifetime.
    pub iaca: Duration,
    /// DS certificate lifetime (at most 457 days).
    pub ds: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            iaca: Duration::from_secs(10 * 365 * 86_400),
            ds: Duration::from_secs(365 * 86_400),
        }
    }
}

/// Creates `dir` (and its parents) readable by its owner only.
pub fn private_dir(dir: &Path) -> Result<(), KeyStoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// Refuses `key` (read from `key_path`) unless it is the key of `certificate` (read from
/// `cert_path`).
pub(super) fn check_key_of(
    key: &SoftwareSigner,
    key_path: &Path,
    certificate: &Certificate,
    cert_path: &Path,
) -> Result<(), KeyStoreError> {
    if certs::public_key(certificate)? != key.verifying_key() {
        return Err(KeyStoreError::State(format!(
            "{} is not the key of {}",
            key_path.display(),
            cert_path.display()
        )));
    }
    Ok(())
}

/// Writes `cert` as `<stem>.cert.pem`, readable by all.
pub(super) fn write_certificate(stem: &Path, cert: &Certificate) -> Result<(), KeyStoreError> {
    write_new(
        &stem.with_extension("cert.pem"),
        certs::to_pem(cert)?.as_bytes(),
        0o644,
    )
}

/// Writes a new file (never replacing one) with `mode`, synced to disk.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyStoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    file.write_all(contents).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

pub(super) fn read(path: &Path) -> Result<String, KeyStoreError> {
    fs::read_to_string(path).map_err(io(path))
}

impl KeyStore {
    /// The key directory at `dir` (which need not exist yet), with software keys.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            token: None,
        }
    }

    /// The key directory `config` names, with its PKCS#11 token when `keys.pkcs11` is set.
    pub fn from_config(config: &crate::config::Config) -> Result<Self, KeyStoreError> {
        Self::from_config_at(config, &config.effective_keys_dir())
    }

    /// The key directory `dir`, with the token `config` names (a doc type's own directory).
    pub fn from_config_at(
        config: &crate::config::Config,
        dir: &Path,
    ) -> Result<Self, KeyStoreError> {
        let store = Self::new(dir);
        Ok(match Token::configured(config.keys.pkcs11.as_ref())? {
            Some(token) => store.with_token(token),
            None => store,
        })
    }

    /// The same directory, making new signing keys in `token`.
    pub fn with_token(mut self, token: std::sync::Arc<Token>) -> Self {
        self.token = Some(token);
        self
    }

    fn pem_key(stem: &Path) -> PathBuf {
        stem.with_extension("key.pem")
    }

    fn token_key(stem: &Path) -> PathBuf {
        stem.with_extension(TOKEN_KEY_SUFFIX)
    }

    /// Whether the signing key `stem` exists here or in the token.
    pub(super) fn has_signing_key(&self, stem: &Path) -> bool {
        Self::pem_key(stem).is_file() || Self::token_key(stem).is_file()
    }

    /// Makes the signing key `stem`: in the token when there is one (its label written to
    /// `<stem>.key.pkcs11`), else in memory, written to `<stem>.key.pem` (0600).
    pub(super) fn new_signing_key(
        &self,
        stem: &Path,
        role: &str,
    ) -> Result<Box<dyn Signer>, KeyStoreError> {
        match &self.token {
            Some(token) => {
                let label = new_label(role);
                let signer = token.generate_p256(&label)?;
                Self::write_label(stem, &label)?;
                Ok(Box::new(signer))
            }
            None => {
                let key = SoftwareSigner::generate();
                let path = Self::pem_key(stem);
                let pem = key.to_pkcs8_pem().map_err(|source| KeyStoreError::Key {
                    path: path.clone(),
                    source,
                })?;
                write_new(&path, pem.as_bytes(), 0o600)?;
                fast_signer(&key).map_err(|source| KeyStoreError::Key { path, source })
            }
        }
    }

    /// The signing key `stem`, from its PEM file or from the token.
    pub(super) fn load_signing_key(&self, stem: &Path) -> Result<Box<dyn Signer>, KeyStoreError> {
        let pem = Self::pem_key(stem);
        if pem.is_file() {
            let key = self.load_key(&pem)?;
            return fast_signer(&key).map_err(|source| KeyStoreError::Key { path: pem, source });
        }
        self.in_token(stem, |token, label| {
            Ok(Box::new(token.signer(label)?) as Box<dyn Signer>)
        })
    }

    /// Writes the label of the token key `stem`.
    fn write_label(stem: &Path, label: &str) -> Result<(), KeyStoreError> {
        write_new(
            &Self::token_key(stem),
            format!("{label}\n").as_bytes(),
            0o644,
        )
    }

    /// Runs `find` on the token and the label `<stem>.key.pkcs11` names; its errors name that file.
    fn in_token<T>(
        &self,
        stem: &Path,
        find: impl FnOnce(&std::sync::Arc<Token>, &str) -> Result<T, super::pkcs11::TokenError>,
    ) -> Result<T, KeyStoreError> {
        let marker = Self::token_key(stem);
        let label = read(&marker)?.trim().to_owned();
        let token = self.token.as_ref().ok_or_else(|| {
            KeyStoreError::State(format!(
                "{}: the key {label:?} is in a PKCS#11 token: configure keys.pkcs11",
                marker.display()
            ))
        })?;
        find(token, &label).map_err(|e| KeyStoreError::State(format!("{}: {e}", marker.display())))
    }

    /// Makes the hybrid-encryption key `stem`: an ECDH key in the token when there is one (its
    /// label in `<stem>.key.pkcs11`), else in memory, written to `<stem>.key.pem` (0600).
    /// Returns its public key.
    pub(super) fn new_hybrid_key(
        &self,
        stem: &Path,
    ) -> Result<p256::ecdsa::VerifyingKey, KeyStoreError> {
        match &self.token {
            Some(token) => {
                let label = new_label("hybrid");
                let key = token.generate_p256_agreement(&label)?;
                Self::write_label(stem, &label)?;
                Ok(key.public_key())
            }
            None => {
                use p256::pkcs8::{EncodePrivateKey, LineEnding};
                let key = super::hpke::HpkePrivateKey::generate();
                let pem = key
                    .secret()
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| KeyStoreError::State(format!("cannot encode hybrid key: {e}")))?;
                write_new(&Self::pem_key(stem), pem.as_bytes(), 0o600)?;
                Ok(p256::ecdsa::VerifyingKey::from(key.secret().public_key()))
            }
        }
    }

    /// The hybrid-encryption key `stem`, from its PEM file or from the token.
    pub(super) fn load_hybrid_key(
        &self,
        stem: &Path,
    ) -> Result<Box<dyn super::hpke::HpkeRecipient>, KeyStoreError> {
        let pem = Self::pem_key(stem);
        if pem.is_file() {
            use p256::pkcs8::DecodePrivateKey;
            let secret = p256::SecretKey::from_pkcs8_pem(&read(&pem)?)
                .map_err(|e| KeyStoreError::State(format!("{}: {e}", pem.display())))?;
            return Ok(Box::new(super::hpke::HpkePrivateKey::from_secret(secret)));
        }
        self.in_token(stem, |token, label| {
            Ok(Box::new(token.recipient(label)?) as Box<dyn super::hpke::HpkeRecipient>)
        })
    }

    /// Where the signing key `stem` lives, for `keys show`.
    fn key_location(&self, stem: &Path) -> String {
        if Self::pem_key(stem).is_file() {
            "present (PKCS#8 file)".into()
        } else if let Ok(label) = read(&Self::token_key(stem)) {
            format!("in the PKCS#11 token, label {:?}", label.trim())
        } else {
            "not here (offline)".into()
        }
    }

    pub(super) fn iaca_stem(&self) -> PathBuf {
        self.dir.join("iaca")
    }

    fn ds_stem(&self, number: u32) -> PathBuf {
        self.ds_dir().join(format!("{number:04}"))
    }

    /// Where it is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn iaca_cert_path(&self) -> PathBuf {
        self.dir.join("iaca.cert.pem")
    }

    pub(super) fn authority_path(&self) -> PathBuf {
        self.dir.join("authority.toml")
    }

    fn ds_dir(&self) -> PathBuf {
        self.dir.join("ds")
    }

    /// Whether an IACA certificate is present.
    pub fn is_initialised(&self) -> bool {
        self.iaca_cert_path().is_file()
    }

    pub(super) fn create_dirs(&self) -> Result<(), KeyStoreError> {
        for dir in [
            self.dir.clone(),
            self.ds_dir(),
            self.dir.join("identity"),
            self.dir.join("hybrid"),
        ] {
            private_dir(&dir)?;
        }
        Ok(())
    }

    /// The IACA's key and certificate, to certify a new key with; `offline` tells the operator
    /// what to do instead when the key is kept offline.
    pub(super) fn iaca_for_certifying(
        &self,
        offline: &str,
    ) -> Result<(Box<dyn Signer>, Certificate), KeyStoreError> {
        if !self.has_signing_key(&self.iaca_stem()) {
            return Err(KeyStoreError::State(format!(
                "the IACA private key is not in the key directory (kept offline?): {offline}"
            )));
        }
        let key = self.load_signing_key(&self.iaca_stem())?;
        let iaca = self.iaca_certificate()?;
        if certs::public_key(&iaca)? != key.verifying_key() {
            return Err(KeyStoreError::State(
                "the IACA key does not match the IACA certificate".into(),
            ));
        }
        Ok((key, iaca))
    }

    /// The signing key at `stem`, checked to be the key of `certificate` (`what` names it).
    pub(super) fn signing_key_of(
        &self,
        stem: &Path,
        certificate: &Certificate,
        what: &str,
    ) -> Result<Box<dyn Signer>, KeyStoreError> {
        let signer = self.load_signing_key(stem)?;
        if certs::public_key(certificate)? != signer.verifying_key() {
            return Err(KeyStoreError::State(format!(
                "the key of {what} is not the key of its certificate"
            )));
        }
        Ok(signer)
    }

    /// The authority file `keys init` wrote.
    pub(super) fn authority(&self) -> Result<AuthorityFile, KeyStoreError> {
        toml::from_str(&read(&self.authority_path())?)
            .map_err(|e| KeyStoreError::State(format!("{}: {e}", self.authority_path().display())))
    }

    /// Creates an IACA root and a first DS. Refuses if keys already exist.
    pub fn init(
        &self,
        authority: &AuthorityFile,
        lifetimes: Lifetimes,
    ) -> Result<(), KeyStoreError> {
        if self.is_initialised() {
            return Err(KeyStoreError::State(format!(
                "{} already holds keys; use `keys rotate-ds` or a new directory",
                self.dir.display()
            )));
        }
        let now = SystemTime::now();
        self.create_dirs()?;
        let iaca_key = self.new_signing_key(&self.iaca_stem(), "iaca")?;
        let iaca = certs::issue_iaca(
            iaca_key.as_ref(),
            &authority.authority(),
            now,
            lifetimes.iaca,
        )?;
        let toml = toml::to_string(authority).map_err(|e| KeyStoreError::State(e.to_string()))?;
        write_new(&self.authority_path(), toml.as_bytes(), 0o644)?;
        write_new(
            &self.iaca_cert_path(),
            certs::to_pem(&iaca)?.as_bytes(),
            0o644,
        )?;
        self.rotate_ds(lifetimes.ds)?;
        self.ensure_status_list_signer()?;
        self.ensure_wallet_keys()
    }

    /// Adds a new DS key and certificate signed by the IACA key, and makes it the active one.
    pub fn rotate_ds(&self, lifetime: Duration) -> Result<u32, KeyStoreError> {
        self.rotate_ds_at(lifetime, None)
    }

    /// [`KeyStore::rotate_ds`], the new DS starting to sign at `at` when given. The schedule is
    /// written before the certificate, so that no server loads the DS without it.
    pub fn rotate_ds_at(
        &self,
        lifetime: Duration,
        at: Option<SystemTime>,
    ) -> Result<u32, KeyStoreError> {
        let authority = self.authority()?;
        let (iaca_key, iaca) =
            self.iaca_for_certifying("sign a DS certificate elsewhere and use `keys import`")?;
        let number = self.ds_numbers()?.last().map_or(1, |n| n + 1);
        let ds_key = self.new_signing_key(&self.ds_stem(number), "ds")?;
        let name = format!("{} {number}", authority.ds_common_name);
        let ds = certs::issue_ds(
            iaca_key.as_ref(),
            &iaca,
            &authority.authority(),
            &name,
            &ds_key.verifying_key(),
            SystemTime::now(),
            lifetime,
        )?;
        if let Some(at) = at {
            self.schedule_ds(number, at)?;
        }
        self.write_ds_certificate(number, &ds)?;
        Ok(number)
    }

    /// Writes an imported DS key (a PKCS#8 file) and its certificate.
    fn write_ds(
        &self,
        number: u32,
        key: &SoftwareSigner,
        cert: &Certificate,
    ) -> Result<(), KeyStoreError> {
        self.write_imported(&self.ds_stem(number), key, cert)
    }

    /// Writes an imported key (PKCS#8 PEM, owner-only) and its certificate at `stem`.
    pub(super) fn write_imported(
        &self,
        stem: &Path,
        key: &SoftwareSigner,
        cert: &Certificate,
    ) -> Result<(), KeyStoreError> {
        let key_path = Self::pem_key(stem);
        let pem = key.to_pkcs8_pem().map_err(|source| KeyStoreError::Key {
            path: key_path.clone(),
            source,
        })?;
        write_new(&key_path, pem.as_bytes(), 0o600)?;
        write_certificate(stem, cert)
    }

    fn write_ds_certificate(&self, number: u32, cert: &Certificate) -> Result<(), KeyStoreError> {
        write_certificate(&self.ds_stem(number), cert)
    }

    /// Imports existing PEM material: an IACA certificate (with its key, or without to keep the
    /// IACA offline) and a DS certificate with its key. The DS must chain to the IACA now, and
    /// each key must match its certificate. Into an empty directory the IACA is installed; into an
    /// initialised one it must be the same IACA and the DS is added as the new active one.
    pub fn import(&self, material: &ImportMaterial) -> Result<u32, KeyStoreError> {
        let iaca = certs::from_pem(&read(&material.iaca_cert)?)?;
        let ds = certs::from_pem(&read(&material.ds_cert)?)?;
        let ds_key = self.load_key(&material.ds_key)?;
        certs::verify_ds_chain(&ds, &iaca, SystemTime::now())?;
        check_key_of(&ds_key, &material.ds_key, &ds, &material.ds_cert)?;
        let iaca_key = match &material.iaca_key {
            Some(path) => {
                let key = self.load_key(path)?;
                check_key_of(&key, path, &iaca, &material.iaca_cert)?;
                Some(key)
            }
            None => None,
        };
        if self.is_initialised() {
            if self.iaca_certificate()? != iaca {
                return Err(KeyStoreError::State(
                    "the key directory holds a different IACA certificate".into(),
                ));
            }
        } else {
            self.create_dirs()?;
            let authority = authority_of(&iaca);
            let toml =
                toml::to_string(&authority).map_err(|e| KeyStoreError::State(e.to_string()))?;
            write_new(&self.authority_path(), toml.as_bytes(), 0o644)?;
            match &iaca_key {
                Some(key) => self.write_imported(&self.iaca_stem(), key, &iaca)?,
                None => write_certificate(&self.iaca_stem(), &iaca)?,
            }
        }
        let number = self.ds_numbers()?.last().map_or(1, |n| n + 1);
        self.write_ds(number, &ds_key, &ds)?;
        Ok(number)
    }

    pub(super) fn load_key(&self, path: &Path) -> Result<SoftwareSigner, KeyStoreError> {
        SoftwareSigner::from_pkcs8_pem(&read(path)?).map_err(|source| KeyStoreError::Key {
            path: path.to_owned(),
            source,
        })
    }

    /// The IACA certificate.
    pub fn iaca_certificate(&self) -> Result<Certificate, KeyStoreError> {
        if !self.is_initialised() {
            return Err(KeyStoreError::State(format!(
                "no keys in {}; run `brevet keys init` or `brevet keys import`",
                self.dir.display()
            )));
        }
        Ok(certs::from_pem(&read(&self.iaca_cert_path())?)?)
    }

    fn ds_numbers(&self) -> Result<Vec<u32>, KeyStoreError> {
        super::wallet_keys::numbers(&self.ds_dir())
    }

    /// Every DS certificate, oldest first.
    pub fn ds_certificates(&self) -> Result<Vec<(u32, Certificate)>, KeyStoreError> {
        self.ds_numbers()?
            .into_iter()
            .map(|n| Ok((n, self.ds_certificate(n)?)))
            .collect()
    }

    /// The active (newest) document signer with its key.
    pub fn active_ds(&self) -> Result<DocumentSignerKey, KeyStoreError> {
        let number = *self
            .ds_numbers()?
            .last()
            .ok_or_else(|| KeyStoreError::State("no DS key; run `brevet keys rotate-ds`".into()))?;
        self.ds_with_key(number, self.ds_certificate(number)?)
    }

    fn ds_certificate(&self, number: u32) -> Result<Certificate, KeyStoreError> {
        Ok(certs::from_pem(&read(
            &self.ds_dir().join(format!("{number:04}.cert.pem")),
        )?)?)
    }

    /// DS `number` with its key, checked to be the key of `certificate`.
    fn ds_with_key(
        &self,
        number: u32,
        certificate: Certificate,
    ) -> Result<DocumentSignerKey, KeyStoreError> {
        let signer = self.signing_key_of(
            &self.ds_stem(number),
            &certificate,
            &format!("DS {number:04}"),
        )?;
        Ok(DocumentSignerKey {
            number,
            certificate,
            signer,
        })
    }

    /// The document signers that may sign now or later: every one whose certificate has not
    /// expired (the newest too if all have, so that readiness can say so), oldest first.
    pub fn usable_ds(&self, now: SystemTime) -> Result<Vec<DocumentSignerKey>, KeyStoreError> {
        let numbers = self.ds_numbers()?;
        let mut usable = Vec::new();
        for (i, &number) in numbers.iter().enumerate() {
            let certificate = self.ds_certificate(number)?;
            let expired = certificate
                .tbs_certificate
                .validity
                .not_after
                .to_system_time()
                < now;
            if expired && i + 1 < numbers.len() {
                continue;
            }
            usable.push(self.ds_with_key(number, certificate)?);
        }
        Ok(usable)
    }

    /// When DS `number` was scheduled to start signing (`keys rotate-ds --at`), if it was.
    pub fn ds_scheduled_at(&self, number: u32) -> Result<Option<SystemTime>, KeyStoreError> {
        let path = self.ds_stem(number).with_extension("activate-at");
        if !path.is_file() {
            return Ok(None);
        }
        let text = read(&path)?;
        let at = chrono::DateTime::parse_from_rfc3339(text.trim())
            .map_err(|e| KeyStoreError::State(format!("{}: {e}", path.display())))?;
        Ok(Some(at.with_timezone(&chrono::Utc).into()))
    }

    /// Schedules DS `number` to start signing at `at` (recorded beside its certificate; every
    /// replica agrees on it through the store when it first loads the DS).
    fn schedule_ds(&self, number: u32, at: SystemTime) -> Result<(), KeyStoreError> {
        let stamp = chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339();
        write_new(
            &self.ds_stem(number).with_extension("activate-at"),
            format!("{stamp}\n").as_bytes(),
            0o644,
        )
    }

    /// A human-readable description of the chain, for `brevet keys show`; certificates expiring
    /// within `soon` are flagged.
    pub fn describe(&self, now: SystemTime, soon: Duration) -> Result<String, KeyStoreError> {
        let iaca = self.iaca_certificate()?;
        let mut out = format!("key directory: {}\n", self.dir.display());
        out += &describe_cert("IACA", &iaca, now, soon)?;
        out += &format!("  private key: {}\n", self.key_location(&self.iaca_stem()));
        let all = self.ds_certificates()?;
        let active = all.last().map(|(n, _)| *n);
        for (number, cert) in &all {
            let label = format!(
                "DS {number:04}{}",
                if Some(*number) == active {
                    " (active)"
                } else {
                    ""
                }
            );
            out += &describe_cert(&label, cert, now, soon)?;
            let chain = match certs::verify_ds_chain(cert, &iaca, now) {
                Ok(()) => "chains to the IACA".to_owned(),
                Err(e) => format!("NOT USABLE: {e}"),
            };
            out += &format!("  status: {chain}\n");
            out += &format!(
                "  private key: {}\n",
                self.key_location(&self.ds_stem(*number))
            );
        }
        for (number, cert) in self.status_list_certificates()? {
            out += &describe_cert(&format!("Status-list signer {number:04}"), &cert, now, soon)?;
        }
        for (label, kind) in [
            (
                "Wallet identity",
                super::wallet_keys::WalletKeyKind::Identity,
            ),
            ("Wallet hybrid", super::wallet_keys::WalletKeyKind::Hybrid),
        ] {
            for (number, cert) in self.wallet_certificates(kind)? {
                out += &describe_cert(&format!("{label} {number:04}"), &cert, now, soon)?;
            }
        }
        Ok(out)
    }
}

/// One certificate for `keys show`: subject, serial, validity (flagged when it ends within
/// `soon`), fingerprint.
pub fn describe_cert(
    label: &str,
    cert: &Certificate,
    now: SystemTime,
    soon: Duration,
) -> Result<String, KeyStoreError> {
    let tbs = &cert.tbs_certificate;
    let not_after = tbs.validity.not_after.to_system_time();
    let days = |t: SystemTime| match t.duration_since(now) {
        Ok(left) if left < soon => format!(
            "EXPIRES SOON: in {} days; rotate it (docs/KEYS.md)",
            left.as_secs() / 86_400
        ),
        Ok(left) => format!("expires in {} days", left.as_secs() / 86_400),
        Err(past) => format!("EXPIRED {} days ago", past.duration().as_secs() / 86_400),
    };
    let der = cert
        .to_der()
        .map_err(|e| CertError::Encoding(e.to_string()))?;
    Ok(format!(
        "{label}: {}\n  serial: {}\n  valid: {} .. {} ({})\n  sha256: {}\n",
        tbs.subject,
        hex::encode_upper(tbs.serial_number.as_bytes()),
        tbs.validity.not_before,
        tbs.validity.not_after,
        days(not_after),
        hex::encode(Sha256::digest(der)),
    ))
}

/// What `keys import` reads.
#[derive(Debug, Clone)]
pub struct ImportMaterial {
    /// IACA certificate PEM.
    pub iaca_cert: PathBuf,
    /// IACA private key PEM, if it is to live here.
    pub iaca_key: Option<PathBuf>,
    /// DS certificate PEM.
    pub ds_cert: PathBuf,
    /// DS private key PEM (PKCS#8).
    pub ds_key: PathBuf,
}

/// Best-effort naming read back from an imported IACA certificate, for later rotations.
fn authority_of(iaca: &Certificate) -> AuthorityFile {
    let mut country = String::new();
    let mut state = None;
    let mut common_name = String::new();
    for rdn in iaca.tbs_certificate.subject.0.iter() {
        for attr in rdn.0.iter() {
            let text = attr.to_string();
            if let Some(v) = text.strip_prefix("C=") {
                country = v.to_owned();
            } else if let Some(v) = text.strip_prefix("ST=") {
                state = Some(v.to_owned());
            } else if let Some(v) = text.strip_prefix("CN=") {
                common_name = v.to_owned();
            }
        }
    }
    AuthorityFile {
        country,
        state,
        ds_common_name: format!("{common_name} DS"),
        iaca_common_name: common_name,
        contact: "https://issuer.invalid/contact".into(),
        crl_url: None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn authority() -> AuthorityFile {
        AuthorityFile {
            country: "US".into(),
            state: Some("Utopia".into()),
            iaca_common_name: "Utopia IACA".into(),
            ds_common_name: "Utopia DS".into(),
            contact: "mdl@utopia.example".into(),
            crl_url: None,
        }
    }

    #[test]
    fn init_rotate_and_show() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        store.init(&authority(), Lifetimes::default()).unwrap();
        assert_eq!(fs::metadata(store.dir()).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            fs::metadata(KeyStore::pem_key(&store.iaca_stem()))
                .unwrap()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(store.ds_dir().join("0001.key.pem"))
                .unwrap()
                .mode()
                & 0o777,
            0o600
        );
        let err = store.init(&authority(), Lifetimes::default()).unwrap_err();
        assert!(err.to_string().contains("already holds keys"));

        let first = store.active_ds().unwrap();
        assert_eq!(first.number, 1);
        assert_eq!(
            store.rotate_ds(Duration::from_secs(90 * 86_400)).unwrap(),
            2
        );
        let second = store.active_ds().unwrap();
        assert_eq!(second.number, 2);
        assert_ne!(second.signer.verifying_key(), first.signer.verifying_key());
        let iaca = store.iaca_certificate().unwrap();
        for (_, cert) in store.ds_certificates().unwrap() {
            certs::verify_ds_chain(&cert, &iaca, SystemTime::now()).unwrap();
        }
        let shown = store
            .describe(SystemTime::now(), Duration::from_secs(30 * 86_400))
            .unwrap();
        assert!(
            shown.contains("IACA: CN=Utopia IACA,ST=Utopia,C=US"),
            "{shown}"
        );
        assert!(
            shown.contains("DS 0001: CN=Utopia DS 1,ST=Utopia,C=US"),
            "{shown}"
        );
        assert!(
            shown.contains("DS 0002 (active): CN=Utopia DS 2"),
            "{shown}"
        );
        assert!(shown.contains("expires in 89 days"), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"));
    }
}
