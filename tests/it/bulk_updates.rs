//! Bulk updates through the admin API on both stores: a merge applied to a filter's records in
//! batches, one audited version per record that changed, none for a record it leaves as it was,
//! problems named per record, and the work held by one replica at a time and resumed from its
//! cursor.

use axum::http::StatusCode;
use brevet::service::bulk_updates::{work_one_batch, BATCH};
use serde_json::json;

use crate::mdoc::sample_mdl;
use crate::support::inspect::Inspect;
use crate::support::TestDb;

const NS: &str = "org.iso.18013.5.1";

both_stores! {
    async fn a_bulk_update_merges_into_every_selected_record_once(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let create = |holder: serde_json::Value| {
            let (app, admin) = (&app, admin.clone());
            async move {
                let made = app.post("/admin/v1/credentials", &json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": holder }), Some(&admin)).await;
                assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
                made.json()["credentialId"].as_str().unwrap().to_owned()
            }
        };
        let mut ids = Vec::new();
        for _ in 0..(BATCH as usize + 3) {
            ids.push(create(sample_mdl()).await);
        }
        let mut already = sample_mdl();
        already[NS]["resident_address"] = json!("1 Format Street");
        already[NS].as_object_mut().unwrap().remove("height");
        let unchanged = create(already).await;
        let revoked = create(sample_mdl()).await;
        app.post(&format!("/admin/v1/credentials/{revoked}/revoke"), &json!({ "reason": "test" }), Some(&admin)).await;

        // Bad requests change nothing.
        for (body, message) in [
            (json!({ "merge": { NS: { "a": 1 } } }), "give credentialIds, or a filter: docType and/or status"),
            (json!({ "status": "active", "merge": [] }), "merge must be an object of namespaces, each an object of elements"),
            (json!({ "credentialIds": [revoked], "status": "active", "merge": { NS: {} } }), "give credentialIds or a filter (docType, status), not both"),
            (json!({ "docType": "no.such.type", "merge": { NS: {} } }), "unknown doc type \"no.such.type\""),
        ] {
            let refused = app.post("/admin/v1/credentials/bulk-updates", &body, Some(&admin)).await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(refused.json()["error"]["message"], message);
        }

        // Every active mDL: a new address format, and height removed.
        let started = app.post("/admin/v1/credentials/bulk-updates", &json!({
            "docType": "org.iso.18013.5.1.mDL", "status": "active",
            "merge": { NS: { "resident_address": "1 Format Street", "height": null } },
        }), Some(&admin)).await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text());
        let job = started.json();
        let location = started.headers["location"].to_str().unwrap().to_owned();
        assert_eq!(job["state"], "running");
        assert_eq!(job["total"], BATCH as i64 + 4, "every active mDL, the revoked one aside");

        // One replica works a batch; another cannot take the job while the first holds it.
        let services = app_services(&db.config(), &app).await;
        assert!(work_one_batch(&services, "replica-a").await.unwrap());
        let halfway = app.get(&location, Some(&admin)).await.json();
        assert_eq!((halfway["state"].as_str(), halfway["selected"].as_i64()), (Some("running"), Some(BATCH as i64)));
        assert!(!work_one_batch(&services, "replica-b").await.unwrap(), "the lease is replica-a's");
        assert!(work_one_batch(&services, "replica-a").await.unwrap());
        assert!(!work_one_batch(&services, "replica-a").await.unwrap(), "nothing left");

        let done = app.get(&location, Some(&admin)).await.json();
        assert_eq!(done["state"], "done");
        assert_eq!((done["selected"].as_i64(), done["changed"].as_i64(), done["unchanged"].as_i64(), done["failed"].as_i64()), (Some(BATCH as i64 + 4), Some(BATCH as i64 + 3), Some(1), Some(0)));
        for id in ids.iter().chain([&unchanged]) {
            let record = app.get(&format!("/admin/v1/credentials/{id}"), Some(&admin)).await.json();
            assert_eq!(record["holderData"][NS]["resident_address"], "1 Format Street");
            assert!(record["holderData"][NS].get("height").is_none());
            assert_eq!(record["versionNumber"], if *id == unchanged { 1 } else { 2 }, "one version per changed record");
        }
        let audit = app.store.list_audit(1000).await.unwrap();
        let bulk_id = job["bulkUpdateId"].as_str().unwrap();
        let versions: Vec<_> = audit.iter().filter(|e| e.action == "credential.update").collect();
        assert_eq!(versions.len(), BATCH as usize + 3);
        assert!(versions.iter().all(|e| e.request_id.as_deref() == Some(&format!("bulk-update:{bulk_id}")) && e.actor == "bootstrap"));
        assert_eq!(audit.iter().filter(|e| e.action == "credential.bulk_update" && e.target_id == bulk_id).count(), 1);

        // A list: an unknown record and a revoked one are named, the others changed.
        let unknown = uuid::Uuid::now_v7().to_string();
        let listed = app.post("/admin/v1/credentials/bulk-updates", &json!({
            "credentialIds": [ids[0], revoked, unknown],
            "merge": { NS: { "resident_address": "2 Format Street" } },
        }), Some(&admin)).await.json();
        while work_one_batch(&services, "replica-b").await.unwrap() {}
        let listed = app.get(&format!("/admin/v1/credentials/bulk-updates/{}", listed["bulkUpdateId"].as_str().unwrap()), Some(&admin)).await.json();
        assert_eq!((listed["changed"].as_i64(), listed["failed"].as_i64()), (Some(1), Some(2)));
        let problems = listed["problems"].to_string();
        assert!(problems.contains(&unknown) && problems.contains("no such credential"), "{problems}");
        assert!(problems.contains(&revoked) && problems.contains("revoked"), "{problems}");
        let unknown_job = app.get(&format!("/admin/v1/credentials/bulk-updates/{unknown}"), Some(&admin)).await;
        assert_eq!(unknown_job.status, StatusCode::NOT_FOUND);
    }
}

both_stores! {
    async fn a_bulk_update_keeps_its_pace(db: TestDb) {
        // The operator's default pace is 50 records/s; one request names its own.
        let mut config = db.config();
        config.bulk_update.records_per_sec = 50;
        let app = db.app_with(config.clone()).await;
        let admin = app.admin_token().await;
        let mut ids = Vec::new();
        for _ in 0..60 {
            let made = app.post("/admin/v1/credentials", &json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": sample_mdl() }), Some(&admin)).await;
            ids.push(made.json()["credentialId"].as_str().unwrap().to_owned());
        }
        let merge = json!({ NS: { "resident_address": "3 Pace Street" } });
        for pace in [5, 9, 100_001] {
            let refused = app.post("/admin/v1/credentials/bulk-updates", &json!({ "credentialIds": ids, "merge": merge, "recordsPerSecond": pace }), Some(&admin)).await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{pace}");
            assert_eq!(refused.json()["error"]["message"], "recordsPerSecond must be 0 (as fast as the store allows) or between 10 and 100000");
        }
        let unlimited = app.post("/admin/v1/credentials/bulk-updates", &json!({ "credentialIds": &ids[..1], "merge": merge, "recordsPerSecond": 0 }), Some(&admin)).await;
        assert_eq!(unlimited.json()["recordsPerSecond"], 0);
        let services = app_services(&config, &app).await;
        assert!(work_one_batch(&services, "replica-a").await.unwrap());
        assert!(!work_one_batch(&services, "replica-a").await.unwrap());

        let started = app.post("/admin/v1/credentials/bulk-updates", &json!({ "credentialIds": ids, "merge": merge }), Some(&admin)).await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text());
        assert_eq!(started.json()["recordsPerSecond"], 50, "the operator's default");
        let location = started.headers["location"].to_str().unwrap().to_owned();

        // At 50 records/s a batch is a second's worth: 50 records, taking at least a second.
        let clock = std::time::Instant::now();
        assert!(work_one_batch(&services, "replica-a").await.unwrap());
        let first = clock.elapsed();
        let halfway = app.get(&location, Some(&admin)).await.json();
        assert_eq!((halfway["selected"].as_i64(), halfway["changed"].as_i64(), halfway["unchanged"].as_i64()), (Some(50), Some(49), Some(1)));
        assert!(first >= std::time::Duration::from_secs(1), "50 records at 50/s took {first:?}");
        // The last 10 records: at least a fifth of a second.
        let clock = std::time::Instant::now();
        assert!(work_one_batch(&services, "replica-a").await.unwrap());
        let second = clock.elapsed();
        assert!(second >= std::time::Duration::from_millis(200), "10 records at 50/s took {second:?}");
        let done = app.get(&location, Some(&admin)).await.json();
        assert_eq!((done["state"].as_str(), done["selected"].as_i64(), done["changed"].as_i64()), (Some("done"), Some(60), Some(59)));
    }
}

/// The services behind the app, for the background work the test drives by hand.
async fn app_services(
    config: &brevet::config::Config,
    app: &crate::support::http::TestApp,
) -> brevet::service::Services {
    brevet::http::AppState::new(app.store.clone(), config).services
}
