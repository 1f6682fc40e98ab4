//! Credential records, versions, optimistic concurrency and the outbox rows changes enqueue, on
//! both stores.

use brevet::clock::Clock;
use brevet::domain::credential::{CredentialRecord, CredentialStatus};
use brevet::mdoc::doctype::DocTypes;
use brevet::service::credentials::{self as records, ChangeError, NewHolderData, RecordOutcome};
use brevet::store::{Actor, CredentialFilter, JobKind, JobState, Provenance, Store};
use serde_json::json;
use uuid::Uuid;

use crate::mdoc::sample_mdl;
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

    async fn a_set_of_records_changes_together_with_one_job_per_live_copy(db: TestDb) {
        const NS: &str = "org.iso.18013.5.1";
        let store = db.store().await;
        let (clock, types) = (Clock::system(), DocTypes::builtin());
        let mdl = "org.iso.18013.5.1.mDL";
        let create = |holder: serde_json::Value| {
            let store = store.clone();
            async move { records::create(&store, mdl, &holder, BY).await.unwrap().credential_id }
        };
        let two_copies = create(sample_mdl()).await;
        let one_copy = create(sample_mdl()).await;
        let no_copy = create(sample_mdl()).await;
        let mut moved = sample_mdl();
        moved[NS]["resident_address"] = json!("1 Format Street");
        let already = create(moved).await;
        let revoked = create(sample_mdl()).await;
        revoke(&store, revoked, "test").await.unwrap();
        let unknown = Uuid::now_v7();
        for (copy, record, device) in [("w-1", two_copies, "dev-a"), ("w-2", two_copies, "dev-b"), ("w-3", one_copy, "dev-a"), ("w-4", revoked, "dev-c")] {
            bind_copy(&store, copy, record, device).await;
        }
        let outbox_before = store.list_outbox(None, 100).await.unwrap().len();

        let address = |to: &'static str| move |holder: &serde_json::Value| {
            let mut holder = holder.clone();
            holder[NS]["resident_address"] = json!(to);
            holder
        };
        let ids = [no_copy, unknown, revoked, already, one_copy, two_copies];
        let mut tx = store.begin().await.unwrap();
        let outcomes = records::update_each_in(&mut tx, &clock, &types, &ids, address("1 Format Street"), BY).await.unwrap();
        tx.commit().await.unwrap();

        let mut expected = vec![
            (no_copy, RecordOutcome::Changed),
            (unknown, RecordOutcome::Refused("no such credential".into())),
            (revoked, RecordOutcome::Refused("a revoked credential cannot be updated".into())),
            (already, RecordOutcome::Unchanged),
            (one_copy, RecordOutcome::Changed),
            (two_copies, RecordOutcome::Changed),
        ];
        expected.sort_by_key(|(id, _)| *id);
        assert_eq!(outcomes, expected, "every id once, in id order");
        let kept = sample_mdl()[NS]["resident_address"].clone();
        assert_ne!(kept, "1 Format Street");
        for (id, version, address) in [(no_copy, 2, json!("1 Format Street")), (one_copy, 2, json!("1 Format Street")), (two_copies, 2, json!("1 Format Street")), (already, 1, json!("1 Format Street")), (revoked, 1, kept)] {
            let record = store.get_credential(id).await.unwrap().unwrap();
            assert_eq!(record.current_version_number, version);
            assert_eq!(record.holder_data[NS]["resident_address"], address, "{id}");
            let versions = store.list_versions(id).await.unwrap();
            assert_eq!(versions.len() as i32, version);
            assert_eq!(versions.last().unwrap().credential_version_id, record.current_version_id);
            assert_eq!(versions.last().unwrap().holder_data, record.holder_data);
        }
        let jobs = store.list_outbox(None, 100).await.unwrap();
        let mut told: Vec<String> = jobs[..jobs.len() - outbox_before].iter().map(|j| j.payload.to_string()).collect();
        told.sort();
        assert_eq!(told, [
            json!({ "deviceReferenceId": "dev-a", "credentialId": "w-1" }).to_string(),
            json!({ "deviceReferenceId": "dev-b", "credentialId": "w-2" }).to_string(),
            json!({ "deviceReferenceId": "dev-a", "credentialId": "w-3" }).to_string(),
        ], "one job per live copy of a changed record, none for the revoked record's copy");
        let audit = store.list_audit(100).await.unwrap();
        let mut audited: Vec<String> = audit.iter().take_while(|e| e.action == "credential.update").map(|e| e.target_id.clone()).collect();
        audited.sort();
        let mut changed = vec![no_copy.to_string(), one_copy.to_string(), two_copies.to_string()];
        changed.sort();
        assert_eq!(audited, changed, "one entry per changed record");

        // A change committed while the set waits for its lock is built on, not overwritten.
        let mut holder = store.get_credential(one_copy).await.unwrap().unwrap().holder_data;
        holder[NS]["given_name"] = json!("Concurrent");
        let mut first = store.begin().await.unwrap();
        let staff = NewHolderData { credential_id: one_copy, expected_version: 2, holder_data: &holder };
        records::update_in(&mut first, &clock, &types, staff, BY).await.unwrap();
        let waiting = tokio::spawn({
            let (store, clock, types) = (store.clone(), clock.clone(), types.clone());
            async move {
                let mut tx = store.begin().await.unwrap();
                let outcomes = records::update_each_in(&mut tx, &clock, &types, &[one_copy], address("2 Format Street"), BY).await.unwrap();
                tx.commit().await.unwrap();
                outcomes
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "the set waits for the record's lock");
        first.commit().await.unwrap();
        assert_eq!(waiting.await.unwrap(), [(one_copy, RecordOutcome::Changed)]);
        let record = store.get_credential(one_copy).await.unwrap().unwrap();
        assert_eq!(record.current_version_number, 4);
        assert_eq!((record.holder_data[NS]["given_name"].as_str(), record.holder_data[NS]["resident_address"].as_str()), (Some("Concurrent"), Some("2 Format Street")));
    }
}
