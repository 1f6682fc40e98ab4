//! What the Wallet handlers need beyond the store: the Wallet and document-signer keys (a
//! [`KeySet`], replaced whole when the key directory changes), the attestation policy and the
//! [I] settings.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::config::{ChallengeForm, Config, DocTypePolicy, HpkeConfig, HpkeContextSlot};
use crate::domain::mso_validity::Policy;
use crate::pki::attestation::AttestationPolicy;
use crate::pki::hpke::HpkeContext;
use crate::pki::keystore::KeyStore;
use crate::pki::status_list_keys::StatusListSigner;
use crate::pki::wallet_keys::WalletKeys;
use crate::pki::{certs, chain, Signer};

/// A document signer that signs MSOs.
pub struct DocumentSignerKey {
    /// Its number in the key directory, recorded with each MSO.
    pub number: u32,
    /// Its certificate.
    pub certificate: x509_cert::Certificate,
    /// Its key.
    pub signer: Box<dyn Signer>,
    /// When it starts to sign; `None`: at once.
    pub activate_at: Option<SystemTime>,
}

/// The keys in force: loaded from the key directory (or token), with the activation times the
/// replicas agreed on. Handlers take the current set for the length of a call.
#[derive(Default)]
pub struct KeySet {
    /// Identity and hybrid keys; `None` when the key directory has none (the key methods and
    /// everything that encrypts then fail with a logged server error).
    pub keys: Option<WalletKeys>,
    /// Document signers whose certificates have not expired, oldest first.
    pub document_signers: Vec<DocumentSignerKey>,
    /// The document signers of doc types that have a key directory of their own.
    pub doc_type_signers: std::collections::BTreeMap<String, Vec<DocumentSignerKey>>,
    /// The status-list signers of each key directory: `""` the main one, else the doc type
    /// whose own directory it is (oldest first).
    pub status_list_signers: std::collections::BTreeMap<String, Vec<StatusListSigner>>,
}

/// The newest of `signers` whose activation has come at `now` (or the oldest, if none has).
fn signer_at(signers: &[DocumentSignerKey], now: SystemTime) -> Option<&DocumentSignerKey> {
    crate::pki::wallet_keys::active_at(signers, |ds| ds.activate_at, now)
}

/// The usable document signers of the key directory `keys`.
fn load_signers(keys: &KeyStore, now: SystemTime) -> anyhow::Result<Vec<DocumentSignerKey>> {
    if !keys.is_initialised() {
        return Ok(Vec::new());
    }
    // A DS key that is configured but cannot be used (a token key gone, a wrong file) stops the
    // start, naming it, rather than leaving a server that cannot issue.
    Ok(keys
        .usable_ds(now)
        .with_context(|| {
            format!(
                "cannot load the active document signer of {}",
                keys.dir().display()
            )
        })?
        .into_iter()
        .map(|ds| DocumentSignerKey {
            number: ds.number,
            certificate: ds.certificate,
            signer: ds.signer,
            activate_at: None,
        })
        .collect())
}

/// The unexpired status-list signers of the key directory `keys` (none before `keys init`).
fn load_status_list_signers(
    keys: &KeyStore,
    now: SystemTime,
) -> anyhow::Result<Vec<StatusListSigner>> {
    if !keys.is_initialised() {
        return Ok(Vec::new());
    }
    keys.status_list_signers(now).with_context(|| {
        format!(
            "cannot load the status-list signers of {}",
            keys.dir().display()
        )
    })
}

impl KeySet {
    /// The document signer that signs at `now` for doc types without their own: the newest
    /// whose activation has come.
    pub fn document_signer(&self, now: SystemTime) -> Option<&DocumentSignerKey> {
        signer_at(&self.document_signers, now)
    }

    /// The document signer that signs `doc_type`'s MSOs at `now`: its own when it has a key
    /// directory of its own, else the main one.
    pub fn document_signer_for(
        &self,
        doc_type: &str,
        now: SystemTime,
    ) -> Option<&DocumentSignerKey> {
        match self.doc_type_signers.get(doc_type) {
            Some(own) => signer_at(own, now),
            None => self.document_signer(now),
        }
    }

    /// The scope of `doc_type`'s status lists: the key directory whose signers sign them.
    pub fn status_list_scope<'a>(&self, doc_type: &'a str) -> &'a str {
        if self.doc_type_signers.contains_key(doc_type) {
            doc_type
        } else {
            ""
        }
    }

    /// The status-list signer of `scope` (the newest unexpired one).
    pub fn status_list_signer(&self, scope: &str) -> Option<&StatusListSigner> {
        self.status_list_signers.get(scope).and_then(|s| s.last())
    }

    /// The key set of the key directory `config` names, every key active at once (activation
    /// times are agreed later, with the store: [`crate::service::keys`]).
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let store = KeyStore::from_config(config)?;
        let now = SystemTime::now();
        let mut set = KeySet::default();
        match store.wallet_keys(now) {
            Ok(keys) => set.keys = Some(keys),
            Err(error) => {
                tracing::warn!(%error, "the Wallet API cannot sign or decrypt until its keys exist")
            }
        }
        set.document_signers = load_signers(&store, now)?;
        set.status_list_signers
            .insert(String::new(), load_status_list_signers(&store, now)?);
        for (doc_type, own) in &config.keys.doc_type {
            let keys = KeyStore::from_config_at(config, &own.keys_dir)?;
            if !keys.is_initialised() {
                anyhow::bail!(
                    "setting `keys.doc_type.\"{doc_type}\".keys_dir`: no keys in {}; run `BREVET_KEYS_DIR={} brevet keys init …`",
                    own.keys_dir.display(),
                    own.keys_dir.display()
                );
            }
            set.doc_type_signers
                .insert(doc_type.clone(), load_signers(&keys, now)?);
            set.status_list_signers
                .insert(doc_type.clone(), load_status_list_signers(&keys, now)?);
        }
        Ok(set)
    }
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
    /// Status lists: whether MSOs name an entry, and where the lists are published.
    pub status_lists: StatusListSettings,
}

/// How MSOs reference status lists.
#[derive(Debug, Clone)]
pub struct StatusListSettings {
    /// For doc types without a setting of their own.
    pub enabled: bool,
    /// The public base URL; `None` until `brevet serve` knows it (no MSO names a list then).
    pub base_url: Option<String>,
    /// Entries per new list.
    pub list_size: u64,
    /// Entries a process reserves from the store at once.
    pub reserve_entries: u32,
}

impl StatusListSettings {
    /// The URI of list `list_id`.
    pub fn uri(base_url: &str, list_id: i64) -> String {
        format!("{}/status-lists/{list_id}", base_url.trim_end_matches('/'))
    }
}

/// Keys and policy of the Wallet surface.
pub struct WalletContext {
    key_set: RwLock<Arc<KeySet>>,
    /// registerDevice's policy.
    pub attestation: AttestationPolicy,
    /// Settings.
    pub settings: WalletSettings,
    /// Status list entries this process reserved and hands out.
    pub status_entries: crate::service::status_lists::Reservations,
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
            status_lists: StatusListSettings {
                enabled: config
                    .status_list
                    .enabled
                    .unwrap_or(config.is_development()),
                base_url: config.status_list.base_url.clone(),
                list_size: config.status_list.list_size,
                reserve_entries: config.status_list.reserve_entries,
            },
        }
    }

    /// The base URL of `doc_type`'s status lists when its MSOs name an entry.
    pub fn status_list_base(&self, doc_type: &str) -> Option<&str> {
        let on = self
            .doc_types
            .get(doc_type)
            .and_then(|p| p.status_list)
            .unwrap_or(self.status_lists.enabled);
        on.then_some(self.status_lists.base_url.as_deref())
            .flatten()
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
            key_set: RwLock::new(Arc::new(KeySet::default())),
            attestation: AttestationPolicy {
                anchors: Vec::new(),
                revoked_serials: config.wallet.attestation.revoked_serials.clone(),
                status_list: Default::default(),
                package_names: config.wallet.attestation.package_names.clone(),
            },
            settings: WalletSettings::from_config(config),
            status_entries: Default::default(),
        }
    }

    /// Loads keys from the key directory and trust anchors from the configured files, plus
    /// `extra_anchors` (SHA-256 fingerprints the caller chose to trust: the simulator's root in
    /// development mode).
    pub fn load(config: &Config, extra_anchors: &[[u8; 32]]) -> anyhow::Result<Self> {
        let mut context = Self::without_keys(config);
        context.replace_keys(KeySet::load(config)?);
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

    /// The keys in force now (a snapshot: a call keeps using it even if the set is replaced).
    pub fn keys(&self) -> Arc<KeySet> {
        self.key_set
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts `set` in force for the calls that start from now on.
    pub fn replace_keys(&self, set: KeySet) {
        *self.key_set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    /// The key set, to change before the context is shared (tests, start-up).
    ///
    /// # Panics
    /// When the set is already shared with a call in progress.
    pub fn keys_mut(&mut self) -> &mut KeySet {
        let set = self.key_set.get_mut().unwrap_or_else(|e| e.into_inner());
        Arc::get_mut(set).expect("the key set is changed only before it is shared")
    }
}
