//! The credentials admin API end to end in-process, on both stores: create, read, list, edit with
//! If-Match, versions, revoke, roles, and the audit and outbox views.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::mdoc::sample_mdl;
use crate::support::http::{TestApp, TestResponse};
use crate::support::inspect::{bind_copy, Inspect};
use crate::support::TestDb;

async fn patch(
    app: &TestApp,
    path: &str,
    if_match: Option<&str>,
    body: &Value,
    token: &str,
) -> TestResponse {
    app.patch(path, body, Some(token), if_match).await
}

async fn token(app: &TestApp, admin: &str, name: &str, role: &str) -> String {
    let created = app
        .post(
            "/admin/v1/tokens",
            &json!({ "name": name, "role": role }),
            Some(admin),
        )
        .await;
    created.json()["token"].as_str().unwrap().to_owned()
}

fn code(response: &TestResponse) -> String {
    response.json()["error"]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

both_stores! {
    async fn staff_create_edit_and_revoke_a_credential(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let clerk = token(&app, &admin, "clerk", "operator").await;
        let auditor = token(&app, &admin, "auditor", "viewer").await;

        let created = app.post("/admin/v1/credentials", &json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": sample_mdl() }), Some(&clerk)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        assert_eq!(created.headers["etag"], "\"1\"");
        let body = created.json();
        let id = body["credentialId"].as_str().unwrap().to_owned();
        assert_eq!(created.headers["location"], format!("/admin/v1/credentials/{id}").as_str());
        assert_eq!((body["status"].as_str(), body["versionNumber"].as_i64()), (Some("active"), Some(1)));
        assert_eq!(body["holderData"], sample_mdl());

        let path = format!("/admin/v1/credentials/{id}");
        let record_id = uuid::Uuid::parse_str(&id).unwrap();
        bind_copy(&app.store, "wallet-copy-1", record_id, "device-ref-1").await;
        let read = app.get(&path, Some(&auditor)).await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.headers["etag"], "\"1\"");

        let mut changed = sample_mdl();
        changed["org.iso.18013.5.1"]["resident_address"] = json!("2 New Street");
        let update = json!({ "holderData": changed });
        let missing = patch(&app, &path, None, &update, &clerk).await;
        assert_eq!((missing.status, code(&missing).as_str()), (StatusCode::PRECONDITION_REQUIRED, "precondition_required"));
        let viewer = patch(&app, &path, Some("\"1\""), &update, &auditor).await;
        assert_eq!(viewer.status, StatusCode::FORBIDDEN);
        let updated = patch(&app, &path, Some("\"1\""), &update, &clerk).await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
        assert_eq!(updated.headers["etag"], "\"2\"");
        assert_ne!(updated.json()["currentVersionId"], body["currentVersionId"]);
        // A second clerk still holding version 1 cannot overwrite version 2.
        let stale = patch(&app, &path, Some("\"1\""), &json!({ "holderData": sample_mdl() }), &clerk).await;
        assert_eq!((stale.status, code(&stale).as_str()), (StatusCode::PRECONDITION_FAILED, "precondition_failed"));
        assert!(stale.json()["error"]["message"].as_str().unwrap().contains("version 2"));
        // The same data again (here in another JSON spelling of the portrait): nothing changes,
        // no version, no notification.
        let mut same = changed.clone();
        same["org.iso.18013.5.1"]["portrait"] = json!("_9j_4AAQSkZJRg");
        let pending_before = app.store.list_outbox(Some("pending"), 100).await.unwrap().len();
        let unchanged = patch(&app, &path, Some("\"2\""), &json!({ "holderData": same }), &clerk).await;
        assert_eq!(unchanged.status, StatusCode::OK, "{}", unchanged.text());
        assert_eq!(unchanged.headers["etag"], "\"2\"", "identical data makes no version");
        assert_eq!(unchanged.json()["currentVersionId"], updated.json()["currentVersionId"]);
        assert_eq!(app.store.list_outbox(Some("pending"), 100).await.unwrap().len(), pending_before, "and notifies nobody");
        let mut changed_again = changed.clone();
        changed_again["org.iso.18013.5.1"]["resident_address"] = json!("3 Newer Street");
        let weak = patch(&app, &path, Some("W/\"2\""), &json!({ "holderData": changed_again }), &clerk).await;
        assert_eq!(weak.status, StatusCode::OK, "weak ETags match too");

        let versions = app.get(&format!("{path}/versions"), Some(&auditor)).await.json();
        let numbers: Vec<i64> = versions["versions"].as_array().unwrap().iter().map(|v| v["versionNumber"].as_i64().unwrap()).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(versions["versions"][0]["holderData"], sample_mdl());

        let reverify = app.post_raw(&format!("{path}/request-reverification"), "", Some(&clerk)).await;
        assert_eq!(reverify.status, StatusCode::OK, "{}", reverify.text());
        assert!(reverify.json()["reverificationRequestedAt"].is_string());
        assert_eq!(reverify.headers["etag"], "\"3\"", "asking for reverification writes no version");

        let revoked = app.post(&format!("{path}/revoke"), &json!({ "reason": "licence suspended by court" }), Some(&clerk)).await;
        assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
        assert_eq!(revoked.json()["status"], "revoked");
        assert_eq!(revoked.json()["statusReason"], "licence suspended by court");
        let again = app.post(&format!("{path}/revoke"), &json!({ "reason": "again" }), Some(&clerk)).await;
        assert_eq!((again.status, code(&again).as_str()), (StatusCode::CONFLICT, "conflict"));
        let edit_revoked = patch(&app, &path, Some("\"3\""), &update, &clerk).await;
        assert_eq!(edit_revoked.status, StatusCode::CONFLICT);
        assert_eq!(edit_revoked.json()["error"]["message"], "a revoked credential cannot be updated");

        let outbox = app.get("/admin/v1/outbox?state=pending", Some(&auditor)).await.json();
        let jobs = outbox["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 4, "two edits, a reverification request and a revocation: {outbox}");
        let reverify_revoked = app.post_raw(&format!("{path}/request-reverification"), "", Some(&clerk)).await;
        assert_eq!(reverify_revoked.status, StatusCode::CONFLICT);
        assert_eq!(reverify_revoked.json()["error"]["message"], "a revoked credential cannot be sent for reverification");
        assert!(jobs.iter().all(|j| j["payload"] == json!({ "deviceReferenceId": "device-ref-1", "credentialId": "wallet-copy-1" })
            && j["kind"] == "notify_credential_status"));

        let audit = app.get("/admin/v1/audit?limit=6", Some(&auditor)).await.json();
        let entries: Vec<(&str, &str)> = audit["entries"].as_array().unwrap().iter().map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap())).collect();
        assert_eq!(entries[..5], [("credential.revoke", "clerk"), ("credential.request_reverification", "clerk"), ("credential.update", "clerk"), ("credential.update", "clerk"), ("credential.create", "clerk")]);
        assert!(!audit.to_string().contains("2 New Street"), "the audit log holds no holder data");
    }

    async fn bad_credential_requests_are_refused_with_the_element_named(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let mut missing = sample_mdl();
        missing["org.iso.18013.5.1"].as_object_mut().unwrap().remove("document_number");
        let mut wrong = sample_mdl();
        wrong["org.iso.18013.5.1"]["birth_date"] = json!(19900517);
        let cases = [
            (json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": missing }), "org.iso.18013.5.1/document_number: mandatory element is missing"),
            (json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": wrong }), "org.iso.18013.5.1/birth_date: expected a date YYYY-MM-DD"),
            (json!({ "docType": "org.example.unknown", "holderData": {} }), "unknown doc type \"org.example.unknown\""),
        ];
        for (body, message) in cases {
            let response = app.post("/admin/v1/credentials", &body, Some(&admin)).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST);
            assert_eq!(response.json()["error"]["message"], message);
        }

        // Every invalid element at once, each named, in `fields`.
        let mut several = sample_mdl();
        let licence = several["org.iso.18013.5.1"].as_object_mut().unwrap();
        licence.insert("given_name".into(), json!(""));
        licence.insert("expiry_date".into(), json!("2020-01-01"));
        licence.insert("height".into(), json!(0));
        let response = app.post("/admin/v1/credentials", &json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": several }), Some(&admin)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert_eq!(response.json()["error"]["fields"], json!([
            { "field": "org.iso.18013.5.1/given_name", "problem": "must not be empty" },
            { "field": "org.iso.18013.5.1/height", "problem": "must be between 1 and 300" },
            { "field": "org.iso.18013.5.1/expiry_date", "problem": "must be after issue_date" },
        ]));

        // A portrait that would make the credential larger than the Wallet API carries is refused
        // when staff enter it, naming the portrait, not when a device asks for it.
        use base64::Engine;
        let mut huge = sample_mdl();
        huge["org.iso.18013.5.1"]["portrait"] = json!(base64::engine::general_purpose::STANDARD.encode(vec![0xffu8; 70_000]));
        let response = app.post("/admin/v1/credentials", &json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": huge }), Some(&admin)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{}", response.text());
        let fields = response.json()["error"]["fields"].clone();
        assert_eq!(fields[0]["field"], "org.iso.18013.5.1/portrait");
        assert!(fields[0]["problem"].as_str().unwrap().contains("over the Wallet API's limit of 65536"), "{fields}");
        let no_such = app.get("/admin/v1/credentials/not-a-uuid", Some(&admin)).await;
        assert_eq!((no_such.status, code(&no_such).as_str()), (StatusCode::NOT_FOUND, "not_found"));
        let unknown = app.get(&format!("/admin/v1/credentials/{}", uuid::Uuid::now_v7()), Some(&admin)).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        for query in ["limit=0", "limit=abc", "status=frozen", "colour=red"] {
            let response = app.get(&format!("/admin/v1/credentials?{query}"), Some(&admin)).await;
            assert_eq!((response.status, code(&response).as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{query}");
        }
        assert!(app.store.list_credentials(&brevet::store::CredentialFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());
    }

    async fn listing_pages_with_a_cursor(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let mut ids = Vec::new();
        for _ in 0..5 {
            let created = app.post("/admin/v1/credentials", &json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": sample_mdl() }), Some(&admin)).await;
            ids.push(created.json()["credentialId"].as_str().unwrap().to_owned());
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/admin/v1/credentials?limit=2&cursor={c}"),
                None => "/admin/v1/credentials?limit=2".to_owned(),
            };
            let page = app.get(&path, Some(&admin)).await.json();
            seen.extend(page["credentials"].as_array().unwrap().iter().map(|c| c["credentialId"].as_str().unwrap().to_owned()));
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ids);
    }

    async fn staff_see_the_devices_and_msos_of_a_credential(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let created = app.post("/admin/v1/credentials", &json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": sample_mdl() }), Some(&admin)).await.json();
        let id = uuid::Uuid::parse_str(created["credentialId"].as_str().unwrap()).unwrap();
        let version = uuid::Uuid::parse_str(created["currentVersionId"].as_str().unwrap()).unwrap();
        bind_copy(&app.store, "copy-a", id, "device-a").await;
        let now = chrono::Utc::now();
        for key in [[1u8; 32], [2u8; 32]] {
            let mso = brevet::store::NewMsoIssuance {
                credential_version_id: version,
                device_reference_id: "device-a",
                auth_key_sha256: key,
                ds_key_id: "0001",
                valid_from: now,
                valid_until: now + chrono::Duration::days(30),
                status: None,
            };
            brevet::store::copies::insert_msos(&mut app.store.db(), std::slice::from_ref(&mso)).await.unwrap();
        }
        let devices = app.get(&format!("/admin/v1/credentials/{id}/devices"), Some(&admin)).await.json();
        assert_eq!(devices["devices"].as_array().unwrap().len(), 1);
        assert_eq!(devices["devices"][0]["walletCredentialId"], "copy-a");
        assert_eq!(devices["devices"][0]["status"], "provisionPending");
        let msos = app.get(&format!("/admin/v1/credentials/{id}/msos"), Some(&admin)).await.json();
        let listed = msos["msos"].as_array().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["authKeySha256"], hex::encode([2u8; 32]), "newest first");
        assert_eq!(listed[0]["versionNumber"], 1);
        assert_eq!(listed[0]["dsKeyId"], "0001");
        let missing = app.get(&format!("/admin/v1/credentials/{}/devices", uuid::Uuid::now_v7()), Some(&admin)).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }
}
