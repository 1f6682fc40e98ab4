//! The checked-in OpenAPI documents must be exactly what the code generates. To accept a change
//! in the API, run `BREVET_UPDATE_OPENAPI=1 cargo test openapi` and commit the files.

use std::path::Path;

use brevet::http::openapi::{admin_surface, render, wallet_surface};

fn check(file: &str, generated: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    if std::env::var_os("BREVET_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{file} differs from the API the code serves; run `BREVET_UPDATE_OPENAPI=1 cargo test openapi` and commit it"
    );
}

#[test]
fn admin_document_matches_the_code() {
    let (_, doc) = admin_surface();
    let json = render(&doc);
    check("openapi/admin.json", &json);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let paths: Vec<&String> = value["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/admin/v1/audit",
            "/admin/v1/cert-processes",
            "/admin/v1/credentials",
            "/admin/v1/credentials/bulk-updates",
            "/admin/v1/credentials/bulk-updates/{bulk_update_id}",
            "/admin/v1/credentials/{credential_id}",
            "/admin/v1/credentials/{credential_id}/devices",
            "/admin/v1/credentials/{credential_id}/msos",
            "/admin/v1/credentials/{credential_id}/pre-authorized-codes",
            "/admin/v1/credentials/{credential_id}/request-reverification",
            "/admin/v1/credentials/{credential_id}/revoke",
            "/admin/v1/credentials/{credential_id}/versions",
            "/admin/v1/device-certificates/{serial}/revoke",
            "/admin/v1/outbox",
            "/admin/v1/outbox/{outbox_id}/retry",
            "/admin/v1/proofings",
            "/admin/v1/proofings/{proofing_id}",
            "/admin/v1/proofings/{proofing_id}/review",
            "/admin/v1/tokens",
            "/admin/v1/tokens/{token_id}",
            "/admin/v1/whoami",
            "/healthz",
            "/metrics",
            "/readyz"
        ]
    );
    assert_eq!(
        value["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn wallet_document_matches_the_code() {
    let (_, doc) = wallet_surface();
    let json = render(&doc);
    check("openapi/wallet.json", &json);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let paths: Vec<&String> = value["paths"].as_object().unwrap().keys().collect();
    // All twelve issuer-hosted methods of spec/wallet-api.md §4, and nothing else.
    assert_eq!(
        paths,
        [
            "/v1/vdc/cancelProofing",
            "/v1/vdc/getCredentialStatus",
            "/v1/vdc/getDeviceRegistrationNonce",
            "/v1/vdc/getHybridEncryptionKey",
            "/v1/vdc/getIdentityKey",
            "/v1/vdc/getProofingStatus",
            "/v1/vdc/healthCheck",
            "/v1/vdc/notifyCredentialDeleted",
            "/v1/vdc/proofUser",
            "/v1/vdc/provisionCredential",
            "/v1/vdc/provisionMobileSecurityObjects",
            "/v1/vdc/registerDevice",
        ]
    );
    for method in value["paths"].as_object().unwrap().values() {
        assert!(method.get("post").is_some(), "every method is a POST");
    }
    // Objects whose fields are our assumption say so.
    for unconfirmed in [
        "AuthKey",
        "ProofOfProvisioning",
        "MobileSecurityObject",
        "UserActionRequired",
    ] {
        assert_eq!(
            value["components"]["schemas"][unconfirmed]["x-brevet-unconfirmed"], true,
            "{unconfirmed} is marked unconfirmed"
        );
    }
    let error = &value["components"]["schemas"]["ErrorResponse"]["properties"];
    for member in [
        "invalidApiVersion",
        "missingRequiredField",
        "invalidState",
        "responseMetadata",
    ] {
        assert!(
            error.get(member).is_some(),
            "ErrorResponse documents {member}"
        );
    }
}
