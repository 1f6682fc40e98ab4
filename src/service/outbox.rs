//! The outbox's use cases: a worker claims the next due job, then records its outcome; staff
//! put a dead job back in the queue. (`crate::outbox::Dispatcher` drives the first two.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::clock::Clock;
use crate::store::{audit, outbox, OutboxJob, Provenance, Store, StoreError};

/// Claims the most overdue due job for `worker` until `lease` has passed, folding pending jobs
/// with the same coalescing key into it.
pub async fn claim(
    store: &Store,
    clock: &Clock,
    worker: &str,
    lease: Duration,
) -> Result<Option<OutboxJob>, StoreError> {
    let mut tx = store.begin().await?;
    let job = outbox::claim(&mut tx, worker, lease, clock.now()).await?;
    tx.commit().await?;
    Ok(job)
}

/// Marks `done` delivered (when given) and claims the next due job, in one transaction: a lane
/// that keeps delivering commits once per job. The flag is false when `worker` no longer held
/// `done` (its lease expired).
pub async fn complete_and_claim(
    store: &Store,
    clock: &Clock,
    worker: &str,
    lease: Duration,
    done: Option<Uuid>,
) -> Result<(bool, Option<OutboxJob>), StoreError> {
    let mut tx = store.begin().await?;
    let held = match done {
        Some(id) => outbox::complete(&mut tx, id, worker).await?,
        None => true,
    };
    let job = outbox::claim(&mut tx, worker, lease, clock.now()).await?;
    tx.commit().await?;
    Ok((held, job))
}

/// Marks a claimed job done. False when `worker` no longer holds it (its lease expired).
pub async fn complete(store: &Store, id: Uuid, worker: &str) -> Result<bool, StoreError> {
    outbox::complete(&mut store.db(), id, worker).await
}

/// Records a failed attempt: the job waits until `retry_at`, or is dead when `retry_at` is
/// `None`. False when `worker` no longer holds it.
pub async fn fail(
    store: &Store,
    id: Uuid,
    worker: &str,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    outbox::fail(&mut store.db(), id, worker, error, retry_at).await
}

/// Puts a dead job back in the queue, due now, audited. False when there is no such dead job.
pub async fn retry_dead(
    store: &Store,
    clock: &Clock,
    id: Uuid,
    by: Provenance<'_>,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let revived = outbox::revive(&mut tx, id, clock.now()).await?;
    if revived {
        audit::insert(&mut tx, &by.entry("outbox.retry", "outbox", id)).await?;
    }
    tx.commit().await?;
    Ok(revived)
}
