//! `brevet sim wallet` against a freshly started `brevet serve`: the whole Wallet flow over real
//! HTTP on both stores, with notifications delivered to the fake Google; and the same flow over
//! mutual TLS, where the Wallet surface admits only Google's client certificate.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use brevet::sim::google::FakeGoogle;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::process::{brevet, Server};
use crate::support::TestDb;

fn init_keys(dir: &Path) {
    let output = brevet(dir)
        .env("BREVET_DATA_DIR", dir)
        .args([
            "keys",
            "init",
            "--country",
            "US",
            "--iaca-name",
            "Sim Test IACA",
            "--contact",
            "https://dmv.example",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn run_sim(dir: &Path, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_brevet"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BREVET_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        .env("BREVET_DATA_DIR", dir)
        .arg("sim")
        .arg("wallet")
        .args(args);
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the simulator finishes")
        .unwrap()
}

fn assert_passed(output: &Output, steps: usize) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "sim failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = format!("PASS: {steps} of {steps} steps passed");
    assert!(stdout.trim_end().ends_with(&summary), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    stdout
}

both_stores! {
    async fn the_whole_wallet_flow_passes_against_a_fresh_server(db: TestDb) {
        init_keys(&db.dir);
        let google = FakeGoogle::start("Sim_Test_Issuer").await.unwrap();
        let mut command = brevet(&db.dir);
        command
            .env("BREVET_DATABASE_URL", db.url.expose())
            .env("BREVET_DATA_DIR", &db.dir)
            .env("BREVET_MODE", "development")
            .env("BREVET_GOOGLE__BASE_URL", google.base_url())
            .env("BREVET_GOOGLE__ISSUER_ID", "Sim_Test_Issuer")
            .env("BREVET_OUTBOX__DISPATCH_IN_SERVE", "true")
            .env("BREVET_OUTBOX__POLL_INTERVAL_MS", "100");
        let server = Server::start(command);
        let token = server.stdout_lines(2).pop().unwrap();

        let output = run_sim(&db.dir, &["--issuer", &server.base_url, "--admin-token", &token, "--issuer-id", "Sim_Test_Issuer"]).await;
        let stdout = assert_passed(&output, 29);
        assert!(stdout.contains("3 MSOs verified against the IACA"), "{stdout}");

        // Staff's approval, update and revocation reached the fake Google through the outbox (the
        // update and the revocation may fold into one call when both wait at once).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let accepted = google.accepted();
            let proofing = accepted.iter().filter(|n| n.method == "notifyProofingStatusUpdateAvailable").count();
            let credential = accepted.iter().filter(|n| n.method == "notifyCredentialStatusUpdateAvailable").count();
            if proofing >= 1 && credential >= 1 {
                assert!(accepted.iter().all(|n| n.device_reference_id.starts_with("sim-device-")));
                break;
            }
            assert!(std::time::Instant::now() < deadline, "notifications seen: {accepted:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Nothing personal or secret in the server's log.
        let (code, log) = server.terminate();
        assert_eq!(code, Some(0));
        let log = log.join("\n");
        for secret in [token.as_str(), "Mustermann", "1 Simulation Way", "2 Updated Avenue"] {
            assert!(!log.contains(secret), "{secret} in the log");
        }
    }
}

struct Pki {
    ca: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Pki {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Pki {
        ca: params.self_signed(&key).unwrap(),
        key,
    }
}

fn leaf(pki: &Pki, name: &str, purpose: ExtendedKeyUsagePurpose) -> (rcgen::Certificate, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![purpose];
    (
        params.signed_by(&key, &pki.ca, &pki.key).unwrap(),
        key.serialize_pem(),
    )
}

/// Google's client certificate is pinned by fingerprint; the Wallet surface refuses any other
/// caller with `forbidden`, while staff reach the admin API with their token alone.
#[tokio::test]
async fn over_mutual_tls_only_googles_certificate_reaches_the_wallet_api() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    init_keys(dir);
    let issuer_pki = ca("Issuer TLS CA");
    let google_pki = ca("Google client CA");
    let (server_cert, server_key) = leaf(
        &issuer_pki,
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (google_cert, google_key) = leaf(
        &google_pki,
        "google-client",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let (other_cert, other_key) = leaf(
        &google_pki,
        "someone-else",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let server_cert_path = write("server.pem", &server_cert.pem());
    let server_key_path = write("server.key", &server_key);
    let issuer_ca_path = write("issuer-ca.pem", &issuer_pki.ca.pem());
    let google_identity = write(
        "google.pem",
        &format!("{}{}", google_cert.pem(), google_key),
    );
    let other_identity = format!("{}{}", other_cert.pem(), other_key);
    let pin = hex::encode(Sha256::digest(google_cert.der()));

    let mut command = brevet(dir);
    command
        .env("BREVET_DATA_DIR", dir)
        .env("BREVET_WALLET__ATTESTATION__TRUST_SIMULATOR_ROOT", "true")
        .env("BREVET_TLS__CERTIFICATE", &server_cert_path)
        .env("BREVET_TLS__PRIVATE_KEY", &server_key_path)
        .env("BREVET_TLS__CLIENT_PINS", format!("[\"{pin}\"]"));
    let server = Server::start(command);
    let token = server.stdout_lines(2).pop().unwrap();
    let base = server
        .base_url
        .replace("http://127.0.0.1", "https://localhost");

    let client = |identity: Option<&str>| {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(issuer_pki.ca.pem().as_bytes()).unwrap(),
            );
        if let Some(pem) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    };
    let health = json!({ "requestMetadata": { "requestId": "r1", "version": { "major": 0, "minor": 1 }, "issuerId": "x" }, "clientMessage": "hi" });
    for (who, identity) in [
        ("no certificate", None),
        ("an unpinned certificate", Some(other_identity.as_str())),
    ] {
        let response = client(identity)
            .post(format!("{base}/v1/vdc/healthCheck"))
            .json(&health)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{who}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body.get("forbidden").is_some(), "{who}: {body}");
    }
    let admin = client(None)
        .get(format!("{base}/admin/v1/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200, "staff need no client certificate");

    let output = run_sim(
        dir,
        &[
            "--issuer",
            &base,
            "--admin-token",
            &token,
            "--client-identity",
            google_identity.to_str().unwrap(),
            "--ca",
            issuer_ca_path.to_str().unwrap(),
            "--pre-authorized",
        ],
    )
    .await;
    // This run proofs the holder with a pre-authorized code: one step fewer than a staff review.
    let stdout = assert_passed(&output, 28);
    assert!(stdout.contains("accepted without review"), "{stdout}");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}
