//! When each issuer key is first used (`key_activations`): recorded by the first replica that
//! sees the key, read by all.

use chrono::{DateTime, Utc};

use super::sql::{query, Exec};
use super::StoreError;

/// The activation time of the key of `kind` whose certificate hashes to `certificate_sha256`;
/// when none is recorded yet, `proposed` is stored and returned. Replicas racing here all get the
/// one stored first.
pub async fn agree(
    ex: &mut impl Exec,
    kind: &str,
    certificate_sha256: &str,
    number: u32,
    proposed: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    ex.execute(
        query(
            "insert into key_activations (kind, certificate_sha256, number, activate_at)
             values ($1, $2, $3, $4) on conflict (kind, certificate_sha256) do nothing",
        )
        .bind(kind)
        .bind(certificate_sha256)
        .bind(i32::try_from(number).unwrap_or(i32::MAX))
        .bind(proposed),
    )
    .await?;
    let row = ex
        .fetch_optional(
            query(
                "select activate_at from key_activations where kind = $1 and certificate_sha256 = $2",
            )
            .bind(kind)
            .bind(certificate_sha256),
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("activation of {kind} key vanished")))?;
    row.time("activate_at")
}
