//! Health, readiness, metrics, request ids and the generic error paths, on both stores.

use axum::http::StatusCode;

use crate::support::TestDb;

/// The app over `db` with keys made as `brevet keys init` makes them, loaded as `serve` loads
/// them.
async fn keyed_app(db: &TestDb) -> crate::support::http::TestApp {
    let config = db.config();
    crate::support::keys::init(
        &config.effective_keys_dir(),
        "Readiness",
        brevet::pki::keystore::Lifetimes::default(),
    );
    let wallet = brevet::service::WalletContext::load(&config, &[]).unwrap();
    let store = db.store().await;
    let router = brevet::http::build_app(
        brevet::http::AppState::new(store.clone(), &config).with_wallet(wallet),
        brevet::http::Limits::from_config(&config),
    );
    crate::support::http::TestApp { router, store }
}

both_stores! {
    async fn healthz_and_readyz_answer(db: TestDb) {
        let app = db.app().await;
        let health = app.get("/healthz", None).await;
        assert_eq!(health.status, StatusCode::OK);
        assert_eq!(health.json(), serde_json::json!({ "status": "ok" }));
        let with_keys = keyed_app(&db).await;
        let ready = with_keys.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
        let expected = brevet::store::connect::expected_migrations(db.backend).len();
        assert_eq!(ready.json(), serde_json::json!({
            "status": "ready",
            "store": db.backend.as_str(),
            "mode": "production",
            "checks": [
                { "name": "store", "ok": true, "detail": ready.json()["checks"][0]["detail"] },
                { "name": "migrations", "ok": true, "detail": format!("{expected} of {expected} applied") },
                { "name": "mdoc_keys", "ok": true, "detail": "document signer 0001 loaded" },
                { "name": "wallet_keys", "ok": true, "detail": "identity 0001 signs, hybrid 0001 advertised" },
            ],
            "warnings": [brevet::http::ops::NOTIFICATIONS_DISABLED],
        }));
        assert!(ready.json()["checks"][0]["detail"].as_str().unwrap().starts_with(&format!("{} answered in ", db.backend.as_str())));

        let mut config = db.config();
        config.mode = Some(brevet::config::Mode::Development);
        let development = db.app_with(config).await.get("/readyz", None).await.json();
        assert_eq!(development["mode"], "development");
        assert!(development["warnings"][0].as_str().unwrap().contains("never issue real credentials"), "{development}");
    }

    async fn readyz_is_503_without_keys_naming_the_command_that_makes_them(db: TestDb) {
        let app = db.app().await;
        let ready = app.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        let body = ready.json();
        assert_eq!(body["status"], "unavailable");
        let failed: Vec<(&str, &str)> = body["checks"].as_array().unwrap().iter()
            .filter(|c| c["ok"] == false)
            .map(|c| (c["name"].as_str().unwrap(), c["detail"].as_str().unwrap()))
            .collect();
        assert_eq!(failed, [
            ("mdoc_keys", "no document signer: run `brevet keys init` (or `keys import`) and restart"),
            ("wallet_keys", "no Wallet identity or hybrid-encryption key: run `brevet keys init` (or `keys import`) and restart"),
        ]);
    }

    async fn readyz_is_503_when_the_schema_is_not_this_binarys(db: TestDb) {
        let app = keyed_app(&db).await;
        assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
        let last = *brevet::store::connect::expected_migrations(db.backend).last().unwrap();
        // As if the last migration had not run (an old store under a new binary).
        brevet::store::Exec::execute(
            &mut app.store.db(),
            brevet::store::sql::query(format!("update _sqlx_migrations set version = 99999 where version = {last}")),
        ).await.unwrap();
        let ready = app.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready.json()["checks"][1], serde_json::json!({
            "name": "migrations", "ok": false,
            "detail": format!("migrations [{last}] are not applied: run `brevet migrate`"),
        }));
    }

    async fn metrics_show_the_notification_backlog_and_whether_it_can_drain(db: TestDb) {
        use brevet::store::outbox;
        let store = db.store().await;
        let now = chrono::Utc::now();
        for n in 0..3 {
            let job = brevet::store::Job::CredentialStatus {
                device_reference_id: format!("device-{n}"),
                credential_id: format!("copy-{n}"),
            };
            outbox::enqueue(&mut store.db(), &job, now).await.unwrap();
        }
        // One delivery attempt failed and waits for its retry.
        let claimed = outbox::claim(&mut store.db(), "w1", std::time::Duration::from_secs(60), now).await.unwrap().unwrap();
        assert!(outbox::fail(&mut store.db(), claimed.outbox_id, "w1", "Google answered 503", Some(now + chrono::Duration::minutes(5))).await.unwrap());

        // Scraped two hours later: the oldest has waited that long.
        let config = db.config();
        let later = brevet::clock::Clock::manual(now + chrono::Duration::hours(2));
        let router = brevet::http::build_app(
            brevet::http::AppState::new(store.clone(), &config).with_clock(later),
            brevet::http::Limits::from_config(&config),
        );
        let app = crate::support::http::TestApp { router, store: store.clone() };
        let text = app.get("/metrics", None).await.text();
        let value = |name: &str| -> f64 {
            text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap_or_else(|| panic!("{name} not in\n{text}")).parse().unwrap()
        };
        assert_eq!(value("brevet_outbox_retrying_jobs"), 1.0);
        let age = value("brevet_outbox_oldest_pending_age_seconds");
        assert!((7195.0..=7260.0).contains(&age), "{age}");
        assert_eq!(value(r#"brevet_outbox_jobs{state="pending"}"#), 3.0);
        assert_eq!(value("brevet_notifications_configured"), 0.0);
        assert_eq!(value("brevet_msos_issued_total"), 0.0);
        let token = app.admin_token().await;
        let listed = app.get("/admin/v1/outbox", Some(&token)).await.json();
        assert_eq!(listed["warning"], brevet::http::ops::NOTIFICATIONS_DISABLED);

        let mut configured = db.config();
        configured.google.base_url = Some("https://vgw.sandbox.google.com".into());
        configured.google.issuer_id = Some("1".into());
        let app = db.app_with(configured).await;
        let text = app.get("/metrics", None).await.text();
        assert!(text.lines().any(|l| l == "brevet_notifications_configured 1"), "{text}");
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
