//! What each `brevet` subcommand does, once the configuration is loaded.

pub mod admin;
pub mod config;
pub mod health;
pub mod keys;
pub mod sim;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sha2::Digest;
use tokio::net::TcpListener;

use crate::config::{Backend, Config};
use crate::google::GoogleClient;
use crate::http::{self, AppState, Limits};
use crate::outbox::{Dispatcher, RetryPolicy};
use crate::pki::keystore::{AuthorityFile, KeyStore, Lifetimes};
use crate::store::{self, SharedStore};

/// Opens the configured store (creating the data directory for the default SQLite file) and
/// applies its migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<SharedStore> {
    let url = config.effective_database_url();
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    let store = store::connect(&url, config.database_max_connections)
        .await
        .with_context(|| format!("cannot open the store at {url}"))?;
    tracing::info!(store = store.backend().as_str(), url = %url, "store ready, migrations applied");
    if store.backend() == Backend::Sqlite {
        tracing::info!("the embedded SQLite store serves one node; set BREVET_DATABASE_URL=postgres://… for production");
    }
    Ok(store)
}

/// The doc types this process can issue: the built-in mDL plus `mdoc.doc_types_dir`.
pub fn load_doc_types(config: &Config) -> anyhow::Result<crate::mdoc::doctype::DocTypes> {
    let types = match &config.mdoc.doc_types_dir {
        Some(dir) => crate::mdoc::doctype::DocTypes::load_dir(dir)?,
        None => crate::mdoc::doctype::DocTypes::builtin(),
    };
    let names: Vec<&str> = types.names().collect();
    tracing::info!(doc_types = ?names, "doc types loaded");
    Ok(types)
}

/// Common name of the IACA that zero-configuration starts create; it says what it is.
pub const DEV_IACA_NAME: &str = "Brevet DEVELOPMENT IACA - NOT FOR PRODUCTION";

/// Makes sure there are mdoc keys. In development mode an empty key directory gets development
/// keys, loudly marked as such; otherwise missing keys are only reported, because production keys
/// come from `brevet keys init` or `import`.
fn ensure_keys(config: &Config) -> anyhow::Result<()> {
    let store = KeyStore::from_config(config)?;
    let development = config.is_development();
    if store.is_initialised() {
        let active = store
            .active_ds()
            .context("cannot read the active document signer")?;
        tracing::info!(keys_dir = %store.dir().display(), ds = active.number, "mdoc keys ready");
        if development {
            store
                .ensure_wallet_keys()
                .context("cannot create development Wallet keys")?;
            store
                .ensure_status_list_signer()
                .context("cannot create a development status-list signer")?;
        }
        return Ok(());
    }
    if !development {
        tracing::warn!(keys_dir = %store.dir().display(), "no mdoc keys: MSOs cannot be issued until `brevet keys init` or `brevet keys import`");
        return Ok(());
    }
    let authority = AuthorityFile {
        country: "XX".into(),
        state: None,
        iaca_common_name: DEV_IACA_NAME.into(),
        ds_common_name: "Brevet DEVELOPMENT DS".into(),
        contact: "https://brevet.invalid/development".into(),
        crl_url: None,
    };
    store
        .init(&authority, Lifetimes::default())
        .context("cannot create development keys")?;
    tracing::warn!(keys_dir = %store.dir().display(), "created DEVELOPMENT mdoc keys (IACA \"{DEV_IACA_NAME}\"); never use them for real credentials");
    Ok(())
}

/// The attestation roots registerDevice trusts beyond `wallet.attestation.roots`: the
/// simulator's, in development mode only.
pub fn extra_attestation_anchors(config: &Config) -> Vec<[u8; 32]> {
    if !config.trusts_simulator_root() {
        return Vec::new();
    }
    tracing::warn!("registerDevice trusts the simulator's attestation root, whose private key is public: development mode only");
    let root = crate::sim::wallet::android::AttestationRoot::simulator();
    vec![sha2::Sha256::digest(root.der()).into()]
}

/// Says in the log which mode this process runs in; development mode is a warning (standard
/// output stays for the bootstrap token alone).
fn announce_mode(config: &Config) {
    if config.is_development() {
        tracing::warn!(
            mode = "development",
            "*** DEVELOPMENT MODE: the simulator's attestation root is trusted and development keys are created; never issue real credentials in this mode (set BREVET_MODE=production, a database URL or a configuration file) ***"
        );
    } else {
        tracing::info!(mode = "production", "running in production mode");
    }
}

/// `brevet serve`: the HTTP server, until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = http::shutdown_signal();
    announce_mode(&config);
    // Checked before anything else so that a broken doc type file stops the start, not a request.
    let doc_types = load_doc_types(&config)?;
    ensure_keys(&config)?;
    let store = open_store(&config).await?;
    if let Some(token) = crate::service::tokens::bootstrap(&store)
        .await
        .context("cannot create the bootstrap admin token")?
    {
        // Standard output, not the log: the value must reach the operator once and never a log
        // pipeline. Only its existence is logged.
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Bootstrap admin token (shown once; store it now, only its hash is kept):"
        )?;
        writeln!(out, "{}", token.expose())?;
        out.flush()?;
        tracing::warn!("created the bootstrap admin token and printed it on standard output");
    }
    // One stop signal for the listeners and the background tasks alike.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut listeners = Vec::new();
    for (address, surfaces) in http::surfaces::plan(&config) {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        listeners.push((listener, surfaces));
    }
    let mut background = tokio::task::JoinSet::new();
    if config.outbox.dispatch_in_serve {
        match dispatcher(&config, store.clone())? {
            Some(dispatcher) => {
                let poll = Duration::from_millis(config.outbox.poll_interval_ms);
                let stop = stopped();
                background.spawn(async move { dispatcher.run(poll, stop).await });
                tracing::info!("delivering notifications from brevet serve");
            }
            None => tracing::warn!("outbox.dispatch_in_serve is set but google.base_url is not: notifications are disabled"),
        }
        let sweep = challenge_expiry(&config, store.clone());
        let interval = Duration::from_secs(config.wallet.expiry_sweep_secs);
        let stop = stopped();
        background.spawn(async move { sweep.run(interval, stop).await });
    }
    let mut wallet =
        crate::service::WalletContext::load(&config, &extra_attestation_anchors(&config))?;
    // The keys just loaded, with the activation times the replicas agree on through the store.
    crate::service::keys::agree_activations(
        &store,
        &config,
        wallet.keys_mut(),
        std::time::SystemTime::now(),
    )
    .await
    .context("cannot agree the keys' activation times with the store")?;
    crate::service::keys::log_key_set(&wallet.keys());
    if let Some(url) = config.wallet.attestation.status_list_url.clone() {
        let list = wallet.attestation.status_list.clone();
        let every = Duration::from_secs(config.wallet.attestation.status_list_refresh_secs);
        let stop = stopped();
        background.spawn(async move {
            tokio::select! {
                () = list.keep_fresh(url, every) => {}
                () = stop => {}
            }
        });
    }
    if config.google.issuer_id.is_none() {
        tracing::warn!("google.issuer_id is unset: Wallet requests are accepted whatever requestMetadata.issuerId they name");
    }
    // Where verifiers fetch the status lists the MSOs name: the configured URL, or in
    // development mode the public listener just bound.
    let status_base = config.status_list.base_url.clone().or_else(|| {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        listeners
            .iter()
            .find(|(_, surfaces)| surfaces.contains(&http::surfaces::Surface::Public))
            .and_then(|(listener, _)| listener.local_addr().ok())
            .filter(|_| config.is_development())
            .map(|address| {
                let port = address.port();
                let local = address.ip().is_unspecified() || address.ip().is_loopback();
                match (local, scheme) {
                    // A development TLS certificate names localhost, not an address.
                    (true, "https") => format!("https://localhost:{port}"),
                    (true, _) => format!("http://127.0.0.1:{port}"),
                    _ => format!("{scheme}://{address}"),
                }
            })
    });
    wallet.settings.status_lists.base_url = status_base.clone();
    if config.status_lists_used() {
        if let Some(base) = &status_base {
            tracing::info!(%base, "MSOs name their entries in status lists published at {base}/status-lists/<n>");
        }
        if wallet.keys().status_list_signer("").is_none() {
            tracing::warn!("status lists are on but the key directory has no status-list signer: provisionMobileSecurityObjects answers 503 until `brevet keys rotate-status-list` (or `keys import-status-list`)");
        }
    }
    let fixed = crate::pki::expiry::fixed(&config);
    let state = AppState::new(store.clone(), &config)
        .with_doc_types(doc_types)
        .with_wallet(wallet)
        .with_watched_certificates(fixed.clone());
    // Staff's bulk updates, worked on by whichever replica holds each one's lease.
    {
        let stop = stopped();
        let services = state.services.clone();
        let owner = format!("serve-{}", uuid::Uuid::new_v4());
        background.spawn(async move {
            crate::service::bulk_updates::keep_working(
                services,
                owner,
                Duration::from_secs(1),
                stop,
            )
            .await
        });
    }
    // Status list tokens, rebuilt when entries change and before they expire; kept up even when
    // status lists were turned off, for the MSOs that already name one.
    match status_base {
        Some(base) => {
            let stop = stopped();
            let services = state.services.clone();
            let publication = crate::service::status_lists::Publication::from_config(&config, base);
            let owner = format!("serve-{}", uuid::Uuid::new_v4());
            let every = Duration::from_millis(config.status_list.publish_interval_ms);
            background.spawn(async move {
                crate::service::status_lists::keep_publishing(
                    services,
                    publication,
                    owner,
                    every,
                    stop,
                )
                .await
            });
        }
        None => {
            let lists = crate::store::status_lists::list(&mut store.db()).await?;
            if !lists.is_empty() {
                tracing::warn!(lists = lists.len(), "status lists exist but status_list.base_url is unset: their tokens are not kept up to date");
            }
        }
    }
    // Keys reloaded as the key directory changes.
    let wallet = state.services.wallet.clone();
    {
        let stop = stopped();
        let every = Duration::from_secs(config.keys.reload_secs);
        let (config, store, wallet) = (config.clone(), store.clone(), wallet.clone());
        background.spawn(async move {
            crate::service::keys::keep_fresh(config, store, wallet, every, stop).await
        });
    }
    {
        let warnings =
            crate::pki::expiry::ExpiryWarnings::new(config.keys.expiry_warning_days.clone());
        let stop = stopped();
        background.spawn(async move {
            warnings
                .run(&fixed, &wallet, Duration::from_secs(3600), stop)
                .await
        });
    }
    let acceptor = config.tls.as_ref().map(http::tls::acceptor).transpose()?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let limits = http::serve::ConnectionLimits::from_config(&config);
    let mut servers = tokio::task::JoinSet::new();
    for (listener, surfaces) in listeners {
        let address = listener.local_addr()?;
        let names: Vec<&str> = surfaces.iter().map(|s| s.as_str()).collect();
        tracing::info!(%address, surfaces = ?names, "brevet serve listening on {scheme}://{address}");
        if config.console.enabled && surfaces.contains(&http::surfaces::Surface::Admin) {
            tracing::info!(
                "staff console at {scheme}://{address}/console/ (sign in with an admin token)"
            );
        }
        let app = http::build_surfaces(state.clone(), Limits::from_config(&config), &surfaces);
        servers.spawn(http::serve::serve(
            listener,
            app,
            acceptor.clone(),
            limits,
            stopped(),
        ));
    }
    while let Some(result) = servers.join_next().await {
        result
            .context("a listener's task failed")?
            .context("HTTP server failed")?;
    }
    // Every listener has finished; the background tasks saw the same signal.
    while background.join_next().await.is_some() {}
    tracing::info!("brevet serve stopped");
    Ok(())
}

/// The outbox dispatcher for `config`, or `None` when Google is not configured.
pub fn dispatcher(config: &Config, store: SharedStore) -> anyhow::Result<Option<Dispatcher>> {
    let Some(client) = GoogleClient::from_config(&config.google)? else {
        return Ok(None);
    };
    let worker_id = format!(
        "{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let policy = RetryPolicy {
        max_attempts: config.outbox.max_attempts,
        base: Duration::from_millis(config.outbox.backoff_base_ms),
        max: Duration::from_secs(config.outbox.backoff_max_secs),
    };
    let lease = Duration::from_secs(config.outbox.lease_secs);
    Ok(Some(
        Dispatcher::new(store, Arc::new(client), worker_id, lease, policy)
            .with_lanes(config.outbox.lanes)
            .with_batches(config.outbox.claim_batch, config.google.timeout())
            .with_tidy_every(config.outbox.vacuum_every),
    ))
}

/// `brevet worker`: background jobs, until SIGINT or SIGTERM: the outbox's notifications to
/// Google (when `google.base_url` is set) and the certificate-provisioning adapter (when
/// `certprov.enabled` is set), side by side.
pub async fn worker(config: Config) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        http::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let store = open_store(&config).await?;
    let mut tasks = tokio::task::JoinSet::new();
    // One registry for what the worker does: deliveries and the adapter; `/metrics` serves it.
    let metrics = Arc::new(crate::certprov::metrics::AdapterMetrics::new());
    match dispatcher(&config, store.clone())? {
        Some(dispatcher) => {
            let dispatcher = dispatcher.with_observer(metrics.clone());
            tracing::info!(
                google = config.google.base_url.as_deref().unwrap_or_default(),
                "delivering notifications"
            );
            let poll = Duration::from_millis(config.outbox.poll_interval_ms);
            let stop = stopped();
            tasks.spawn(async move { dispatcher.run(poll, stop).await });
        }
        None => tracing::warn!("notifications are disabled because google.base_url is not set"),
    }
    {
        let sweep = challenge_expiry(&config, store.clone());
        let interval = Duration::from_secs(config.wallet.expiry_sweep_secs);
        let stop = stopped();
        tasks.spawn(async move { sweep.run(interval, stop).await });
    }
    if config.certprov.enabled {
        let token = crate::pki::pkcs11::Token::configured(config.keys.pkcs11.as_ref())?;
        let parts =
            crate::certprov::build_with(&config.certprov, store.clone(), token, metrics.clone())
                .context("cannot start the certificate-provisioning adapter")?;
        let poll = Duration::from_millis(config.certprov.poll_interval_ms);
        for intake in parts.intake.into_iter().chain(parts.customer_intakes) {
            let stop = stopped();
            tasks.spawn(async move { intake.run(poll, stop).await });
        }
        let stop = stopped();
        let adapter = parts.adapter;
        tasks.spawn(async move { adapter.run(poll, stop).await });
        tracing::info!("certificate-provisioning adapter started");
    }
    if let Some(address) = config.worker.ops_listen {
        let serve = http::worker_ops::bind(address, store, metrics, stopped())
            .await
            .with_context(|| format!("worker.ops_listen: cannot listen on {address}"))?;
        tasks.spawn(serve);
    }
    tracing::info!("brevet worker started");
    if tasks.is_empty() {
        stopped().await;
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!("brevet worker stopped");
    Ok(())
}

/// The sweep that expires unanswered proofing challenges.
fn challenge_expiry(
    config: &Config,
    store: SharedStore,
) -> crate::challenge_expiry::ChallengeExpiry {
    crate::challenge_expiry::ChallengeExpiry::new(
        store,
        crate::clock::Clock::system(),
        Duration::from_secs(u64::from(config.wallet.challenge_expiry_days) * 86_400),
    )
}

/// Arguments of `brevet google check`.
#[derive(Debug, Clone, clap::Args)]
pub struct GoogleCheckArgs {
    /// The clientMessage to send (Google echoes it).
    #[arg(long, default_value = "brevet onboarding check")]
    pub message: String,
}

/// `brevet google check`: Google's healthCheck with the configured base URL, issuer id, API
/// version and mutual-TLS identity; prints what answered and fails with Google's reason.
pub async fn google_check(config: &Config, args: &GoogleCheckArgs) -> anyhow::Result<()> {
    let client = GoogleClient::from_config(&config.google)?.context(
        "google.base_url and google.issuer_id must be set (BREVET_GOOGLE__BASE_URL, BREVET_GOOGLE__ISSUER_ID)",
    )?;
    let echoed = client
        .health_check(&args.message)
        .await
        .map_err(|e| anyhow::anyhow!("Google's healthCheck failed: {e}"))?;
    println!(
        "healthCheck ok: {} answered for issuer {} (API version {}), clientMessage {echoed:?} echoed",
        config.google.base_url.as_deref().unwrap_or_default(),
        config.google.issuer_id.as_deref().unwrap_or_default(),
        client.version()
    );
    Ok(())
}

/// `brevet migrate`: apply pending migrations and exit.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    crate::progress::step(&format!(
        "applying migrations to {} (a large store may take a while; nothing is lost if stopped)",
        config.effective_database_url()
    ));
    let store = open_store(&config).await?;
    let tables = store::schema::table_names(&mut store.db()).await?;
    let applied = store::schema::applied_migrations(&mut store.db()).await?;
    tracing::info!(
        tables = tables.len(),
        version = applied.last().copied().unwrap_or(0),
        "migrations are up to date"
    );
    crate::progress::step(&format!(
        "done: schema at version {}",
        applied.last().copied().unwrap_or(0)
    ));
    Ok(())
}
