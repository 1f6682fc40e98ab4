//! Bulk updates of holder data: the job (selection, merge, progress, cursor) and the lease that
//! lets one replica at a time work on it.

use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

use super::sql::{query, Exec, Row};
use super::StoreError;

/// A bulk update as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkUpdate {
    /// Its id.
    pub bulk_update_id: Uuid,
    /// Which records: `{"docType", "status"}` or `{"credentialIds"}`.
    pub selection: serde_json::Value,
    /// The JSON merge applied to each record's holder data.
    pub merge: serde_json::Value,
    /// `running` or `done`.
    pub state: String,
    /// The last record handled (records are taken in id order).
    pub cursor: Option<Uuid>,
    /// Records the selection matched when it was asked for.
    pub total: i32,
    /// Records handled so far.
    pub selected: i32,
    /// Records that got a new version.
    pub changed: i32,
    /// Records the merge did not change.
    pub unchanged: i32,
    /// Records that could not be changed (invalid result, revoked meanwhile).
    pub failed: i32,
    /// The first problems, `[{credentialId, message}]`.
    pub problems: serde_json::Value,
    /// Records changed per second; 0: no limit.
    pub records_per_sec: i32,
    /// The name of the token that asked (the actor of the versions it writes).
    pub actor: String,
    /// Who asked for it.
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last progress.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "bulk_update_id, selection, merge, state, cursor, total, selected, changed, unchanged, failed, problems, records_per_sec, actor, created_by, created_at, updated_at";

fn read(row: &Row) -> Result<BulkUpdate, StoreError> {
    Ok(BulkUpdate {
        bulk_update_id: row.uuid("bulk_update_id")?,
        selection: row.json("selection")?,
        merge: row.json("merge")?,
        state: row.text("state")?,
        cursor: row.opt_uuid("cursor")?,
        total: row.int32("total")?,
        selected: row.int32("selected")?,
        changed: row.int32("changed")?,
        unchanged: row.int32("unchanged")?,
        failed: row.int32("failed")?,
        problems: row.json("problems")?,
        records_per_sec: row.int32("records_per_sec")?,
        actor: row.text("actor")?,
        created_by: row.opt_uuid("created_by")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// A bulk update to store.
#[derive(Debug, Clone)]
pub struct NewBulkUpdate<'a> {
    /// Which records.
    pub selection: &'a serde_json::Value,
    /// The merge.
    pub merge: &'a serde_json::Value,
    /// How many records the selection matches now.
    pub total: i32,
    /// Records to change per second; 0: no limit.
    pub records_per_sec: i32,
    /// Who asked.
    pub actor: &'a super::Actor,
}

/// Stores a new, running bulk update.
pub async fn insert(ex: &mut impl Exec, new: &NewBulkUpdate<'_>) -> Result<BulkUpdate, StoreError> {
    let actor = new.actor.label();
    let row = ex
        .fetch_one(
            query(format!(
                "insert into bulk_updates (bulk_update_id, selection, merge, state, total, problems, actor, created_by, records_per_sec)
                 values ($1, $2, $3, 'running', $4, $5, $6, $7, $8) returning {COLUMNS}"
            ))
            .bind(Uuid::now_v7())
            .bind(new.selection)
            .bind(new.merge)
            .bind(new.total)
            .bind(serde_json::json!([]))
            .bind(actor)
            .bind(new.actor.token_id())
            .bind(new.records_per_sec),
        )
        .await?;
    read(&row)
}

/// One bulk update.
pub async fn get(ex: &mut impl Exec, id: Uuid) -> Result<Option<BulkUpdate>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "select {COLUMNS} from bulk_updates where bulk_update_id = $1"
            ))
            .bind(id),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// Takes the oldest running bulk update that nobody else holds (or whose holder's lease ran out),
/// for `lease`.
pub async fn claim(
    ex: &mut impl Exec,
    owner: &str,
    lease: Duration,
) -> Result<Option<BulkUpdate>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "update bulk_updates set lease_owner = $1, lease_until = %now+$2%, updated_at = %now%
                 where bulk_update_id = (
                     select bulk_update_id from bulk_updates
                     where state = 'running'
                       and (lease_until is null or lease_until < %now% or lease_owner = $1)
                     order by created_at limit 1%for_update%%skip_locked%)
                 returning {COLUMNS}"
            ))
            .bind(owner)
            .bind(lease),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// The last record handled.
    pub cursor: Option<Uuid>,
    /// Records handled.
    pub selected: i32,
    /// New versions written.
    pub changed: i32,
    /// Records left as they were.
    pub unchanged: i32,
    /// Records not changed for a problem.
    pub failed: i32,
    /// The problems met, to keep (the first ones).
    pub problems: Vec<serde_json::Value>,
}

/// Most problems kept on a bulk update.
pub const MAX_PROBLEMS: usize = 100;

/// Records a batch's progress (and, when `finished`, the end) while `owner` still holds the
/// lease, renewing it. False when the lease was lost (another replica goes on).
pub async fn advance(
    ex: &mut impl Exec,
    job: &BulkUpdate,
    owner: &str,
    progress: &Progress,
    finished: bool,
    lease: Duration,
) -> Result<bool, StoreError> {
    let mut problems = job.problems.as_array().cloned().unwrap_or_default();
    problems.extend(progress.problems.iter().cloned());
    problems.truncate(MAX_PROBLEMS);
    let updated = ex
        .execute(
            query(
                "update bulk_updates set cursor = $3, selected = selected + $4, changed = changed + $5,
                    unchanged = unchanged + $6, failed = failed + $7, problems = $8,
                    state = $9, lease_until = %now+$10%, updated_at = %now%
                 where bulk_update_id = $1 and lease_owner = $2 and state = 'running'",
            )
            .bind(job.bulk_update_id)
            .bind(owner)
            .bind(progress.cursor.or(job.cursor))
            .bind(progress.selected)
            .bind(progress.changed)
            .bind(progress.unchanged)
            .bind(progress.failed)
            .bind(serde_json::Value::Array(problems))
            .bind(if finished { "done" } else { "running" })
            .bind(lease),
        )
        .await?;
    Ok(updated == 1)
}
