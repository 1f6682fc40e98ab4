//! Credential records and their immutable versions.

use uuid::Uuid;

use super::sql::{insert_rows, query, Exec, Row};
use super::{parse_stored, StoreError};
use crate::domain::credential::{CredentialRecord, CredentialStatus, CredentialVersion};

/// Which credential records to list.
#[derive(Debug, Clone, Default)]
pub struct CredentialFilter {
    /// Only records in this status.
    pub status: Option<CredentialStatus>,
    /// Only records of this doc type.
    pub doc_type: Option<String>,
    /// Only records created after this one (the cursor).
    pub after: Option<Uuid>,
    /// At most this many.
    pub limit: u32,
}

/// A version to write.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    /// The credentialVersionId (UUIDv7).
    pub credential_version_id: Uuid,
    /// The record.
    pub credential_id: Uuid,
    /// 1 for the first.
    pub version_number: i32,
    /// Its holder data.
    pub holder_data: &'a serde_json::Value,
    /// The admin token that wrote it, when a person did.
    pub created_by: Option<Uuid>,
}

const COLUMNS: &str = "credential_id, doc_type, status, status_reason, current_version_id, \
     current_version_number, holder_data, reverification_requested_at, created_at, updated_at";

fn read(row: &Row) -> Result<CredentialRecord, StoreError> {
    Ok(CredentialRecord {
        credential_id: row.uuid("credential_id")?,
        doc_type: row.text("doc_type")?,
        status: parse_stored("credentials.status", &row.text("status")?)?,
        status_reason: row.opt_text("status_reason")?,
        current_version_id: row
            .opt_uuid("current_version_id")?
            .ok_or_else(|| StoreError::Corrupt("credential without a version".into()))?,
        current_version_number: row.int32("current_version_number")?,
        holder_data: row.json("holder_data")?,
        reverification_requested_at: row.opt_time("reverification_requested_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// Inserts an active record whose current version is `first` (the version row is
/// [`insert_version`]'s).
pub async fn insert(
    ex: &mut impl Exec,
    doc_type: &str,
    first: &NewVersion<'_>,
) -> Result<(), StoreError> {
    ex.execute(
        query(
            "insert into credentials (credential_id, doc_type, status, current_version_id, current_version_number, holder_data)
             values ($1, $2, 'active', $3, 1, $4)",
        )
        .bind(first.credential_id)
        .bind(doc_type)
        .bind(first.credential_version_id)
        .bind(first.holder_data),
    )
    .await?;
    Ok(())
}

/// Inserts a version.
pub async fn insert_version(
    ex: &mut impl Exec,
    version: &NewVersion<'_>,
) -> Result<(), StoreError> {
    insert_versions(ex, std::slice::from_ref(version)).await
}

/// Inserts versions in one statement.
pub async fn insert_versions(
    ex: &mut impl Exec,
    versions: &[NewVersion<'_>],
) -> Result<(), StoreError> {
    insert_rows(
        ex,
        "insert into credential_versions (credential_version_id, credential_id, version_number, holder_data, created_by) values ",
        versions,
        |q, version| {
            vec![
                q.push_param(version.credential_version_id),
                q.push_param(version.credential_id),
                q.push_param(version.version_number),
                q.push_param(version.holder_data),
                q.push_param(version.created_by),
            ]
        },
    )
    .await
}

/// The records among `ids`, each row locked until the transaction ends, in id order (so that
/// two transactions locking overlapping sets take the locks in the same order and cannot
/// deadlock). Ids with no record are left out.
pub async fn lock_all(
    tx: &mut impl Exec,
    ids: &[Uuid],
) -> Result<Vec<CredentialRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = query(format!(
        "select {COLUMNS} from credentials where credential_id in "
    ));
    q.push_list(ids.iter().copied());
    q.push_sql(" order by credential_id%for_update%");
    let rows = tx.fetch_all(q).await?;
    rows.iter().map(read).collect()
}

/// The record's status and current version number, the row locked until the transaction ends.
pub async fn lock(
    tx: &mut impl Exec,
    credential_id: Uuid,
) -> Result<Option<(CredentialStatus, i32)>, StoreError> {
    let row = tx
        .fetch_optional(
            query("select status, current_version_number from credentials where credential_id = $1%for_update%")
                .bind(credential_id),
        )
        .await?;
    row.map(|r| {
        Ok((
            parse_stored("credentials.status", &r.text("status")?)?,
            r.int32("current_version_number")?,
        ))
    })
    .transpose()
}

/// Makes each of `versions` (already inserted) its record's current one, in one statement.
pub async fn set_current(
    ex: &mut impl Exec,
    versions: &[NewVersion<'_>],
) -> Result<(), StoreError> {
    if versions.is_empty() {
        return Ok(());
    }
    let mut q = query(
        "update credentials set current_version_id = v.credential_version_id,
             current_version_number = v.version_number, holder_data = v.holder_data, updated_at = %now%
         from credential_versions v
         where credentials.credential_id = v.credential_id and v.credential_version_id in ",
    );
    q.push_list(versions.iter().map(|v| v.credential_version_id));
    ex.execute(q).await?;
    Ok(())
}

/// Sets the record's status and the reason for it.
pub async fn set_status(
    ex: &mut impl Exec,
    credential_id: Uuid,
    status: CredentialStatus,
    reason: &str,
) -> Result<(), StoreError> {
    ex.execute(
        query("update credentials set status = $2, status_reason = $3, updated_at = %now% where credential_id = $1")
            .bind(credential_id)
            .bind(status.as_str())
            .bind(reason),
    )
    .await?;
    Ok(())
}

/// Records that staff asked the holder to verify their identity again.
pub async fn request_reverification(
    ex: &mut impl Exec,
    credential_id: Uuid,
) -> Result<(), StoreError> {
    ex.execute(
        query("update credentials set reverification_requested_at = %now%, updated_at = %now% where credential_id = $1")
            .bind(credential_id),
    )
    .await?;
    Ok(())
}

/// Closes an open reverification request; false when none was open.
pub async fn answer_reverification(
    ex: &mut impl Exec,
    credential_id: Uuid,
) -> Result<bool, StoreError> {
    let answered = ex
        .execute(
            query(
                "update credentials set reverification_requested_at = null, updated_at = %now%
                 where credential_id = $1 and reverification_requested_at is not null",
            )
            .bind(credential_id),
        )
        .await?;
    Ok(answered == 1)
}

/// One record.
pub async fn get(
    ex: &mut impl Exec,
    credential_id: Uuid,
) -> Result<Option<CredentialRecord>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "select {COLUMNS} from credentials where credential_id = $1"
            ))
            .bind(credential_id),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// Records in creation order (ids are UUIDv7; on SQLite their hyphenated text sorts the same
/// way), filtered, after the cursor.
pub async fn list(
    ex: &mut impl Exec,
    filter: &CredentialFilter,
) -> Result<Vec<CredentialRecord>, StoreError> {
    let mut q = matching(format!("select {COLUMNS} from credentials"), filter);
    if let Some(after) = filter.after {
        let p = q.push_param(after);
        q.push_sql(&format!(" and credential_id > {p}"));
    }
    let p = q.push_param(i64::from(filter.limit));
    q.push_sql(&format!(" order by credential_id limit {p}"));
    let rows = ex.fetch_all(q).await?;
    rows.iter().map(read).collect()
}

/// How many records match `filter` (its cursor and limit aside).
pub async fn count(ex: &mut impl Exec, filter: &CredentialFilter) -> Result<i64, StoreError> {
    let q = matching("select count(*) as n from credentials".to_owned(), filter);
    ex.fetch_one(q).await?.int64("n")
}

/// `select` (over `credentials`) narrowed to the status and doc type of `filter`.
fn matching(select: String, filter: &CredentialFilter) -> super::sql::Query {
    let mut q = query(format!("{select} where 1 = 1"));
    if let Some(status) = filter.status {
        let p = q.push_param(status.as_str());
        q.push_sql(&format!(" and status = {p}"));
    }
    if let Some(doc_type) = &filter.doc_type {
        let p = q.push_param(doc_type);
        q.push_sql(&format!(" and doc_type = {p}"));
    }
    q
}

/// How many records are in each status.
pub async fn count_by_status(ex: &mut impl Exec) -> Result<Vec<(String, i64)>, StoreError> {
    super::count_by(ex, "credentials", "status").await
}

/// Every version of a record, oldest first (empty when there is no such record).
pub async fn list_versions(
    ex: &mut impl Exec,
    credential_id: Uuid,
) -> Result<Vec<CredentialVersion>, StoreError> {
    let rows = ex
        .fetch_all(
            query(
                "select credential_version_id, credential_id, version_number, holder_data, created_by, created_at
                 from credential_versions where credential_id = $1 order by version_number",
            )
            .bind(credential_id),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(CredentialVersion {
                credential_version_id: r.uuid("credential_version_id")?,
                credential_id: r.uuid("credential_id")?,
                version_number: r.int32("version_number")?,
                holder_data: r.json("holder_data")?,
                created_by: r.opt_uuid("created_by")?,
                created_at: r.time("created_at")?,
            })
        })
        .collect()
}
