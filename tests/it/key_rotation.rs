//! Live key rotation: two `brevet serve` replicas sharing one store and one key directory pick up
//! a new identity key and a scheduled DS without a restart, publish the identity key before
//! using it, and switch at the same instant, agreed in the store.

use std::time::{Duration, Instant};

use crate::support::process::{brevet, Server};
use crate::support::TestDb;

/// `/readyz`'s check `name` on `base`.
async fn check(base: &str, name: &str) -> String {
    let ready: serde_json::Value = reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn identity_certificates(base: &str) -> usize {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/v1/vdc/getIdentityKey"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["issuerIdentityCertificate"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Polls `probe` on both replicas until both give `wanted` (20 s at most).
async fn both_reach<F, Fut>(
    replicas: &[&str],
    wanted: impl Fn(&str) -> bool,
    probe: F,
) -> Vec<String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut seen = Vec::new();
        for base in replicas {
            seen.push(probe((*base).to_owned()).await);
        }
        if seen.iter().all(|s| wanted(s)) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "replicas never converged: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

both_stores! {
    async fn replicas_pick_up_rotations_live_and_switch_together(db: TestDb) {
        std::fs::write(
            db.dir.join("brevet.toml"),
            format!(
                "mode = \"production\"\ndatabase_url = \"{}\"\n[keys]\nreload_secs = 1\npublish_delay_secs = 4\n",
                db.url.expose()
            ),
        )
        .unwrap();
        let keys = |args: &[&str]| {
            let output = brevet(&db.dir).args(["--config", "brevet.toml", "keys"]).args(args).output().unwrap();
            assert!(output.status.success(), "{args:?}: {output:?}");
        };
        keys(&["init", "--country", "XX", "--iaca-name", "Rotation IACA", "--contact", "https://issuer.example"]);
        let start = || {
            let mut command = brevet(&db.dir);
            command.args(["--config", "brevet.toml"]);
            Server::start(command)
        };
        let (a, b) = (start(), start());
        let replicas = [a.base_url.as_str(), b.base_url.as_str()];
        for base in replicas {
            assert_eq!(check(base, "wallet_keys").await, "identity 0001 signs, hybrid 0001 advertised");
            assert_eq!(identity_certificates(base).await, 1);
        }

        // A new identity key: published by both within a reload, signing later, at one instant.
        keys(&["rotate-identity"]);
        let pending = both_reach(&replicas, |s| s.contains("identity 0002 published, signs from "), |base| async move {
            check(&base, "wallet_keys").await
        })
        .await;
        assert_eq!(pending[0], pending[1], "both replicas agree on the instant");
        assert!(pending[0].starts_with("identity 0001 signs"), "{}", pending[0]);
        for base in replicas {
            assert_eq!(identity_certificates(base).await, 2, "published before it signs");
        }
        both_reach(&replicas, |s| s.starts_with("identity 0002 signs"), |base| async move {
            check(&base, "wallet_keys").await
        })
        .await;

        // A DS scheduled a few seconds ahead: both load it, both switch when it comes.
        let at = chrono::Utc::now() + chrono::Duration::seconds(4);
        let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        keys(&["rotate-ds", "--at", &at_text]);
        let scheduled = both_reach(&replicas, |s| s.contains("0002 signs from"), |base| async move {
            check(&base, "mdoc_keys").await
        })
        .await;
        assert_eq!(scheduled[0], format!("document signer 0001 loaded; 0002 signs from {at_text}"));
        assert_eq!(scheduled[0], scheduled[1]);
        both_reach(&replicas, |s| s == "document signer 0002 loaded", |base| async move {
            check(&base, "mdoc_keys").await
        })
        .await;
        let scheduled_at = chrono::DateTime::parse_from_rfc3339(&at_text).unwrap();
        assert!(chrono::Utc::now() >= scheduled_at, "not before its time");

        // A restarted replica reads the same activation times (they are in the store).
        drop(a);
        let c = start();
        assert_eq!(check(&c.base_url, "wallet_keys").await, "identity 0002 signs, hybrid 0001 advertised");
        assert_eq!(check(&c.base_url, "mdoc_keys").await, "document signer 0002 loaded");
    }
}

#[tokio::test]
async fn a_doc_type_with_its_own_key_directory_is_signed_under_its_own_iaca() {
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("keys-mdl");
    let init = brevet(dir.path())
        .args([
            "keys",
            "init",
            "--country",
            "US",
            "--iaca-name",
            "mDL IACA",
            "--contact",
            "https://dmv.example",
        ])
        .env("BREVET_KEYS_DIR", &own)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    std::fs::write(
        dir.path().join("brevet.toml"),
        format!(
            "mode = \"development\"\n[keys.doc_type.\"org.iso.18013.5.1.mDL\"]\nkeys_dir = \"{}\"\n",
            own.display()
        ),
    )
    .unwrap();
    let mut command = brevet(dir.path());
    command.args(["--config", "brevet.toml"]);
    let server = Server::start(command);
    let token = server.stdout_lines(2).pop().unwrap();
    assert_eq!(
        check(&server.base_url, "mdoc_keys").await,
        "document signer 0001 loaded; org.iso.18013.5.1.mDL: document signer 0001"
    );
    let flow = |iaca: std::path::PathBuf| {
        brevet(dir.path())
            .args([
                "--config",
                "brevet.toml",
                "sim",
                "wallet",
                "--issuer",
                &server.base_url,
                "--admin-token",
                &token,
                "--iaca",
            ])
            .arg(iaca)
            .output()
            .unwrap()
    };
    // The device verifies every MSO against the IACA it is given: the doc type's own passes…
    let passed = flow(own.join("iaca.cert.pem"));
    let out = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success() && !out.contains("FAIL"), "{out}");
    // The issuance records name the DS with its doc type (numbers repeat across directories).
    let client = reqwest::Client::new();
    let admin = |path: String| {
        let request = client
            .get(format!("{}/admin/v1{path}", server.base_url))
            .bearer_auth(&token);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let records = admin("/credentials".into()).await;
    let id = records["credentials"][0]["credentialId"]
        .as_str()
        .unwrap()
        .to_owned();
    let msos = admin(format!("/credentials/{id}/msos")).await;
    let first = &msos
        .as_object()
        .unwrap()
        .values()
        .find_map(|v| v.as_array())
        .unwrap()[0];
    assert_eq!(first["dsKeyId"], "org.iso.18013.5.1.mDL/0001", "{msos}");
    // …and the main directory's (the development IACA) does not sign mDL MSOs here.
    let refused = flow(dir.path().join("brevet-data/keys/iaca.cert.pem"));
    assert!(
        !refused.status.success(),
        "MSOs must chain to the mDL's own IACA"
    );
    assert!(String::from_utf8_lossy(&refused.stdout).contains("FAIL"));
}
