//! Credential records, versions, optimistic concurrency and the outbox rows changes enqueue, on
//! both stores.

use brevet::clock::Clock;
use brevet::domain::credential::{CredentialRecord, CredentialStatus};
use brevet::mdoc::doctype::DocTypes;
use brevet::service::credentials::{self as records, ChangeError, NewHolderData};
use brevet::store::{Actor, CredentialFilter, JobKind, JobState, Provenance, Store};
use serde_json::json;
use uuid::Uuid;

use crate::support::inspect::{bind_copy, Inspect};
use crate::support::TestDb;

async fn update(
    store: &Store,
    id: Uuid,
    expected: i32,
    holder_data: &serde_json::Value,
) -> Result<CredentialRecord, ChangeError> {
    let new = NewHolderData {
        credential_id: id,
        expected_version: expected,
        holder_data,
    };
    let updated = records::update(store, &Clock::system(), &DocTypes::builtin(), new, BY).await?;
    Ok(updated.into_record())
}

async fn revoke(store: &Store, id: Uuid, reason: &str) -> Result<CredentialRecord, ChangeError> {
    records::revoke(store, &Clock::system(), id, reason, BY).await
}

const BY: Provenance<'static> = Provenance {
    actor: &Actor::System,
    request_id: Some("req-9"),
};

both_stores! {
    async fn versions_are_immutable_and_each_change_enqueues_a_notification(db: TestDb) {
        let store = db.store().await;
        let created = records::create(&store, "org.iso.18013.5.1.mDL", &json!({ "n": { "family_name": "Doe" } }), BY).await.unwrap();
        assert_eq!((created.status, created.current_version_number), (CredentialStatus::Active, 1));
        assert!(store.list_outbox(None, 10).await.unwrap().is_empty(), "creation alone notifies nobody");
        // Two device copies, one of them bound twice (a retried provisionCredential).
        for (copy, device) in [("w-1", "dev-a"), ("w-2", "dev-b"), ("w-1", "dev-a")] {
            bind_copy(&store, copy, created.credential_id, device).await;
        }

        let updated = update(&store, created.credential_id, 1, &json!({ "n": { "family_name": "Roe" } }))
            .await
            .unwrap();
        assert_eq!(updated.current_version_number, 2);
        assert_ne!(updated.current_version_id, created.current_version_id);
        assert_eq!(updated.holder_data, json!({ "n": { "family_name": "Roe" } }));
        assert_eq!(store.get_credential(created.credential_id).await.unwrap().unwrap(), updated);

        let versions = store.list_versions(created.credential_id).await.unwrap();
        assert_eq!(versions.iter().map(|v| v.version_number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(versions[0].holder_data, json!({ "n": { "family_name": "Doe" } }), "version 1 is unchanged");
        assert_eq!(versions[0].credential_version_id, created.current_version_id);
        assert_eq!(versions[1].credential_version_id, updated.current_version_id);

        let mut jobs = store.list_outbox(Some("pending"), 10).await.unwrap();
        jobs.sort_by(|a, b| a.coalesce_key.cmp(&b.coalesce_key));
        assert_eq!(jobs.len(), 2, "one notification per device copy");
        assert!(jobs.iter().all(|j| j.kind == JobKind::NotifyCredentialStatus && j.state == JobState::Pending && j.attempts == 0));
        assert_eq!(jobs[0].payload, json!({ "deviceReferenceId": "dev-a", "credentialId": "w-1" }));
        assert_eq!(jobs[1].payload, json!({ "deviceReferenceId": "dev-b", "credentialId": "w-2" }));
        assert_eq!(jobs[0].coalesce_key.as_deref(), Some("wallet_credential:w-1"));

        let audit = store.list_audit(10).await.unwrap();
        let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["credential.update", "credential.create"]);
        assert!(audit.iter().all(|a| a.target_id == created.credential_id.to_string() && a.request_id.as_deref() == Some("req-9")));
    }

    async fn stale_versions_and_revoked_records_change_nothing(db: TestDb) {
        let store = db.store().await;
        let id = records::create(&store, "t", &json!({ "v": 1 }), BY).await.unwrap().credential_id;
        bind_copy(&store, "w-1", id, "dev-a").await;
        update(&store, id, 1, &json!({ "v": 2 })).await.unwrap();
        let counts = || async {
            (
                store.list_versions(id).await.unwrap().len(),
                store.list_outbox(None, 100).await.unwrap().len(),
                store.list_audit(100).await.unwrap().len(),
            )
        };
        let before = counts().await;
        match update(&store, id, 1, &json!({ "v": 3 })).await {
            Err(ChangeError::VersionMismatch { current: 2 }) => {}
            other => panic!("expected a version mismatch, got {other:?}"),
        }
        assert_eq!(counts().await, before);

        let revoked = revoke(&store, id, "licence withdrawn by court order").await.unwrap();
        assert_eq!(revoked.status, CredentialStatus::Revoked);
        assert_eq!(revoked.status_reason.as_deref(), Some("licence withdrawn by court order"));
        assert_eq!(revoked.current_version_number, 2, "revocation writes no version");
        let after_revoke = counts().await;
        assert_eq!(after_revoke, (before.0, before.1 + 1, before.2 + 1));

        let err = update(&store, id, 2, &json!({ "v": 3 })).await.unwrap_err();
        assert_eq!(err.to_string(), "a revoked credential cannot be updated");
        let err = revoke(&store, id, "again").await.unwrap_err();
        assert_eq!(err.to_string(), "a revoked credential cannot be revoked again");
        assert_eq!(counts().await, after_revoke);

        let missing = uuid::Uuid::now_v7();
        assert!(matches!(update(&store, missing, 1, &json!({})).await, Err(ChangeError::NotFound)));
        assert!(matches!(revoke(&store, missing, "x").await, Err(ChangeError::NotFound)));
        assert!(store.get_credential(missing).await.unwrap().is_none());
        assert!(store.list_versions(missing).await.unwrap().is_empty());
    }

    async fn concurrent_edits_of_one_version_let_exactly_one_win(db: TestDb) {
        let store = db.store().await;
        let id = records::create(&store, "t", &json!({ "v": 0 }), BY).await.unwrap().credential_id;
        bind_copy(&store, "w-1", id, "dev-a").await;
        let attempts = (0..6).map(|i| {
            let store = store.clone();
            async move { update(&store, id, 1, &json!({ "v": i })).await }
        });
        let results = futures::future::join_all(attempts).await;
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{results:?}");
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, ChangeError::VersionMismatch { current: 2 })));
        assert_eq!(store.list_versions(id).await.unwrap().len(), 2);
        assert_eq!(store.list_outbox(None, 10).await.unwrap().len(), 1);
    }

    async fn listing_filters_and_pages_in_creation_order(db: TestDb) {
        let store = db.store().await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let doc_type = if i % 2 == 0 { "a" } else { "b" };
            ids.push(records::create(&store, doc_type, &json!({ "i": i }), BY).await.unwrap().credential_id);
        }
        revoke(&store, ids[4], "test").await.unwrap();
        let page = |filter: CredentialFilter| {
            let store = store.clone();
            async move { store.list_credentials(&filter).await.unwrap().iter().map(|r| r.credential_id).collect::<Vec<_>>() }
        };
        assert_eq!(page(CredentialFilter { limit: 2, ..Default::default() }).await, ids[..2]);
        assert_eq!(page(CredentialFilter { limit: 2, after: Some(ids[1]), ..Default::default() }).await, ids[2..4]);
        assert_eq!(page(CredentialFilter { limit: 2, after: Some(ids[3]), ..Default::default() }).await, ids[4..]);
        assert_eq!(page(CredentialFilter { limit: 10, doc_type: Some("a".into()), ..Default::default() }).await, [ids[0], ids[2], ids[4]]);
        let active_a = CredentialFilter { limit: 10, doc_type: Some("a".into()), status: Some(CredentialStatus::Active), ..Default::default() };
        assert_eq!(page(active_a).await, [ids[0], ids[2]]);
        assert_eq!(page(CredentialFilter { limit: 10, status: Some(CredentialStatus::Revoked), ..Default::default() }).await, [ids[4]]);
    }
}
