//! Settings of the certificate-provisioning adapter (`[certprov]` in the TOML file). Every choice
//! the spec marks [infer] has its setting here, with the default we assumed; docs/ASSUMPTIONS.md
//! lists them and docs/cert-provisioning.md explains them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The OAuth scope of every Chrome Management certificate-provisioning method (spec §8).
pub const CHROME_SCOPE: &str =
    "https://www.googleapis.com/auth/chrome.management.certprov.provisioningprocess";
/// The OAuth scope for Pub/Sub subscribers (spec §6.2).
pub const PUBSUB_SCOPE: &str = "https://www.googleapis.com/auth/pubsub";

/// `[certprov]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertProvConfig {
    /// Whether `brevet worker` runs the adapter.
    pub enabled: bool,
    /// `callerInstanceId` sent to claim; `None` (the default) means the deployment's own id,
    /// made by the first replica and kept in the store, so every replica and every replacement
    /// pod claims as one instance and re-claims its processes idempotently. Set it only to share
    /// an id across databases; never give two deployments the same id.
    pub instance_id: Option<String>,
    /// Base URL of the Chrome Management API.
    pub chrome_base_url: String,
    /// Per-call timeout, seconds (shorter than `lease_secs`).
    pub timeout_secs: u64,
    /// How long a worker holds a process between two recorded steps, seconds.
    pub lease_secs: u64,
    /// How often an idle worker looks for due processes, milliseconds.
    pub poll_interval_ms: u64,
    /// First wait before polling the signData operation, milliseconds ([infer] 2 s).
    pub sign_poll_initial_ms: u64,
    /// Longest wait between two polls, seconds ([infer] 30 s; the wait grows ×1.5).
    pub sign_poll_max_secs: u64,
    /// The device has this long to sign before the process fails, seconds ([infer] 15 min).
    pub sign_deadline_secs: u64,
    /// Fewest tries of a failing call (5xx, 429, network) before the step gives up; it gives
    /// up only once `retry_budget_secs` have passed as well.
    pub max_attempts: u32,
    /// How long a run of failures of one call may last before the step gives up, seconds
    /// ([infer] 10 minutes). Any successful call starts the run over.
    pub retry_budget_secs: u64,
    /// Processes one worker drives at once.
    pub concurrency: usize,
    /// Finished processes (done, failed, skipped) are deleted this many days after their last
    /// change ([infer] 30): their rows hold device serials and user e-mails. 0 keeps them.
    pub retention_days: u32,
    /// First retry delay after a transient failure, milliseconds (doubles, with jitter).
    pub backoff_base_ms: u64,
    /// How the worker authenticates to Google.
    pub auth: AuthConfig,
    /// Where new-process messages come from.
    pub pubsub: PubSubConfig,
    /// `profileAdapterConfigReference` → how to fill the certificate.
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// `caConnectionAdapterConfigReference` → which CA issues.
    pub ca_connections: BTreeMap<String, CaConnectionConfig>,
    /// The Google customer ids (`C0…`) this adapter serves; a process of any other customer is
    /// skipped without a claim. Empty: every customer whose processes reach it.
    pub customers: Vec<String>,
    /// Settings of one customer, by customer id: its own profiles and CA connections (used
    /// before the shared ones of the same reference) and its own Pub/Sub subscription.
    pub customer: BTreeMap<String, CustomerConfig>,
}

/// `[certprov.customer.<id>]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CustomerConfig {
    /// `projects/{project}/subscriptions/{subscription}` of this customer's notifications,
    /// pulled beside `certprov.pubsub.subscription`.
    pub subscription: Option<String>,
    /// Profiles for this customer's processes.
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// CA connections for this customer's processes.
    pub ca_connections: BTreeMap<String, CaConnectionConfig>,
}

impl Default for CertProvConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            instance_id: None,
            chrome_base_url: "https://chromemanagement.googleapis.com/".into(),
            timeout_secs: 20,
            lease_secs: 60,
            poll_interval_ms: 1000,
            sign_poll_initial_ms: 2000,
            sign_poll_max_secs: 30,
            sign_deadline_secs: 15 * 60,
            max_attempts: 8,
            retry_budget_secs: 600,
            concurrency: 8,
            retention_days: 30,
            backoff_base_ms: 1000,
            auth: AuthConfig::default(),
            pubsub: PubSubConfig::default(),
            profiles: BTreeMap::new(),
            ca_connections: BTreeMap::new(),
            customers: Vec::new(),
            customer: BTreeMap::new(),
        }
    }
}

/// How tokens for Google's APIs are obtained.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Service-account key file (Google's JSON format: `client_email`, `private_key`,
    /// `private_key_id`, `token_uri`). A secret: never logged.
    pub service_account_key: Option<PathBuf>,
    /// Token endpoint; `None` means the key file's `token_uri`, else Google's.
    pub token_url: Option<String>,
    /// Admin to act as (domain-wide delegation: the JWT's `sub`), if the customer set it up so.
    pub subject: Option<String>,
}

/// Pub/Sub intake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PubSubConfig {
    /// `projects/{project}/subscriptions/{subscription}` to pull from; `None`: no pulling (push
    /// only, or processes recorded by other means).
    pub subscription: Option<String>,
    /// Base URL of the Pub/Sub REST API; `PUBSUB_EMULATOR_HOST` overrides it (plain HTTP, no
    /// credentials), as Google's client libraries do.
    pub endpoint: String,
    /// Messages asked for per pull.
    pub max_messages: u32,
    /// Ack deadline set on every held message, seconds; renewed at two thirds of it while the
    /// process is unfinished.
    pub ack_deadline_secs: u32,
    /// Shared secret a push subscription must send as `?token=` to
    /// `POST /certprov/v1/pubsub/push` on `brevet serve`. The endpoint exists when this or
    /// `push_audience` is set.
    #[serde(skip_serializing)]
    pub push_token: Option<SecretString>,
    /// Audience of the OIDC token a push subscription with authentication sends; when set, the
    /// push endpoint requires a valid Google-signed token for it.
    pub push_audience: Option<String>,
    /// The push subscription's service account: the OIDC token's `email` must be it.
    pub push_service_account: Option<String>,
    /// Where Google's OIDC signing keys are published.
    pub google_jwks_url: String,
}

impl Default for PubSubConfig {
    fn default() -> Self {
        Self {
            subscription: None,
            endpoint: "https://pubsub.googleapis.com/".into(),
            max_messages: 10,
            ack_deadline_secs: 60,
            push_token: None,
            push_audience: None,
            push_service_account: None,
            google_jwks_url: super::push_auth::GOOGLE_JWKS_URL.into(),
        }
    }
}

/// What goes into the certificates of one profile. Templates take `{device.serialNumber}`,
/// `{device.directoryApiId}`, `{user.email}`, `{user.directoryApiId}`, `{process.id}` and
/// `{customer.id}`; a template naming a field the process lacks fails the process with a reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Subject as an RFC 4514 string template, e.g. `CN={device.serialNumber},O=Example`.
    pub subject: String,
    /// DNS-name SAN templates.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// RFC 822 (email) SAN templates.
    #[serde(default)]
    pub emails: Vec<String>,
    /// URI SAN templates.
    #[serde(default)]
    pub uris: Vec<String>,
    /// Lifetime of the certificate, days.
    #[serde(default = "default_validity_days")]
    pub validity_days: u32,
    /// Key usages: any of `digitalSignature`, `keyEncipherment`, `keyAgreement`.
    #[serde(default = "default_key_usages")]
    pub key_usages: Vec<String>,
    /// Extended key usages: any of `clientAuth`, `serverAuth`, `emailProtection`, or a dotted OID.
    #[serde(default = "default_extended_key_usages")]
    pub extended_key_usages: Vec<String>,
}

fn default_cas_base_url() -> String {
    "https://privateca.googleapis.com/".into()
}

fn default_validity_days() -> u32 {
    365
}

fn default_key_usages() -> Vec<String> {
    vec!["digitalSignature".into()]
}

fn default_extended_key_usages() -> Vec<String> {
    vec!["clientAuth".into()]
}

/// One CA connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum CaConnectionConfig {
    /// Brevet's own CA: a P-256 key and its certificate (PEM files; `brevet keys init-device-ca`
    /// creates them, or bring your own P-256 CA).
    Builtin {
        /// PEM CA certificate.
        certificate: PathBuf,
        /// PEM PKCS#8 CA key (a secret; never logged).
        private_key: PathBuf,
        /// Where the CA's CRL is published — `brevet serve` answers
        /// `GET /certprov/v1/crl/{connection}` on its public listener — written into every
        /// certificate as its CRL distribution point. Unset: no distribution point.
        #[serde(default)]
        crl_url: Option<String>,
    },
    /// A smallstep step-ca: `POST {url}/1.0/sign` with the CSR and a one-time token signed by a
    /// JWK provisioner's key.
    StepCa {
        /// Base URL of the CA.
        url: String,
        /// Provisioner name (the token's `iss`).
        provisioner: String,
        /// The provisioner's key id (the token's `kid`).
        key_id: String,
        /// PEM PKCS#8 P-256 private key of the provisioner (a secret; never logged).
        provisioner_key: PathBuf,
        /// Extra CA (PEM) trusted for the CA's TLS certificate.
        #[serde(default)]
        root_certificate: Option<PathBuf>,
    },
    /// A CA pool of Google Cloud Certificate Authority Service, reached with
    /// `certprov.auth`'s service account (it needs `privateca.certificates.create` and `.get`).
    GoogleCas {
        /// `projects/{project}/locations/{location}/caPools/{pool}`.
        pool: String,
        /// Base URL of the API.
        #[serde(default = "default_cas_base_url")]
        base_url: String,
    },
    /// An EST server (RFC 7030, the enrollment protocol of most enterprise CAs):
    /// `POST {url}/simpleenroll`.
    Est {
        /// `https://host/.well-known/est`, or `…/est/{label}` for a CA label.
        url: String,
        /// HTTP Basic user, if the server wants one.
        #[serde(default)]
        username: Option<String>,
        /// File holding the HTTP Basic password (a secret; never logged).
        #[serde(default)]
        password_file: Option<PathBuf>,
        /// Extra CA (PEM) trusted for the server's TLS certificate.
        #[serde(default)]
        root_certificate: Option<PathBuf>,
        /// PEM file with a TLS client certificate and its key, if the server authenticates
        /// clients that way (a secret; never logged).
        #[serde(default)]
        client_identity: Option<PathBuf>,
    },
}
