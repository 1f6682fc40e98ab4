//! Pre-authorized codes: one-time codes staff hand a holder so that their proofing is accepted
//! for a given record at once. Only the code's SHA-256 is stored.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sql::{query, Exec};
use super::StoreError;
use crate::protocol::ids::ProofingId;

/// Stores a code for a record.
pub async fn insert(
    ex: &mut impl Exec,
    code_sha256: &[u8; 32],
    credential_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    ex.execute(
        query("insert into pre_authorized_codes (code_sha256, credential_id, expires_at) values ($1, $2, $3)")
            .bind(code_sha256.as_slice())
            .bind(credential_id)
            .bind(expires_at),
    )
    .await?;
    Ok(())
}

/// Uses up the code for `proofing` if it is unused and unexpired at `now`, and returns its
/// record; a code already used by this same proofing returns its record again (Google retries).
pub async fn redeem(
    ex: &mut impl Exec,
    code_sha256: &[u8; 32],
    proofing: &ProofingId,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let row = ex
        .fetch_optional(
            query(
                "update pre_authorized_codes set used_by_proofing = $2, updated_at = %now%
                 where code_sha256 = $1 and expires_at > $3
                   and (used_by_proofing is null or used_by_proofing = $2)
                 returning credential_id",
            )
            .bind(code_sha256.as_slice())
            .bind(proofing.as_str())
            .bind(now),
        )
        .await?;
    row.map(|r| r.uuid("credential_id")).transpose()
}
