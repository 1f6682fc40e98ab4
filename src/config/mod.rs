//! Typed configuration: defaults, then an optional TOML file, then `BREVET_*` environment variables.
//!
//! Every setting, its environment variable, default and meaning are in [`reference::SETTINGS`]
//! (printed by `brevet config reference`, and as docs/CONFIGURATION.md); nested keys use `__` in
//! variable names.
//!
//! The file comes from `--config FILE` or `BREVET_CONFIG`. Unknown keys are errors, so a typo in a
//! setting's name is reported at start instead of silently ignored.

pub mod reference;
pub mod sources;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The whole configuration of a Brevet process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Development or production; see [`Mode`]. Resolved by [`Config::load`].
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Directory for the embedded SQLite store and other local state.
    pub data_dir: PathBuf,
    /// Key directory; `None` means `<data_dir>/keys`.
    pub keys_dir: Option<PathBuf>,
    /// Store URL; `None` means the SQLite file in `data_dir`.
    pub database_url: Option<DatabaseUrl>,
    /// Size of the store's connection pool.
    pub database_max_connections: u32,
    /// `tracing` filter directives.
    pub log: String,
    /// Human-readable or JSON log lines.
    pub log_format: LogFormat,
    /// HTTP server limits.
    pub http: HttpConfig,
    /// Settings of the mdoc core.
    pub mdoc: MdocConfig,
    /// Settings of the issuer-hosted Wallet API.
    pub wallet: WalletConfig,
    /// Google's endpoints Brevet calls.
    pub google: GoogleConfig,
    /// Delivery of outbox jobs.
    pub outbox: OutboxConfig,
    /// TLS termination; `None` serves plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The Chrome certificate-provisioning adapter (`brevet worker`); see
    /// `crate::certprov::config` for its settings.
    #[serde(default)]
    pub certprov: crate::certprov::config::CertProvConfig,
    /// `brevet worker`'s own listener.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// Where issuer keys live and how their expiry is watched.
    #[serde(default)]
    pub keys: KeysConfig,
    /// The staff console under `/console/` on the admin listener.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Token Status Lists referenced from MSOs (docs/STATUS_LIST.md).
    #[serde(default)]
    pub status_list: StatusListConfig,
    /// Staff's bulk updates of holder data.
    #[serde(default)]
    pub bulk_update: BulkUpdateConfig,
}

/// `[bulk_update]`: how fast a bulk update changes records unless its request says otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BulkUpdateConfig {
    /// Records changed per second; 0: as fast as the store allows.
    pub records_per_sec: u32,
}

/// The slowest pace a bulk update may run at: a batch must end well within its lease.
pub const MIN_BULK_RECORDS_PER_SEC: u32 = 10;
/// The fastest pace a bulk update may name (beyond it, ask for no limit).
pub const MAX_BULK_RECORDS_PER_SEC: u32 = 100_000;

impl Default for BulkUpdateConfig {
    fn default() -> Self {
        Self {
            records_per_sec: 1000,
        }
    }
}

/// Whether `records_per_sec` is a pace a bulk update may run at: 0 (no limit), or between
/// [`MIN_BULK_RECORDS_PER_SEC`] and [`MAX_BULK_RECORDS_PER_SEC`].
pub fn bulk_pace_allowed(records_per_sec: u32) -> bool {
    records_per_sec == 0
        || (MIN_BULK_RECORDS_PER_SEC..=MAX_BULK_RECORDS_PER_SEC).contains(&records_per_sec)
}

/// `[status_list]`: revocation that reaches verifiers offline (docs/STATUS_LIST.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusListConfig {
    /// Whether MSOs name a status list entry (per doc type: `wallet.doc_type.*.status_list`);
    /// unset: on in development mode, off in production.
    pub enabled: Option<bool>,
    /// The public listener's URL as verifiers reach it; lists are at
    /// `<base_url>/status-lists/<n>`. Unset in development mode: the public listener's address.
    pub base_url: Option<String>,
    /// Entries per list ([I]).
    pub list_size: u64,
    /// Entries a process reserves from the store at once and hands out from memory ([I]).
    pub reserve_entries: u32,
    /// `ttl` of a token: how long verifiers may cache it, seconds ([I]).
    pub ttl_secs: u64,
    /// `exp` − `iat` of a token, seconds ([I]); a token is rebuilt when half of it has passed.
    pub validity_secs: u64,
    /// How often `brevet serve` looks for lists to publish, milliseconds: revocations within
    /// one interval share one new token.
    pub publish_interval_ms: u64,
}

impl Default for StatusListConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            base_url: None,
            list_size: 131_072,
            reserve_entries: 256,
            ttl_secs: 900,
            validity_secs: 86_400,
            publish_interval_ms: 1000,
        }
    }
}

/// `[console]`: the staff console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Whether `brevet serve` serves the console.
    pub enabled: bool,
    /// How long a console session lasts after sign-in.
    pub session_ttl_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_ttl_secs: 8 * 3600,
        }
    }
}

/// `[keys]`: issuer keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Days before a certificate's expiry at which a warning is logged (once per threshold).
    pub expiry_warning_days: Vec<u32>,
    /// The PKCS#11 token new signing keys are made in and token-held keys are used from;
    /// `None`: software keys (PKCS#8 files).
    pub pkcs11: Option<crate::pki::pkcs11::Pkcs11Config>,
    /// How long a new Wallet identity or hybrid key is published before it is used ([I]).
    pub publish_delay_secs: u64,
    /// How often `brevet serve` reloads the keys from the key directory (or token).
    pub reload_secs: u64,
    /// Doc types signed by a DS of their own, under their own IACA: the key directory of each.
    pub doc_type: std::collections::BTreeMap<String, DocTypeKeys>,
}

/// `[keys.doc_type."<docType>"]`: where the DS of one doc type lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocTypeKeys {
    /// A key directory of its own (IACA and DS), made with `BREVET_KEYS_DIR=… brevet keys init`.
    pub keys_dir: PathBuf,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            expiry_warning_days: vec![30, 7, 1],
            pkcs11: None,
            publish_delay_secs: 86_400,
            reload_secs: 60,
            doc_type: std::collections::BTreeMap::new(),
        }
    }
}

/// `brevet worker`'s ops listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Address of the worker's `/healthz` and `/metrics`; `None`: no listener.
    pub ops_listen: Option<SocketAddr>,
}

/// What the operator runs Brevet for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A laptop or a test: the simulator's attestation root is trusted and development keys are
    /// created. Said loudly at start and on `/readyz`.
    Development,
    /// Real credentials: only what the operator configured is trusted.
    Production,
}

/// Google's Wallet backend, for the notifications Brevet sends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoogleConfig {
    /// Base URL; `None` disables notifications.
    pub base_url: Option<String>,
    /// Issuer id assigned by Google.
    pub issuer_id: Option<String>,
    /// PEM file holding the mTLS client certificate and private key (a secret; never logged).
    pub client_identity: Option<PathBuf>,
    /// Per-call timeout in seconds.
    pub timeout_secs: Option<u64>,
    /// Extra CA (PEM) trusted for Google's server certificate, beside the public roots (tests,
    /// private front ends).
    pub ca_certificate: Option<PathBuf>,
    /// The API version Brevet's calls to Google carry ("MAJOR.MINOR"); `None` means 0.1.
    #[serde(deserialize_with = "version_text")]
    pub api_version: Option<String>,
}

/// A "MAJOR.MINOR" setting, also when an environment variable made a number of it (`0.1`); a
/// minor version with a trailing zero must then be quoted (`BREVET_…='"1.10"'`).
fn version_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        String(String),
        Number(f64),
    }
    Ok(
        Option::<Text>::deserialize(deserializer)?.map(|text| match text {
            Text::String(s) => s,
            Text::Number(n) => n.to_string(),
        }),
    )
}

/// Most jobs a dispatcher lane claims at once (each is a few statement parameters).
const MAX_CLAIM_BATCH: u32 = 1000;

/// Delivery of outbox jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Whether `brevet serve` dispatches too.
    pub dispatch_in_serve: bool,
    /// Lease of a claimed job, seconds.
    pub lease_secs: u64,
    /// Attempts before a job is dead.
    pub max_attempts: u32,
    /// First retry delay, milliseconds.
    pub backoff_base_ms: u64,
    /// Longest retry delay, seconds.
    pub backoff_max_secs: u64,
    /// Idle polling interval, milliseconds.
    pub poll_interval_ms: u64,
    /// Notifications one process delivers at once.
    pub lanes: usize,
    /// Jobs a lane claims per transaction.
    pub claim_batch: u32,
    /// Deliveries after which a dispatcher vacuums the outbox (Postgres); 0 never.
    pub vacuum_every: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            dispatch_in_serve: false,
            lease_secs: 60,
            max_attempts: 12,
            backoff_base_ms: 2000,
            backoff_max_secs: 3600,
            poll_interval_ms: 1000,
            lanes: 8,
            claim_batch: 16,
            vacuum_every: 20_000,
        }
    }
}

impl GoogleConfig {
    /// The per-call timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs.unwrap_or(10))
    }
}

/// Settings of the mdoc core.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdocConfig {
    /// Directory of extra doc type definitions; `None` means the built-in mDL only.
    pub doc_types_dir: Option<PathBuf>,
}

/// Limits applied to every HTTP request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds before a request is abandoned with 408.
    pub request_timeout_secs: u64,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Serve plain HTTP on a non-loopback address (behind a TLS-terminating proxy).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Address of the admin surface; `None` shares `listen`.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// Address of the ops surface; `None` shares `listen`.
    #[serde(default)]
    pub ops_listen: Option<SocketAddr>,
    /// Address of the public surface; `None` shares `listen`.
    #[serde(default)]
    pub public_listen: Option<SocketAddr>,
    /// Seconds to send a request head; also the longest idle time of a kept-alive connection.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// Seconds to finish a TLS handshake.
    #[serde(default = "default_tls_handshake_timeout")]
    pub tls_handshake_timeout_secs: u64,
    /// Connections open at once, per listener.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_header_read_timeout() -> u64 {
    10
}

fn default_tls_handshake_timeout() -> u64 {
    10
}

fn default_max_connections() -> usize {
    1024
}

/// Settings of the issuer-hosted Wallet API surface.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// Accepted `requestMetadata.version` values as "major.minor". Google publishes only the example
    /// 0.1, so this is configurable (spec/wallet-api.md §1, an [I] choice; see docs/ASSUMPTIONS.md).
    pub api_versions: Vec<String>,
    /// Seconds a device registration nonce stays usable ([I], spec §4.4).
    #[serde(default = "default_nonce_ttl")]
    pub nonce_ttl_secs: u64,
    /// Whether requests without `deviceEncryptionKey` get plaintext answers (Google's sandbox
    /// onboarding only; spec §4.9). Off in production.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Whether devices may present credentials marked `testCredential` in their proofs.
    #[serde(default)]
    pub accept_test_credentials: bool,
    /// Lifetime of an issued MSO, seconds ([I]: 30 days; never past the DS certificate).
    #[serde(default = "default_mso_validity")]
    pub mso_validity_secs: u64,
    /// Interval after which each MSO says the issuer expects to re-issue it (`expectedUpdate`);
    /// `None` leaves the member out.
    #[serde(default)]
    pub mso_refresh_secs: Option<u64>,
    /// Clock tolerance: MSOs are backdated by it, device certificates may be off by it.
    #[serde(default = "default_clock_skew")]
    pub clock_skew_secs: u64,
    /// Per doc type overrides of the MSO policy.
    #[serde(default)]
    pub doc_type: std::collections::BTreeMap<String, DocTypePolicy>,
    /// Most auth keys certified in one provisionMobileSecurityObjects call ([I]).
    #[serde(default = "default_max_auth_keys")]
    pub max_auth_keys: usize,
    /// Days a proofing may stay challenged before it expires (spec §6.2: 30 [G]).
    #[serde(default = "default_challenge_expiry_days")]
    pub challenge_expiry_days: u32,
    /// How often the worker looks for expired challenges, seconds.
    #[serde(default = "default_expiry_sweep_secs")]
    pub expiry_sweep_secs: u64,
    /// HPKE context strings ([I], spec §8.2 and §13.4).
    #[serde(default)]
    pub hpke: HpkeConfig,
    /// How registerDevice judges Android key attestations.
    #[serde(default)]
    pub attestation: AttestationConfig,
}

fn default_nonce_ttl() -> u64 {
    600
}

fn default_mso_validity() -> u64 {
    30 * 86_400
}

fn default_clock_skew() -> u64 {
    300
}

/// The MSO policy of one doc type; unset members fall back to the `wallet.*` defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocTypePolicy {
    /// MSO lifetime, seconds.
    pub mso_validity_secs: Option<u64>,
    /// `expectedUpdate` interval, seconds.
    pub mso_refresh_secs: Option<u64>,
    /// Whether its MSOs name a status list entry; unset: `status_list.enabled`.
    #[serde(default)]
    pub status_list: Option<bool>,
}

fn default_max_auth_keys() -> usize {
    64
}

fn default_challenge_expiry_days() -> u32 {
    30
}

fn default_expiry_sweep_secs() -> u64 {
    300
}

/// HPKE context of each payload Brevet encrypts ([I]: Google names only the evidence contexts
/// `FrontOfLicense` and `Barcode`; see docs/wallet-api.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HpkeConfig {
    /// Context of the provisionCredential payload.
    pub credential: String,
    /// Context of each MSO.
    pub mobile_security_object: String,
    /// Whether the context goes into HPKE `info` or AEAD `aad`.
    pub context_in: HpkeContextSlot,
}

/// Where an HPKE context string goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HpkeContextSlot {
    /// HPKE `info`.
    Info,
    /// AEAD additional data.
    Aad,
}

impl Default for HpkeConfig {
    fn default() -> Self {
        Self {
            credential: crate::protocol::wallet::CREDENTIAL_CONTEXT.into(),
            mobile_security_object: crate::protocol::wallet::MOBILE_SECURITY_OBJECT_CONTEXT.into(),
            context_in: HpkeContextSlot::Info,
        }
    }
}

/// What registerDevice compares the attestation challenge with ([I], spec §4.4): whether Google
/// hands the device the nonce string or its decoded bytes is not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeForm {
    /// The nonce string's 32 ASCII bytes.
    String,
    /// The 24 bytes it encodes.
    Bytes,
    /// Either of the two.
    Either,
}

/// Android key attestation policy for registerDevice (spec §4.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttestationConfig {
    /// PEM files of trusted attestation roots (Google's, supplied at onboarding).
    pub roots: Vec<PathBuf>,
    /// Trust the root of `brevet sim wallet`: unset follows the mode (on in development), `false`
    /// turns it off, `true` is allowed in development mode only.
    pub trust_simulator_root: Option<bool>,
    /// Upper-case hex serials of revoked attestation certificates.
    pub revoked_serials: Vec<String>,
    /// Package names the attested application may have.
    pub package_names: Vec<String>,
    /// Google's attestation status list (revoked and suspended attestation keys), fetched by
    /// `brevet serve` at start and every `status_list_refresh_secs`; `None` does not fetch it.
    pub status_list_url: Option<String>,
    /// Seconds between two fetches of the status list.
    pub status_list_refresh_secs: u64,
    /// Which form of the registration nonce the attestation challenge may take.
    pub challenge_form: ChallengeForm,
}

impl Default for AttestationConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            trust_simulator_root: None,
            revoked_serials: Vec::new(),
            package_names: vec![
                "com.google.android.gms".into(),
                "com.google.android.gsf".into(),
            ],
            status_list_url: None,
            status_list_refresh_secs: 3600,
            challenge_form: ChallengeForm::Either,
        }
    }
}

/// TLS termination by `brevet serve` itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub certificate: PathBuf,
    /// PEM private key of the server (a secret; never logged).
    pub private_key: PathBuf,
    /// PEM CA whose client certificates may call the Wallet API.
    pub client_ca: Option<PathBuf>,
    /// SHA-256 fingerprints (hex of the DER) of client certificates that may call the Wallet API.
    #[serde(default)]
    pub client_pins: Vec<String>,
}

impl TlsConfig {
    /// Whether the Wallet API demands a client certificate.
    pub fn requires_client_certificate(&self) -> bool {
        self.client_ca.is_some() || !self.client_pins.is_empty()
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./brevet-data"),
            keys_dir: None,
            database_url: None,
            database_max_connections: 10,
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            http: HttpConfig {
                request_timeout_secs: 30,
                body_limit_bytes: 1024 * 1024,
                allow_plaintext: false,
                admin_listen: None,
                ops_listen: None,
                public_listen: None,
                header_read_timeout_secs: default_header_read_timeout(),
                tls_handshake_timeout_secs: default_tls_handshake_timeout(),
                max_connections: default_max_connections(),
            },
            mdoc: MdocConfig::default(),
            google: GoogleConfig::default(),
            outbox: OutboxConfig::default(),
            wallet: WalletConfig {
                api_versions: vec!["0.1".to_owned()],
                nonce_ttl_secs: default_nonce_ttl(),
                allow_plaintext: false,
                accept_test_credentials: false,
                mso_validity_secs: default_mso_validity(),
                max_auth_keys: default_max_auth_keys(),
                mso_refresh_secs: None,
                clock_skew_secs: default_clock_skew(),
                doc_type: Default::default(),
                challenge_expiry_days: default_challenge_expiry_days(),
                expiry_sweep_secs: default_expiry_sweep_secs(),
                hpke: HpkeConfig::default(),
                attestation: AttestationConfig::default(),
            },
            tls: None,
            certprov: crate::certprov::config::CertProvConfig::default(),
            worker: WorkerConfig::default(),
            keys: KeysConfig::default(),
            console: ConsoleConfig::default(),
            status_list: StatusListConfig::default(),
            bulk_update: BulkUpdateConfig::default(),
        }
    }
}

/// A configuration that could not be loaded; its message names the setting at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then `file` (if any), then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_sources(file).map(|(config, _)| config)
    }

    /// [`Config::load`], also returning the layered sources, which tell where each value came
    /// from (`brevet config print`).
    pub fn load_with_sources(file: Option<&Path>) -> Result<(Self, Figment), ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("BREVET_")
            .split("__")
            // BREVET_CONFIG names the file itself; BREVET_ADMIN_TOKEN and BREVET_ADMIN_URL are
            // the client commands' (`brevet admin`, `brevet sim …`); BREVET_TEST_* belong to
            // the test suite.
            .filter(|key| {
                // `UncasedStr` compares without regard to case, as variable names are written.
                let client = key == "config" || key == "admin_token" || key == "admin_url";
                !client && !key.as_str().to_ascii_lowercase().starts_with("test_")
            });
        let figment = figment.merge(env);
        let mut config: Config = figment.extract().map_err(describe_figment_error)?;
        if config.mode.is_none() {
            // Only the README's zero-configuration start is a development start by default.
            config.mode = Some(if file.is_none() && config.database_url.is_none() {
                Mode::Development
            } else {
                Mode::Production
            });
        }
        config.validate()?;
        Ok((config, figment))
    }

    /// Whether the operator chose (or the zero-configuration start selected) development mode.
    pub fn is_development(&self) -> bool {
        self.mode == Some(Mode::Development)
    }

    /// Whether registerDevice trusts the simulator's attestation root.
    pub fn trusts_simulator_root(&self) -> bool {
        self.is_development() && self.wallet.attestation.trust_simulator_root != Some(false)
    }

    /// Whether any doc type's MSOs name a status list entry.
    pub fn status_lists_used(&self) -> bool {
        let default = self.status_list.enabled.unwrap_or(self.is_development());
        default
            || self
                .wallet
                .doc_type
                .values()
                .any(|p| p.status_list == Some(true))
    }

    fn validate_status_list(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("setting `{key}`: {why}")));
        let list = &self.status_list;
        if let Some(base) = &list.base_url {
            match url::Url::parse(base) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.query().is_none() => {}
                _ => {
                    return bad(
                        "status_list.base_url",
                        &format!("{base:?} is not an http(s) URL without a query"),
                    )
                }
            }
        } else if self.status_lists_used() && !self.is_development() {
            return bad(
                "status_list.base_url",
                "is required when status lists are on in production: the URL at which verifiers reach the public listener (e.g. https://status.dmv.example)",
            );
        }
        // Small lists are allowed for tests; verifiers learn little from a large one (herd
        // privacy), so production keeps the default.
        if list.list_size < 16 || list.list_size > 1 << 26 {
            return bad("status_list.list_size", "must be between 16 and 67108864");
        }
        if list.reserve_entries == 0 || u64::from(list.reserve_entries) > list.list_size {
            return bad(
                "status_list.reserve_entries",
                "must be between 1 and status_list.list_size",
            );
        }
        if list.ttl_secs == 0 || list.publish_interval_ms == 0 {
            return bad(
                "status_list",
                "ttl_secs and publish_interval_ms must be at least 1",
            );
        }
        if list.validity_secs < 2 * list.ttl_secs {
            return bad(
                "status_list.validity_secs",
                "must be at least twice ttl_secs, so that a cached token never outlives its exp",
            );
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("setting `{key}`: {why}")));
        if self.wallet.attestation.trust_simulator_root == Some(true) && !self.is_development() {
            return bad(
                "wallet.attestation.trust_simulator_root",
                "the simulator's attestation root (whose private key is public) is trusted only in development mode; set mode = \"development\" for a test set-up, or configure wallet.attestation.roots",
            );
        }
        if self.database_max_connections == 0 {
            return bad("database_max_connections", "must be at least 1");
        }
        if !bulk_pace_allowed(self.bulk_update.records_per_sec) {
            return bad(
                "bulk_update.records_per_sec",
                &format!("must be 0 (no limit) or between {MIN_BULK_RECORDS_PER_SEC} and {MAX_BULK_RECORDS_PER_SEC}"),
            );
        }
        if self.http.request_timeout_secs == 0 {
            return bad("http.request_timeout_secs", "must be at least 1");
        }
        if self.http.body_limit_bytes < 1024 {
            return bad("http.body_limit_bytes", "must be at least 1024");
        }
        if self.wallet.nonce_ttl_secs == 0 {
            return bad("wallet.nonce_ttl_secs", "must be at least 1");
        }
        if self.wallet.api_versions.is_empty() {
            return bad("wallet.api_versions", "must list at least one version");
        }
        for version in &self.wallet.api_versions {
            if crate::protocol::wallet::ApiVersion::parse(version).is_none() {
                return bad(
                    "wallet.api_versions",
                    &format!("{version:?} is not of the form MAJOR.MINOR"),
                );
            }
        }
        if self.wallet.mso_validity_secs < 3600 {
            return bad("wallet.mso_validity_secs", "must be at least 3600");
        }
        if self.wallet.clock_skew_secs > 3600 {
            return bad("wallet.clock_skew_secs", "must be at most 3600");
        }
        if self.wallet.mso_refresh_secs == Some(0) {
            return bad("wallet.mso_refresh_secs", "must be at least 1 when set");
        }
        for (doc_type, policy) in &self.wallet.doc_type {
            if policy.mso_validity_secs.is_some_and(|s| s < 3600) {
                return bad(
                    &format!("wallet.doc_type.\"{doc_type}\".mso_validity_secs"),
                    "must be at least 3600",
                );
            }
            if policy.mso_refresh_secs == Some(0) {
                return bad(
                    &format!("wallet.doc_type.\"{doc_type}\".mso_refresh_secs"),
                    "must be at least 1 when set",
                );
            }
        }
        if let Some(version) = &self.google.api_version {
            if crate::protocol::wallet::ApiVersion::parse(version).is_none() {
                return bad(
                    "google.api_version",
                    &format!("{version:?} is not of the form MAJOR.MINOR"),
                );
            }
        }
        if self.wallet.challenge_expiry_days == 0 || self.wallet.expiry_sweep_secs == 0 {
            return bad(
                "wallet",
                "challenge_expiry_days and expiry_sweep_secs must be at least 1",
            );
        }
        if self.wallet.attestation.status_list_refresh_secs < 60 {
            return bad(
                "wallet.attestation.status_list_refresh_secs",
                "must be at least 60",
            );
        }
        if self.wallet.max_auth_keys == 0 {
            return bad("wallet.max_auth_keys", "must be at least 1");
        }
        if self.http.header_read_timeout_secs == 0
            || self.http.tls_handshake_timeout_secs == 0
            || self.http.max_connections == 0
        {
            return bad(
                "http",
                "header_read_timeout_secs, tls_handshake_timeout_secs and max_connections must be at least 1",
            );
        }
        if let Some(tls) = &self.tls {
            for pin in &tls.client_pins {
                if pin.len() != 64 || hex::decode(pin).is_err() {
                    return bad(
                        "tls.client_pins",
                        &format!("{pin:?} is not a SHA-256 fingerprint in hex"),
                    );
                }
            }
        }
        if let Some(base) = &self.google.base_url {
            match url::Url::parse(base) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                _ => {
                    return bad(
                        "google.base_url",
                        &format!("{base:?} is not an http(s) URL"),
                    )
                }
            }
            if self
                .google
                .issuer_id
                .as_deref()
                .is_none_or(|id| id.trim().is_empty())
            {
                return bad(
                    "google.issuer_id",
                    "is required when google.base_url is set",
                );
            }
        }
        self.validate_status_list()?;
        if self.keys.reload_secs == 0 {
            return bad("keys.reload_secs", "must be at least 1");
        }
        if self.outbox.lease_secs == 0
            || self.outbox.max_attempts == 0
            || self.outbox.poll_interval_ms == 0
        {
            return bad(
                "outbox",
                "lease_secs, max_attempts and poll_interval_ms must be at least 1",
            );
        }
        if !(1..=MAX_CLAIM_BATCH).contains(&self.outbox.claim_batch) {
            return bad(
                "outbox.claim_batch",
                &format!("must be between 1 and {MAX_CLAIM_BATCH}"),
            );
        }
        if self.google.timeout() >= std::time::Duration::from_secs(self.outbox.lease_secs) {
            return bad("google.timeout_secs", "must be shorter than outbox.lease_secs, or a slow call could be made twice at once");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            return bad(
                "log",
                &format!("{:?} is not a valid tracing filter", self.log),
            );
        }
        Ok(())
    }

    /// The checks of the HTTP listeners, which only `brevet serve` opens: so that a one-shot
    /// command (`keys`, `migrate`, `admin`) runs with the server's environment whatever its
    /// listener settings.
    pub fn validate_listeners(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("setting `{key}`: {why}")));
        for (key, address) in [
            ("listen", Some(self.listen)),
            ("http.admin_listen", self.http.admin_listen),
            ("http.ops_listen", self.http.ops_listen),
            ("http.public_listen", self.http.public_listen),
        ] {
            let Some(address) = address else { continue };
            if self.tls.is_none() && !address.ip().is_loopback() && !self.http.allow_plaintext {
                return bad(key, &format!("{address} is not a loopback address: configure `tls` (Google calls the Wallet API over mutual TLS), or set http.allow_plaintext behind a TLS-terminating proxy"));
            }
        }
        if !self.listen.ip().is_loopback() {
            // Google reaches the Wallet listener; staff and the platform must not share it.
            for (key, address) in [
                ("http.admin_listen", self.http.admin_listen),
                ("http.ops_listen", self.http.ops_listen),
            ] {
                if address.is_none_or(|a| a == self.listen) {
                    return bad(key, &format!("the Wallet listener {} is not on loopback, so the admin and ops routes need addresses of their own: set http.admin_listen and http.ops_listen (e.g. 127.0.0.1:9080 and 127.0.0.1:9090)", self.listen));
                }
            }
        }
        Ok(())
    }

    /// The key directory in force.
    pub fn effective_keys_dir(&self) -> PathBuf {
        self.keys_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }

    /// The store URL in force: the configured one, or the SQLite file in `data_dir`.
    pub fn effective_database_url(&self) -> DatabaseUrl {
        match &self.database_url {
            Some(url) => url.clone(),
            None => DatabaseUrl::sqlite_file(&self.data_dir.join("brevet.db")),
        }
    }
}

fn describe_figment_error(error: figment::Error) -> ConfigError {
    // figment can collect several errors; the first one is enough to act on, and keeps it one line.
    let first = error.into_iter().next();
    let Some(error) = first else {
        return ConfigError("invalid configuration".to_owned());
    };
    let key = error.path.join(".");
    let source = error
        .metadata
        .as_ref()
        .map(|meta| match &meta.source {
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            _ if meta.name.contains("environment") => {
                format!(" (from BREVET_{})", key.to_uppercase().replace('.', "__"))
            }
            _ => String::new(),
        })
        .unwrap_or_default();
    let what = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => format!("unknown setting `{field}`"),
        kind => kind.to_string(),
    };
    if key.is_empty() {
        ConfigError(format!("{what}{source}"))
    } else {
        ConfigError(format!("setting `{key}`{source}: {what}"))
    }
}

/// Which store a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite store (single node).
    Sqlite,
    /// Postgres (production, many replicas).
    Postgres,
}

impl Backend {
    /// Lowercase name used in logs, metrics and test names.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A store URL. It may hold a password, so `Debug` and `Display` redact it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatabaseUrl {
    url: SecretString,
    backend: Backend,
}

impl DatabaseUrl {
    /// Parses a `sqlite:` or `postgres(ql)://` URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
        let backend = match parsed.scheme() {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            other => {
                return Err(format!(
                    "unsupported scheme `{other}:` (use sqlite: or postgres://)"
                ))
            }
        };
        Ok(Self {
            url: SecretString::from(raw.to_owned()),
            backend,
        })
    }

    /// The URL of a SQLite database file, created if missing.
    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            url: SecretString::from(format!("sqlite://{}?mode=rwc", path.display())),
            backend: Backend::Sqlite,
        }
    }

    /// Which store this URL selects.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its secret parts, for the database driver only.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    fn redacted(&self) -> String {
        match url::Url::parse(self.expose()) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                // Query parameters such as sslpassword may carry secrets: keep the keys, hide
                // the values of anything that looks like one.
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(key, value)| {
                        let secret = ["pass", "secret", "key", "token"]
                            .iter()
                            .any(|s| key.contains(s));
                        (
                            key.into_owned(),
                            if secret {
                                "***".to_owned()
                            } else {
                                value.into_owned()
                            },
                        )
                    })
                    .collect();
                if !pairs.is_empty() {
                    url.query_pairs_mut().clear().extend_pairs(pairs);
                }
                url.to_string()
            }
            Err(_) => "<unparseable url>".to_owned(),
        }
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<DatabaseUrl> for String {
    fn from(url: DatabaseUrl) -> String {
        url.expose().to_owned()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_redacts_password_and_query() {
        let url = DatabaseUrl::parse(
            "postgres://brevet:hunter2@db:5432/brevet?sslmode=require&sslpassword=x",
        )
        .unwrap();
        assert_eq!(url.backend(), Backend::Postgres);
        assert_eq!(
            format!("{url:?}"),
            "postgres://brevet:***@db:5432/brevet?sslmode=require&sslpassword=***"
        );
        assert!(!format!("{url}").contains("hunter2"));
        assert_eq!(
            url.expose(),
            "postgres://brevet:hunter2@db:5432/brevet?sslmode=require&sslpassword=x"
        );
    }

    #[test]
    fn database_url_rejects_other_schemes() {
        let err = DatabaseUrl::parse("mysql://localhost/db").unwrap_err();
        assert!(err.contains("unsupported scheme `mysql:`"), "{err}");
        assert!(DatabaseUrl::parse("not a url").is_err());
    }

    #[test]
    fn default_store_is_sqlite_in_data_dir() {
        let config = Config::default();
        let url = config.effective_database_url();
        assert_eq!(url.backend(), Backend::Sqlite);
        assert_eq!(url.expose(), "sqlite://./brevet-data/brevet.db?mode=rwc");
    }
}
