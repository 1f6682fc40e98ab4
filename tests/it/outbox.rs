//! Notifications to Google never lost: the dispatcher against the fake Google backend, on both
//! stores — coalescing, retries with backoff, refusals, Google down or hanging, two dispatchers
//! racing, an expired lease, and a worker killed mid-dispatch.

use std::sync::Arc;
use std::time::Duration;

use brevet::clock::Clock;
use brevet::config::GoogleConfig;
use brevet::google::GoogleClient;
use brevet::mdoc::doctype::DocTypes;
use brevet::outbox::{Dispatcher, RetryPolicy, Step};
use brevet::service::credentials::{self as records, NewHolderData};
use brevet::service::outbox as jobs;
use brevet::sim::google::{Behaviour, FakeGoogle};
use brevet::store::{Actor, Provenance, SharedStore};
use serde_json::json;
use uuid::Uuid;

use crate::support::inspect::{bind_copy, Inspect};
use crate::support::TestDb;

const ISSUER: &str = "Utopia_US_MDL";
const BY: Provenance<'static> = Provenance {
    actor: &Actor::System,
    request_id: None,
};

fn client(google: &FakeGoogle, timeout_secs: u64) -> Arc<GoogleClient> {
    let config = GoogleConfig {
        base_url: Some(google.base_url()),
        issuer_id: Some(ISSUER.into()),
        timeout_secs: Some(timeout_secs),
        ..Default::default()
    };
    Arc::new(GoogleClient::from_config(&config).unwrap().unwrap())
}

fn dispatcher(
    store: &SharedStore,
    google: &FakeGoogle,
    name: &str,
    max_attempts: u32,
) -> Dispatcher {
    // No backoff delay: a failed job is due again at once, so tests need no sleeps.
    let policy = RetryPolicy {
        max_attempts,
        base: Duration::ZERO,
        max: Duration::ZERO,
    };
    Dispatcher::new(
        store.clone(),
        client(google, 2),
        name.into(),
        Duration::from_secs(30),
        policy,
    )
}

/// A record with one device copy per name in `copies`, then `edits` updates to it.
async fn record_with_copies(store: &SharedStore, copies: &[&str], edits: i32) -> Uuid {
    let id = records::create(store, "t", &json!({ "v": 0 }), BY)
        .await
        .unwrap()
        .credential_id;
    for copy in copies {
        bind_copy(store, copy, id, &format!("device-{copy}")).await;
    }
    for v in 1..=edits {
        let new = NewHolderData {
            credential_id: id,
            expected_version: v,
            holder_data: &json!({ "v": v }),
        };
        records::update(store, &Clock::system(), &DocTypes::builtin(), new, BY)
            .await
            .unwrap();
    }
    id
}

/// A lane's turn: settle `delivered` and `unattempted`, claim up to `claim`.
fn turn<'a>(delivered: &'a [Uuid], unattempted: &'a [Uuid], claim: u32) -> jobs::Turn<'a> {
    jobs::Turn {
        delivered,
        unattempted,
        claim,
    }
}

fn delivered(google: &FakeGoogle) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = google
        .accepted()
        .into_iter()
        .map(|n| (n.device_reference_id, n.subject_id))
        .collect();
    list.sort();
    list
}

both_stores! {
    async fn several_updates_coalesce_into_one_notification_per_copy(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        record_with_copies(&store, &["w1", "w2"], 3).await;
        assert_eq!(store.list_outbox(Some("pending"), 100).await.unwrap().len(), 6);
        let steps = dispatcher(&store, &google, "d1", 5).drain().await.unwrap();
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert_eq!(delivered(&google), [("device-w1".into(), "w1".into()), ("device-w2".into(), "w2".into())]);
        assert!(store.list_outbox(Some("pending"), 100).await.unwrap().is_empty());
        let done = store.list_outbox(Some("done"), 100).await.unwrap();
        assert_eq!(done.iter().filter(|j| j.last_error.as_deref().is_some_and(|e| e.starts_with("coalesced into"))).count(), 4);
        // Each attempt used its own requestId.
        let ids: std::collections::HashSet<String> = google.accepted().into_iter().map(|n| n.request_id).collect();
        assert_eq!(ids.len(), 2);
    }

    async fn server_errors_are_retried_until_delivered(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        google.behave(&[Behaviour::ServerError, Behaviour::ServerError], Behaviour::Accept);
        record_with_copies(&store, &["w1"], 1).await;
        // The worker's metrics count each attempt by outcome.
        let metrics = Arc::new(brevet::certprov::metrics::AdapterMetrics::new());
        let steps = dispatcher(&store, &google, "d1", 5).with_observer(metrics.clone()).drain().await.unwrap();
        assert!(matches!(steps[..], [Step::Retrying(_), Step::Retrying(_), Step::Delivered(_)]), "{steps:?}");
        let text = metrics.encode(&store).await.unwrap();
        for line in [
            r#"brevet_outbox_deliveries_total{outcome="retrying"} 2"#,
            r#"brevet_outbox_deliveries_total{outcome="delivered"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert_eq!(google.received(), 3);
        assert_eq!(delivered(&google).len(), 1);
        let jobs = store.list_outbox(Some("done"), 10).await.unwrap();
        assert_eq!(jobs[0].attempts, 3);
    }

    async fn a_job_dies_after_the_last_attempt_and_can_be_retried(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        google.behave(&[], Behaviour::ServerError);
        record_with_copies(&store, &["w1"], 1).await;
        let steps = dispatcher(&store, &google, "d1", 3).drain().await.unwrap();
        assert!(matches!(steps[..], [Step::Retrying(_), Step::Retrying(_), Step::Dead(_)]), "{steps:?}");
        let dead = store.list_outbox(Some("dead"), 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].attempts, 3);
        assert!(dead[0].last_error.as_deref().unwrap().contains("HTTP 500"), "{:?}", dead[0].last_error);

        google.behave(&[], Behaviour::Accept);
        assert!(jobs::retry_dead(&store, &Clock::system(), dead[0].outbox_id, BY).await.unwrap());
        assert!(!jobs::retry_dead(&store, &Clock::system(), dead[0].outbox_id, BY).await.unwrap(), "only dead jobs come back");
        dispatcher(&store, &google, "d1", 3).drain().await.unwrap();
        assert_eq!(delivered(&google).len(), 1);
        assert_eq!(store.list_audit(10).await.unwrap()[0].action, "outbox.retry");
    }

    async fn a_refusal_is_dead_at_once_with_googles_reason(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        google.behave(&[], Behaviour::Reject);
        record_with_copies(&store, &["w1"], 1).await;
        let steps = dispatcher(&store, &google, "d1", 5).drain().await.unwrap();
        assert!(matches!(steps[..], [Step::Dead(_)]), "{steps:?}");
        let dead = &store.list_outbox(Some("dead"), 10).await.unwrap()[0];
        assert_eq!(dead.last_error.as_deref(), Some("refused: notifyCredentialStatusUpdateAvailable: HTTP 400: unknown credentialId"));
    }

    async fn google_down_then_back_loses_nothing(db: TestDb) {
        let store = db.store().await;
        let mut google = FakeGoogle::start(ISSUER).await.unwrap();
        google.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        record_with_copies(&store, &["w1", "w2"], 1).await;
        let d = dispatcher(&store, &google, "d1", 50);
        for _ in 0..3 {
            let step = d.run_once().await.unwrap();
            assert!(matches!(step, Step::Retrying(_)), "{step:?}");
        }
        assert!(store.list_outbox(Some("dead"), 10).await.unwrap().is_empty());
        google.restart().await.unwrap();
        d.drain().await.unwrap();
        assert_eq!(delivered(&google).len(), 2);
        assert!(store.list_outbox(Some("pending"), 10).await.unwrap().is_empty());
    }

    async fn a_hanging_google_times_out_and_is_retried(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        google.behave(&[Behaviour::Hang], Behaviour::Accept);
        record_with_copies(&store, &["w1"], 1).await;
        let policy = RetryPolicy { max_attempts: 5, base: Duration::ZERO, max: Duration::ZERO };
        let d = Dispatcher::new(store.clone(), client(&google, 1), "d1".into(), Duration::from_secs(30), policy);
        let steps = d.drain().await.unwrap();
        assert!(matches!(steps[..], [Step::Retrying(_), Step::Delivered(_)]), "{steps:?}");
        let job = &store.list_outbox(Some("done"), 10).await.unwrap()[0];
        assert_eq!(job.attempts, 2);
    }

    async fn two_dispatchers_share_the_queue_without_doing_a_job_twice(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        let copies: Vec<String> = (0..24).map(|i| format!("w{i:02}")).collect();
        for copy in &copies {
            record_with_copies(&store, &[copy.as_str()], 1).await;
        }
        let (a, b) = (dispatcher(&store, &google, "a", 5), dispatcher(&store, &google, "b", 5));
        let (steps_a, steps_b) = tokio::join!(a.drain(), b.drain());
        let (steps_a, steps_b) = (steps_a.unwrap(), steps_b.unwrap());
        assert_eq!(steps_a.len() + steps_b.len(), 24, "a: {steps_a:?} b: {steps_b:?}");
        let got: Vec<String> = delivered(&google).into_iter().map(|(_, c)| c).collect();
        assert_eq!(got, copies, "every copy notified exactly once");
    }

    async fn an_expired_lease_hands_the_job_to_another_worker(db: TestDb) {
        let store = db.store().await;
        record_with_copies(&store, &["w1"], 1).await;
        let clock = Clock::system();
        let first = jobs::claim(&store, &clock, "slow", Duration::from_secs(1)).await.unwrap().unwrap();
        assert!(jobs::claim(&store, &clock, "other", Duration::from_secs(30)).await.unwrap().is_none(), "leased jobs are not shared");
        // Leases run on the database's clock, which no test can step.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let second = jobs::claim(&store, &clock, "fast", Duration::from_secs(30)).await.unwrap().expect("lease expired");
        assert_eq!(second.outbox_id, first.outbox_id);
        assert_eq!(second.attempts, 2);
        assert!(!jobs::complete(&store, first.outbox_id, "slow").await.unwrap(), "the slow worker lost the job");
        assert!(jobs::complete(&store, second.outbox_id, "fast").await.unwrap());
    }

    async fn a_delivery_is_marked_done_with_the_next_claim_and_a_lost_lease_is_told(db: TestDb) {
        let store = db.store().await;
        record_with_copies(&store, &["w1"], 1).await;
        record_with_copies(&store, &["w2"], 1).await;
        let clock = Clock::system();
        let lease = Duration::from_secs(30);
        let (held, first) = jobs::complete_and_claim(&store, &clock, "d1", lease, turn(&[], &[], 1)).await.unwrap();
        let [first] = first.try_into().unwrap();
        assert!(held.is_empty(), "nothing to complete");
        // Delivered: done in the transaction that claims the second job.
        let (held, second) = jobs::complete_and_claim(&store, &clock, "d1", lease, turn(&[first.outbox_id], &[], 1)).await.unwrap();
        let [second] = second.try_into().expect("the other job");
        assert_eq!(held, [first.outbox_id]);
        assert_ne!(second.outbox_id, first.outbox_id);
        let done = store.list_outbox(Some("done"), 10).await.unwrap();
        assert_eq!(done.iter().map(|j| j.outbox_id).collect::<Vec<_>>(), vec![first.outbox_id]);
        // A worker whose lease another took over is told so, and changes nothing of the job.
        let (held, none) = jobs::complete_and_claim(&store, &clock, "someone-else", lease, turn(&[second.outbox_id], &[], 1)).await.unwrap();
        assert!(held.is_empty() && none.is_empty());
        assert_eq!(store.list_outbox(Some("pending"), 10).await.unwrap().len(), 1);
        assert!(jobs::complete(&store, second.outbox_id, "d1").await.unwrap(), "still d1's to complete");
    }
}

both_stores! {
    async fn a_lane_claims_a_batch_with_one_job_per_copy_and_settles_it_with_its_next_claim(db: TestDb) {
        let store = db.store().await;
        // Jobs in due order: w1, w2 three times over (three edits), then w3, w4, w5.
        record_with_copies(&store, &["w1", "w2"], 3).await;
        for copy in ["w3", "w4", "w5"] {
            record_with_copies(&store, &[copy], 1).await;
        }
        let (clock, lease) = (Clock::system(), Duration::from_secs(30));
        let copy = |job: &brevet::store::OutboxJob| job.payload["credentialId"].as_str().unwrap().to_owned();

        // The four most overdue are w1, w2, w1, w2: one job per copy is claimed, the others
        // folded into it.
        let (_, batch) = jobs::complete_and_claim(&store, &clock, "d1", lease, turn(&[], &[], 4)).await.unwrap();
        assert_eq!(batch.iter().map(copy).collect::<Vec<_>>(), ["w1", "w2"]);
        assert!(batch.iter().all(|job| job.attempts == 1));
        let done = store.list_outbox(Some("done"), 100).await.unwrap();
        assert_eq!(done.len(), 4);
        for job in &done {
            let into = batch.iter().find(|claimed| claimed.coalesce_key == job.coalesce_key).unwrap();
            assert_eq!(job.last_error.as_deref(), Some(format!("coalesced into {}", into.outbox_id).as_str()));
        }

        // w1 delivered, w2 given back unattempted: w2 is due first again, its attempt uncounted.
        let (w1, w2) = (batch[0].outbox_id, batch[1].outbox_id);
        let (held, batch) = jobs::complete_and_claim(&store, &clock, "d1", lease, turn(&[w1], &[w2], 4)).await.unwrap();
        assert_eq!(held, [w1]);
        assert_eq!(batch.iter().map(copy).collect::<Vec<_>>(), ["w2", "w3", "w4", "w5"]);
        assert_eq!((batch[0].outbox_id, batch[0].attempts), (w2, 1));

        // Another worker cannot complete or give back d1's jobs.
        let ids: Vec<Uuid> = batch.iter().map(|job| job.outbox_id).collect();
        let (held, none) = jobs::complete_and_claim(&store, &clock, "d2", lease, turn(&ids[..2], &ids[2..], 4)).await.unwrap();
        assert!(held.is_empty() && none.is_empty(), "d1 still holds them all");
        let (held, none) = jobs::complete_and_claim(&store, &clock, "d1", lease, turn(&ids, &[], 4)).await.unwrap();
        assert_eq!(held, ids);
        assert!(none.is_empty());
        assert_eq!(store.list_outbox(Some("done"), 100).await.unwrap().len(), 9);
        assert!(store.list_outbox(Some("pending"), 100).await.unwrap().is_empty());
    }

    async fn a_batch_that_would_outlive_its_lease_gives_its_jobs_back(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        // Two calls hang until the client's 2 s timeout (and, with one attempt allowed, their
        // jobs die). After the first, with a 3 s lease, no other call of the batch could end
        // within the lease: the rest are given back and claimed again with a fresh lease in one
        // transaction. Without that guard the batch's leases would run out during the second
        // hanging call, and another worker would take jobs d1 is still going to deliver.
        google.behave(&[Behaviour::Hang, Behaviour::Hang], Behaviour::Accept);
        for copy in ["w1", "w2", "w3", "w4"] {
            record_with_copies(&store, &[copy], 1).await;
        }
        let policy = RetryPolicy { max_attempts: 1, base: Duration::ZERO, max: Duration::ZERO };
        let lease = Duration::from_secs(3);
        let dispatcher = Dispatcher::new(store.clone(), client(&google, 2), "d1".into(), lease, policy)
            .with_batches(8, Duration::from_secs(2));
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let stop = AtomicBool::new(false);
        let drain = async {
            let steps = dispatcher.drain().await.unwrap();
            stop.store(true, SeqCst);
            steps
        };
        // Another worker, from the moment d1's first call is in flight (its batch claimed).
        let thief = async {
            while google.received() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut stolen = Vec::new();
            while !stop.load(SeqCst) {
                if let Some(job) = jobs::claim(&store, &Clock::system(), "thief", Duration::from_secs(30)).await.unwrap() {
                    stolen.push(job.payload["credentialId"].clone());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            stolen
        };
        let (steps, stolen) = tokio::join!(drain, thief);
        assert_eq!(stolen, Vec::<serde_json::Value>::new(), "no job was free while d1 held it");
        let outcomes: Vec<&str> = steps.iter().map(Step::outcome).collect();
        assert_eq!(outcomes, ["dead", "dead", "delivered", "delivered"], "{steps:?}");
        let got: Vec<String> = delivered(&google).into_iter().map(|(_, c)| c).collect();
        assert_eq!(got, ["w3", "w4"], "each once");
        let jobs = store.list_outbox(None, 10).await.unwrap();
        let mut attempts: Vec<(String, i32)> = jobs.iter().map(|j| (j.payload["credentialId"].as_str().unwrap().to_owned(), j.attempts)).collect();
        attempts.sort();
        assert_eq!(attempts, [("w1".into(), 1), ("w2".into(), 1), ("w3".into(), 1), ("w4".into(), 1)], "given back, not counted as attempts");
    }

    async fn an_idle_dispatcher_wakes_when_the_store_says_a_job_was_queued(db: TestDb) {
        // One connection in the pool: listening must not take it from the lanes.
        let store = brevet::store::connect(&db.url, 1).await.unwrap();
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        record_with_copies(&store, &["w1"], 1).await;
        // An hour between looks: a job queued later reaches Google within the test only if the
        // store's word that it was queued wakes the lanes (Postgres; SQLite has none, and polls).
        let dispatcher = dispatcher(&store, &google, "d1", 5).with_lanes(2);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(async move {
            dispatcher.run(Duration::from_secs(3600), async { let _ = stopped.await; }).await;
        });
        // The first look, which comes after listening began, delivers w1.
        let wait_for = |count: usize| {
            let google = &google;
            async move {
                for _ in 0..300 {
                    if google.accepted().len() >= count {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                false
            }
        };
        assert!(wait_for(1).await, "the first look delivers the job queued before it");
        match db.backend {
            brevet::config::Backend::Postgres => {
                record_with_copies(&store, &["w2"], 1).await;
                assert!(wait_for(2).await, "a job queued while the lanes wait wakes them");
                record_with_copies(&store, &["w3"], 1).await;
                assert!(wait_for(3).await, "and again");
                let copies: Vec<String> = delivered(&google).into_iter().map(|(_, copy)| copy).collect();
                assert_eq!(copies, ["w1", "w2", "w3"]);
            }
            brevet::config::Backend::Sqlite => {
                assert!(jobs::listen(&store).await.unwrap().is_none(), "SQLite has no word to give");
            }
        }
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), running).await.expect("the lanes stop when told").unwrap();
    }

    async fn a_dispatcher_vacuums_the_outbox_after_enough_deliveries(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        for i in 0..12 {
            record_with_copies(&store, &[format!("w{i:02}").as_str()], 1).await;
        }
        // Postgres counts manual vacuums per table; SQLite has nothing to tidy.
        let postgres = match db.backend {
            brevet::config::Backend::Postgres => Some(sqlx::PgPool::connect(db.url.expose()).await.unwrap()),
            brevet::config::Backend::Sqlite => None,
        };
        let vacuums = || async {
            let pool = postgres.as_ref()?;
            let count: i64 = sqlx::query_scalar("select vacuum_count from pg_stat_user_tables where relname = 'outbox'")
                .fetch_one(pool)
                .await
                .unwrap();
            Some(count)
        };
        let before = vacuums().await;
        let dispatcher = dispatcher(&store, &google, "d1", 5).with_batches(4, Duration::from_secs(2)).with_tidy_every(10);
        let steps = dispatcher.drain().await.unwrap();
        assert_eq!(steps.len(), 12);
        assert_eq!(google.accepted().len(), 12);
        if let Some(before) = before {
            let mut after = before;
            for _ in 0..100 {
                after = vacuums().await.unwrap();
                if after > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(after, before + 1, "one vacuum after the 10th delivery, none yet for the last 2");
        }
    }

    async fn two_batching_dispatchers_deliver_every_copy_once(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        let copies: Vec<String> = (0..40).map(|i| format!("w{i:02}")).collect();
        for copy in &copies {
            record_with_copies(&store, &[copy.as_str()], 2).await;
        }
        let batching = |name| dispatcher(&store, &google, name, 5).with_batches(6, Duration::from_secs(2));
        let (a, b) = (batching("a"), batching("b"));
        let (steps_a, steps_b) = tokio::join!(a.drain(), b.drain());
        let (steps_a, steps_b) = (steps_a.unwrap(), steps_b.unwrap());
        assert_eq!(steps_a.len() + steps_b.len(), 40, "a: {steps_a:?} b: {steps_b:?}");
        assert!(steps_a.iter().chain(&steps_b).all(|s| matches!(s, Step::Delivered(_))));
        let got: Vec<String> = delivered(&google).into_iter().map(|(_, c)| c).collect();
        assert_eq!(got, copies, "every copy notified exactly once");
        assert!(store.list_outbox(Some("pending"), 100).await.unwrap().is_empty());
    }
}

both_stores! {
    async fn a_worker_killed_mid_dispatch_is_replaced_and_nothing_is_lost(db: TestDb) {
        let store = db.store().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        google.behave(&[Behaviour::Hang], Behaviour::Accept);
        record_with_copies(&store, &["w1"], 1).await;
        let worker = || {
            let mut command = crate::support::process::brevet(&db.dir);
            command
                .env("BREVET_DATABASE_URL", db.url.expose())
                .env("BREVET_GOOGLE__BASE_URL", google.base_url())
                .env("BREVET_GOOGLE__ISSUER_ID", ISSUER)
                .env("BREVET_GOOGLE__TIMEOUT_SECS", "5")
                .env("BREVET_OUTBOX__LEASE_SECS", "6")
                .env("BREVET_OUTBOX__POLL_INTERVAL_MS", "100")
                .env("BREVET_OUTBOX__BACKOFF_BASE_MS", "0");
            crate::support::process::Server::spawn(command, "worker")
        };
        let first = worker();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while google.received() == 0 {
            assert!(std::time::Instant::now() < deadline, "the first worker never called Google");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // SIGKILL while the call is in flight: no chance to record anything.
        first.kill_hard();
        let leased = store.list_outbox(Some("pending"), 10).await.unwrap();
        assert_eq!((leased.len(), leased[0].attempts), (1, 1), "the job is still pending, claimed once");

        let second = worker();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while google.accepted().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the job was not redelivered after the lease expired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (code, _) = second.terminate();
        assert_eq!(code, Some(0));
        assert_eq!(delivered(&google), [("device-w1".to_owned(), "w1".to_owned())]);
        let done = store.list_outbox(Some("done"), 10).await.unwrap();
        assert_eq!((done.len(), done[0].attempts), (1, 2));
    }

    async fn staff_see_dead_jobs_in_metrics_and_requeue_them(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        google.behave(&[], Behaviour::Reject);
        record_with_copies(&app.store, &["w1"], 1).await;
        dispatcher(&app.store, &google, "d1", 3).drain().await.unwrap();
        let metrics = app.get("/metrics", None).await.text();
        assert!(metrics.lines().any(|l| l == r#"brevet_outbox_jobs{state="dead"} 1"#), "{metrics}");
        let dead = app.get("/admin/v1/outbox?state=dead", Some(&admin)).await.json();
        let id = dead["jobs"][0]["outboxId"].as_str().unwrap().to_owned();
        assert!(dead["jobs"][0]["lastError"].as_str().unwrap().contains("unknown credentialId"));
        let retried = app.post_raw(&format!("/admin/v1/outbox/{id}/retry"), "", Some(&admin)).await;
        assert_eq!(retried.status, axum::http::StatusCode::NO_CONTENT);
        let again = app.post_raw(&format!("/admin/v1/outbox/{id}/retry"), "", Some(&admin)).await;
        assert_eq!(again.status, axum::http::StatusCode::NOT_FOUND);
        let metrics = app.get("/metrics", None).await.text();
        assert!(metrics.lines().any(|l| l == r#"brevet_outbox_jobs{state="pending"} 1"#), "{metrics}");
    }
}
