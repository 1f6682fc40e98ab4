//! The Chrome Enterprise certificate-provisioning adapter (spec/cert-provisioning.md): Pub/Sub
//! intake, the Chrome Management client, proof of possession, the CAs, and the per-process flow.
//! `brevet worker` runs it when `certprov.enabled` is set; docs/cert-provisioning.md explains it.

pub mod adapter;
pub mod auth;
pub mod ca;
pub mod cas;
pub mod chrome;
pub mod config;
pub mod est;
pub mod lease;
pub mod metrics;
pub mod pop;
pub mod profile;
pub mod pubsub;
pub mod push_auth;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use self::adapter::{Adapter, Timing};
use self::auth::{Anonymous, ServiceAccount, TokenSource};
use self::ca::{BuiltinCa, CertificateAuthority, StepCa};
use self::chrome::ChromeClient;
use self::config::{CaConnectionConfig, CertProvConfig};
use self::metrics::AdapterMetrics;
use self::profile::Profile;
use self::pubsub::{Intake, Subscription};
use crate::store::SharedStore;

/// The adapter and, when a subscription is configured, its Pub/Sub intake.
pub struct Parts {
    /// The per-process flow.
    pub adapter: Adapter,
    /// Pulls new-process messages.
    pub intake: Option<Intake>,
    /// Pulls the messages of customers with subscriptions of their own.
    pub customer_intakes: Vec<Intake>,
    /// What both record, for the worker's `/metrics`.
    pub metrics: Arc<AdapterMetrics>,
}

impl Parts {
    /// The same parts reading time from `clock` (tests step it instead of sleeping).
    pub fn with_clock(self, clock: crate::clock::Clock) -> Self {
        Self {
            adapter: self.adapter.with_clock(clock.clone()),
            intake: self.intake.map(|intake| intake.with_clock(clock.clone())),
            customer_intakes: self
                .customer_intakes
                .into_iter()
                .map(|intake| intake.with_clock(clock.clone()))
                .collect(),
            metrics: self.metrics,
        }
    }
}

/// This host's name, in worker ids (lease owners) so that operators can tell replicas apart.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "brevet".to_owned())
}

/// Builds the adapter from `config`, checking every profile and CA connection.
pub fn build(config: &CertProvConfig, store: SharedStore) -> anyhow::Result<Parts> {
    build_with(config, store, None, Arc::new(AdapterMetrics::new()))
}

/// [`build`], with the PKCS#11 token that holds built-in CA keys (`[keys.pkcs11]`).
pub fn build_with(
    config: &CertProvConfig,
    store: SharedStore,
    token: Option<Arc<crate::pki::pkcs11::Token>>,
    metrics: Arc<AdapterMetrics>,
) -> anyhow::Result<Parts> {
    let timeout = Duration::from_secs(config.timeout_secs);
    if timeout >= Duration::from_secs(config.lease_secs) {
        anyhow::bail!("certprov.timeout_secs must be shorter than certprov.lease_secs");
    }
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .use_rustls_tls()
        .build()?;
    let google: Arc<dyn TokenSource> = match &config.auth.service_account_key {
        Some(path) => Arc::new(ServiceAccount::load(
            path,
            config.auth.token_url.as_deref(),
            config.auth.subject.as_deref(),
            http,
        )?),
        None => {
            tracing::warn!(
                "certprov.auth.service_account_key is not set: calls to Google carry no token"
            );
            Arc::new(Anonymous)
        }
    };
    let chrome = ChromeClient::new(
        &config.chrome_base_url,
        google.clone(),
        timeout,
        metrics.clone(),
    )
    .context("certprov.chrome_base_url")?;
    let mut profiles = BTreeMap::new();
    let mut cas: BTreeMap<String, Arc<dyn CertificateAuthority>> = BTreeMap::new();
    // Shared settings under their reference; a customer's own under "{customer}:{reference}",
    // looked up first for that customer's processes.
    let scopes = std::iter::once((None, &config.profiles, &config.ca_connections)).chain(
        config
            .customer
            .iter()
            .map(|(id, c)| (Some(id.as_str()), &c.profiles, &c.ca_connections)),
    );
    for (customer, scope_profiles, scope_cas) in scopes {
        if let Some(id) = customer {
            if !config.customers.is_empty() && !config.customers.iter().any(|c| c == id) {
                anyhow::bail!(
                    "certprov.customer.{id} is configured but {id} is not in certprov.customers"
                );
            }
        }
        let key = |reference: &str| match customer {
            Some(id) => format!("{id}:{reference}"),
            None => reference.to_owned(),
        };
        let setting = |table: &str, reference: &str| match customer {
            Some(id) => format!("certprov.customer.{id}.{table}.{reference}"),
            None => format!("certprov.{table}.{reference}"),
        };
        for (name, profile) in scope_profiles {
            profiles.insert(
                key(name),
                Profile::new(&key(name), profile.clone()).map_err(anyhow::Error::msg)?,
            );
        }
        for (name, ca) in scope_cas {
            cas.insert(
                key(name),
                build_ca(
                    &setting("ca_connections", name),
                    ca,
                    timeout,
                    &google,
                    token.as_ref(),
                )?,
            );
        }
    }
    if profiles.is_empty() || cas.is_empty() {
        tracing::warn!(
            "certprov has no profiles or no CA connections: every process will be skipped"
        );
    }
    let worker_id = format!(
        "{}-{}",
        host_name(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let timing = Timing {
        lease: Duration::from_secs(config.lease_secs),
        sign_poll_initial: Duration::from_millis(config.sign_poll_initial_ms),
        sign_poll_max: Duration::from_secs(config.sign_poll_max_secs),
        sign_deadline: Duration::from_secs(config.sign_deadline_secs),
        retry: crate::outbox::RetryPolicy {
            max_attempts: config.max_attempts.max(1),
            base: Duration::from_millis(config.backoff_base_ms),
            max: Duration::from_secs(600),
        },
        retry_budget: Duration::from_secs(config.retry_budget_secs),
        concurrency: config.concurrency.max(1),
        retention: (config.retention_days > 0)
            .then(|| Duration::from_secs(u64::from(config.retention_days) * 86_400)),
    };
    let adapter = Adapter::new(adapter::Setup {
        store: store.clone(),
        chrome,
        instance_id: config.instance_id.clone(),
        worker_id,
        profiles,
        cas,
        timing,
        metrics: metrics.clone(),
        customers: config.customers.clone(),
    });
    let emulator = std::env::var("PUBSUB_EMULATOR_HOST").ok();
    let (base, is_emulator) = pubsub::endpoint(&config.pubsub.endpoint, emulator.as_deref());
    let tokens: Arc<dyn TokenSource> = if is_emulator {
        Arc::new(Anonymous)
    } else {
        google
    };
    let intake_for = |name: &str| -> anyhow::Result<Intake> {
        let subscription =
            Subscription::new(&base, name, tokens.clone(), timeout, metrics.clone())?;
        tracing::info!(subscription = %name, endpoint = %base, "pulling certificate provisioning messages");
        Ok(Intake::new(
            store.clone(),
            subscription,
            config.pubsub.max_messages.max(1),
            config.pubsub.ack_deadline_secs.clamp(10, 600),
        ))
    };
    let intake = config
        .pubsub
        .subscription
        .as_deref()
        .map(intake_for)
        .transpose()?;
    let customer_intakes = config
        .customer
        .iter()
        .filter_map(|(id, c)| Some((id, c.subscription.as_deref()?)))
        .map(|(id, name)| {
            intake_for(name).with_context(|| format!("certprov.customer.{id}.subscription"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Parts {
        adapter,
        intake,
        customer_intakes,
        metrics,
    })
}

/// The certificate file of each built-in CA connection, named as [`builtin_ca_names`] names them.
pub fn builtin_ca_certificates(config: &CertProvConfig) -> Vec<(String, std::path::PathBuf)> {
    let certificate = |ca: &CaConnectionConfig| match ca {
        CaConnectionConfig::Builtin { certificate, .. } => Some(certificate.clone()),
        _ => None,
    };
    let shared = config
        .ca_connections
        .iter()
        .filter_map(|(name, ca)| Some((name.clone(), certificate(ca)?)));
    let own = config.customer.iter().flat_map(|(id, c)| {
        c.ca_connections
            .iter()
            .filter_map(move |(name, ca)| Some((format!("{id}:{name}"), certificate(ca)?)))
    });
    shared.chain(own).collect()
}

/// The names of the built-in CA connections as the adapter keys them (a customer's own as
/// "{customer}:{reference}"), for revocation and CRLs.
pub fn builtin_ca_names(config: &CertProvConfig) -> Vec<String> {
    let builtin = |ca: &CaConnectionConfig| matches!(ca, CaConnectionConfig::Builtin { .. });
    let shared = config
        .ca_connections
        .iter()
        .filter(|(_, ca)| builtin(ca))
        .map(|(name, _)| name.clone());
    let own = config.customer.iter().flat_map(|(id, c)| {
        c.ca_connections
            .iter()
            .filter(|(_, ca)| builtin(ca))
            .map(move |(name, _)| format!("{id}:{name}"))
    });
    shared.chain(own).collect()
}

/// The checks of the Pub/Sub push endpoint, or `None` when push is not configured (the route
/// then does not exist).
pub fn push_auth(config: &config::PubSubConfig) -> anyhow::Result<Option<push_auth::PushAuth>> {
    let oidc = config
        .push_audience
        .as_deref()
        .map(|audience| {
            push_auth::OidcCheck::new(
                &config.google_jwks_url,
                audience,
                config.push_service_account.as_deref(),
            )
        })
        .transpose()?;
    if config.push_token.is_none() && oidc.is_none() {
        return Ok(None);
    }
    Ok(Some(push_auth::PushAuth {
        token: config.push_token.clone(),
        oidc,
    }))
}

/// One CA connection, `name` its setting's path for messages.
fn build_ca(
    name: &str,
    ca: &CaConnectionConfig,
    timeout: Duration,
    google: &Arc<dyn TokenSource>,
    token: Option<&Arc<crate::pki::pkcs11::Token>>,
) -> anyhow::Result<Arc<dyn CertificateAuthority>> {
    Ok(match ca {
        CaConnectionConfig::GoogleCas { pool, base_url } => Arc::new(
            cas::GoogleCas::new(base_url, pool, google.clone(), timeout)
                .with_context(|| name.to_owned())?,
        ),
        CaConnectionConfig::Builtin {
            certificate,
            private_key,
            crl_url,
        } => Arc::new(
            BuiltinCa::load_with(certificate, private_key, token)
                .with_context(|| name.to_owned())?
                .with_crl_url(crl_url.clone()),
        ),
        CaConnectionConfig::StepCa {
            url,
            provisioner,
            key_id,
            provisioner_key,
            root_certificate,
        } => {
            let key =
                zeroize::Zeroizing::new(std::fs::read(provisioner_key).with_context(|| {
                    format!(
                        "certprov.ca_connections.{name}: cannot read {}",
                        provisioner_key.display()
                    )
                })?);
            let root = root_certificate
                .as_ref()
                .map(std::fs::read)
                .transpose()
                .with_context(|| format!("certprov.ca_connections.{name}.root_certificate"))?;
            Arc::new(StepCa::new(
                url,
                provisioner,
                key_id,
                &key,
                root.as_deref(),
                timeout,
            )?)
        }
        CaConnectionConfig::Est {
            url,
            username,
            password_file,
            root_certificate,
            client_identity,
        } => {
            let context = || name.to_owned();
            let read = |path: &std::path::Path| {
                std::fs::read(path)
                    .with_context(|| format!("{}: cannot read {}", context(), path.display()))
            };
            let basic = match (username, password_file) {
                (Some(user), Some(file)) => {
                    let password = String::from_utf8(read(file)?)
                        .with_context(|| format!("{}: the password file is not text", context()))?;
                    Some((user.clone(), password.trim_end().to_owned().into()))
                }
                (None, None) => None,
                _ => anyhow::bail!("{}: username and password_file go together", context()),
            };
            let root = root_certificate.as_deref().map(read).transpose()?;
            let identity = client_identity
                .as_deref()
                .map(read)
                .transpose()?
                .map(zeroize::Zeroizing::new);
            Arc::new(
                est::Est::new(
                    url,
                    basic,
                    root.as_deref(),
                    identity.as_deref().map(|v| v.as_slice()),
                    timeout,
                )
                .with_context(context)?,
            )
        }
    })
}
