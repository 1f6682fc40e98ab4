//! The HTTP surfaces as an attacker meets them: every answer in its surface's error shape (404,
//! 405, 408, 413, 415), metric labels from a fixed set, request ids kept only when plain,
//! descriptions of bounded length, roles checked before bodies, and surfaces split by listener.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use brevet::http::surfaces::Surface;
use brevet::http::{build_surfaces, AppState, Limits};
use serde_json::{json, Value};

use crate::support::http::TestApp;
use crate::support::TestDb;

fn is_error_response(json: &Value) -> bool {
    json.get("responseMetadata").is_some()
        && json["errorDescription"].is_string()
        && json["issuerErrorIdentifier"].is_string()
}

both_stores! {
    async fn wallet_paths_answer_errors_in_the_wallet_shape_and_admin_paths_in_theirs(db: TestDb) {
        let mut config = db.config();
        config.http.body_limit_bytes = 2048;
        let app = db.app_with(config).await;
        let admin = app.admin_token().await;
        // Unknown Wallet method: 404 ErrorResponse; unknown admin path: 404 envelope.
        let unknown = app.post("/v1/vdc/noSuchMethod", &json!({}), None).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(is_error_response(&unknown.json()), "{}", unknown.text());
        let unknown = app.get("/admin/v1/nothing", Some(&admin)).await;
        assert_eq!((unknown.status, unknown.json()["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        // Wrong method: 405 in each shape, never an empty body.
        let wrong = app.get("/v1/vdc/healthCheck", None).await;
        assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
        let json = wrong.json();
        assert!(is_error_response(&json), "{json}");
        assert_eq!(json["errorDescription"], "Wallet API methods are called with POST, not GET");
        let wrong = app.send(Request::delete("/admin/v1/tokens").header("authorization", format!("Bearer {admin}")).body(Body::empty()).unwrap()).await;
        assert_eq!((wrong.status, wrong.json()["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
        // Not JSON: 415; too large: 413.
        let text = app.send(Request::post("/v1/vdc/healthCheck").header("content-type", "text/plain").body(Body::from("{}")).unwrap()).await;
        assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(is_error_response(&text.json()));
        let big = app.post("/v1/vdc/healthCheck", &json!({ "clientMessage": "x".repeat(4096) }), None).await;
        assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(is_error_response(&big.json()));
    }

    async fn slow_requests_time_out_in_their_surface_shape(db: TestDb) {
        // A store that never answers makes every handler wait; the deadline answers instead.
        let mut config = db.config();
        config.http.request_timeout_secs = 1;
        // A pool of one connection, held by the test: every request waits for it.
        let store = brevet::store::connect(&db.url, 1).await.unwrap();
        let _held = store.hold_connection().await.unwrap();
        let app = TestApp {
            router: build_surfaces(AppState::new(store.clone(), &config), Limits::from_config(&config), &Surface::ALL),
            store,
        };
        let wallet = app.post("/v1/vdc/getCredentialStatus", &json!({
            "requestMetadata": { "requestId": "slow", "version": { "major": 0, "minor": 1 }, "issuerId": "x" },
            "deviceReferenceId": "d", "credentialId": "c" }), None).await;
        assert_eq!(wallet.status, StatusCode::REQUEST_TIMEOUT);
        assert!(is_error_response(&wallet.json()), "{}", wallet.text());
        let admin = app.get("/admin/v1/whoami", Some("brv_some_token")).await;
        assert_eq!((admin.status, admin.json()["error"]["code"].as_str()), (StatusCode::REQUEST_TIMEOUT, Some("timeout")));
    }

    async fn a_viewer_is_refused_before_its_body_is_read(db: TestDb) {
        let app = db.app().await;
        let admin = app.admin_token().await;
        let created = app.post("/admin/v1/tokens", &json!({ "name": "auditor", "role": "viewer" }), Some(&admin)).await.json();
        let viewer = created["token"].as_str().unwrap();
        let malformed = app.post_raw("/admin/v1/credentials", "{ not json", Some(viewer)).await;
        assert_eq!((malformed.status, malformed.json()["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    }

    async fn metric_labels_are_bounded_and_request_ids_sanitised(db: TestDb) {
        let app = db.app().await;
        let invented = "X".repeat(60_000);
        let response = app.send(Request::builder().method(invented.as_str()).uri("/healthz").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
        let metrics = app.get("/metrics", None).await.text();
        assert!(!metrics.contains("XXXX"), "an invented method is no label");
        assert!(metrics.contains("method=\"other\""), "{metrics}");

        let with_id = |id: &str| app.send(Request::get("/healthz").header("x-request-id", id).body(Body::empty()).unwrap());
        let kept = with_id("8ae2aae4-0ece-11ed-861d-0242ac120002").await;
        assert_eq!(kept.headers["x-request-id"], "8ae2aae4-0ece-11ed-861d-0242ac120002");
        let replaced = with_id("<script>alert(1)</script>").await;
        let fresh = replaced.headers["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "replaced by a fresh id: {fresh}");
    }

    async fn error_descriptions_are_bounded(db: TestDb) {
        let app = db.app().await;
        let long = "v".repeat(100_000);
        // serde quotes a string of the wrong type in its message: 100 KB of it.
        let response = app.post("/v1/vdc/getCredentialStatus", &json!({
            "requestMetadata": { "requestId": "r", "version": { "major": long, "minor": 1 }, "issuerId": "x" },
            "deviceReferenceId": "d", "credentialId": "c" }), None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        let description = response.json()["errorDescription"].as_str().unwrap().to_owned();
        assert!(description.chars().count() <= brevet::error::MAX_DESCRIPTION_CHARS + 1, "{} characters", description.len());
        assert!(description.ends_with('…'));
    }

    async fn a_wallet_only_listener_serves_nothing_else(db: TestDb) {
        let config = db.config();
        let store = db.store().await;
        let app = TestApp {
            router: build_surfaces(AppState::new(store.clone(), &config), Limits::from_config(&config), &[Surface::Wallet]),
            store,
        };
        for path in ["/metrics", "/readyz", "/admin/v1/whoami"] {
            let response = app.get(path, None).await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
            assert!(is_error_response(&response.json()), "{path}: the Wallet shape on a Wallet listener");
        }
        let health = app.post("/v1/vdc/healthCheck", &json!({
            "requestMetadata": { "requestId": "r", "version": { "major": 0, "minor": 1 }, "issuerId": "x" },
            "clientMessage": "hi" }), None).await;
        assert_eq!(health.status, StatusCode::OK);
    }
}
