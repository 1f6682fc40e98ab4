//! What the Wallet handlers need beyond the store: the Wallet and document-signer keys, the
//! attestation policy and the [I] settings, loaded once when `brevet serve` starts.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::config::{ChallengeForm, Config, DocTypePolicy, HpkeConfig, HpkeContextSlot};
use crate::domain::mso_validity::Policy;
use crate::pki::attestation::AttestationPolicy;
use crate::pki::hpke::HpkeContext;
use crate::pki::keystore::KeyStore;
use crate::pki::wallet_keys::WalletKeys;
use crate::pki::{certs, chain, fast_signer, Signer};

/// The document signer that signs MSOs.
pub struct DocumentSignerKey {
    /// Its number in the key directory, recorded with each MSO.
    pub number: u32,
    /// Its certificate.
    pub certificate: x509_cert::Certificate,
    /// Its key.
    pub signer: Box<dyn Signer>,
}

/// Settings of the Wallet methods.
#[derive(Debug, Clone)]
pub struct WalletSettings {
    /// Answer in plaintext when `deviceEncryptionKey` is absent.
    pub allow_plaintext: bool,
    /// Accept proofs marked `testCredential`.
    pub accept_test_credentials: bool,
    /// Lifetime of an MSO (default for doc types without their own).
    pub mso_validity: Duration,
    /// `expectedUpdate` interval (default for doc types without their own).
    pub mso_refresh: Option<Duration>,
    /// Per doc type MSO policies.
    pub doc_types: std::collections::BTreeMap<String, DocTypePolicy>,
    /// Clock tolerance for MSOs and device certificates.
    pub clock_skew: Duration,
    /// Which form of the registration nonce an attestation challenge may take.
    pub challenge_form: ChallengeForm,
    /// Most auth keys per call.
    pub max_auth_keys: usize,
    /// HPKE contexts.
    pub hpke: HpkeConfig,
}

/// Keys and policy of the Wallet surface.
pub struct WalletContext {
    /// Identity and hybrid keys; `None` when the key directory has none (the key methods and
    /// everything that encrypts then fail with a logged server error).
    pub keys: Option<WalletKeys>,
    /// The active document signer; `None` when there is none.
    pub document_signer: Option<DocumentSignerKey>,
    /// registerDevice's policy.
    pub attestation: AttestationPolicy,
    /// Settings.
    pub settings: WalletSettings,
}

impl WalletSettings {
    /// The settings in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            allow_plaintext: config.wallet.allow_plaintext,
            accept_test_credentials: config.wallet.accept_test_credentials,
            mso_validity: Duration::from_secs(config.wallet.mso_validity_secs),
            mso_refresh: config.wallet.mso_refresh_secs.map(Duration::from_secs),
            doc_types: config.wallet.doc_type.clone(),
            clock_skew: Duration::from_secs(config.wallet.clock_skew_secs),
            challenge_form: config.wallet.attestation.challenge_form,
            max_auth_keys: config.wallet.max_auth_keys,
            hpke: config.wallet.hpke.clone(),
        }
    }

    /// The MSO policy of `doc_type`: its own settings, else the defaults.
    pub fn mso_policy(&self, doc_type: &str) -> Policy {
        let own = self.doc_types.get(doc_type);
        let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        let std = |d: Duration| secs(d.as_secs());
        Policy {
            lifetime: own
                .and_then(|p| p.mso_validity_secs)
                .map_or(std(self.mso_validity), secs),
            refresh: own
                .and_then(|p| p.mso_refresh_secs)
                .map(secs)
                .or(self.mso_refresh.map(std)),
            skew: std(self.clock_skew),
        }
    }

    /// The HPKE context for a context string, in the configured slot.
    pub fn hpke_context<'a>(&self, context: &'a str) -> HpkeContext<'a> {
        hpke_context(self.hpke.context_in, context)
    }
}

/// The HPKE context for `context` placed in `slot`.
pub fn hpke_context(slot: HpkeContextSlot, context: &str) -> HpkeContext<'_> {
    match slot {
        HpkeContextSlot::Info => HpkeContext {
            info: context.as_bytes(),
            aad: b"",
        },
        HpkeContextSlot::Aad => HpkeContext {
            info: b"",
            aad: context.as_bytes(),
        },
    }
}

impl WalletContext {
    /// A context without keys and with no trusted attestation root: every method that needs a
    /// key fails. What `AppState::new` starts from.
    pub fn without_keys(config: &Config) -> Self {
        Self {
            keys: None,
            document_signer: None,
            attestation: AttestationPolicy {
                anchors: Vec::new(),
                revoked_serials: config.wallet.attestation.revoked_serials.clone(),
                status_list: Default::default(),
                package_names: config.wallet.attestation.package_names.clone(),
            },
            settings: WalletSettings::from_config(config),
        }
    }

    /// Loads keys from the key directory and trust anchors from the configured files, plus
    /// `extra_anchors` (SHA-256 fingerprints the caller chose to trust: the simulator's root in
    /// development mode).
    pub fn load(config: &Config, extra_anchors: &[[u8; 32]]) -> anyhow::Result<Self> {
        let mut context = Self::without_keys(config);
        let store = KeyStore::new(config.effective_keys_dir());
        let now = SystemTime::now();
        match store.wallet_keys(now) {
            Ok(keys) => context.keys = Some(keys),
            Err(error) => {
                tracing::warn!(%error, "the Wallet API cannot sign or decrypt until its keys exist")
            }
        }
        if store.is_initialised() {
            if let Ok(ds) = store.active_ds() {
                context.document_signer = Some(DocumentSignerKey {
                    number: ds.number,
                    signer: fast_signer(&ds.signer).context("cannot load the DS key")?,
                    certificate: ds.certificate,
                });
            }
        }
        for path in &config.wallet.attestation.roots {
            let pem = std::fs::read_to_string(path).with_context(|| {
                format!("wallet.attestation.roots: cannot read {}", path.display())
            })?;
            let cert = certs::from_pem(&pem)
                .with_context(|| format!("wallet.attestation.roots: {}", path.display()))?;
            context.attestation.anchors.push(chain::fingerprint(&cert)?);
        }
        context.attestation.anchors.extend_from_slice(extra_anchors);
        if context.attestation.anchors.is_empty() {
            tracing::warn!("no attestation root configured (wallet.attestation.roots): registerDevice refuses every device");
        }
        Ok(context)
    }
}
