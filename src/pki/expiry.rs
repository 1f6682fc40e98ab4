//! Expiry of the certificates a process uses: listed once at start (IACA, DS, Wallet identity and
//! hybrid keys, built-in device CAs, the TLS server certificate), exported as seconds-to-expiry
//! gauges, warned about in the log as each configured threshold is crossed, and judged by
//! `/readyz` (no valid DS or identity key left: not ready).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use x509_cert::Certificate;

use super::certs;
use crate::config::Config;
use crate::service::wallet::KeySet;
use crate::service::WalletContext;

/// One certificate whose expiry is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// What it is: `iaca`, `ds`, `identity`, `hybrid`, `device_ca`, `tls`.
    pub role: &'static str,
    /// Which one: its number, CA connection name, or `server`.
    pub id: String,
    /// Its notAfter.
    pub not_after: SystemTime,
}

impl Watched {
    fn of(role: &'static str, id: impl Into<String>, cert: &Certificate) -> Self {
        Self {
            role,
            id: id.into(),
            not_after: cert.tbs_certificate.validity.not_after.to_system_time(),
        }
    }

    /// Seconds from `now` to expiry; negative once expired.
    pub fn seconds_left(&self, now: SystemTime) -> i64 {
        match self.not_after.duration_since(now) {
            Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }
}

fn first_pem_certificate(path: &Path) -> Option<Certificate> {
    let pem = std::fs::read_to_string(path).ok()?;
    certs::from_pem(&pem).ok()
}

/// The certificates `config` and the loaded Wallet keys put in use.
pub fn in_use(config: &Config, wallet: &WalletContext) -> Vec<Watched> {
    let mut watched = fixed(config);
    watched.extend(of_key_set(&wallet.keys()));
    watched
}

/// The certificates of a key set (DS, identity, hybrid), which change when keys are reloaded.
pub fn of_key_set(set: &KeySet) -> Vec<Watched> {
    let mut watched = Vec::new();
    for ds in &set.document_signers {
        watched.push(Watched::of(
            "ds",
            format!("{:04}", ds.number),
            &ds.certificate,
        ));
    }
    for (doc_type, signers) in &set.doc_type_signers {
        for ds in signers {
            watched.push(Watched::of(
                "ds",
                format!("{doc_type}/{:04}", ds.number),
                &ds.certificate,
            ));
        }
    }
    for (scope, signers) in &set.status_list_signers {
        for signer in signers {
            let name = if scope.is_empty() {
                format!("{:04}", signer.number)
            } else {
                format!("{scope}/{:04}", signer.number)
            };
            watched.push(Watched::of("status-list", name, &signer.certificate));
        }
    }
    if let Some(keys) = &set.keys {
        for key in &keys.identity {
            watched.push(Watched::of(
                "identity",
                format!("{:04}", key.number),
                &key.certificate,
            ));
        }
        for key in &keys.hybrid {
            watched.push(Watched::of(
                "hybrid",
                format!("{:04}", key.number),
                &key.certificate,
            ));
        }
    }
    watched
}

/// The certificates that stay for the life of the process: the IACA, built-in device CAs and the
/// TLS server certificate.
pub fn fixed(config: &Config) -> Vec<Watched> {
    let mut watched = Vec::new();
    let keys = super::keystore::KeyStore::new(config.effective_keys_dir());
    if let Ok(iaca) = keys.iaca_certificate() {
        watched.push(Watched::of("iaca", "iaca", &iaca));
    }
    for (doc_type, own) in &config.keys.doc_type {
        if let Ok(iaca) = super::keystore::KeyStore::new(&own.keys_dir).iaca_certificate() {
            watched.push(Watched::of("iaca", doc_type.clone(), &iaca));
        }
    }
    for (name, path) in crate::certprov::builtin_ca_certificates(&config.certprov) {
        if let Some(cert) = first_pem_certificate(&path) {
            watched.push(Watched::of("device_ca", name, &cert));
        }
    }
    if let Some(tls) = &config.tls {
        if let Some(cert) = first_pem_certificate(&tls.certificate) {
            watched.push(Watched::of("tls", "server", &cert));
        }
    }
    watched
}

/// Logs a warning each time a watched certificate crosses one of the thresholds (days before
/// expiry), once per certificate and threshold in the life of the process.
pub struct ExpiryWarnings {
    thresholds: Vec<u32>,
    /// The smallest threshold already warned about, per certificate.
    warned: Mutex<BTreeMap<(&'static str, String), u32>>,
}

impl ExpiryWarnings {
    /// Warnings at `thresholds` days before expiry.
    pub fn new(mut thresholds: Vec<u32>) -> Self {
        thresholds.sort_unstable();
        thresholds.dedup();
        Self {
            thresholds,
            warned: Mutex::new(BTreeMap::new()),
        }
    }

    /// Warns about what crossed a threshold since the last look; returns how many warnings.
    pub fn check(&self, watched: &[Watched], now: SystemTime) -> usize {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let mut count = 0;
        for cert in watched {
            let left = cert.seconds_left(now);
            let days = left.div_euclid(86_400);
            // The smallest threshold this certificate is within.
            let Some(&threshold) = self.thresholds.iter().find(|t| days < i64::from(**t)) else {
                continue;
            };
            let key = (cert.role, cert.id.clone());
            if warned.get(&key).is_some_and(|w| *w <= threshold) {
                continue;
            }
            warned.insert(key, threshold);
            count += 1;
            if left < 0 {
                tracing::error!(certificate.role = cert.role, certificate.id = %cert.id, "certificate EXPIRED; rotate it (docs/KEYS.md)");
            } else {
                tracing::warn!(certificate.role = cert.role, certificate.id = %cert.id, days_left = days, threshold_days = threshold, "certificate expires soon; rotate it (docs/KEYS.md)");
            }
        }
        count
    }

    /// Looks every `every` until `stop` resolves, at `fixed` and at the key set in force.
    pub async fn run(
        &self,
        fixed: &[Watched],
        wallet: &WalletContext,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let mut watched = fixed.to_vec();
            watched.extend(of_key_set(&wallet.keys()));
            self.check(&watched, SystemTime::now());
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = &mut stop => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(role: &'static str, days: u64, now: SystemTime) -> Watched {
        Watched {
            role,
            id: "0001".into(),
            not_after: now + Duration::from_secs(days * 86_400 + 3600),
        }
    }

    #[test]
    fn each_threshold_is_warned_about_once() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let warnings = ExpiryWarnings::new(vec![30, 7, 1]);
        let ds = cert("ds", 20, now);
        assert_eq!(warnings.check(std::slice::from_ref(&ds), now), 1);
        assert_eq!(warnings.check(std::slice::from_ref(&ds), now), 0, "once");
        let later = now + Duration::from_secs(14 * 86_400);
        assert_eq!(
            warnings.check(std::slice::from_ref(&ds), later),
            1,
            "7 days"
        );
        let fine = cert("iaca", 400, now);
        assert_eq!(warnings.check(&[fine], now), 0);
        assert_eq!(ds.seconds_left(now), 20 * 86_400 + 3600);
        assert!(ds.seconds_left(now + Duration::from_secs(30 * 86_400)) < 0);
    }
}
