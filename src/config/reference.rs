//! The reference of every setting: key, environment variable, default and meaning, in one table
//! that `brevet config reference` prints and docs/CONFIGURATION.md is generated from (a test keeps
//! the two, and this table and [`Config`](super::Config), in step).

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Dotted key as in the TOML file; `<name>` stands for a table key the operator chooses.
    pub key: &'static str,
    /// The default, as text (Markdown).
    pub default: &'static str,
    /// What it does (Markdown).
    pub meaning: &'static str,
    /// Whether its value is a secret: `brevet config print` shows only that it is set.
    pub secret: bool,
}

impl Setting {
    /// The environment variable that sets it, or `None` for keys under a table the operator
    /// names (file only).
    pub fn env_var(&self) -> Option<String> {
        if self.key.contains('<') {
            return None;
        }
        Some(format!(
            "BREVET_{}",
            self.key.to_uppercase().replace('.', "__")
        ))
    }

    /// Whether a concrete path (`["certprov", "profiles", "device", "subject"]`) is this setting.
    pub fn matches(&self, path: &[String]) -> bool {
        let mut wanted = self.key.split('.');
        let mut given = path.iter();
        loop {
            match (wanted.next(), given.next()) {
                (None, None) => return true,
                // `…<reference>.*`: anything below the named table.
                (Some("*"), Some(_)) => return true,
                (Some(w), Some(g)) if w == g || w.starts_with('<') => {}
                _ => return false,
            }
        }
    }
}

const fn s(key: &'static str, default: &'static str, meaning: &'static str) -> Setting {
    Setting {
        key,
        default,
        meaning,
        secret: false,
    }
}

const fn secret(key: &'static str, default: &'static str, meaning: &'static str) -> Setting {
    Setting {
        key,
        default,
        meaning,
        secret: true,
    }
}

/// Every setting, in the order the reference lists them.
pub const SETTINGS: &[Setting] = &[
    s("mode", "`development` with no config file and no database URL, else `production`", "`development` trusts the simulator's attestation root and creates development keys; never for real credentials"),
    s("listen", "`127.0.0.1:8080`", "address `brevet serve` binds"),
    s("data_dir", "`./brevet-data`", "where the embedded SQLite store (and, later, dev keys) live"),
    s("keys_dir", "`<data_dir>/keys`", "IACA and DS keys and certificates (`brevet keys`)"),
    s("database_url", "`sqlite://<data_dir>/brevet.db`", "`sqlite:` or `postgres://` URL; its password (and secret query values) redacted in logs and `config print`"),
    s("database_max_connections", "`10`", "connection pool size"),
    s("log", "`info`", "tracing filter, e.g. `info,brevet=debug`"),
    s("log_format", "`text`", "`text` for people, `json` for log pipelines"),
    s("http.request_timeout_secs", "`30`", "a request still running after this gets 408"),
    s("http.body_limit_bytes", "`1048576`", "larger request bodies get 413"),
    s("mdoc.doc_types_dir", "none", "directory of doc type files (`*.toml`) beside the built-in mDL; docs/DOC_TYPES.md"),
    s("google.base_url", "none", "Google's Wallet backend (`https://vgw.sandbox.google.com` or `https://vgw.googleapis.com`); unset disables notifications"),
    s("google.issuer_id", "none", "the issuer id Google assigned; required with `base_url`"),
    s("google.client_identity", "none", "PEM file with the mTLS client certificate and its key"),
    s("google.ca_certificate", "none", "extra CA (PEM) trusted for Google's server certificate"),
    s("google.api_version", "`0.1`", "`requestMetadata.version` of the calls Brevet makes to Google"),
    s("google.timeout_secs", "`10`", "per-call timeout; must be shorter than the outbox lease"),
    s("outbox.dispatch_in_serve", "`false`", "also dispatch notifications from `brevet serve` (single-node set-ups)"),
    s("outbox.lease_secs", "`60`", "how long a claimed job is held before another worker may take it"),
    s("outbox.max_attempts", "`12`", "attempts before a job is dead"),
    s("outbox.backoff_base_ms", "`2000`", "first retry delay; doubles per attempt, with jitter"),
    s("outbox.backoff_max_secs", "`3600`", "longest retry delay"),
    s("outbox.poll_interval_ms", "`1000`", "how often an idle dispatcher looks for due jobs; on Postgres it is also woken as soon as jobs are queued (LISTEN on channel `brevet_outbox`), so the poll matters for retries falling due, for SQLite, and while the listening connection is down"),
    s("outbox.claim_batch", "`16`", "due jobs a lane claims in one transaction and then delivers one after the other, marking them done with its next claim: fewer commits per notification, at the cost of one lane holding several jobs while others idle when few are due (a job is started only if a call can end within the batch's lease; the rest are given back)"),
    s("outbox.vacuum_every", "`20000`", "on Postgres, a dispatcher runs `vacuum (analyze) outbox` after this many deliveries (in the background, one at a time); each delivered job leaves a dead index entry that every claim walks over until a vacuum, and autovacuum looks at most once a minute, so a large fan-out slows down without it; 0 leaves it to autovacuum"),
    s("outbox.lanes", "`8`", "notifications one process (worker, or serve with `dispatch_in_serve`) delivers at once; each lane claims its own job, so one slow answer from Google does not hold up the queue ([I]: Google publishes no rate limit for the notify methods)"),
    s("bulk_update.records_per_sec", "`1000`", "records a bulk update changes per second unless its request names a pace (`recordsPerSecond`); 0: as fast as the store allows. Each changed record means a version, an audit entry and a notification per device copy, all competing with the Wallet API for the database: on 2 cores a 100,000-record change took 105 s at 1000/s and 56 s at 2000/s with getCredentialStatus's p99 at 15-18 ms, against 45 s and 80 ms with no limit (docs/PERFORMANCE.md). Between 10 and 100000, or 0"),
    s("wallet.nonce_ttl_secs", "`600`", "how long a device registration nonce stays usable"),
    s("wallet.api_versions", "`[\"0.1\"]`", "Wallet API versions accepted in `requestMetadata.version`"),
    s("wallet.allow_plaintext", "`false`", "answer requests without `deviceEncryptionKey` in plaintext (Google sandbox onboarding only)"),
    s("wallet.accept_test_credentials", "`false`", "accept device proofs marked `testCredential`"),
    s("wallet.mso_validity_secs", "`2592000`", "lifetime of an MSO (30 days; never past the DS certificate)"),
    s("wallet.mso_refresh_secs", "none", "when set, each MSO's `expectedUpdate` is this long after signing (never past `validUntil`)"),
    s("wallet.clock_skew_secs", "`300`", "MSOs start this long before signing (verifiers' clocks lag); device certificates may be this far off"),
    s("wallet.doc_type.<docType>.mso_validity_secs", "`wallet.mso_validity_secs`", "MSO lifetime for one doc type (quote the doc type in TOML: `[wallet.doc_type.\"org.iso.18013.5.1.mDL\"]`)"),
    s("wallet.doc_type.<docType>.mso_refresh_secs", "`wallet.mso_refresh_secs`", "`expectedUpdate` interval for one doc type"),
    s("wallet.max_auth_keys", "`64`", "most auth keys certified per provisionMobileSecurityObjects call"),
    s("wallet.challenge_expiry_days", "`30`", "a proofing challenged this long expires (Google is notified)"),
    s("wallet.expiry_sweep_secs", "`300`", "how often the worker looks for expired challenges"),
    s("wallet.hpke.credential", "`Credential`", "HPKE context of the credential payload ([I])"),
    s("wallet.hpke.mobile_security_object", "`MobileSecurityObject`", "HPKE context of each MSO ([I])"),
    s("wallet.hpke.context_in", "`info`", "whether contexts go into HPKE `info` or AEAD `aad` ([I])"),
    s("wallet.attestation.challenge_form", "`either`", "what registerDevice accepts as the attestation challenge: the nonce string's ASCII bytes (`string`), its decoded 24 bytes (`bytes`), or `either` ([I])"),
    s("wallet.attestation.roots", "`[]`", "PEM files of trusted Android attestation roots"),
    s("wallet.attestation.trust_simulator_root", "on in development mode", "trust `brevet sim wallet`'s attestation root; `false` turns it off, `true` is refused outside development mode"),
    s("wallet.attestation.revoked_serials", "`[]`", "revoked attestation certificate serials (upper-case hex)"),
    s("wallet.attestation.package_names", "`[\"com.google.android.gms\", \"com.google.android.gsf\"]`", "attested application ids accepted"),
    s("wallet.attestation.status_list_url", "none", "Google's attestation status list (`https://android.googleapis.com/attestation/status`); set it in production"),
    s("wallet.attestation.status_list_refresh_secs", "`3600`", "seconds between fetches of the status list"),
    s("http.admin_listen", "`listen`", "address of the admin API (and later the staff console); must differ from `listen` when that is not loopback"),
    s("http.ops_listen", "`listen`", "address of `/healthz`, `/readyz`, `/metrics`; must differ from `listen` when that is not loopback"),
    s("http.public_listen", "`listen`", "address of the public routes (Pub/Sub push; later status lists, CRLs)"),
    s("http.header_read_timeout_secs", "`10`", "a client must send a request head within this, and an idle connection is closed after it"),
    s("http.tls_handshake_timeout_secs", "`10`", "a TLS handshake must finish within this"),
    s("http.max_connections", "`1024`", "open connections per listener; more wait in the backlog"),
    s("http.allow_plaintext", "`false`", "allow plain HTTP on a non-loopback `listen` (behind a TLS proxy)"),
    s("tls.certificate", "none", "PEM server certificate chain; with `tls.private_key` enables TLS"),
    s("tls.private_key", "none", "PEM server key"),
    s("tls.client_ca", "none", "PEM CA of client certificates allowed on the Wallet API (Google's)"),
    s("tls.client_pins", "`[]`", "SHA-256 (hex) of client certificates allowed on the Wallet API"),
    s("keys.expiry_warning_days", "`[30, 7, 1]`", "days before a certificate in use (IACA, DS, Wallet keys, device CA, TLS) expires at which a warning is logged, once per threshold; `keys show` flags them too"),
    s("keys.publish_delay_secs", "`86400`", "a new Wallet identity or hybrid key is published this long before it signs or is advertised for encryption (Google caches the issuer's keys; [I]); the first key of a kind is used at once"),
    s("keys.reload_secs", "`60`", "how often `brevet serve` reloads keys from the key directory or token; every replica converges within this, and switches to a new key at the activation time agreed in the store"),
    s("keys.doc_type.<docType>.keys_dir", "the main key directory", "a key directory of its own (IACA and DS, made with `BREVET_KEYS_DIR=… brevet keys init`) whose DS signs this doc type's MSOs (quote the doc type in TOML)"),
    s("keys.pkcs11.module", "none (software keys)", "the HSM vendor's PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`; when set, new IACA, DS and Wallet identity keys are made in the token (docs/KEYS.md)"),
    s("keys.pkcs11.token_label", "(this or `slot`)", "label of the token holding the keys"),
    s("keys.pkcs11.slot", "none", "id of the slot whose token to use (with `token_label`, both must match)"),
    s("keys.pkcs11.pin_file", "none", "file holding the token's user PIN (a secret file)"),
    secret("keys.pkcs11.pin", "none", "the user PIN itself, for `BREVET_KEYS__PKCS11__PIN` when no file is used"),
    s("keys.pkcs11.sessions", "`4`", "token sessions opened for concurrent signing"),
    s("console.enabled", "`true`", "serve the staff console under `/console/` on the admin listener (docs/CONSOLE.md)"),
    s("console.session_ttl_secs", "`28800`", "how long a console sign-in lasts (8 hours); a session also ends at sign-out and when its admin token is revoked"),
    s("status_list.enabled", "on in development mode, off in production", "whether MSOs carry a `status` member naming their entry in a Token Status List that `brevet serve` publishes (docs/STATUS_LIST.md); off keeps MSOs byte for byte as before"),
    s("wallet.doc_type.<docType>.status_list", "`status_list.enabled`", "the same, for one doc type"),
    s("status_list.base_url", "development: the public listener's address; production: required when on", "URL at which verifiers reach the public listener; each list is at `<base_url>/status-lists/<n>`, the `uri` in the MSO and the token's `sub`"),
    s("status_list.list_size", "`131072`", "entries per list ([I]); a new list is started when one is full; an entry is never handed out twice"),
    s("status_list.reserve_entries", "`256`", "entries each `brevet serve` reserves from the store at once and hands out from memory, so that provisionMobileSecurityObjects calls do not queue on one row ([I]); entries a process held when it stopped are never used"),
    s("status_list.ttl_secs", "`900`", "the token's `ttl` and HTTP `max-age`: how long verifiers may cache it, so the longest a revocation takes to reach a verifier that keeps to it ([I])"),
    s("status_list.validity_secs", "`86400`", "`exp` − `iat` of each token ([I]); a token is rebuilt when half of it has passed, or at once when an entry changes"),
    s("status_list.publish_interval_ms", "`1000`", "how often `brevet serve` looks for lists whose entries changed; revocations within one interval share one new token"),
    s("worker.ops_listen", "none", "address of `brevet worker`'s `/healthz` and `/metrics` (e.g. `0.0.0.0:9091` in a pod); unset: none"),

    s("certprov.enabled", "`false`", "whether `brevet worker` runs the Chrome certificate-provisioning adapter (docs/cert-provisioning.md)"),
    s("certprov.instance_id", "the deployment's own, kept in the store", "`callerInstanceId` sent to claim; set only to share one id across databases"),
    s("certprov.chrome_base_url", "`https://chromemanagement.googleapis.com/`", "base URL of the Chrome Management API"),
    s("certprov.timeout_secs", "`20`", "per-call timeout (shorter than `certprov.lease_secs`)"),
    s("certprov.lease_secs", "`60`", "how long a worker holds a process between two recorded steps"),
    s("certprov.poll_interval_ms", "`1000`", "how often an idle worker looks for due processes"),
    s("certprov.sign_poll_initial_ms", "`2000`", "first wait before polling the signData operation ([I])"),
    s("certprov.sign_poll_max_secs", "`30`", "longest wait between two polls; the wait grows ×1.5 ([I])"),
    s("certprov.sign_deadline_secs", "`900`", "the device has this long to sign before the process fails ([I])"),
    s("certprov.max_attempts", "`8`", "fewest tries of a failing call before the step gives up"),
    s("certprov.retry_budget_secs", "`600`", "how long a run of failures of one call may last before the step gives up ([I])"),
    s("certprov.concurrency", "`8`", "processes one worker drives at once"),
    s("certprov.retention_days", "`30`", "finished processes are deleted this many days after their last change; 0 keeps them ([I])"),
    s("certprov.backoff_base_ms", "`1000`", "first retry delay after a transient failure (doubles, with jitter)"),
    s("certprov.customers", "`[]`", "Google customer ids (`C0…`) served; others' processes are skipped unclaimed; empty: all"),
    s("certprov.auth.service_account_key", "none", "Google service-account JSON key file (a secret file; never logged)"),
    s("certprov.auth.token_url", "the key file's `token_uri`", "OAuth token endpoint"),
    s("certprov.auth.subject", "none", "admin to act as (domain-wide delegation: the JWT's `sub`)"),
    s("certprov.pubsub.subscription", "none", "`projects/{project}/subscriptions/{subscription}` to pull; unset: no pulling"),
    s("certprov.pubsub.endpoint", "`https://pubsub.googleapis.com/`", "Pub/Sub REST API; `PUBSUB_EMULATOR_HOST` overrides it"),
    s("certprov.pubsub.max_messages", "`10`", "messages asked for per pull"),
    s("certprov.pubsub.ack_deadline_secs", "`60`", "ack deadline set on held messages; renewed at two thirds"),
    secret("certprov.pubsub.push_token", "none", "shared secret a push subscription sends as `?token=` to `POST /certprov/v1/pubsub/push`"),
    s("certprov.pubsub.push_audience", "none", "audience of the OIDC token a push subscription sends; when set, a valid Google-signed token is required"),
    s("certprov.pubsub.push_service_account", "none", "the push subscription's service account (the OIDC token's `email`)"),
    s("certprov.pubsub.google_jwks_url", "`https://www.googleapis.com/oauth2/v3/certs`", "where Google's OIDC signing keys are published"),
    s("certprov.profiles.<reference>.subject", "(required)", "RFC 4514 subject template, e.g. `CN={device.serialNumber},O=Example`"),
    s("certprov.profiles.<reference>.dns_names", "`[]`", "DNS-name SAN templates"),
    s("certprov.profiles.<reference>.emails", "`[]`", "e-mail SAN templates"),
    s("certprov.profiles.<reference>.uris", "`[]`", "URI SAN templates"),
    s("certprov.profiles.<reference>.validity_days", "`365`", "certificate lifetime"),
    s("certprov.profiles.<reference>.key_usages", "`[\"digitalSignature\"]`", "any of `digitalSignature`, `keyEncipherment`, `keyAgreement`"),
    s("certprov.profiles.<reference>.extended_key_usages", "`[\"clientAuth\"]`", "any of `clientAuth`, `serverAuth`, `emailProtection`, or a dotted OID"),
    s("certprov.ca_connections.<reference>.kind", "(required)", "`builtin`, `step_ca`, `google_cas` or `est`; the other keys of a connection depend on it (docs/cert-provisioning.md)"),
    s("certprov.ca_connections.<reference>.certificate", "(builtin)", "PEM CA certificate"),
    s("certprov.ca_connections.<reference>.private_key", "(builtin)", "PEM PKCS#8 CA key (a secret file)"),
    s("certprov.ca_connections.<reference>.crl_url", "none", "(builtin) CRL distribution point written into every certificate"),
    s("certprov.ca_connections.<reference>.url", "(step_ca, est)", "base URL of the CA"),
    s("certprov.ca_connections.<reference>.provisioner", "(step_ca)", "JWK provisioner name (the token's `iss`)"),
    s("certprov.ca_connections.<reference>.key_id", "(step_ca)", "the provisioner's key id (the token's `kid`)"),
    s("certprov.ca_connections.<reference>.provisioner_key", "(step_ca)", "PEM PKCS#8 P-256 provisioner key (a secret file)"),
    s("certprov.ca_connections.<reference>.root_certificate", "none", "(step_ca, est) extra CA trusted for the CA's TLS certificate"),
    s("certprov.ca_connections.<reference>.pool", "(google_cas)", "`projects/{project}/locations/{location}/caPools/{pool}`"),
    s("certprov.ca_connections.<reference>.base_url", "`https://privateca.googleapis.com/`", "(google_cas) base URL of the API"),
    s("certprov.ca_connections.<reference>.username", "none", "(est) HTTP Basic user"),
    s("certprov.ca_connections.<reference>.password_file", "none", "(est) file holding the HTTP Basic password (a secret file)"),
    s("certprov.ca_connections.<reference>.client_identity", "none", "(est) PEM TLS client certificate and key (a secret file)"),
    s("certprov.customer.<customer>.subscription", "none", "this customer's own Pub/Sub subscription, pulled beside the shared one"),
    s("certprov.customer.<customer>.profiles.<reference>.*", "shared profile", "this customer's profile (same keys as `certprov.profiles`)"),
    s("certprov.customer.<customer>.ca_connections.<reference>.*", "shared connection", "this customer's CA connection (same keys as `certprov.ca_connections`)"),
];

/// The setting a path belongs to.
pub fn find(path: &[String]) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.matches(path))
}

/// The reference as Markdown (docs/CONFIGURATION.md).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated by `brevet config reference` from `src/config/reference.rs`; do not edit by hand.\n\n\
         Settings come from defaults, then a TOML file (`--config FILE` or `BREVET_CONFIG`), then\n\
         environment variables; nested keys use `__` in variable names. Unknown keys are errors.\n\
         `brevet config check` validates a configuration and `brevet config print` shows the settings\n\
         in force and where each came from (secrets redacted). `examples/brevet.toml` is a complete\n\
         production example. [I] marks a default we inferred (docs/ASSUMPTIONS.md).\n\n\
         | key | variable | default | meaning |\n|---|---|---|---|\n",
    );
    for setting in SETTINGS {
        let env = setting
            .env_var()
            .map_or_else(|| "(file only)".to_owned(), |v| format!("`{v}`"));
        let secret = if setting.secret { " (secret)" } else { "" };
        out.push_str(&format!(
            "| `{}` | {env} | {} | {}{secret} |\n",
            setting.key, setting.default, setting.meaning
        ));
    }
    out
}
