//! The outbox: durable jobs, enqueued inside the transaction of the change they announce and
//! claimed under a lease, so that every job is done at least once and replicas never share one.
//! The lease is timed by the database's clock (replicas may disagree about the time); when a job
//! is due is decided by the application's clock, which sets `next_attempt_at` and passes `now`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::sql::{insert_rows, query, Exec, Row};
use super::{parse_stored, StoreError};
use crate::protocol::ids::{DeviceReferenceId, ProofingId, WalletCredentialId};

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// notifyCredentialStatusUpdateAvailable for one device copy.
    NotifyCredentialStatus,
    /// notifyProofingStatusUpdateAvailable for one proofing.
    NotifyProofingStatus,
    /// A kind this version of Brevet does not know (written by a newer one); the dispatcher
    /// gives it up with a reason instead of failing on every claim.
    Unknown(String),
}

impl JobKind {
    /// The stored name.
    pub fn as_str(&self) -> &str {
        match self {
            JobKind::NotifyCredentialStatus => "notify_credential_status",
            JobKind::NotifyProofingStatus => "notify_proofing_status",
            JobKind::Unknown(other) => other,
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "notify_credential_status" => JobKind::NotifyCredentialStatus,
            "notify_proofing_status" => JobKind::NotifyProofingStatus,
            other => JobKind::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for its next attempt (or leased by a worker).
    Pending,
    /// Done, or folded into another delivery.
    Done,
    /// Given up: out of attempts or refused for good.
    Dead,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    /// Every state, in the order metrics list them.
    pub const ALL: [JobState; 3] = [JobState::Pending, JobState::Done, JobState::Dead];
}

impl FromStr for JobState {
    type Err = crate::domain::UnknownName;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| crate::domain::UnknownName::new("outbox state", raw))
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Tell Google that a device copy's status may have changed (spec/wallet-api.md §5.2).
    CredentialStatus {
        /// The device.
        device_reference_id: String,
        /// The copy.
        credential_id: String,
    },
    /// Tell Google that a proofing's status changed.
    ProofingStatus {
        /// The device.
        device_reference_id: String,
        /// The proofing.
        proofing_id: String,
    },
}

impl Job {
    /// Announces a change to one device copy.
    pub fn credential_status(device: &str, copy: &str) -> Self {
        Job::CredentialStatus {
            device_reference_id: device.to_owned(),
            credential_id: copy.to_owned(),
        }
    }

    /// Announces a proofing's new status.
    pub fn proofing_status(device: &str, proofing: &str) -> Self {
        Job::ProofingStatus {
            device_reference_id: device.to_owned(),
            proofing_id: proofing.to_owned(),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> JobKind {
        match self {
            Job::CredentialStatus { .. } => JobKind::NotifyCredentialStatus,
            Job::ProofingStatus { .. } => JobKind::NotifyProofingStatus,
        }
    }

    /// The stored payload: the body of the notification.
    pub fn payload(&self) -> serde_json::Value {
        match self {
            Job::CredentialStatus {
                device_reference_id,
                credential_id,
            } => json!({ "deviceReferenceId": device_reference_id, "credentialId": credential_id }),
            Job::ProofingStatus {
                device_reference_id,
                proofing_id,
            } => json!({ "deviceReferenceId": device_reference_id, "proofingId": proofing_id }),
        }
    }

    /// Pending jobs with the same key are delivered once: one notification announces them all.
    pub fn coalesce_key(&self) -> String {
        match self {
            Job::CredentialStatus { credential_id, .. } => {
                format!("wallet_credential:{credential_id}")
            }
            Job::ProofingStatus { proofing_id, .. } => format!("proofing:{proofing_id}"),
        }
    }

    /// Reads a stored job back.
    pub fn read(kind: &JobKind, payload: &serde_json::Value) -> Result<Self, UnreadableJob> {
        let field = |name: &'static str| {
            payload
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or(UnreadableJob::Missing(name))
        };
        match kind {
            JobKind::NotifyCredentialStatus => {
                let (device, copy) = (field("deviceReferenceId")?, field("credentialId")?);
                // Ids written by Brevet were checked on the way in; a damaged row is refused.
                DeviceReferenceId::parse(device)?;
                WalletCredentialId::parse(copy)?;
                Ok(Job::credential_status(device, copy))
            }
            JobKind::NotifyProofingStatus => {
                let (device, proofing) = (field("deviceReferenceId")?, field("proofingId")?);
                DeviceReferenceId::parse(device)?;
                ProofingId::parse(proofing)?;
                Ok(Job::proofing_status(device, proofing))
            }
            JobKind::Unknown(other) => Err(UnreadableJob::Kind(other.clone())),
        }
    }
}

/// A stored job this version of Brevet cannot perform (it is given up, with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableJob {
    /// Written by a newer Brevet, or damaged.
    #[error("unknown job kind {0:?}")]
    Kind(String),
    /// The payload lacks a field.
    #[error("payload lacks {0}")]
    Missing(&'static str),
    /// The payload holds an id no request could have carried.
    #[error(transparent)]
    BadId(#[from] crate::protocol::ids::InvalidId),
}

/// A durable job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxJob {
    /// Id.
    pub outbox_id: Uuid,
    /// What to do.
    pub kind: JobKind,
    /// Its parameters.
    pub payload: serde_json::Value,
    /// Pending jobs with the same key may be dispatched as one.
    pub coalesce_key: Option<String>,
    /// Where it stands.
    pub state: JobState,
    /// Dispatch attempts so far.
    pub attempts: i32,
    /// Not before.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Enqueued.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "outbox_id, kind, payload, coalesce_key, state, attempts, next_attempt_at, last_error, created_at";

fn read(r: &Row) -> Result<OutboxJob, StoreError> {
    Ok(OutboxJob {
        outbox_id: r.uuid("outbox_id")?,
        kind: JobKind::parse(&r.text("kind")?),
        payload: r.json("payload")?,
        coalesce_key: r.opt_text("coalesce_key")?,
        state: parse_stored("outbox.state", &r.text("state")?)?,
        attempts: r.int32("attempts")?,
        next_attempt_at: r.time("next_attempt_at")?,
        last_error: r.opt_text("last_error")?,
        created_at: r.time("created_at")?,
    })
}

/// Enqueues a job, due at `now` (the application's clock, as every due time).
pub async fn enqueue(ex: &mut impl Exec, job: &Job, now: DateTime<Utc>) -> Result<(), StoreError> {
    enqueue_all(ex, std::slice::from_ref(job), now).await
}

/// Enqueues jobs in one statement, all due at `now`.
pub async fn enqueue_all(
    ex: &mut impl Exec,
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    insert_rows(
        ex,
        "insert into outbox (outbox_id, kind, payload, coalesce_key, state, next_attempt_at) values ",
        jobs,
        |q, job| {
            vec![
                q.push_param(Uuid::now_v7()),
                q.push_param(job.kind().as_str()),
                q.push_param(job.payload()),
                q.push_param(job.coalesce_key()),
                "'pending'".to_owned(),
                q.push_param(now),
            ]
        },
    )
    .await
}

/// Jobs, newest first, optionally in one state.
pub async fn list(
    ex: &mut impl Exec,
    state: Option<JobState>,
    limit: u32,
) -> Result<Vec<OutboxJob>, StoreError> {
    let rows = ex
        .fetch_all(
            query(format!(
                "select {COLUMNS} from outbox where ($1 is null or state = $1) order by outbox_id desc limit $2"
            ))
            .bind(state.map(JobState::as_str))
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter().map(read).collect()
}

/// How many jobs are in each state.
pub async fn count_by_state(ex: &mut impl Exec) -> Result<Vec<(String, i64)>, StoreError> {
    super::count_by_state(ex, "outbox").await
}

/// What an operator alerts on in the pending jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Pending jobs whose last delivery attempt failed (they wait for a retry).
    pub retrying: i64,
    /// When the oldest pending job was queued; `None` when nothing is pending.
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// The [`Backlog`] of pending jobs, read in one query.
pub async fn backlog(ex: &mut impl Exec) -> Result<Backlog, StoreError> {
    let row = ex
        .fetch_one(query(
            "select coalesce(sum(case when last_error is not null then 1 else 0 end), 0) as retrying,
                    min(created_at) as oldest
             from outbox where state = 'pending'",
        ))
        .await?;
    Ok(Backlog {
        retrying: row.int64("retrying")?,
        oldest_pending: row.opt_time("oldest")?,
    })
}

/// Claims the most overdue pending job for `worker` ([`claim_batch`] of one).
pub async fn claim(
    tx: &mut impl Exec,
    worker: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Option<OutboxJob>, StoreError> {
    Ok(claim_batch(tx, worker, lease, now, 1).await?.pop())
}

/// Claims up to `limit` of the most overdue pending jobs for `worker` until `lease` has passed
/// (database clock), counting the attempt, in due order; three statements however many. One job
/// is claimed per coalescing key: the other pending unleased jobs with the key of a claimed job
/// are folded into it (marked done), since one delivery after their commit announces them all.
pub async fn claim_batch(
    tx: &mut impl Exec,
    worker: &str,
    lease: Duration,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<OutboxJob>, StoreError> {
    let due = tx
        .fetch_all(
            query(
                "select outbox_id, coalesce_key from outbox
                 where state = 'pending' and next_attempt_at <= $1
                   and (lease_expires_at is null or lease_expires_at < %now%)
                 order by next_attempt_at, outbox_id
                 limit $2%for_update%%skip_locked%",
            )
            .bind(now)
            .bind(i64::from(limit.max(1))),
        )
        .await?;
    let mut keys = std::collections::HashSet::new();
    let mut chosen = Vec::with_capacity(due.len());
    for row in &due {
        let key = row.opt_text("coalesce_key")?;
        if key.is_none_or(|key| keys.insert(key)) {
            chosen.push(row.uuid("outbox_id")?);
        }
    }
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = query(
        "update outbox set lease_owner = $1, lease_expires_at = %now+$2%, attempts = attempts + 1, updated_at = %now%
         where outbox_id in ",
    )
    .bind(worker)
    .bind(lease);
    q.push_list(chosen.iter().copied());
    q.push_sql(&format!(" returning {COLUMNS}"));
    let mut jobs = tx
        .fetch_all(q)
        .await?
        .iter()
        .map(read)
        .collect::<Result<Vec<_>, _>>()?;
    // In due order, as chosen (`returning` promises no order).
    jobs.sort_by_key(|job| (job.next_attempt_at, job.outbox_id));
    fold_into(tx, &jobs).await?;
    Ok(jobs)
}

/// Marks done the pending jobs, unleased and not being claimed by anyone else, that share a
/// coalescing key with one of `claimed`, each noting which job announces it.
async fn fold_into(tx: &mut impl Exec, claimed: &[OutboxJob]) -> Result<(), StoreError> {
    let keyed: Vec<(&str, Uuid)> = claimed
        .iter()
        .filter_map(|job| Some((job.coalesce_key.as_deref()?, job.outbox_id)))
        .collect();
    if keyed.is_empty() {
        return Ok(());
    }
    let mut q = query(
        "update outbox set state = 'done', updated_at = %now%, last_error = case coalesce_key",
    );
    for (key, into) in &keyed {
        let (key, note) = (
            q.push_param(*key),
            q.push_param(format!("coalesced into {into}")),
        );
        q.push_sql(&format!(" when {key} then {note}"));
    }
    q.push_sql(
        " end where outbox_id in (
             select outbox_id from outbox
             where state = 'pending' and (lease_expires_at is null or lease_expires_at < %now%)
               and coalesce_key in ",
    );
    q.push_list(keyed.iter().map(|(key, _)| *key));
    q.push_sql(" and outbox_id not in ");
    q.push_list(keyed.iter().map(|(_, id)| *id));
    q.push_sql("%for_update%%skip_locked%)");
    tx.execute(q).await?;
    Ok(())
}

/// Marks a claimed job done. False when `worker` no longer holds it (its lease expired).
pub async fn complete(ex: &mut impl Exec, id: Uuid, worker: &str) -> Result<bool, StoreError> {
    Ok(!complete_all(ex, &[id], worker).await?.is_empty())
}

/// Marks claimed jobs done; returns those `worker` still held (a job whose lease expired is
/// left to whoever holds it now).
pub async fn complete_all(
    ex: &mut impl Exec,
    ids: &[Uuid],
    worker: &str,
) -> Result<Vec<Uuid>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = query(
        "update outbox set state = 'done', lease_owner = null, lease_expires_at = null, last_error = null, updated_at = %now%
         where lease_owner = $1 and state = 'pending' and outbox_id in ",
    )
    .bind(worker);
    q.push_list(ids.iter().copied());
    q.push_sql(" returning outbox_id");
    ex.fetch_all(q)
        .await?
        .iter()
        .map(|row| row.uuid("outbox_id"))
        .collect()
}

/// Gives back claimed jobs that `worker` did not attempt: due as before, the claim's attempt not
/// counted, free for any worker at once.
pub async fn release(ex: &mut impl Exec, ids: &[Uuid], worker: &str) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q = query(
        "update outbox set lease_owner = null, lease_expires_at = null, attempts = attempts - 1, updated_at = %now%
         where lease_owner = $1 and state = 'pending' and outbox_id in ",
    )
    .bind(worker);
    q.push_list(ids.iter().copied());
    ex.execute(q).await?;
    Ok(())
}

/// Records a failed attempt: the job waits until `retry_at`, or is dead when `retry_at` is
/// `None`. False when `worker` no longer holds it.
pub async fn fail(
    ex: &mut impl Exec,
    id: Uuid,
    worker: &str,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let state = if retry_at.is_some() {
        JobState::Pending
    } else {
        JobState::Dead
    };
    let failed = ex
        .execute(
            query(
                "update outbox set state = $3, next_attempt_at = coalesce($4, next_attempt_at), last_error = $5,
                     lease_owner = null, lease_expires_at = null, updated_at = %now%
                 where outbox_id = $1 and lease_owner = $2 and state = 'pending'",
            )
            .bind(id)
            .bind(worker)
            .bind(state.as_str())
            .bind(retry_at)
            .bind(error),
        )
        .await?;
    Ok(failed == 1)
}

/// Vacuums and analyses the outbox on Postgres (SQLite keeps no dead entries: nothing to do).
/// Every delivered job leaves a dead entry at the head of the claim index until a vacuum removes
/// it, and each claim walks over all of them, so a long fan-out slows down as it goes unless the
/// table is vacuumed while it runs.
pub async fn vacuum(ex: &mut impl Exec) -> Result<(), StoreError> {
    if ex.backend() == crate::config::Backend::Postgres {
        ex.execute(query("vacuum (analyze) outbox")).await?;
    }
    Ok(())
}

/// The channel on which Postgres announces queued jobs (migration 0015's trigger).
const QUEUED_CHANNEL: &str = "brevet_outbox";

/// Word from the database that jobs were queued, by any process: Postgres's LISTEN on the
/// channel a trigger notifies after each insert into the outbox (once per transaction, when it
/// commits). SQLite has no such thing, and its dispatchers only poll.
pub struct Queued {
    listener: sqlx::postgres::PgListener,
}

/// Listens for queued jobs; `None` on SQLite. The listener has a connection of its own, beside
/// the store's pool (whose every connection stays for the work).
pub async fn listen(store: &super::Store) -> Result<Option<Queued>, StoreError> {
    let super::sql::Pool::Pg(pool) = store.db() else {
        return Ok(None);
    };
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with((*pool.connect_options()).clone())
        .await?;
    let mut listener = sqlx::postgres::PgListener::connect_with(&own).await?;
    listener.listen(QUEUED_CHANNEL).await?;
    Ok(Some(Queued { listener }))
}

impl Queued {
    /// Waits for the next word that jobs were queued. After an error (the connection was lost,
    /// and with it whatever was said meanwhile) the next call reconnects.
    pub async fn next(&mut self) -> Result<(), StoreError> {
        self.listener.recv().await?;
        Ok(())
    }
}

/// Puts a dead job back in the queue, due at `now`. False when there is no such dead job.
pub async fn revive(ex: &mut impl Exec, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let revived = ex
        .execute(
            query(
                "update outbox set state = 'pending', attempts = 0, next_attempt_at = $2, updated_at = %now%
                 where outbox_id = $1 and state = 'dead'",
            )
            .bind(id)
            .bind(now),
        )
        .await?;
    Ok(revived == 1)
}
