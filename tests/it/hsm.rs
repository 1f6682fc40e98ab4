//! Issuer keys in a PKCS#11 token (SoftHSM2): made inside it by `brevet keys`, used by
//! `brevet serve` through the whole Wallet flow on both stores, and one-line errors for a wrong
//! module, token or PIN and for a key gone from the token.

use std::path::Path;
use std::process::Output;

use crate::support::process::{brevet, Server};
use crate::support::softhsm::SoftHsm;
use crate::support::TestDb;

fn run(dir: &Path, hsm: &SoftHsm, args: &[&str]) -> Output {
    brevet(dir)
        .args(["--config", "brevet.toml"])
        .args(args)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .unwrap()
}

fn init_keys(dir: &Path, hsm: &SoftHsm) {
    let init = run(
        dir,
        hsm,
        &[
            "keys",
            "init",
            "--country",
            "XX",
            "--iaca-name",
            "HSM IACA",
            "--contact",
            "https://issuer.example",
        ],
    );
    assert!(init.status.success(), "{init:?}");
}

both_stores! {
    async fn every_signing_key_lives_in_the_token_through_the_whole_wallet_flow(db: TestDb) {
        let hsm = SoftHsm::new(&db.dir, "brevet-flow");
        // Development mode: the Wallet simulator's attestation root is trusted.
        std::fs::write(
            db.dir.join("brevet.toml"),
            format!("mode = \"development\"\ndatabase_url = \"{}\"\n{}", db.url.expose(), hsm.config()),
        )
        .unwrap();
        init_keys(&db.dir, &hsm);
        let keys = db.dir.join("brevet-data/keys");
        // Every private key: signing keys, and the hybrid key, which decrypts by the token's ECDH.
        for stem in ["iaca", "ds/0001", "identity/0001", "hybrid/0001"] {
            assert!(keys.join(format!("{stem}.key.pkcs11")).is_file(), "{stem} is in the token");
            assert!(!keys.join(format!("{stem}.key.pem")).exists(), "{stem} never left it");
        }
        let show = String::from_utf8(run(&db.dir, &hsm, &["keys", "show"]).stdout).unwrap();
        assert_eq!(show.matches("private key: in the PKCS#11 token, label \"brevet-").count(), 2, "{show}");

        // The DS is rotated inside the token too.
        let rotated = run(&db.dir, &hsm, &["keys", "rotate-ds"]);
        assert!(rotated.status.success(), "{rotated:?}");
        assert!(keys.join("ds/0002.key.pkcs11").is_file());

        let mut command = brevet(&db.dir);
        command.args(["--config", "brevet.toml"]).env("SOFTHSM2_CONF", &hsm.conf);
        let server = Server::start(command);
        let token = server.stdout_lines(2).pop().unwrap();
        let ready: serde_json::Value = reqwest::get(format!("{}/readyz", server.base_url)).await.unwrap().json().await.unwrap();
        assert_eq!(ready["checks"][2]["detail"], "document signer 0002 loaded", "{ready}");
        // The simulated device checks every MSO against the IACA and the identity signatures.
        let flow = run(&db.dir, &hsm, &["sim", "wallet", "--issuer", &server.base_url, "--admin-token", &token]);
        let out = String::from_utf8_lossy(&flow.stdout);
        assert!(flow.status.success(), "{out}\n{}", String::from_utf8_lossy(&flow.stderr));
        assert!(out.contains("PASS") && !out.contains("FAIL"), "{out}");
        let (code, log) = server.terminate();
        assert_eq!(code, Some(0));
        assert!(!log.join("\n").contains(crate::support::softhsm::PIN), "the PIN is never logged");
    }
}

#[test]
fn token_mistakes_are_one_line_errors_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path(), "brevet-errors");
    let cases: [(String, &str); 4] = [
        (
            hsm.config()
                .replace(crate::support::softhsm::MODULE, "/nonexistent/libpkcs11.so"),
            "setting `keys.pkcs11.module`: /nonexistent/libpkcs11.so: cannot load it",
        ),
        (
            hsm.config().replace("brevet-errors", "no-such-token"),
            "setting `keys.pkcs11.token_label`: the module has no token labelled \"no-such-token\" (it has slot ",
        ),
        (
            hsm.config().replace("token_label = \"brevet-errors\"", "slot = 999999"),
            "setting `keys.pkcs11.slot`: the module has no token in slot 999999 (it has slot ",
        ),
        (
            format!(
                "{}\n",
                hsm.config().replace(
                    &format!("pin_file = \"{}\"\n", hsm.pin_file.display()),
                    "pin = \"0000\"\n"
                )
            ),
            "setting `keys.pkcs11.pin_file`: token \"brevet-errors\" refused the PIN",
        ),
    ];
    for (config, expected) in cases {
        std::fs::write(
            dir.path().join("brevet.toml"),
            format!("mode = \"production\"\n{config}"),
        )
        .unwrap();
        let output = run(
            dir.path(),
            &hsm,
            &[
                "keys",
                "init",
                "--country",
                "XX",
                "--iaca-name",
                "X",
                "--contact",
                "https://x.example",
            ],
        );
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(expected),
            "{stderr:?} should contain {expected:?}"
        );
        assert!(!stderr.contains("0000") && !stderr.contains(crate::support::softhsm::PIN));
    }

    // A key that is no longer in the token stops the server at start, naming it. (The token is
    // named by its slot here, as a module whose tokens share a label needs.)
    let by_slot = hsm.config().replace(
        "token_label = \"brevet-errors\"",
        &format!("slot = {}", hsm.slot),
    );
    std::fs::write(
        dir.path().join("brevet.toml"),
        format!("mode = \"production\"\n{by_slot}"),
    )
    .unwrap();
    init_keys(dir.path(), &hsm);
    let marker = dir.path().join("brevet-data/keys/ds/0001.key.pkcs11");
    std::fs::write(&marker, "brevet-ds-gone\n").unwrap();
    let output = run(dir.path(), &hsm, &["serve"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("brevet: cannot read the active document signer: ")
            && last.ends_with(
                "ds/0001.key.pkcs11: key \"brevet-ds-gone\" is not in token \"brevet-errors\""
            ),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_device_ca_key_in_the_token_issues_chromeos_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path(), "brevet-device-ca");
    std::fs::write(
        dir.path().join("brevet.toml"),
        format!("mode = \"production\"\n{}", hsm.config()),
    )
    .unwrap();
    let ca_dir = dir.path().join("device-ca-2026");
    let made = run(
        dir.path(),
        &hsm,
        &[
            "keys",
            "init-device-ca",
            "--name",
            "Token Device CA",
            "--dir",
            ca_dir.to_str().unwrap(),
        ],
    );
    assert!(made.status.success(), "{made:?}");
    assert!(ca_dir.join("ca.key.pkcs11").is_file() && !ca_dir.join("ca.key.pem").exists());
    assert!(String::from_utf8_lossy(&made.stdout).contains("ca.key.pkcs11"));

    // The simulated ChromeOS devices check every certificate against that CA.
    let sim_dir = dir.path().join("sim");
    let mut sim_command = brevet(dir.path());
    sim_command.env("SOFTHSM2_CONF", &hsm.conf);
    let mut sim = Server::spawn_args(
        sim_command,
        &[
            "sim",
            "chrome",
            "--dir",
            sim_dir.to_str().unwrap(),
            "--ca-dir",
            ca_dir.to_str().unwrap(),
            "--processes",
            "2",
            "--timeout-secs",
            "60",
        ],
    );
    let ready = sim.wait_for_log(|line| line["worker_config"].is_string());
    let config = ready["worker_config"].as_str().unwrap().to_owned();
    let mut command = brevet(dir.path());
    command
        .arg("--config")
        .arg(&config)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env(
            "BREVET_KEYS__PKCS11__MODULE",
            crate::support::softhsm::MODULE,
        )
        .env("BREVET_KEYS__PKCS11__TOKEN_LABEL", &hsm.label)
        .env("BREVET_KEYS__PKCS11__PIN_FILE", &hsm.pin_file);
    let mut worker = Server::spawn(command, "worker");
    worker.wait_for_log(|line| line["message"] == "certificate-provisioning adapter started");
    let (code, out) = sim.wait_exit(std::time::Duration::from_secs(90));
    assert_eq!(code, Some(0), "{out:?}");
    assert_eq!(
        out.last().map(String::as_str),
        Some("2 of 2 processes provisioned"),
        "{out:?}"
    );
    let (exit, log) = worker.terminate();
    assert_eq!(exit, Some(0));
    assert!(!log.join("\n").contains(crate::support::softhsm::PIN));
}
