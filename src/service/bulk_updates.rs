//! Bulk updates: one JSON merge of holder-data elements applied to every selected record, in
//! bounded batches, by whichever replica holds the job's lease. Records are changed through
//! [`credentials::update_each_in`] (a new audited version and a notification per device copy, or
//! nothing when the merge changes nothing); each is read under its lock, so a record changed
//! concurrently gets the merge on top of that change. A batch is cut into [`LANES`] runs of
//! consecutive records, each changed in one transaction with a handful of statements for the
//! whole run (commits and statement round trips, not the work inside them, are what a record's
//! change costs most). Without a pace the runs go at once; with one (records per second, the
//! operator's `bulk_update.records_per_sec` unless the request named its own) they go one after
//! another, each followed by the pause that keeps the pace, so that the versions, audit entries
//! and notifications of a large change leave the database room for the Wallet API. After each
//! batch the cursor and counts are stored, so a crash loses at most the batch in hand, and redoing
//! it changes nothing twice (a merge applied again is unchanged).

use std::time::Duration;

use tokio::time::Instant;

use serde_json::Value as Json;
use uuid::Uuid;

use super::credentials::{self, RecordOutcome};
use super::Services;
use crate::domain::credential::CredentialStatus;
use crate::store::bulk_updates::{self as stored, BulkUpdate, NewBulkUpdate, Progress};
use crate::store::{
    audit, credentials as records, Actor, CredentialFilter, Provenance, Store, StoreError,
};

/// Records changed per batch before progress is stored (fewer for a slow pace: see
/// [`batch_len`]).
pub const BATCH: u32 = 200;
/// How long a replica holds a job between two batches before another may take it over.
const LEASE: Duration = Duration::from_secs(60);
/// Transactions of a batch at once, each changing a run of its records in id order (so that two
/// bulk updates over the same records lock them in the same order); the batch's progress is
/// stored when all of them are done.
const LANES: usize = 4;

/// Which records a bulk update changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every record of a doc type and/or status (both optional).
    Filter {
        /// Only this doc type.
        doc_type: Option<String>,
        /// Only this status.
        status: Option<CredentialStatus>,
    },
    /// These records.
    Ids(Vec<Uuid>),
}

impl Selection {
    /// As stored.
    pub fn to_json(&self) -> Json {
        match self {
            Selection::Filter { doc_type, status } => {
                serde_json::json!({ "docType": doc_type, "status": status.map(|s| s.as_str()) })
            }
            Selection::Ids(ids) => serde_json::json!({ "credentialIds": ids }),
        }
    }

    fn from_json(stored: &Json) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt("bulk_updates.selection".into());
        if let Some(ids) = stored.get("credentialIds") {
            return serde_json::from_value(ids.clone())
                .map(Selection::Ids)
                .map_err(|_| corrupt());
        }
        let status = match stored.get("status").and_then(Json::as_str) {
            None => None,
            Some(raw) => Some(raw.parse().map_err(|_| corrupt())?),
        };
        Ok(Selection::Filter {
            doc_type: stored
                .get("docType")
                .and_then(Json::as_str)
                .map(str::to_owned),
            status,
        })
    }
}

/// `holder` with `merge` applied per namespace, as JSON Merge Patch (RFC 7396) applies: an
/// element set to null is removed, any other value replaces the element's.
pub fn merged(holder: &Json, merge: &Json) -> Json {
    let mut result = holder.as_object().cloned().unwrap_or_default();
    for (namespace, elements) in merge.as_object().into_iter().flatten() {
        let mut target = result
            .get(namespace)
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        for (element, value) in elements.as_object().into_iter().flatten() {
            if value.is_null() {
                target.remove(element);
            } else {
                target.insert(element.clone(), value.clone());
            }
        }
        result.insert(namespace.clone(), Json::Object(target));
    }
    Json::Object(result)
}

/// Records a new bulk update (audited `credential.bulk_update`), to be worked on in the
/// background at `records_per_sec` (0: as fast as the store allows); returns it.
pub async fn start(
    store: &Store,
    selection: &Selection,
    merge: &Json,
    records_per_sec: u32,
    by: Provenance<'_>,
) -> Result<BulkUpdate, StoreError> {
    let total = match selection {
        Selection::Ids(ids) => ids.len() as i64,
        Selection::Filter { doc_type, status } => {
            let filter = CredentialFilter {
                status: *status,
                doc_type: doc_type.clone(),
                ..Default::default()
            };
            records::count(&mut store.db(), &filter).await?
        }
    };
    let selection_json = selection.to_json();
    let mut tx = store.begin().await?;
    let job = stored::insert(
        &mut tx,
        &NewBulkUpdate {
            selection: &selection_json,
            merge,
            total: i32::try_from(total).unwrap_or(i32::MAX),
            records_per_sec: i32::try_from(records_per_sec).unwrap_or(i32::MAX),
            actor: by.actor,
        },
    )
    .await?;
    audit::insert(
        &mut tx,
        &by.entry("credential.bulk_update", "bulk_update", job.bulk_update_id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(bulk_update.id = %job.bulk_update_id, total, "bulk update queued");
    Ok(job)
}

/// The job's pace in records per second; `None`: no limit.
fn pace(job: &BulkUpdate) -> Option<u32> {
    u32::try_from(job.records_per_sec).ok().filter(|r| *r > 0)
}

/// Records per batch: [`BATCH`], or at a pace slower than that per second, a second's worth, so
/// that a batch (which a stopping replica finishes) never lasts much more than a second.
fn batch_len(pace: Option<u32>) -> u32 {
    pace.map_or(BATCH, |r| r.min(BATCH))
}

/// Transactions per second a paced bulk update spreads its records over: short runs at even
/// intervals rather than a batch's worth in one burst, which the Wallet API would queue behind.
const PACED_RUNS_PER_SEC: u32 = 20;

/// Records per transaction: a quarter of the batch without a pace, else what keeps
/// [`PACED_RUNS_PER_SEC`] (at most a quarter of a full batch).
fn run_len(pace: Option<u32>, batch: usize) -> usize {
    let unpaced = batch.div_ceil(LANES).max(1);
    pace.map_or(unpaced, |r| {
        (r / PACED_RUNS_PER_SEC).clamp(1, BATCH / LANES as u32) as usize
    })
}

/// The next (at most `limit`) records of `job` after its cursor, in id order.
async fn next_batch(store: &Store, job: &BulkUpdate, limit: u32) -> Result<Vec<Uuid>, StoreError> {
    Ok(match Selection::from_json(&job.selection)? {
        Selection::Ids(mut ids) => {
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .filter(|id| job.cursor.is_none_or(|cursor| *id > cursor))
                .take(limit as usize)
                .collect()
        }
        Selection::Filter { doc_type, status } => {
            let filter = CredentialFilter {
                status,
                doc_type,
                after: job.cursor,
                limit,
            };
            records::list(&mut store.db(), &filter)
                .await?
                .into_iter()
                .map(|r| r.credential_id)
                .collect()
        }
    })
}

/// Applies the job's merge to `ids` in one transaction.
async fn apply_run(
    s: &Services,
    job: &BulkUpdate,
    ids: &[Uuid],
    by: Provenance<'_>,
) -> Result<Vec<(Uuid, RecordOutcome)>, StoreError> {
    let mut tx = s.store.begin().await?;
    let change = |holder: &Json| merged(holder, &job.merge);
    let outcomes =
        credentials::update_each_in(&mut tx, &s.clock, &s.doc_types, ids, change, by).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Works one batch of the oldest running bulk update that no other replica holds. Returns
/// whether there was one.
pub async fn work_one_batch(s: &Services, owner: &str) -> Result<bool, StoreError> {
    let Some(job) = stored::claim(&mut s.store.db(), owner, LEASE).await? else {
        return Ok(false);
    };
    let pace = pace(&job);
    let limit = batch_len(pace);
    let ids = next_batch(&s.store, &job, limit).await?;
    let actor = Actor::Token {
        admin_token_id: job.created_by.unwrap_or_default(),
        name: job.actor.clone(),
    };
    let actor = if job.created_by.is_some() {
        actor
    } else {
        Actor::System
    };
    let request = format!("bulk-update:{}", job.bulk_update_id);
    let by = Provenance {
        actor: &actor,
        request_id: Some(&request),
    };
    let runs = ids.chunks(run_len(pace, ids.len()));
    let outcomes: Vec<(Uuid, RecordOutcome)> = match pace {
        // As fast as the store allows: all runs at once.
        None => futures::future::try_join_all(runs.map(|run| apply_run(s, &job, run, by)))
            .await?
            .into_iter()
            .flatten()
            .collect(),
        // One transaction at a time, each run followed by the pause that brings the batch back to
        // the pace (the pause also spreads the dispatcher's notifications out).
        Some(records_per_sec) => {
            let started = Instant::now();
            let mut outcomes = Vec::with_capacity(ids.len());
            for run in runs {
                outcomes.extend(apply_run(s, &job, run, by).await?);
                let due = outcomes.len() as f64 / f64::from(records_per_sec);
                tokio::time::sleep_until(started + Duration::from_secs_f64(due)).await;
            }
            outcomes
        }
    };
    let mut progress = Progress::default();
    for (id, outcome) in outcomes {
        match outcome {
            RecordOutcome::Changed => progress.changed += 1,
            RecordOutcome::Unchanged => progress.unchanged += 1,
            RecordOutcome::Refused(message) => {
                progress.failed += 1;
                progress
                    .problems
                    .push(serde_json::json!({ "credentialId": id, "message": message }));
            }
        }
        progress.selected += 1;
        progress.cursor = Some(id);
    }
    let finished = ids.len() < limit as usize;
    if stored::advance(&mut s.store.db(), &job, owner, &progress, finished, LEASE).await? {
        if finished {
            tracing::info!(bulk_update.id = %job.bulk_update_id, "bulk update done");
        }
    } else {
        tracing::warn!(bulk_update.id = %job.bulk_update_id, "bulk update lease lost; another replica goes on");
    }
    Ok(true)
}

/// Works on bulk updates until `stop` completes, looking every `idle` when there is nothing to
/// do, or at once when a bulk update is started through this process. A batch in hand is
/// finished before stopping.
pub async fn keep_working(
    s: Services,
    owner: String,
    idle: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let worked = match work_one_batch(&s, &owner).await {
            Ok(worked) => worked,
            Err(error) => {
                tracing::warn!(%error, "bulk update batch failed; retrying");
                false
            }
        };
        let pause = if worked { Duration::ZERO } else { idle };
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = tokio::time::sleep(pause) => {}
            () = s.bulk_update_started.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_sets_replaces_and_removes_elements_per_namespace() {
        let holder = serde_json::json!({ "ns": { "a": 1, "b": 2 }, "other": { "c": 3 } });
        let merge =
            serde_json::json!({ "ns": { "a": 10, "b": null, "d": "new" }, "extra": { "e": true } });
        assert_eq!(
            merged(&holder, &merge),
            serde_json::json!({ "ns": { "a": 10, "d": "new" }, "other": { "c": 3 }, "extra": { "e": true } })
        );
        assert_eq!(
            merged(&merged(&holder, &merge), &merge),
            merged(&holder, &merge),
            "applied twice, the same"
        );
    }

    #[test]
    fn a_slow_pace_keeps_a_batch_to_about_a_second() {
        assert_eq!(batch_len(None), BATCH);
        assert_eq!(batch_len(Some(1000)), BATCH);
        assert_eq!(batch_len(Some(BATCH)), BATCH);
        assert_eq!(batch_len(Some(50)), 50);
        assert_eq!(batch_len(Some(10)), 10);
    }

    #[test]
    fn a_paced_update_spreads_its_records_over_short_runs() {
        assert_eq!(run_len(None, 200), 50, "four runs at once");
        assert_eq!(run_len(None, 3), 1);
        assert_eq!(run_len(Some(1000), 200), 50, "a run every 50 ms");
        assert_eq!(run_len(Some(400), 200), 20);
        assert_eq!(run_len(Some(100_000), 200), 50);
        assert_eq!(run_len(Some(10), 10), 1);
    }

    #[test]
    fn selections_survive_the_store() {
        for selection in [
            Selection::Ids(vec![Uuid::now_v7()]),
            Selection::Filter {
                doc_type: Some("x".into()),
                status: Some(CredentialStatus::Active),
            },
            Selection::Filter {
                doc_type: None,
                status: None,
            },
        ] {
            assert_eq!(
                Selection::from_json(&selection.to_json()).expect("readable"),
                selection
            );
        }
    }
}
