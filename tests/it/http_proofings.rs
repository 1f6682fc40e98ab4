//! Proofing review through the admin API, on both stores, and its notification reaching Google.

use axum::http::StatusCode;
use brevet::protocol::ids::{DeviceReferenceId, ProofingId};
use brevet::store::{proofings, JobKind, ProofingInsert, Store};
use serde_json::json;

use crate::mdoc::sample_mdl;
use crate::support::inspect::{insert_proofing, Inspect};
use crate::support::TestDb;

async fn record(
    store: &Store,
    id: &str,
    device: &str,
    evidence: &serde_json::Value,
) -> ProofingInsert {
    let (id, device) = (
        ProofingId::parse(id).unwrap(),
        DeviceReferenceId::parse(device).unwrap(),
    );
    proofings::insert(&mut store.db(), &id, &device, evidence)
        .await
        .unwrap()
}

both_stores! {
    async fn proofings_are_recorded_once_per_id(db: TestDb) {
        let store = db.store().await;
        let evidence = json!([{ "preAuthorizedCode": "ABC-123" }]);
        assert!(matches!(record(&store, "p-1", "dev-1", &evidence).await, ProofingInsert::Created(_)));
        match record(&store, "p-1", "dev-1", &json!([])).await {
            ProofingInsert::Existing(record) => assert_eq!(record.evidence, evidence, "a retry changes nothing"),
            other => panic!("{other:?}"),
        }
        assert_eq!(record(&store, "p-1", "dev-2", &evidence).await, ProofingInsert::OtherDevice);
        assert_eq!(store.list_proofings(None, 10).await.unwrap().len(), 1);
    }

    async fn staff_review_proofings_and_google_is_told(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let viewer = app.post("/admin/v1/tokens", &json!({ "name": "v", "role": "viewer" }), Some(&admin)).await.json()["token"].as_str().unwrap().to_owned();
        for (id, device) in [("p-1", "dev-1"), ("p-2", "dev-2")] {
            insert_proofing(&app.store, id, device, &json!([{ "preAuthorizedCode": "secret-code" }])).await;
        }
        let queue = app.get("/admin/v1/proofings?status=pending", Some(&viewer)).await;
        assert_eq!(queue.status, StatusCode::OK);
        let queue = queue.json();
        assert_eq!(queue["proofings"].as_array().unwrap().len(), 2);
        assert_eq!(queue["proofings"][0]["wireStatus"], json!({ "pending": {} }));
        assert!(!queue.to_string().contains("secret-code"), "the queue shows no evidence");
        assert_eq!(app.get("/admin/v1/proofings/p-1", Some(&viewer)).await.status, StatusCode::FORBIDDEN);
        let one = app.get("/admin/v1/proofings/p-1", Some(&admin)).await.json();
        assert_eq!(one["evidence"], json!([{ "preAuthorizedCode": "secret-code" }]));

        let review = |id: &str, body: serde_json::Value| {
            let path = format!("/admin/v1/proofings/{id}/review");
            let admin = admin.clone();
            let app = &app;
            async move { app.post(&path, &body, Some(&admin)).await }
        };
        let unknown = review("p-1", json!({ "decision": "approve", "credentialId": uuid::Uuid::now_v7() })).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown.json()["error"]["message"], "no such credential");
        let credential = app.post("/admin/v1/credentials", &json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": sample_mdl() }), Some(&admin)).await.json();
        let credential_id = credential["credentialId"].as_str().unwrap().to_owned();

        let approved = review("p-1", json!({ "decision": "approve", "credentialId": credential_id })).await;
        assert_eq!(approved.status, StatusCode::OK, "{}", approved.text());
        assert_eq!(approved.json()["status"], "accepted");
        assert_eq!(approved.json()["credentialId"], credential_id.as_str());
        assert_eq!(approved.json()["wireStatus"], json!({ "accepted": {} }));

        let rejected = review("p-1", json!({ "decision": "reject", "reason": "livenessCheckFailure" })).await;
        assert_eq!(rejected.json()["wireStatus"], json!({ "rejected": { "rejection": { "livenessCheckFailure": {} } } }));
        let again = review("p-1", json!({ "decision": "reject", "reason": "evidenceMismatch" })).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert_eq!(again.json()["error"]["message"], "the proofing is rejected and cannot be rejected");
        let corrected = review("p-1", json!({ "decision": "approve", "credentialId": credential_id })).await;
        assert_eq!(corrected.json()["status"], "accepted", "staff may correct a rejection");

        let http_url = review("p-2", json!({ "decision": "challenge", "challenge": { "kind": "issuerUrlVisit", "url": "http://dmv.example" } })).await;
        assert_eq!(http_url.status, StatusCode::BAD_REQUEST);
        let challenged = review("p-2", json!({ "decision": "challenge", "challenge": { "kind": "issuerUrlVisit", "url": "https://dmv.example/verify" } })).await;
        assert_eq!(challenged.json()["wireStatus"], json!({ "challenged": { "issuerUrlVisit": { "url": "https://dmv.example/verify" } } }));
        for bad in [json!({ "decision": "reject", "reason": "tooUgly" }), json!({ "decision": "maybe" }), json!({ "decision": "revoke", "extra": 1 })] {
            assert_eq!(review("p-2", bad.clone()).await.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(review("p-404", json!({ "decision": "revoke" })).await.status, StatusCode::NOT_FOUND);

        let audit = app.store.list_audit(20).await.unwrap();
        let actions: Vec<&str> = audit.iter().filter(|a| a.target_kind == "proofing").map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["proofing.challenged", "proofing.accepted", "proofing.rejected", "proofing.accepted"]);

        // The four decisions coalesce into one notification per proofing.
        let google = brevet::sim::google::FakeGoogle::start("Utopia_US_MDL").await.unwrap();
        let config = brevet::config::GoogleConfig { base_url: Some(google.base_url()), issuer_id: Some("Utopia_US_MDL".into()), ..Default::default() };
        let client = std::sync::Arc::new(brevet::google::GoogleClient::from_config(&config).unwrap().unwrap());
        let policy = brevet::outbox::RetryPolicy { max_attempts: 3, base: std::time::Duration::ZERO, max: std::time::Duration::ZERO };
        let dispatcher = brevet::outbox::Dispatcher::new(app.store.clone(), client, "d".into(), std::time::Duration::from_secs(30), policy);
        dispatcher.drain().await.unwrap();
        let mut sent: Vec<(String, String, String)> = google.accepted().into_iter().map(|n| (n.method, n.device_reference_id, n.subject_id)).collect();
        sent.sort();
        assert_eq!(sent, [
            ("notifyProofingStatusUpdateAvailable".into(), "dev-1".into(), "p-1".into()),
            ("notifyProofingStatusUpdateAvailable".into(), "dev-2".into(), "p-2".into()),
        ]);
    }
}

both_stores! {
    async fn unanswered_challenges_expire_and_google_is_told(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        for id in ["old", "fresh", "waiting"] {
            insert_proofing(&app.store, id, &format!("dev-{id}"), &json!([])).await;
        }
        for id in ["old", "fresh"] {
            let challenged = app.post(&format!("/admin/v1/proofings/{id}/review"), &json!({ "decision": "challenge", "challenge": { "kind": "additionalTimeRequired" } }), Some(&admin)).await;
            assert_eq!(challenged.status, StatusCode::OK, "{}", challenged.text());
        }
        let clock = brevet::clock::Clock::manual(chrono::Utc::now());
        let month = std::time::Duration::from_secs(30 * 86_400);
        let sweep = brevet::challenge_expiry::ChallengeExpiry::new(app.store.clone(), clock.clone(), month);
        // nothing is 30 days old yet
        assert!(sweep.run_once().await.unwrap().is_empty());
        let jobs_before = app.store.list_outbox(None, 100).await.unwrap().len();
        // a month and a minute later both challenges are overdue; the pending proofing is not touched
        clock.advance(month + std::time::Duration::from_secs(60));
        let mut expired = sweep.run_once().await.unwrap();
        expired.sort();
        assert_eq!(expired, ["fresh", "old"]);
        let old = app.get("/admin/v1/proofings/old", Some(&admin)).await.json();
        assert_eq!(old["status"], "expired");
        assert_eq!(old["wireStatus"], json!({ "expired": {} }));
        assert_eq!(app.get("/admin/v1/proofings/waiting", Some(&admin)).await.json()["status"], "pending");
        let jobs = app.store.list_outbox(None, 100).await.unwrap();
        assert_eq!(jobs.len(), jobs_before + 2, "one notifyProofingStatusUpdateAvailable each");
        assert!(jobs.iter().any(|j| j.kind == JobKind::NotifyProofingStatus && j.payload["proofingId"] == "old" && j.payload["deviceReferenceId"] == "dev-old"));
        let audit = app.store.list_audit(10).await.unwrap();
        assert_eq!(audit.iter().filter(|e| e.action == "proofing.expired" && e.actor == "system").count(), 2);
        // expired is final: a second sweep finds nothing, and staff cannot challenge it again
        assert!(sweep.run_once().await.unwrap().is_empty());
        let again = app.post("/admin/v1/proofings/old/review", &json!({ "decision": "challenge", "challenge": { "kind": "additionalTimeRequired" } }), Some(&admin)).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
    }
}
