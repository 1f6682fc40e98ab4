//! The two stores keep one schema, and a store written by an earlier Brevet opens and works:
//! `tests/fixtures/upgrade/` holds both databases as `brevet` 0.1 (before the store was
//! rewritten to one body of SQL) left them after the Wallet flow, staff edits and two
//! certificate-provisioning processes (`tests/fixtures/upgrade/make`).

use axum::http::StatusCode;
use brevet::clock::Clock;
use brevet::config::Backend;
use brevet::domain::credential::CredentialStatus;
use brevet::domain::wallet_credential::CopyStatus;
use brevet::service::outbox as jobs;
use brevet::store::schema::{self, Column};
use brevet::store::{CertState, CredentialFilter, JobState};
use serde_json::json;
use sqlx::Connection;

use crate::mdoc::sample_mdl;
use crate::support::inspect::Inspect;
use crate::support::TestDb;

/// How the Postgres types of a column are kept on SQLite (docs of `store::sql`).
fn on_sqlite(kind: &str) -> &str {
    match kind {
        "uuid" | "time" | "json" | "text" => "text",
        other => other,
    }
}

#[tokio::test]
async fn both_stores_have_the_same_tables_columns_types_and_nullability() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = brevet::config::DatabaseUrl::sqlite_file(&dir.path().join("parity.db"));
    let sqlite = brevet::store::connect(&sqlite_url, 1).await.unwrap();
    let name = crate::support::postgres::create_database().await;
    let postgres = brevet::store::connect(&crate::support::postgres::database_url(&name), 1)
        .await
        .unwrap();
    let lite = schema::columns(&mut sqlite.db()).await.unwrap();
    let pg = schema::columns(&mut postgres.db()).await.unwrap();
    crate::support::postgres::drop_database(&name).await;

    let key = |c: &Column| (c.table.clone(), c.name.clone());
    let lite_keys: Vec<_> = lite.iter().map(key).collect();
    let pg_keys: Vec<_> = pg.iter().map(key).collect();
    assert_eq!(lite_keys, pg_keys, "the same columns in the same tables");
    assert!(pg.len() > 90, "every table was read: {}", pg.len());
    // The catalogues were read, not defaulted: a few columns as each database declares them.
    let find = |columns: &[Column], table: &str, name: &str| {
        let c = columns
            .iter()
            .find(|c| c.table == table && c.name == name)
            .unwrap();
        (c.kind.clone(), c.nullable)
    };
    assert_eq!(find(&pg, "outbox", "payload"), ("json".into(), false));
    assert_eq!(
        find(&pg, "outbox", "lease_expires_at"),
        ("time".into(), true)
    );
    assert_eq!(
        find(&pg, "credentials", "credential_id"),
        ("uuid".into(), false)
    );
    assert_eq!(
        find(&lite, "devices", "identity_public_key"),
        ("bytes".into(), true)
    );
    assert_eq!(find(&lite, "outbox", "attempts"), ("int".into(), false));
    let mismatches: Vec<String> = lite
        .iter()
        .zip(&pg)
        .filter(|(l, p)| l.kind != on_sqlite(&p.kind) || l.nullable != p.nullable)
        .map(|(l, p)| {
            format!(
                "{}.{}: sqlite {} {}, postgres {} {}",
                l.table,
                l.name,
                l.kind,
                if l.nullable { "null" } else { "not null" },
                p.kind,
                if p.nullable { "null" } else { "not null" }
            )
        })
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// Loads the fixture of `db`'s backend into its (empty) database, as the old Brevet left it,
/// migrations table included.
async fn load_fixture(db: &TestDb) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade");
    match db.backend {
        Backend::Sqlite => {
            let dump = std::fs::read_to_string(fixtures.join("v0.1-pre14.sqlite.sql")).unwrap();
            let options: sqlx::sqlite::SqliteConnectOptions = db.url.expose().parse().unwrap();
            let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
                .await
                .unwrap();
            sqlx::raw_sql(&dump).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            let dump = std::fs::read_to_string(fixtures.join("v0.1-pre14.postgres.sql")).unwrap();
            // The dump empties search_path for its own session: a connection of its own.
            let mut conn = sqlx::PgConnection::connect(db.url.expose()).await.unwrap();
            sqlx::raw_sql(&dump).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
}

both_stores! {
    async fn a_store_written_by_the_previous_brevet_opens_and_works(db: TestDb) {
        load_fixture(&db).await;
        let app = db.app().await;
        let store = &app.store;

        // Every row reads back with its ids, times, JSON and enums.
        let records = store.list_credentials(&CredentialFilter { limit: 10, ..Default::default() }).await.unwrap();
        let statuses: Vec<CredentialStatus> = records.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [CredentialStatus::Revoked, CredentialStatus::Revoked, CredentialStatus::Active]);
        let active = &records[2];
        assert_eq!(active.holder_data["org.iso.18013.5.1"]["document_number"], "UP-1");
        assert_eq!(store.list_versions(records[0].credential_id).await.unwrap().len(), 2);
        let copies = store.list_wallet_credentials(records[0].credential_id).await.unwrap();
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].status, CopyStatus::Revoked);
        assert!(copies[0].proven_version_id.is_some() && copies[0].pop_sha256.as_ref().is_some_and(|p| p.len() == 32));
        let device = store.get_device(&copies[0].device_reference_id).await.unwrap().unwrap();
        assert_eq!(device.status.as_str(), "registered");
        assert!(device.identity_public_key.is_some());
        assert_eq!(store.list_mso_issuances(records[0].credential_id, 100).await.unwrap().len(), 8);
        assert_eq!(store.list_proofings(None, 10).await.unwrap().len(), 2);
        assert_eq!(store.list_admin_tokens().await.unwrap().len(), 2);
        assert_eq!(store.list_audit(100).await.unwrap().len(), 13);
        let outbox = store.list_outbox(None, 10).await.unwrap();
        assert_eq!(outbox.iter().filter(|j| j.state == JobState::Pending).count(), 4);
        let processes = store.list_cert_processes(None, 10).await.unwrap();
        assert_eq!(processes.len(), 2);
        assert!(processes.iter().all(|p| p.state == CertState::Done && p.certificate_pem.is_some()));

        // Google asks about a copy: answered from the old rows.
        let status = app.post("/v1/vdc/getCredentialStatus", &json!({
            "requestMetadata": { "requestId": "u-1", "version": { "major": 0, "minor": 1 }, "issuerId": "upgrade-issuer" },
            "deviceReferenceId": copies[0].device_reference_id, "credentialId": copies[0].wallet_credential_id }), None).await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.text());
        assert_eq!(status.json()["credentialStatus"], json!({ "revoked": {} }));

        // Staff edit the active record: a second version on the old first one.
        let admin = app.admin_token().await;
        let mut changed = sample_mdl();
        changed["org.iso.18013.5.1"]["document_number"] = json!("UP-2");
        let path = format!("/admin/v1/credentials/{}", active.credential_id);
        let request = axum::http::Request::patch(&path)
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/json")
            .header("if-match", "\"1\"")
            .body(axum::body::Body::from(json!({ "holderData": changed }).to_string()))
            .unwrap();
        let patched = app.send(request).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        assert_eq!(patched.json()["versionNumber"], 2);
        assert_eq!(store.list_audit(1).await.unwrap()[0].action, "credential.update");

        // The old pending notifications are still delivered: claimed (their third attempt) and done.
        let clock = Clock::system();
        let job = jobs::claim(store, &clock, "upgrade", std::time::Duration::from_secs(30)).await.unwrap().expect("an old job is due");
        let before = outbox.iter().find(|j| j.outbox_id == job.outbox_id).expect("one of the old jobs");
        assert_eq!((before.state, job.attempts), (JobState::Pending, before.attempts + 1));
        assert!(jobs::complete(store, job.outbox_id, "upgrade").await.unwrap());
        let done = store.list_outbox(Some("done"), 10).await.unwrap();
        assert!(done.iter().any(|j| j.outbox_id == job.outbox_id));
    }
}
