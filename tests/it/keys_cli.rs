//! `brevet keys …` end to end through the binary.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use crate::support::process::brevet;

fn keys(dir: &Path, keys_dir: &str, args: &[&str]) -> Output {
    brevet(dir)
        .env("BREVET_KEYS_DIR", keys_dir)
        .arg("keys")
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

const INIT: &[&str] = &[
    "init",
    "--country",
    "US",
    "--state",
    "Utopia",
    "--iaca-name",
    "Utopia DMV IACA",
    "--contact",
    "mdl@dmv.example",
    "--ds-days",
    "200",
];

#[test]
fn init_show_rotate_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let shown = ok(&keys(dir.path(), "a", INIT));
    assert!(
        shown.contains("IACA: CN=Utopia DMV IACA,ST=Utopia,C=US"),
        "{shown}"
    );
    assert!(
        shown.contains("DS 0001 (active): CN=Utopia DMV IACA DS 1,ST=Utopia,C=US"),
        "{shown}"
    );
    assert!(shown.contains("expires in 199 days"), "{shown}");
    assert!(!shown.contains("PRIVATE"));
    for key in ["a/iaca.key.pem", "a/ds/0001.key.pem"] {
        assert_eq!(
            std::fs::metadata(dir.path().join(key)).unwrap().mode() & 0o777,
            0o600,
            "{key}"
        );
    }

    let again = keys(dir.path(), "a", INIT);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("brevet: keys init failed: ") && stderr.contains("already holds keys"),
        "{stderr}"
    );

    let rotated = ok(&keys(dir.path(), "a", &["rotate-ds", "--days", "30"]));
    assert!(
        rotated.contains("DS 0001: CN=Utopia DMV IACA DS 1"),
        "{rotated}"
    );
    assert!(
        rotated.contains("DS 0002 (active): CN=Utopia DMV IACA DS 2"),
        "{rotated}"
    );
    assert_eq!(
        rotated.matches("status: chains to the IACA").count(),
        2,
        "the old DS stays valid: {rotated}"
    );
    // `init` made the first status-list signer; rotation adds one, both certified by the IACA.
    let rotated = ok(&keys(
        dir.path(),
        "a",
        &["rotate-status-list", "--days", "30"],
    ));
    assert!(
        rotated.contains("created status-list signer 0002"),
        "{rotated}"
    );
    assert!(
        rotated.contains("Status-list signer 0001: CN=Utopia DMV IACA DS Status List 1"),
        "{rotated}"
    );
    assert!(
        rotated.contains("Status-list signer 0002: CN=Utopia DMV IACA DS Status List 2"),
        "{rotated}"
    );
    let too_long = keys(dir.path(), "a", &["rotate-ds", "--days", "500"]);
    assert_eq!(too_long.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("at most 457 days"));

    // Import A's IACA (without its key: kept offline) and DS into a new directory B.
    let a = dir.path().join("a");
    let import = |dir_b: &str, ds: &str| {
        keys(
            dir.path(),
            dir_b,
            &[
                "import",
                "--iaca-cert",
                a.join("iaca.cert.pem").to_str().unwrap(),
                "--ds-cert",
                a.join(format!("ds/{ds}.cert.pem")).to_str().unwrap(),
                "--ds-key",
                a.join(format!("ds/{ds}.key.pem")).to_str().unwrap(),
            ],
        )
    };
    let imported = ok(&import("b", "0002"));
    assert!(imported.contains("imported DS 0001"), "{imported}");
    assert!(
        imported.contains("private key: not here (offline)"),
        "{imported}"
    );
    let shown = ok(&keys(dir.path(), "b", &["show"]));
    assert!(
        shown.contains("DS 0001 (active): CN=Utopia DMV IACA DS 2"),
        "{shown}"
    );
    // Import also creates the Wallet API's identity and hybrid keys; rotation adds more.
    assert!(
        shown.contains("Wallet identity 0001: CN=Brevet Wallet Identity Key 1,C=US"),
        "{shown}"
    );
    assert!(
        shown.contains("Wallet hybrid 0001: CN=Brevet Wallet Hybrid Encryption Key 1,C=US"),
        "{shown}"
    );
    let rotated = ok(&keys(dir.path(), "b", &["rotate-identity"]));
    assert!(
        rotated.contains("created Wallet identity key 0002"),
        "{rotated}"
    );
    let rotated = ok(&keys(dir.path(), "b", &["rotate-hybrid"]));
    assert!(
        rotated.contains("created Wallet hybrid-encryption key 0002"),
        "{rotated}"
    );
    let shown = ok(&keys(dir.path(), "b", &["show"]));
    assert!(shown.contains("Wallet identity 0002"), "{shown}");
    assert!(shown.contains("Wallet hybrid 0002"), "{shown}");
    // Without the IACA key here, rotation must be done elsewhere.
    let refused = keys(dir.path(), "b", &["rotate-ds"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("kept offline"));
    // So is a status-list signer's: one certified elsewhere (in A) is imported, a wrong key refused.
    let refused = keys(dir.path(), "b", &["rotate-status-list"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("kept offline"));
    let signer = |file: &str| {
        a.join("status-list")
            .join(file)
            .to_str()
            .unwrap()
            .to_owned()
    };
    let wrong = keys(
        dir.path(),
        "b",
        &[
            "import-status-list",
            "--cert",
            &signer("0002.cert.pem"),
            "--key",
            &signer("0001.key.pem"),
        ],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("is not the key of"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let imported = ok(&keys(
        dir.path(),
        "b",
        &[
            "import-status-list",
            "--cert",
            &signer("0002.cert.pem"),
            "--key",
            &signer("0002.key.pem"),
        ],
    ));
    assert!(
        imported.contains("imported status-list signer 0001"),
        "{imported}"
    );
    assert!(
        imported.contains("Status-list signer 0001: CN=Utopia DMV IACA DS Status List 2"),
        "{imported}"
    );

    // A DS key that is not the certificate's is refused, and so is a DS of another IACA.
    let mismatched = keys(
        dir.path(),
        "c",
        &[
            "import",
            "--iaca-cert",
            a.join("iaca.cert.pem").to_str().unwrap(),
            "--ds-cert",
            a.join("ds/0001.cert.pem").to_str().unwrap(),
            "--ds-key",
            a.join("ds/0002.key.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(mismatched.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&mismatched.stderr).contains("is not the key of"));
    ok(&keys(dir.path(), "other", INIT));
    let other = dir.path().join("other");
    let foreign = keys(
        dir.path(),
        "b",
        &[
            "import",
            "--iaca-cert",
            other.join("iaca.cert.pem").to_str().unwrap(),
            "--ds-cert",
            a.join("ds/0001.cert.pem").to_str().unwrap(),
            "--ds-key",
            a.join("ds/0001.key.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(foreign.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("DS: signature does not verify"));
    assert!(
        !dir.path().join("c/iaca.cert.pem").exists(),
        "a refused import writes nothing"
    );
}

#[test]
fn show_without_keys_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = keys(dir.path(), "none", &["show"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("run `brevet keys init` or `brevet keys import`"),
        "{stderr}"
    );
}

/// `keys init-device-ca` makes a CA the built-in connector can load, never over an existing one.
#[test]
fn init_device_ca_makes_a_loadable_ca_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&keys(
        dir.path(),
        "k",
        &[
            "init-device-ca",
            "--name",
            "Utopia Device CA",
            "--days",
            "30",
        ],
    ));
    assert!(out.contains("kind = \"builtin\""), "{out}");
    let ca_dir = dir.path().join("k/device-ca");
    let certificate = ca_dir.join("ca.crt.pem");
    let key = ca_dir.join("ca.key.pem");
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    let cert =
        brevet::pki::certs::from_pem(&std::fs::read_to_string(&certificate).unwrap()).unwrap();
    assert_eq!(
        cert.tbs_certificate.subject.to_string(),
        "CN=Utopia Device CA"
    );
    brevet::certprov::ca::BuiltinCa::load(&certificate, &key).unwrap();
    let again = keys(dir.path(), "k", &["init-device-ca", "--name", "Other"]);
    assert_ne!(
        again.status.code(),
        Some(0),
        "an existing CA is never replaced"
    );
    let still =
        brevet::pki::certs::from_pem(&std::fs::read_to_string(&certificate).unwrap()).unwrap();
    assert_eq!(still, cert);
}
