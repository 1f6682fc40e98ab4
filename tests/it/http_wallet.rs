//! The Wallet surface's request handling and ErrorResponse shape (spec/wallet-api.md §1, §3.6, §4.1).

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::support::inspect::Inspect;
use crate::support::TestDb;

fn health_check(version: Value) -> Value {
    json!({
        "requestMetadata": { "requestId": "req-7", "version": version, "issuerId": "Brevet_Test_MDL" },
        "clientMessage": "ping 42",
    })
}

/// Asserts the ErrorResponse envelope and returns the one union member present.
fn error_member(body: &Value, request_id: &str) -> (String, Value) {
    let object = body.as_object().expect("ErrorResponse is an object");
    assert_eq!(body["responseMetadata"], json!({ "requestId": request_id }));
    assert!(body["errorDescription"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    let id = body["issuerErrorIdentifier"]
        .as_str()
        .expect("issuerErrorIdentifier");
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let members: Vec<(&String, &Value)> = object
        .iter()
        .filter(|(k, _)| {
            ![
                "responseMetadata",
                "errorDescription",
                "issuerErrorIdentifier",
            ]
            .contains(&k.as_str())
        })
        .collect();
    assert_eq!(members.len(), 1, "exactly one union member in {body}");
    (members[0].0.clone(), members[0].1.clone())
}

both_stores! {
    async fn health_check_echoes_the_client_message(db: TestDb) {
        let app = db.app().await;
        let response = app.post("/v1/vdc/healthCheck", &health_check(json!({ "major": 0, "minor": 1 })), None).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.json(), json!({ "responseMetadata": { "requestId": "req-7" }, "clientMessage": "ping 42" }));
    }

    async fn unknown_fields_are_ignored(db: TestDb) {
        let app = db.app().await;
        let mut body = health_check(json!({ "major": 0, "minor": 1 }));
        body["someFutureField"] = json!({ "x": 1 });
        let response = app.post("/v1/vdc/healthCheck", &body, None).await;
        assert_eq!(response.status, StatusCode::OK);
    }

    async fn other_api_versions_get_invalid_api_version(db: TestDb) {
        let app = db.app().await;
        let response = app.post("/v1/vdc/healthCheck", &health_check(json!({ "major": 1, "minor": 0 })), None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        let (member, value) = error_member(&response.json(), "req-7");
        assert_eq!(member, "invalidApiVersion");
        assert_eq!(value, json!({ "requestVersion": { "major": 1, "minor": 0 }, "expectedVersion": { "major": 0, "minor": 1 } }));
    }

    async fn accepted_versions_are_configurable(db: TestDb) {
        let mut config = db.config();
        config.wallet.api_versions = vec!["0.1".into(), "1.0".into()];
        let app = db.app_with(config).await;
        for version in [json!({ "major": 0, "minor": 1 }), json!({ "major": 1, "minor": 0 })] {
            let response = app.post("/v1/vdc/healthCheck", &health_check(version.clone()), None).await;
            assert_eq!(response.status, StatusCode::OK, "{version}");
        }
        let response = app.post("/v1/vdc/healthCheck", &health_check(json!({ "major": 2, "minor": 0 })), None).await;
        let (_, value) = error_member(&response.json(), "req-7");
        assert_eq!(value["expectedVersion"], json!({ "major": 1, "minor": 0 }));
    }

    async fn malformed_requests_get_typed_errors(db: TestDb) {
        let app = db.app().await;
        let v01 = json!({ "major": 0, "minor": 1 });
        let cases: Vec<(String, &str, &str, &str)> = vec![
            ("{oops".into(), "", "invalidFieldValue", "not valid JSON"),
            (json!({ "requestMetadata": { "requestId": "r-2", "version": v01, "issuerId": "i" } }).to_string(), "r-2", "missingRequiredField", "clientMessage"),
            (json!({ "clientMessage": "x" }).to_string(), "", "missingRequiredField", "requestMetadata"),
            (json!({ "requestMetadata": { "requestId": "r-3", "version": v01, "issuerId": "i" }, "clientMessage": 5 }).to_string(), "r-3", "invalidFieldValue", "invalid type"),
            (json!({ "requestMetadata": { "requestId": "r-4", "version": "0.1", "issuerId": "i" }, "clientMessage": "x" }).to_string(), "r-4", "invalidFieldValue", "requestMetadata.version"),
        ];
        for (body, request_id, expected, mentions) in cases {
            let response = app.post_raw("/v1/vdc/healthCheck", body.clone(), None).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
            let json = response.json();
            let (member, value) = error_member(&json, request_id);
            assert_eq!(member, expected, "{body}");
            assert_eq!(value, json!({}));
            let description = json["errorDescription"].as_str().unwrap();
            assert!(description.contains(mentions), "{body}: {description:?} should mention {mentions:?}");
        }
    }

    async fn oversized_wallet_bodies_are_refused_in_the_wallet_shape(db: TestDb) {
        let mut config = db.config();
        config.http.body_limit_bytes = 2048;
        let app = db.app_with(config).await;
        let mut body = health_check(json!({ "major": 0, "minor": 1 }));
        body["clientMessage"] = json!("x".repeat(4096));
        let response = app.post("/v1/vdc/healthCheck", &body, None).await;
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
        let json = response.json();
        assert!(json["errorDescription"].as_str().unwrap().contains("unreadable request body"), "{json}");
        assert!(json.get("issuerErrorIdentifier").is_some(), "an ErrorResponse: {json}");
    }

    async fn device_registration_nonces_are_fresh_stored_and_replaced(db: TestDb) {
        let app = db.app().await;
        let ask = |device: serde_json::Value| {
            let body = json!({
                "requestMetadata": { "requestId": "req-n", "version": { "major": 0, "minor": 1 }, "issuerId": "Brevet_Test_MDL" },
                "deviceReferenceId": device,
            });
            let app = &app;
            async move { app.post("/v1/vdc/getDeviceRegistrationNonce", &body, None).await }
        };
        use base64::Engine;
        let decode = |r: &crate::support::http::TestResponse| {
            let text = r.json()["nonce"].as_str().unwrap().to_owned();
            assert_eq!(text.len(), 32, "a 32-character string: {text}");
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
        };
        let first = ask(json!("device-ref-1")).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text());
        assert_eq!(first.json()["responseMetadata"], json!({ "requestId": "req-n" }));
        let first_nonce = decode(&first);
        assert_eq!(first_nonce.len(), 24, "24 random bytes");
        let device = app.store.get_device("device-ref-1").await.unwrap().unwrap();
        assert_eq!(device.status.as_str(), "nonceIssued");
        assert_eq!(device.registration_nonce.as_deref(), Some(first_nonce.as_slice()));
        let ttl = device.nonce_expires_at.unwrap() - chrono::Utc::now();
        assert!(ttl > chrono::Duration::seconds(590) && ttl <= chrono::Duration::seconds(600), "{ttl}");

        let second_nonce = decode(&ask(json!("device-ref-1")).await);
        assert_ne!(second_nonce, first_nonce);
        let device = app.store.get_device("device-ref-1").await.unwrap().unwrap();
        assert_eq!(device.registration_nonce.as_deref(), Some(second_nonce.as_slice()), "the new nonce replaces the old");

        for (bad, member) in [(json!(""), "invalidFieldValue"), (json!("x".repeat(513)), "invalidFieldValue"), (json!(7), "invalidFieldValue"), (serde_json::Value::Null, "invalidFieldValue")] {
            let response = ask(bad.clone()).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
            let (got, _) = error_member(&response.json(), "req-n");
            assert_eq!(got, member, "{bad}");
        }
        let missing = app
            .post("/v1/vdc/getDeviceRegistrationNonce", &json!({ "requestMetadata": { "requestId": "r", "version": { "major": 0, "minor": 1 }, "issuerId": "i" } }), None)
            .await;
        assert_eq!(error_member(&missing.json(), "r").0, "missingRequiredField");
        assert_eq!(app.store.count_where("devices", "device_reference_id", "").await, 0);
    }
}
