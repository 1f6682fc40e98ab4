//! The outbox's use cases: a worker claims due jobs, then records their outcomes; staff put a
//! dead job back in the queue. (`crate::outbox::Dispatcher` drives the first two.)

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

/// What a lane of the dispatcher settles and asks for in one transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Turn<'a> {
    /// Jobs it delivered: marked done.
    pub delivered: &'a [Uuid],
    /// Jobs it claimed but did not attempt: given back.
    pub unattempted: &'a [Uuid],
    /// How many due jobs to claim next (at most).
    pub claim: u32,
}

/// Marks a lane's deliveries done, gives back the jobs it did not attempt and claims its next
/// due jobs, in one transaction: a lane that keeps delivering commits once per batch of jobs.
/// Returns the delivered jobs `worker` still held (the others' leases expired) and the jobs
/// claimed.
pub async fn complete_and_claim(
    store: &Store,
    clock: &Clock,
    worker: &str,
    lease: Duration,
    turn: Turn<'_>,
) -> Result<(Vec<Uuid>, Vec<OutboxJob>), StoreError> {
    let mut tx = store.begin().await?;
    let held = outbox::complete_all(&mut tx, turn.delivered, worker).await?;
    outbox::release(&mut tx, turn.unattempted, worker).await?;
    let jobs = outbox::claim_batch(&mut tx, worker, lease, clock.now(), turn.claim).await?;
    tx.commit().await?;
    Ok((held, jobs))
}

/// Clears delivered jobs' leftovers from the store's indexes: see [`outbox::vacuum`].
pub async fn tidy(store: &Store) -> Result<(), StoreError> {
    outbox::vacuum(&mut store.db()).await
}

/// Word that jobs were queued by any process, where the store can give it (Postgres); see
/// [`outbox::listen`].
pub async fn listen(store: &Store) -> Result<Option<outbox::Queued>, StoreError> {
    outbox::listen(store).await
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
