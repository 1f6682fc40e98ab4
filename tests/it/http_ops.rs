//! Health, readiness, metrics, request ids and the generic error paths, on both stores.

use axum::http::StatusCode;

use crate::support::TestDb;

both_stores! {
    async fn healthz_and_readyz_answer(db: TestDb) {
        let app = db.app().await;
        let health = app.get("/healthz", None).await;
        assert_eq!(health.status, StatusCode::OK);
        assert_eq!(health.json(), serde_json::json!({ "status": "ok" }));
        let ready = app.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::OK);
        assert_eq!(ready.json(), serde_json::json!({ "status": "ready", "store": db.backend.as_str(), "mode": "production" }));

        let mut config = db.config();
        config.mode = Some(brevet::config::Mode::Development);
        let development = db.app_with(config).await.get("/readyz", None).await.json();
        assert_eq!(development["mode"], "development");
        assert!(development["warnings"][0].as_str().unwrap().contains("never issue real credentials"), "{development}");
    }

    async fn readyz_is_503_when_the_store_is_gone(db: TestDb) {
        let config = db.config();
        let store = brevet::store::connect(&db.url, 2).await.unwrap();
        store.close().await;
        let router = brevet::http::build_app(
            brevet::http::AppState::new(store.clone(), &config),
            brevet::http::Limits::from_config(&config),
        );
        let app = crate::support::http::TestApp { router, store };
        let ready = app.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready.json()["status"], "unavailable");
        // Liveness does not depend on the store.
        assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    }

    async fn every_response_has_a_request_id_and_keeps_the_callers(db: TestDb) {
        let app = db.app().await;
        let generated = app.get("/healthz", None).await;
        let id = generated.headers["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "generated id {id:?} is a UUID");

        let request = axum::http::Request::get("/nowhere")
            .header("x-request-id", "caller-chosen-id")
            .body(axum::body::Body::empty())
            .unwrap();
        let echoed = app.send(request).await;
        assert_eq!(echoed.status, StatusCode::NOT_FOUND);
        assert_eq!(echoed.headers["x-request-id"], "caller-chosen-id");
        assert_eq!(
            echoed.json(),
            serde_json::json!({ "error": { "code": "not_found", "message": "no such route" } })
        );
    }

    async fn metrics_count_requests_by_route_and_status(db: TestDb) {
        let app = db.app().await;
        app.get("/healthz", None).await;
        app.get("/healthz", None).await;
        app.get("/admin/v1/whoami", None).await;
        app.get("/no/such/thing/42", None).await;
        let metrics = app.get("/metrics", None).await;
        assert_eq!(metrics.status, StatusCode::OK);
        assert!(metrics.headers["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
        let text = metrics.text();
        for line in [
            r#"brevet_http_requests_total{method="GET",route="/healthz",status="200"} 2"#,
            r#"brevet_http_requests_total{method="GET",route="/admin/v1/whoami",status="401"} 1"#,
            r#"brevet_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
            r#"brevet_http_request_duration_seconds_count{method="GET",route="/healthz"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("/no/such/thing/42"), "raw paths must not become labels");
        assert!(text.ends_with("# EOF\n"));
    }
}
