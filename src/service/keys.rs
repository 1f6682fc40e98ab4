//! Live key sets: `brevet serve` reloads its keys from the key directory (or token) while it runs,
//! and every replica agrees through the store on when each key starts to be used, so that a
//! rotation needs no restart and all replicas switch at the same instant.
//!
//! A new Wallet identity or hybrid key is published (getIdentityKey lists it) for
//! `keys.publish_delay_secs` before it signs or is advertised for encryption, since Google caches
//! the issuer's keys; the first key of a kind is used at once. A new DS signs at once, or at the
//! time `brevet keys rotate-ds --at` scheduled.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use x509_cert::der::Encode;

use super::wallet::{DocumentSignerKey, KeySet, WalletContext};
use crate::config::Config;
use crate::pki::keystore::KeyStore;
use crate::store::{key_activations, Store};

fn fingerprint(cert: &x509_cert::Certificate) -> String {
    hex::encode(Sha256::digest(cert.to_der().unwrap_or_default()))
}

/// Records (or reads) the activation time of every key in `set` and sets it on the key. A DS's
/// proposed time is its schedule (`keys rotate-ds --at`), read from its key directory.
pub async fn agree_activations(
    store: &Store,
    config: &Config,
    set: &mut KeySet,
    now: SystemTime,
) -> anyhow::Result<()> {
    let publish_delay = Duration::from_secs(config.keys.publish_delay_secs);
    let at = |t: SystemTime| DateTime::<Utc>::from(t);
    let mut db = store.db();
    // A key among others waits out the delay; the only one of its kind is used at once.
    let proposal = |count: usize| {
        if count > 1 {
            at(now + publish_delay)
        } else {
            at(now)
        }
    };
    if let Some(wallet) = set.keys.as_mut() {
        let count = wallet.identity.len();
        for key in &mut wallet.identity {
            let agreed = key_activations::agree(
                &mut db,
                "identity",
                &fingerprint(&key.certificate),
                key.number,
                proposal(count),
            )
            .await?;
            key.activate_at = Some(agreed.into());
        }
        let count = wallet.hybrid.len();
        for key in &mut wallet.hybrid {
            let agreed = key_activations::agree(
                &mut db,
                "hybrid",
                &fingerprint(&key.certificate),
                key.number,
                proposal(count),
            )
            .await?;
            key.activate_at = Some(agreed.into());
        }
    }
    // Schedules are files beside the certificates: the directories alone, no token, tell them.
    let mut lists: Vec<(KeyStore, &mut Vec<DocumentSignerKey>)> = vec![(
        KeyStore::new(config.effective_keys_dir()),
        &mut set.document_signers,
    )];
    for (doc_type, signers) in &mut set.doc_type_signers {
        if let Some(own) = config.keys.doc_type.get(doc_type) {
            lists.push((KeyStore::new(&own.keys_dir), signers));
        }
    }
    for (dir, signers) in lists {
        for ds in signers.iter_mut() {
            let proposed = dir.ds_scheduled_at(ds.number)?.unwrap_or(now);
            let agreed = key_activations::agree(
                &mut db,
                "ds",
                &fingerprint(&ds.certificate),
                ds.number,
                at(proposed),
            )
            .await?;
            ds.activate_at = Some(agreed.into());
        }
    }
    Ok(())
}

/// What a key set holds, for comparing two and for the log: kind, number, activation.
pub fn summary(set: &KeySet) -> Vec<(&'static str, u32, Option<DateTime<Utc>>)> {
    let mut out = Vec::new();
    for ds in set
        .document_signers
        .iter()
        .chain(set.doc_type_signers.values().flatten())
    {
        out.push(("ds", ds.number, ds.activate_at.map(DateTime::from)));
    }
    if let Some(wallet) = &set.keys {
        for key in &wallet.identity {
            out.push(("identity", key.number, key.activate_at.map(DateTime::from)));
        }
        for key in &wallet.hybrid {
            out.push(("hybrid", key.number, key.activate_at.map(DateTime::from)));
        }
    }
    out
}

/// Logs every key of `set` and when it is used from.
pub fn log_key_set(set: &KeySet) {
    for (kind, number, activate_at) in summary(set) {
        let from = activate_at.map_or_else(
            || "at once".to_owned(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        tracing::info!(key.kind = kind, key.number = number, key.activate_at = %from, "key in force");
    }
}

/// Loads the key set `config` names, agrees its activations and puts it in force when it differs
/// from the one in force; returns whether it changed.
pub async fn reload(
    config: &Config,
    store: &Store,
    wallet: &WalletContext,
    now: SystemTime,
) -> anyhow::Result<bool> {
    let owned = config.clone();
    // Reading files and asking a token block: off the async threads.
    let mut set = tokio::task::spawn_blocking(move || KeySet::load(&owned)).await??;
    agree_activations(store, config, &mut set, now).await?;
    let changed = summary(&set) != summary(&wallet.keys());
    if changed {
        log_key_set(&set);
        wallet.replace_keys(set);
    }
    Ok(changed)
}

/// Reloads every `every` until `stop` resolves; a failed reload keeps the keys in force and is
/// logged.
pub async fn keep_fresh(
    config: Config,
    store: crate::store::SharedStore,
    wallet: Arc<WalletContext>,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut stop => return,
        }
        match reload(&config, &store, &wallet, SystemTime::now()).await {
            Ok(true) => tracing::info!("key set reloaded"),
            Ok(false) => {}
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "cannot reload the keys; the ones in force stay"
                )
            }
        }
    }
}
