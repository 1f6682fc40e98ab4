//! Revocations of certificates the built-in device CAs issued, and the CRLs the worker signs
//! from them for `brevet serve` to publish.

use chrono::{DateTime, Utc};

use super::sql::{query, Exec, Row};
use super::StoreError;

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The issuing CA connection.
    pub ca_connection: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// RFC 5280 CRLReason name.
    pub reason: String,
    /// When.
    pub revoked_at: DateTime<Utc>,
}

/// A signed CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCrl {
    /// DER `CertificateList`.
    pub der: Vec<u8>,
    /// Its thisUpdate.
    pub this_update: DateTime<Utc>,
    /// Its nextUpdate.
    pub next_update: DateTime<Utc>,
}

fn read(row: &Row) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        ca_connection: row.text("ca_connection")?,
        serial: row.text("serial")?,
        reason: row.text("reason")?,
        revoked_at: row.time("revoked_at")?,
    })
}

/// Records `revocation` unless that serial is already revoked; returns the one that stands and
/// whether it is new.
pub async fn revoke(
    ex: &mut impl Exec,
    revocation: &Revocation,
) -> Result<(Revocation, bool), StoreError> {
    let inserted = ex
        .execute(
            query(
                "insert into device_revocations (ca_connection, serial, reason, revoked_at)
             values ($1, $2, $3, $4) on conflict (ca_connection, serial) do nothing",
            )
            .bind(revocation.ca_connection.as_str())
            .bind(revocation.serial.as_str())
            .bind(revocation.reason.as_str())
            .bind(revocation.revoked_at),
        )
        .await?;
    let row = ex
        .fetch_optional(
            query(
                "select ca_connection, serial, reason, revoked_at from device_revocations
                 where ca_connection = $1 and serial = $2",
            )
            .bind(revocation.ca_connection.as_str())
            .bind(revocation.serial.as_str()),
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a revocation vanished".into()))?;
    Ok((read(&row)?, inserted == 1))
}

/// Every revocation of `ca_connection`, oldest first.
pub async fn list(ex: &mut impl Exec, ca_connection: &str) -> Result<Vec<Revocation>, StoreError> {
    let rows = ex
        .fetch_all(
            query(
                "select ca_connection, serial, reason, revoked_at from device_revocations
                 where ca_connection = $1 order by revoked_at, serial",
            )
            .bind(ca_connection),
        )
        .await?;
    rows.iter().map(read).collect()
}

/// Replaces `ca_connection`'s published CRL.
pub async fn publish_crl(
    ex: &mut impl Exec,
    ca_connection: &str,
    crl: &StoredCrl,
) -> Result<(), StoreError> {
    ex.execute(
        query(
            "insert into device_crls (ca_connection, der, this_update, next_update) values ($1, $2, $3, $4)
             on conflict (ca_connection) do update set der = excluded.der, this_update = excluded.this_update,
                 next_update = excluded.next_update, updated_at = %now%",
        )
        .bind(ca_connection)
        .bind(crl.der.as_slice())
        .bind(crl.this_update)
        .bind(crl.next_update),
    )
    .await?;
    Ok(())
}

/// `ca_connection`'s published CRL, if any.
pub async fn crl(ex: &mut impl Exec, ca_connection: &str) -> Result<Option<StoredCrl>, StoreError> {
    let row = ex
        .fetch_optional(
            query("select der, this_update, next_update from device_crls where ca_connection = $1")
                .bind(ca_connection),
        )
        .await?;
    row.map(|row| {
        Ok(StoredCrl {
            der: row.bytes("der")?,
            this_update: row.time("this_update")?,
            next_update: row.time("next_update")?,
        })
    })
    .transpose()
}
