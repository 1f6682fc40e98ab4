//! The Wallet API's own keys (spec/wallet-api.md §8.1), kept in the key directory beside the
//! mdoc keys:
//!
//! ```text
//! keys/identity/NNNN.key.pem   identity (signing) keys: sign what Brevet encrypts to devices
//! keys/identity/NNNN.cert.pem  their self-signed certificates, served by getIdentityKey
//! keys/hybrid/NNNN.key.pem     hybrid (HPKE) keys: decrypt what devices encrypt to Brevet
//! keys/hybrid/NNNN.cert.pem    their certificates, signed by the identity key that was active
//! ```
//! The highest number is the active key. Google rotates identity keys yearly and hybrid keys
//! quarterly; older keys stay so that every unexpired identity certificate is published during a
//! rotation and every unexpired hybrid key still decrypts.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::Certificate;

use super::certs::{self, CertTemplate};
use super::hpke::HpkeRecipient;
use super::keystore::{io, read, write_new, AuthorityFile, KeyStore, KeyStoreError};
use super::signer::Signer;

/// Lifetime of a new identity certificate: a year plus a month of overlap for rotation [I].
pub const IDENTITY_LIFETIME: Duration = Duration::from_secs(395 * 86_400);
/// Lifetime of a new hybrid certificate: a quarter plus a month of overlap [I].
pub const HYBRID_LIFETIME: Duration = Duration::from_secs(120 * 86_400);

/// Which of the two Wallet keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletKeyKind {
    /// Identity (signing) key.
    Identity,
    /// Hybrid encryption key.
    Hybrid,
}

impl WalletKeyKind {
    fn dir_name(self) -> &'static str {
        match self {
            WalletKeyKind::Identity => "identity",
            WalletKeyKind::Hybrid => "hybrid",
        }
    }
}

/// An identity key with its certificate.
pub struct IdentityKey {
    /// Its number.
    pub number: u32,
    /// Certificate served by getIdentityKey.
    pub certificate: Certificate,
    /// Signs.
    pub signer: Box<dyn Signer>,
    /// When it starts to sign; `None`: at once. Until then it is only published.
    pub activate_at: Option<SystemTime>,
}

/// A hybrid key with its certificate.
pub struct HybridKey {
    /// Its number.
    pub number: u32,
    /// Certificate served by getHybridEncryptionKey; its serial (upper-case hex) is the
    /// `recipientKeyId` devices use.
    pub certificate: Certificate,
    /// Decrypts: in memory, or in the token.
    pub key: Box<dyn HpkeRecipient>,
    /// When it starts to be advertised for encryption; `None`: at once. It decrypts from the
    /// start.
    pub activate_at: Option<SystemTime>,
}

/// The newest of `keys` whose activation has come at `now` (or the oldest, if none has): how
/// every kind of rotated key (Wallet keys, document signers) is chosen.
pub fn active_at<K>(
    keys: &[K],
    activation: impl Fn(&K) -> Option<SystemTime>,
    now: SystemTime,
) -> Option<&K> {
    keys.iter()
        .rev()
        .find(|k| activation(k).is_none_or(|at| at <= now))
        .or_else(|| keys.first())
}

/// The Wallet keys a server uses, loaded once at start.
pub struct WalletKeys {
    /// Unexpired identity keys, oldest first; the last one signs.
    pub identity: Vec<IdentityKey>,
    /// Unexpired hybrid keys, oldest first; the last one is published.
    pub hybrid: Vec<HybridKey>,
}

impl WalletKeys {
    /// The identity key that signs at `now`: the newest whose activation has come.
    pub fn active_identity(&self, now: SystemTime) -> Option<&IdentityKey> {
        active_at(&self.identity, |k| k.activate_at, now)
    }

    /// The hybrid key advertised at `now`: the newest whose activation has come.
    pub fn active_hybrid(&self, now: SystemTime) -> Option<&HybridKey> {
        active_at(&self.hybrid, |k| k.activate_at, now)
    }

    /// The hybrid key whose certificate serial is `serial_hex` (case-insensitive).
    pub fn hybrid_by_serial(&self, serial_hex: &str) -> Option<&HybridKey> {
        self.hybrid
            .iter()
            .find(|k| certs::serial_hex(&k.certificate).eq_ignore_ascii_case(serial_hex))
    }
}

/// The numbers NNNN of the `NNNN.cert.pem` files in `dir`, ascending (none if `dir` is absent).
pub(super) fn numbers(dir: &Path) -> Result<Vec<u32>, KeyStoreError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut numbers: Vec<u32> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|entry| {
            entry
                .ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".cert.pem")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

fn unexpired(cert: &Certificate, now: SystemTime) -> bool {
    certs::check_validity(cert, now).is_ok()
}

impl KeyStore {
    fn wallet_dir(&self, kind: WalletKeyKind) -> PathBuf {
        self.dir().join(kind.dir_name())
    }

    fn wallet_stem(&self, kind: WalletKeyKind, number: u32) -> PathBuf {
        self.wallet_dir(kind).join(format!("{number:04}"))
    }

    fn wallet_file(&self, kind: WalletKeyKind, number: u32, what: &str) -> PathBuf {
        self.wallet_dir(kind)
            .join(format!("{number:04}.{what}.pem"))
    }

    fn subject(&self, what: &str, number: u32) -> String {
        let country = read(&self.authority_path())
            .ok()
            .and_then(|raw| toml::from_str::<AuthorityFile>(&raw).ok())
            .map_or_else(|| "XX".to_owned(), |a| a.country);
        format!("CN=Brevet Wallet {what} {number},C={country}")
    }

    /// Every certificate of `kind`, oldest first (expired ones too).
    pub fn wallet_certificates(
        &self,
        kind: WalletKeyKind,
    ) -> Result<Vec<(u32, Certificate)>, KeyStoreError> {
        numbers(&self.wallet_dir(kind))?
            .into_iter()
            .map(|n| {
                Ok((
                    n,
                    certs::from_pem(&read(&self.wallet_file(kind, n, "cert"))?)?,
                ))
            })
            .collect()
    }

    /// Creates the first identity and hybrid keys where there are none.
    pub fn ensure_wallet_keys(&self) -> Result<(), KeyStoreError> {
        if numbers(&self.wallet_dir(WalletKeyKind::Identity))?.is_empty() {
            self.rotate_wallet_key(WalletKeyKind::Identity)?;
        }
        if numbers(&self.wallet_dir(WalletKeyKind::Hybrid))?.is_empty() {
            self.rotate_wallet_key(WalletKeyKind::Hybrid)?;
        }
        Ok(())
    }

    /// Adds a new key of `kind` and makes it the active one; returns its number.
    pub fn rotate_wallet_key(&self, kind: WalletKeyKind) -> Result<u32, KeyStoreError> {
        self.create_dirs()?;
        let dir = self.wallet_dir(kind);
        let number = numbers(&dir)?.last().map_or(1, |n| n + 1);
        let now = SystemTime::now();
        let certificate = match kind {
            WalletKeyKind::Identity => {
                // Its key file (or token label) is written first: a certificate always has a key.
                let key = self.new_signing_key(&self.wallet_stem(kind, number), "identity")?;
                let template = CertTemplate {
                    subject: self.subject("Identity Key", number),
                    issuer: None,
                    serial: None,
                    not_before: now,
                    lifetime: IDENTITY_LIFETIME,
                    public_key: key.verifying_key().into(),
                    ca: false,
                    extensions: vec![certs::extension(
                        &KeyUsage(KeyUsages::DigitalSignature.into()),
                        true,
                    )?],
                };
                certs::issue_certificate(&template, key.as_ref())?
            }
            WalletKeyKind::Hybrid => {
                let identity = self.load_identity_keys(now)?.pop().ok_or_else(|| {
                    KeyStoreError::State(
                        "a hybrid key is certified by the identity key: create one first".into(),
                    )
                })?;
                let public = self.new_hybrid_key(&self.wallet_stem(kind, number))?;
                let template = CertTemplate {
                    subject: self.subject("Hybrid Encryption Key", number),
                    issuer: Some(identity.certificate.tbs_certificate.subject.clone()),
                    serial: None,
                    not_before: now,
                    lifetime: HYBRID_LIFETIME,
                    public_key: public.into(),
                    ca: false,
                    extensions: vec![certs::extension(
                        &KeyUsage(KeyUsages::KeyAgreement.into()),
                        true,
                    )?],
                };
                certs::issue_certificate(&template, identity.signer.as_ref())?
            }
        };
        write_new(
            &self.wallet_file(kind, number, "cert"),
            certs::to_pem(&certificate)?.as_bytes(),
            0o644,
        )?;
        Ok(number)
    }

    fn load_identity_keys(&self, now: SystemTime) -> Result<Vec<IdentityKey>, KeyStoreError> {
        let kind = WalletKeyKind::Identity;
        let mut keys = Vec::new();
        for number in numbers(&self.wallet_dir(kind))? {
            let certificate = certs::from_pem(&read(&self.wallet_file(kind, number, "cert"))?)?;
            if !unexpired(&certificate, now) {
                continue;
            }
            let signer = self.signing_key_of(
                &self.wallet_stem(kind, number),
                &certificate,
                &format!("Wallet identity {number:04}"),
            )?;
            keys.push(IdentityKey {
                number,
                certificate,
                activate_at: None,
                signer,
            });
        }
        Ok(keys)
    }

    /// The unexpired Wallet keys. Errors when there is no usable identity or hybrid key.
    pub fn wallet_keys(&self, now: SystemTime) -> Result<WalletKeys, KeyStoreError> {
        let identity = self.load_identity_keys(now)?;
        let kind = WalletKeyKind::Hybrid;
        let mut hybrid = Vec::new();
        for number in numbers(&self.wallet_dir(kind))? {
            let certificate = certs::from_pem(&read(&self.wallet_file(kind, number, "cert"))?)?;
            if !unexpired(&certificate, now) {
                continue;
            }
            let key = self.load_hybrid_key(&self.wallet_stem(kind, number))?;
            let public = p256::PublicKey::from_sec1_bytes(&key.public_bytes())
                .map_err(|e| KeyStoreError::State(format!("hybrid key {number:04}: {e}")))?;
            if certs::public_key(&certificate)? != p256::ecdsa::VerifyingKey::from(public) {
                return Err(KeyStoreError::State(format!(
                    "the key of Wallet hybrid key {number:04} is not the key of its certificate"
                )));
            }
            hybrid.push(HybridKey {
                number,
                certificate,
                activate_at: None,
                key,
            });
        }
        if identity.is_empty() || hybrid.is_empty() {
            let kind = if identity.is_empty() {
                "identity"
            } else {
                "hybrid"
            };
            // An empty directory needs the whole set-up; a set-up whose key expired, a new key.
            let fix = if self.is_initialised() {
                format!("brevet keys rotate-{kind}")
            } else {
                "brevet keys init".to_owned()
            };
            return Err(KeyStoreError::State(format!(
                "no unexpired Wallet {kind} key in {}; run `{fix}`",
                self.dir().display(),
            )));
        }
        Ok(WalletKeys { identity, hybrid })
    }
}
