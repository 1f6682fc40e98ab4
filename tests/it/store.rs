//! The store contract, run against both stores.

use brevet::domain::admin_token::{Role, TokenHash, TokenSecret};
use brevet::service::tokens;
use brevet::store::{Actor, NewAdminToken, Provenance, StoreError};

use crate::support::inspect::Inspect;
use crate::support::TestDb;

fn new_token(name: &str, role: Role) -> (TokenSecret, NewAdminToken) {
    let secret = TokenSecret::generate();
    let token = NewAdminToken {
        name: name.to_owned(),
        role,
        token_hash: secret.hash(),
    };
    (secret, token)
}

both_stores! {
    async fn migrations_create_every_table(db: TestDb) {
        let store = db.store().await;
        assert_eq!(store.backend(), db.backend);
        store.ping().await.unwrap();
        assert_eq!(
            store.table_names().await.unwrap(),
            [
                "admin_tokens", "audit_log", "bulk_updates", "cert_processes", "console_sessions", "credential_versions", "credentials",
                "deployment_settings", "device_crls", "device_revocations", "devices", "key_activations", "mso_issuances", "outbox", "pre_authorized_codes", "proofings",
                "status_lists", "wallet_credentials",
            ]
        );
    }

    async fn migrations_are_idempotent_across_restarts(db: TestDb) {
        let first = db.store().await;
        let (_, token) = new_token("keep-me", Role::Viewer);
        tokens::create(&first, &token, Provenance::SYSTEM).await.unwrap();
        drop(first);
        // Connecting again re-runs the migrator: nothing to apply, nothing lost.
        let second = db.store().await;
        let tokens = second.list_admin_tokens().await.unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].role, Role::Viewer);
    }

    async fn bootstrap_token_is_created_once_and_audited(db: TestDb) {
        let store = db.store().await;
        let first = tokens::bootstrap(&store).await.unwrap().expect("first start creates a token");
        assert!(tokens::bootstrap(&store).await.unwrap().is_none(), "second start must not");
        let tokens = store.list_admin_tokens().await.unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!((tokens[0].name.as_str(), tokens[0].role), ("bootstrap", Role::Admin));
        assert_eq!(tokens[0].revoked_at, None);
        let found = tokens::authenticate(&store, &first.hash()).await.unwrap().expect("token authenticates");
        assert_eq!(found.admin_token_id, tokens[0].admin_token_id);
        let audit = store.list_audit(10).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].actor, "system");
        assert_eq!(audit[0].admin_token_id, None);
        assert_eq!(audit[0].action, "admin_token.bootstrap");
        assert_eq!(audit[0].target_kind, "admin_token");
        assert_eq!(audit[0].target_id, tokens[0].admin_token_id.to_string());
    }

    async fn concurrent_first_starts_create_one_token(db: TestDb) {
        // Several processes starting at once on an empty store: exactly one bootstrap token.
        let stores = futures::future::join_all((0..4).map(|_| db.store())).await;
        let results = futures::future::join_all(
            stores.iter().map(|store| tokens::bootstrap(store)),
        )
        .await;
        let created = results.into_iter().map(|r| r.unwrap()).filter(Option::is_some).count();
        assert_eq!(created, 1);
        assert_eq!(stores[0].list_admin_tokens().await.unwrap().len(), 1);
    }

    async fn bootstrap_is_skipped_when_any_token_exists(db: TestDb) {
        let store = db.store().await;
        let (_, token) = new_token("ops", Role::Operator);
        tokens::create(&store, &token, Provenance { actor: &Actor::System, request_id: None }).await.unwrap();
        assert!(tokens::bootstrap(&store).await.unwrap().is_none());
    }

    async fn created_tokens_authenticate_and_names_are_unique(db: TestDb) {
        let store = db.store().await;
        let entry = Provenance { actor: &Actor::System, request_id: Some("req-1") };
        let (secret, token) = new_token("clerk", Role::Operator);
        let created = tokens::create(&store, &token, entry).await.unwrap();
        assert_eq!((created.name.as_str(), created.role), ("clerk", Role::Operator));

        let found = tokens::authenticate(&store, &secret.hash()).await.unwrap().unwrap();
        assert_eq!(found, created);
        assert!(tokens::authenticate(&store, &TokenHash::of("brv_wrong")).await.unwrap().is_none());

        let (_, same_name) = new_token("clerk", Role::Viewer);
        match tokens::create(&store, &same_name, entry).await {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        // The failed insert left neither a token nor an audit row behind.
        assert_eq!(store.list_admin_tokens().await.unwrap().len(), 1);
        let audit = store.list_audit(10).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].target_id, created.admin_token_id.to_string());
        assert_eq!(audit[0].request_id.as_deref(), Some("req-1"));
        assert_eq!((audit[0].action.as_str(), audit[0].target_kind.as_str()), ("admin_token.create", "admin_token"));
    }
}

both_stores! {
    async fn schema_refusals_are_told_apart_from_conflicts(db: TestDb) {
        use brevet::store::credentials::{self, NewVersion};
        use brevet::store::sql::query;
        use brevet::store::Exec;
        let store = db.store().await;
        // A version of a record that does not exist: a foreign-key violation.
        let orphan = NewVersion {
            credential_version_id: uuid::Uuid::now_v7(),
            credential_id: uuid::Uuid::now_v7(),
            version_number: 1,
            holder_data: &serde_json::json!({}),
            created_by: None,
        };
        match credentials::insert_version(&mut store.db(), &orphan).await {
            Err(StoreError::Missing(_)) => {}
            other => panic!("expected a missing reference, got {other:?}"),
        }
        // A role the schema's check refuses (the typed API cannot even say it).
        let bad_role = query("insert into admin_tokens (admin_token_id, name, role, token_hash) values ($1, 'x', 'root', 'h')")
            .bind(uuid::Uuid::new_v4());
        match store.db().execute(bad_role).await {
            Err(e @ StoreError::Invalid(_)) => assert!(!e.is_transient()),
            other => panic!("expected a check violation, got {other:?}"),
        }
        assert!(store.list_admin_tokens().await.unwrap().is_empty(), "nothing was written");
    }
}
