//! Admin authentication, roles, the tokens resource and the admin error shape, on both stores.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::support::inspect::Inspect;
use crate::support::TestDb;

fn error_of(body: &Value) -> (&str, &str) {
    (
        body["error"]["code"].as_str().unwrap(),
        body["error"]["message"].as_str().unwrap(),
    )
}

both_stores! {
    async fn requests_without_a_valid_token_are_401(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        for (header, message) in [
            (None, "missing Authorization: Bearer <admin token> header"),
            (Some("Basic dXNlcjpwYXNz"), "Authorization header must be `Bearer <admin token>`"),
            (Some("Bearer "), "Authorization header must be `Bearer <admin token>`"),
            (Some("Bearer brv_not-a-real-token"), "unknown or revoked admin token"),
        ] {
            let mut request = axum::http::Request::get("/admin/v1/whoami");
            if let Some(value) = header {
                request = request.header("authorization", value);
            }
            let response = app.send(request.body(axum::body::Body::empty()).unwrap()).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{header:?}");
            assert_eq!(response.headers["www-authenticate"], "Bearer");
            assert_eq!(error_of(&response.json()), ("unauthorized", message));
        }
        let ok = app.get("/admin/v1/whoami", Some(&admin)).await;
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.json()["name"], "bootstrap");
        assert_eq!(ok.json()["role"], "admin");
    }

    async fn admin_creates_tokens_shown_once_and_audited(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let created = app.post("/admin/v1/tokens", &json!({ "name": "clerk-1", "role": "operator" }), Some(&admin)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let body = created.json();
        let token = body["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("brv_"));
        assert_eq!(body["name"], "clerk-1");
        assert_eq!(body["role"], "operator");
        assert_eq!(body["revokedAt"], Value::Null);

        let whoami = app.get("/admin/v1/whoami", Some(&token)).await.json();
        assert_eq!(whoami, json!({ "tokenId": body["tokenId"], "name": "clerk-1", "role": "operator" }));

        let list = app.get("/admin/v1/tokens", Some(&admin)).await;
        assert_eq!(list.status, StatusCode::OK);
        let listed = list.json();
        let names: Vec<&str> = listed["tokens"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["bootstrap", "clerk-1"]);
        assert!(!list.text().contains(&token), "a listing never shows token values");

        let audit = app.store.list_audit(10).await.unwrap();
        assert_eq!(audit[0].action, "admin_token.create");
        assert_eq!(audit[0].actor, "bootstrap");
        assert_eq!(audit[0].target_id, body["tokenId"].as_str().unwrap());
        assert_eq!(audit[0].request_id.as_deref(), Some(created.headers["x-request-id"].to_str().unwrap()));
    }

    async fn the_audit_log_is_filtered_and_paged(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let mut ids = Vec::new();
        for name in ["clerk-1", "clerk-2", "clerk-3"] {
            let made = app.post("/admin/v1/tokens", &json!({ "name": name, "role": "viewer" }), Some(&admin)).await.json();
            ids.push(made["tokenId"].as_str().unwrap().to_owned());
        }
        let clerk = app.post("/admin/v1/tokens", &json!({ "name": "clerk-admin", "role": "admin" }), Some(&admin)).await.json()["token"].as_str().unwrap().to_owned();
        app.delete(&format!("/admin/v1/tokens/{}", ids[0]), Some(&clerk)).await;
        let audit = |query: &str| {
            let app = &app;
            let admin = admin.clone();
            let path = format!("/admin/v1/audit?{query}");
            async move { app.get(&path, Some(&admin)).await }
        };
        let actions = |page: &serde_json::Value| page["entries"].as_array().unwrap().iter().map(|e| format!("{} {}", e["actor"].as_str().unwrap(), e["action"].as_str().unwrap())).collect::<Vec<_>>();

        let by_clerk = audit("actor=clerk-admin").await.json();
        assert_eq!(actions(&by_clerk), ["clerk-admin admin_token.revoke"]);
        assert_eq!(by_clerk["entries"][0]["targetId"], ids[0].as_str());
        let about_first = audit(&format!("targetId={}", ids[0])).await.json();
        assert_eq!(actions(&about_first), ["clerk-admin admin_token.revoke", "bootstrap admin_token.create"]);
        // Four creations, one page of three and one of one, newest first, nothing twice.
        let first = audit("action=admin_token.create&limit=3").await.json();
        assert_eq!(first["entries"].as_array().unwrap().len(), 3);
        let cursor = first["nextCursor"].as_str().unwrap().to_owned();
        let second = audit(&format!("action=admin_token.create&limit=3&cursor={cursor}")).await.json();
        assert_eq!(second["entries"].as_array().unwrap().len(), 1);
        assert!(second.get("nextCursor").is_none(), "the last page has no cursor");
        assert_eq!(second["entries"][0]["targetId"], ids[0].as_str(), "the oldest creation comes last");
        let later = audit(&format!("since={}", urlencode(&(chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()))).await.json();
        assert_eq!(later["entries"], json!([]));
        let until = audit(&format!("until={}&action=admin_token.create", urlencode(&(chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()))).await.json();
        assert_eq!(until["entries"].as_array().unwrap().len(), 4);
        let bad = audit("since=yesterday").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    }

    async fn roles_limit_what_a_token_may_do(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let operator = app.post("/admin/v1/tokens", &json!({ "name": "op", "role": "operator" }), Some(&admin)).await.json()["token"].as_str().unwrap().to_owned();
        let viewer = app.post("/admin/v1/tokens", &json!({ "name": "view", "role": "viewer" }), Some(&admin)).await.json()["token"].as_str().unwrap().to_owned();
        for token in [&operator, &viewer] {
            let list = app.get("/admin/v1/tokens", Some(token)).await;
            assert_eq!(list.status, StatusCode::FORBIDDEN);
            assert_eq!(error_of(&list.json()), ("forbidden", "this action needs the admin role"));
            let create = app.post("/admin/v1/tokens", &json!({ "name": "sneaky", "role": "admin" }), Some(token)).await;
            assert_eq!(create.status, StatusCode::FORBIDDEN);
        }
        // The refused creations changed nothing.
        assert_eq!(app.store.list_admin_tokens().await.unwrap().len(), 3);
        assert_eq!(app.store.list_audit(10).await.unwrap().iter().filter(|a| a.action == "admin_token.create").count(), 2);
    }

    async fn bad_token_requests_are_400_or_409_and_change_nothing(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let cases: [(&str, StatusCode, &str, &str); 6] = [
            ("{not json", StatusCode::BAD_REQUEST, "bad_request", "request body is not valid JSON"),
            (r#"{"name":"x"}"#, StatusCode::BAD_REQUEST, "bad_request", "missing field `role`"),
            (r#"{"name":"x","role":"root"}"#, StatusCode::BAD_REQUEST, "bad_request", "unknown variant `root`"),
            (r#"{"name":"x","role":"viewer","extra":1}"#, StatusCode::BAD_REQUEST, "bad_request", "unknown field `extra`"),
            (r#"{"name":"  ","role":"viewer"}"#, StatusCode::BAD_REQUEST, "bad_request", "name must be 1 to 100 printable characters"),
            (r#"{"name":"bootstrap","role":"viewer"}"#, StatusCode::CONFLICT, "conflict", "a token named \"bootstrap\" already exists"),
        ];
        for (body, status, code, message) in cases {
            let response = app.post_raw("/admin/v1/tokens", body, Some(&admin)).await;
            assert_eq!(response.status, status, "{body}: {}", response.text());
            let json = response.json();
            let (got_code, got_message) = error_of(&json);
            assert_eq!(got_code, code, "{body}");
            assert!(got_message.contains(message), "{body}: {got_message:?} should contain {message:?}");
        }
        let wrong_type = app
            .send(
                axum::http::Request::post("/admin/v1/tokens")
                    .header("authorization", format!("Bearer {admin}"))
                    .header("content-type", "text/plain")
                    .body(axum::body::Body::from(r#"{"name":"x","role":"viewer"}"#))
                    .unwrap(),
            )
            .await;
        assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let json = wrong_type.json();
        assert_eq!(error_of(&json), ("unsupported_media_type", "expected a request body with Content-Type: application/json"));
        assert_eq!(app.store.list_admin_tokens().await.unwrap().len(), 1);
        assert_eq!(app.store.list_audit(10).await.unwrap().len(), 1, "only the bootstrap is audited");
    }

    async fn bodies_over_the_limit_are_413(db: TestDb) {
        let mut config = db.config();
        config.http.body_limit_bytes = 2048;
        let app = db.app_with(config).await;
        let admin = app.admin_token().await;
        let big = json!({ "name": "x".repeat(4096), "role": "viewer" });
        let response = app.post("/admin/v1/tokens", &big, Some(&admin)).await;
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error_of(&response.json()).0, "payload_too_large");
    }

    async fn tokens_are_revoked_but_never_the_last_admin(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let bootstrap_id = app.get("/admin/v1/whoami", Some(&admin)).await.json()["tokenId"].as_str().unwrap().to_owned();
        let delete = |id: String, token: String| {
            let request = axum::http::Request::delete(format!("/admin/v1/tokens/{id}"))
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            app.send(request)
        };
        let last = delete(bootstrap_id.clone(), admin.clone()).await;
        assert_eq!(last.status, StatusCode::CONFLICT);
        assert!(error_of(&last.json()).1.contains("last admin token"));

        let created = app.post("/admin/v1/tokens", &json!({ "name": "clerk", "role": "operator" }), Some(&admin)).await.json();
        let clerk = created["token"].as_str().unwrap().to_owned();
        let clerk_id = created["tokenId"].as_str().unwrap().to_owned();
        assert_eq!(delete(bootstrap_id.clone(), clerk.clone()).await.status, StatusCode::FORBIDDEN);
        assert_eq!(delete(clerk_id.clone(), admin.clone()).await.status, StatusCode::NO_CONTENT);
        let after = app.get("/admin/v1/whoami", Some(&clerk)).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED, "a revoked token authenticates nobody");
        assert_eq!(delete(clerk_id.clone(), admin.clone()).await.status, StatusCode::NOT_FOUND);
        assert_eq!(delete("nonsense".into(), admin.clone()).await.status, StatusCode::NOT_FOUND);

        // With a second admin, the first may go.
        let second = app.post("/admin/v1/tokens", &json!({ "name": "admin-2", "role": "admin" }), Some(&admin)).await.json();
        let second = second["token"].as_str().unwrap().to_owned();
        assert_eq!(delete(bootstrap_id, second.clone()).await.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get("/admin/v1/whoami", Some(&admin)).await.status, StatusCode::UNAUTHORIZED);
        let listed = app.get("/admin/v1/tokens", Some(&second)).await.json();
        let revoked: Vec<&str> = listed["tokens"].as_array().unwrap().iter().filter(|t| !t["revokedAt"].is_null()).map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(revoked, ["bootstrap", "clerk"]);
        let audit = app.store.list_audit(10).await.unwrap();
        assert_eq!(audit.iter().filter(|a| a.action == "admin_token.revoke").count(), 2);
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
