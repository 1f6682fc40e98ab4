//! Revoking a certificate a built-in device CA issued: recorded with its reason and audited in
//! one transaction; the worker's next CRL lists it.

use x509_cert::ext::pkix::CrlReason;

use crate::certprov::wire::Process;
use crate::clock::Clock;
use crate::store::revocations::{self, Revocation};
use crate::store::{audit, cert_processes, Provenance, Store, StoreError};

/// The reasons staff may give (RFC 5280 CRLReason names) and the codes the CRL carries.
pub const REASONS: [(&str, CrlReason); 6] = [
    ("unspecified", CrlReason::Unspecified),
    ("keyCompromise", CrlReason::KeyCompromise),
    ("affiliationChanged", CrlReason::AffiliationChanged),
    ("superseded", CrlReason::Superseded),
    ("cessationOfOperation", CrlReason::CessationOfOperation),
    ("privilegeWithdrawn", CrlReason::PrivilegeWithdrawn),
];

/// The CRLReason of a reason name, if staff may give it.
pub fn crl_reason(name: &str) -> Option<CrlReason> {
    REASONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, code)| *code)
}

/// Why a certificate cannot be revoked here.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// No process (left) holds a certificate with that serial.
    #[error("no certificate with serial {0} is known (finished processes are purged after certprov.retention_days)")]
    Unknown(String),
    /// It came from a CA that publishes its own revocations.
    #[error("certificate {serial} was issued through CA connection {connection:?}, which is not a built-in CA; revoke it at that CA")]
    NotBuiltin {
        /// The serial.
        serial: String,
        /// Its CA connection.
        connection: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Revokes the certificate with `serial` if a built-in CA (`is_builtin` says which connections
/// are) issued it; revoking it again returns the first revocation unchanged.
pub async fn revoke(
    store: &Store,
    clock: &Clock,
    serial: &str,
    reason: &str,
    is_builtin: impl Fn(&str) -> bool,
    by: Provenance<'_>,
) -> Result<(Revocation, bool), RevokeError> {
    let serial = serial.to_ascii_uppercase();
    let process = cert_processes::by_serial(&mut store.db(), &serial)
        .await?
        .ok_or_else(|| RevokeError::Unknown(serial.clone()))?;
    let reference = process
        .process
        .and_then(|p| serde_json::from_value::<Process>(p).ok())
        .and_then(|p| p.ca_reference().map(str::to_owned))
        .unwrap_or_default();
    // A customer's own connection of that reference is the one the adapter used.
    let own = format!("{}:{reference}", process.customer_id);
    let connection = if is_builtin(&own) { own } else { reference };
    if !is_builtin(&connection) {
        return Err(RevokeError::NotBuiltin { serial, connection });
    }
    let now = clock.now();
    let mut tx = store.begin().await?;
    let (standing, new) = revocations::revoke(
        &mut tx,
        &Revocation {
            ca_connection: connection,
            serial: serial.clone(),
            reason: reason.to_owned(),
            revoked_at: now,
        },
    )
    .await?;
    if new {
        audit::insert(
            &mut tx,
            &by.entry("device_certificate.revoke", "device_certificate", &serial),
        )
        .await?;
    }
    tx.commit().await?;
    Ok((standing, new))
}
