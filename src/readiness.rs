//! Readiness: the checks `/readyz` runs before it says a process may take traffic. Each check is a
//! [`Probe`]; `brevet serve` runs the standard ones (store, migrations, mdoc and Wallet keys) and
//! any a later component adds, so that "ready" means every one of them passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::service::WalletContext;
use crate::store::Store;

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One thing that must hold for the process to be ready.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// Short, stable name shown on `/readyz` (`store`, `migrations`, …).
    fn name(&self) -> &'static str;
    /// `Ok(detail)` when it holds; `Err(why)` naming what is wrong and what fixes it.
    async fn check(&self) -> Result<String, String>;
}

/// The outcome of one probe, as `/readyz` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckResult {
    /// The probe's name.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found, or what is wrong.
    pub detail: String,
}

/// Runs every probe (each within [`CHECK_TIMEOUT`], all at once) and returns their results in
/// the probes' order.
pub async fn run(probes: &[Arc<dyn Probe>]) -> Vec<CheckResult> {
    let checks = probes.iter().map(|probe| async move {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, probe.check()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        };
        let (ok, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(why) => (false, why),
        };
        CheckResult {
            name: probe.name(),
            ok,
            detail,
        }
    });
    futures::future::join_all(checks).await
}

/// The probes every `brevet serve` runs; key validity is judged by `clock`.
pub fn standard(store: &Store, wallet: &Arc<WalletContext>, clock: &Clock) -> Vec<Arc<dyn Probe>> {
    vec![
        Arc::new(StoreReachable(store.clone())),
        Arc::new(MigrationsCurrent(store.clone())),
        Arc::new(MdocKeys(wallet.clone(), clock.clone())),
        Arc::new(WalletKeys(wallet.clone(), clock.clone())),
    ]
}

/// An activation time as RFC 3339 (seconds).
fn stamp(at: Option<std::time::SystemTime>) -> String {
    at.map(chrono::DateTime::<chrono::Utc>::from)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Whether `cert` is within its validity at `now`.
fn valid_at(cert: &x509_cert::Certificate, now: std::time::SystemTime) -> bool {
    let validity = &cert.tbs_certificate.validity;
    validity.not_before.to_system_time() <= now && now <= validity.not_after.to_system_time()
}

/// The store answers a query.
struct StoreReachable(Store);

#[async_trait::async_trait]
impl Probe for StoreReachable {
    fn name(&self) -> &'static str {
        "store"
    }
    async fn check(&self) -> Result<String, String> {
        let started = Instant::now();
        self.0.ping().await.map_err(|e| e.to_string())?;
        Ok(format!(
            "{} answered in {} ms",
            self.0.backend().as_str(),
            started.elapsed().as_millis()
        ))
    }
}

/// The store's schema is the one this binary was built for: every migration it carries applied,
/// none it does not know of.
struct MigrationsCurrent(Store);

#[async_trait::async_trait]
impl Probe for MigrationsCurrent {
    fn name(&self) -> &'static str {
        "migrations"
    }
    async fn check(&self) -> Result<String, String> {
        let applied = crate::store::schema::applied_migrations(&mut self.0.db())
            .await
            .map_err(|e| format!("cannot read the applied migrations: {e}"))?;
        let expected = crate::store::connect::expected_migrations(self.0.backend());
        judge_migrations(&applied, &expected)
    }
}

/// Compares applied migration versions with the ones this binary carries.
pub fn judge_migrations(applied: &[i64], expected: &[i64]) -> Result<String, String> {
    let missing: Vec<i64> = expected
        .iter()
        .filter(|v| !applied.contains(v))
        .copied()
        .collect();
    let unknown: Vec<i64> = applied
        .iter()
        .filter(|v| !expected.contains(v))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "migrations {missing:?} are not applied: run `brevet migrate`"
        ));
    }
    if !unknown.is_empty() {
        return Err(format!(
            "the store has migrations {unknown:?} this binary does not know: a newer Brevet migrated it; run that version"
        ));
    }
    Ok(format!("{} of {} applied", applied.len(), expected.len()))
}

/// A document signer is loaded and valid, so MSOs can be issued.
struct MdocKeys(Arc<WalletContext>, Clock);

#[async_trait::async_trait]
impl Probe for MdocKeys {
    fn name(&self) -> &'static str {
        "mdoc_keys"
    }
    async fn check(&self) -> Result<String, String> {
        let set = self.0.keys();
        match set.document_signer(self.1.system_time()) {
            Some(ds) if !valid_at(&ds.certificate, self.1.system_time()) => Err(format!(
                "document signer {:04} is not valid now (valid {} .. {}): run `brevet keys rotate-ds` and restart",
                ds.number,
                ds.certificate.tbs_certificate.validity.not_before,
                ds.certificate.tbs_certificate.validity.not_after
            )),
            Some(ds) => {
                let now = self.1.system_time();
                let mut detail = format!("document signer {:04} loaded", ds.number);
                for next in set.document_signers.iter().filter(|d| d.activate_at.is_some_and(|at| at > now)) {
                    detail.push_str(&format!("; {:04} signs from {}", next.number, stamp(next.activate_at)));
                }
                for doc_type in set.doc_type_signers.keys() {
                    match set.document_signer_for(doc_type, now) {
                        Some(own) if valid_at(&own.certificate, now) => {
                            detail.push_str(&format!("; {doc_type}: document signer {:04}", own.number));
                        }
                        _ => {
                            return Err(format!(
                                "no valid document signer for {doc_type} in its key directory (keys.doc_type): rotate it there"
                            ))
                        }
                    }
                }
                Ok(detail)
            }
            None => Err(
                "no document signer: run `brevet keys init` (or `keys import`) and restart".into(),
            ),
        }
    }
}

/// Valid Wallet identity and hybrid-encryption keys are loaded, so Wallet answers can be signed
/// and encrypted.
struct WalletKeys(Arc<WalletContext>, Clock);

#[async_trait::async_trait]
impl Probe for WalletKeys {
    fn name(&self) -> &'static str {
        "wallet_keys"
    }
    async fn check(&self) -> Result<String, String> {
        let now = self.1.system_time();
        let set = self.0.keys();
        match &set.keys {
            Some(keys) if !keys.identity.iter().any(|k| valid_at(&k.certificate, now)) => Err(
                "every Wallet identity key has expired: run `brevet keys rotate-identity` and restart".into(),
            ),
            Some(keys) if !keys.hybrid.iter().any(|k| valid_at(&k.certificate, now)) => Err(
                "every Wallet hybrid-encryption key has expired: run `brevet keys rotate-hybrid` and restart".into(),
            ),
            Some(keys) => {
                let (Some(identity), Some(hybrid)) = (keys.active_identity(now), keys.active_hybrid(now)) else {
                    return Err("no Wallet identity or hybrid-encryption key in force".into());
                };
                let mut detail = format!(
                    "identity {:04} signs, hybrid {:04} advertised",
                    identity.number, hybrid.number
                );
                for key in keys.identity.iter().filter(|k| k.activate_at.is_some_and(|at| at > now)) {
                    detail.push_str(&format!("; identity {:04} published, signs from {}", key.number, stamp(key.activate_at)));
                }
                for key in keys.hybrid.iter().filter(|k| k.activate_at.is_some_and(|at| at > now)) {
                    detail.push_str(&format!("; hybrid {:04} advertised from {}", key.number, stamp(key.activate_at)));
                }
                Ok(detail)
            }
            None => Err(
                "no Wallet identity or hybrid-encryption key: run `brevet keys init` (or `keys import`) and restart".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::judge_migrations;

    #[test]
    fn migrations_are_judged_both_ways() {
        assert_eq!(
            judge_migrations(&[1, 2], &[1, 2]).unwrap(),
            "2 of 2 applied"
        );
        assert!(judge_migrations(&[1], &[1, 2])
            .unwrap_err()
            .contains("[2] are not applied"));
        assert!(judge_migrations(&[1, 2, 3], &[1, 2])
            .unwrap_err()
            .contains("newer Brevet"));
    }
}
