//! The `brevet` binary: configuration errors, first start, graceful shutdown, and the HTTP
//! server over a real socket, on both stores.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::inspect::Inspect;
use crate::support::process::{brevet, Server};
use crate::support::TestDb;

/// Runs `brevet serve` with `env` in a scratch directory; expects a configuration error.
fn config_error(env: &[(&str, &str)], args: &[&str], file: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = brevet(dir.path());
    if let Some(contents) = file {
        std::fs::write(dir.path().join("brevet.toml"), contents).unwrap();
        command.args(["--config", "brevet.toml"]);
    }
    let output = command
        .envs(env.iter().copied())
        .args(args)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "exit code for {env:?}");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line, no backtrace: {stderr}"
    );
    assert!(
        stderr.starts_with("brevet: invalid configuration: "),
        "{stderr}"
    );
    assert!(
        !dir.path().join("brevet-data").exists(),
        "nothing created on bad configuration"
    );
    stderr.trim_end().to_owned()
}

#[test]
fn bad_settings_are_one_line_errors_naming_the_setting() {
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
    let cases: [Case; 13] = [
        (
            &[("BREVET_LISTEN", "nonsense")],
            None,
            "setting `listen` (from BREVET_LISTEN)",
        ),
        (
            &[("BREVET_DATABASE_URL", "mysql://db/brevet")],
            None,
            "unsupported scheme `mysql:`",
        ),
        (
            &[("BREVET_HTTP__BODY_LIMIT_BYTES", "0")],
            None,
            "setting `http.body_limit_bytes`: must be at least 1024",
        ),
        (
            &[("BREVET_LOG_FORMAT", "xml")],
            None,
            "setting `log_format` (from BREVET_LOG_FORMAT)",
        ),
        (
            &[("BREVET_WALLET__API_VERSIONS", "[\"one\"]")],
            None,
            "setting `wallet.api_versions`: \"one\" is not of the form MAJOR.MINOR",
        ),
        (
            &[("BREVET_GOOGLE__BASE_URL", "https://vgw.sandbox.google.com")],
            None,
            "setting `google.issuer_id`: is required when google.base_url is set",
        ),
        (
            &[("BREVET_GOOGLE__TIMEOUT_SECS", "60")],
            None,
            "setting `google.timeout_secs`: must be shorter than outbox.lease_secs",
        ),
        (
            &[("BREVET_LISTN", "127.0.0.1:1")],
            None,
            "unknown setting `listn`",
        ),
        (
            &[],
            Some("listen = \"127.0.0.1:9\"\n[http]\nrequest_timeout = 3\n"),
            "unknown setting `request_timeout`",
        ),
        // The simulator's root (its key is public) is never trusted outside development mode:
        // not with a database URL, not with a configuration file, unless the mode says so.
        (
            &[
                ("BREVET_DATABASE_URL", "postgres://db/brevet"),
                ("BREVET_WALLET__ATTESTATION__TRUST_SIMULATOR_ROOT", "true"),
            ],
            None,
            "setting `wallet.attestation.trust_simulator_root`: the simulator's attestation root (whose private key is public) is trusted only in development mode",
        ),
        (
            &[],
            Some("[wallet.attestation]\ntrust_simulator_root = true\n"),
            "setting `wallet.attestation.trust_simulator_root`",
        ),
        // Google's listener off loopback: staff and the platform need addresses of their own.
        (
            &[
                ("BREVET_LISTEN", "0.0.0.0:8443"),
                ("BREVET_HTTP__ALLOW_PLAINTEXT", "true"),
            ],
            None,
            "setting `http.admin_listen`: the Wallet listener 0.0.0.0:8443 is not on loopback",
        ),
        (
            &[("BREVET_MODE", "laptop")],
            None,
            "setting `mode` (from BREVET_MODE)",
        ),
    ];
    for (env, file, expected) in cases {
        let message = config_error(env, &[], file);
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
    let missing = config_error(&[], &["--config", "/nonexistent/brevet.toml"], None);
    assert!(
        missing.ends_with("config file /nonexistent/brevet.toml does not exist"),
        "{missing}"
    );
}

#[test]
fn config_file_values_are_used_and_env_overrides_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("brevet.toml"),
        "data_dir = \"from-file\"\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let mut command = brevet(dir.path());
    // The client commands' BREVET_ADMIN_TOKEN is not a setting of the server's.
    command
        .args(["--config", "brevet.toml"])
        .env("BREVET_ADMIN_TOKEN", "brv_not_a_setting");
    // The file's listen address (port 1, privileged or taken) would fail; the variable wins.
    let server = Server::start(command);
    assert!(
        dir.path().join("from-file/brevet.db").is_file(),
        "data_dir came from the file"
    );
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn zero_config_serve_uses_sqlite_in_brevet_data_and_prints_the_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(brevet(dir.path()));
    let stdout = server.stdout_lines(2);
    assert_eq!(stdout.len(), 2, "{stdout:?}");
    assert!(stdout[0].starts_with("Bootstrap admin token"));
    let token = stdout[1].clone();
    assert!(token.starts_with("brv_"));
    assert!(dir.path().join("brevet-data/brevet.db").is_file());
    let keys = brevet::pki::keystore::KeyStore::new(dir.path().join("brevet-data/keys"));
    let iaca = keys
        .iaca_certificate()
        .expect("zero-config start creates development keys");
    assert_eq!(
        iaca.tbs_certificate.subject.to_string(),
        format!("CN={},C=XX", brevet::commands::DEV_IACA_NAME)
    );
    let dev_iaca_fingerprint = x509_cert::der::Encode::to_der(&iaca).unwrap();

    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = client
        .get(format!("{}/readyz", server.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], "sqlite");
    let (code, log) = server.terminate();
    assert_eq!(code, Some(0));
    assert!(
        !log.iter().any(|line| line.contains(&token)),
        "the token never reaches the log"
    );

    // Second start on the same data: no new token or keys, and the first token still works.
    let server = Server::start(brevet(dir.path()));
    assert_eq!(
        x509_cert::der::Encode::to_der(&keys.iaca_certificate().unwrap()).unwrap(),
        dev_iaca_fingerprint
    );
    let whoami = client
        .get(format!("{}/admin/v1/whoami", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), 200);
    assert!(
        server.stdout_lines(0).is_empty(),
        "the token is printed on first start only"
    );
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

both_stores! {
    async fn serve_answers_over_http_and_stops_on_sigterm(db: TestDb) {
        let mut command = brevet(&db.dir);
        command.env("BREVET_DATABASE_URL", db.url.expose()).env("BREVET_LOG", "debug,sqlx=warn,hyper=info");
        let mut server = Server::start(command);
        let token = server.stdout_lines(2).pop().unwrap();
        let client = reqwest::Client::new();
        let response = client
            .get(format!("{}/admin/v1/whoami", server.base_url))
            .bearer_auth(&token)
            .header("x-request-id", "trace-me-123")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-request-id"], "trace-me-123");
        let access = server.wait_for_log(|l| l["http.route"] == "/admin/v1/whoami");
        assert_eq!(access["http.status"], 200);
        assert_eq!(access["span"]["request_id"], "trace-me-123");
        let ready: serde_json::Value = client.get(format!("{}/readyz", server.base_url)).send().await.unwrap().json().await.unwrap();
        assert_eq!(ready["store"], db.backend.as_str());
        let (code, log) = server.terminate();
        assert_eq!(code, Some(0));
        let all = log.join("\n");
        assert!(all.contains("SIGTERM received, shutting down"));
        assert!(all.contains("brevet serve stopped"));
        assert!(!all.contains(&token), "token never logged");
    }

    async fn requests_that_outlive_the_timeout_get_408(db: TestDb) {
        let mut command = brevet(&db.dir);
        command.env("BREVET_DATABASE_URL", db.url.expose()).env("BREVET_HTTP__REQUEST_TIMEOUT_SECS", "1");
        let server = Server::start(command);
        let address = server.base_url.trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        // Promise a body and never send it: the handler waits on it until the timeout fires.
        stream
            .write_all(b"POST /v1/vdc/healthCheck HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
            .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 408");
        drop(server);
    }

    async fn migrate_applies_migrations_and_exits(db: TestDb) {
        let output = brevet(&db.dir).env("BREVET_DATABASE_URL", db.url.expose()).arg("migrate").output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        let store = db.store().await;
        assert_eq!(store.table_names().await.unwrap().len(), tables_in_migrations());
        assert!(store.list_admin_tokens().await.unwrap().is_empty(), "migrate creates no token");
    }
}

#[test]
fn the_composite_mso_ceiling_is_measured_with_the_servers_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let output = brevet(dir.path())
        .args(["sim", "mso-rate", "--seconds", "1", "--threads", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let measured: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(measured["threads"], 1);
    assert!(
        measured["msos_per_second"].as_f64().unwrap() > 10.0,
        "{measured}"
    );
}

#[tokio::test]
async fn database_passwords_never_reach_the_log() {
    crate::support::with_db(brevet::config::Backend::Postgres, |db| async move {
        // The test cluster trusts local connections, so any password is accepted and ignored.
        let mut url = url::Url::parse(db.url.expose()).unwrap();
        url.set_password(Some("s3cret-pw")).unwrap();
        let mut command = brevet(&db.dir);
        command
            .env("BREVET_DATABASE_URL", url.as_str())
            .env("BREVET_LOG", "debug");
        let server = Server::start(command);
        let (code, log) = server.terminate();
        assert_eq!(code, Some(0));
        let all = log.join("\n");
        assert!(all.contains("***"), "the URL is logged, redacted:\n{all}");
        assert!(!all.contains("s3cret-pw"));
    })
    .await;
}

both_stores! {
    async fn worker_runs_until_sigterm(db: TestDb) {
        let mut command = brevet(&db.dir);
        command.env("BREVET_DATABASE_URL", db.url.expose());
        let mut worker = Server::spawn(command, "worker");
        worker.wait_for_log(|l| l["message"].as_str().is_some_and(|m| m.starts_with("brevet worker started")));
        let (code, log) = worker.terminate();
        assert_eq!(code, Some(0));
        assert!(log.join("\n").contains("brevet worker stopped"));
        assert_eq!(db.store().await.table_names().await.unwrap().len(), tables_in_migrations(), "the worker migrated the store");
    }
}

/// Runs `brevet serve` expecting it to fail at start; returns its one-line error.
fn start_failure(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = brevet(dir.path())
        .envs(env.iter().copied())
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("brevet: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_owned()
}

#[test]
fn an_unreachable_database_is_a_one_line_error() {
    let message = start_failure(&[(
        "BREVET_DATABASE_URL",
        "postgres://brevet:pw@127.0.0.1:1/brevet",
    )]);
    assert!(
        message.starts_with(
            "brevet: cannot open the store at postgres://brevet:***@127.0.0.1:1/brevet: "
        ),
        "{message}"
    );
}

#[test]
fn a_taken_port_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let message = start_failure(&[("BREVET_LISTEN", &address)]);
    assert!(
        message.starts_with(&format!("brevet: cannot listen on {address}: ")),
        "{message}"
    );
}

#[test]
fn a_broken_doc_type_file_stops_serve_with_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("types")).unwrap();
    std::fs::write(dir.path().join("types/id.toml"), "doc_type = \"org.example.id\"\n[[namespace]]\nname = \"n\"\nelements = [{ id = \"a\", type = \"decimal\" }]\n").unwrap();
    let output = brevet(dir.path())
        .env("BREVET_MDOC__DOC_TYPES_DIR", "types")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let line = stderr.lines().find(|l| l.starts_with("brevet: ")).unwrap();
    assert!(
        line.starts_with("brevet: doc type file types/id.toml: ")
            && line.contains("unknown variant `decimal`"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("brevet-data").exists(),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_check_calls_googles_health_check_with_the_configured_identity() {
    let google = brevet::sim::google::FakeGoogle::start("Check_Issuer")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |issuer: &str, version: &str| {
        brevet(dir.path())
            .env("BREVET_GOOGLE__BASE_URL", google.base_url())
            .env("BREVET_GOOGLE__ISSUER_ID", issuer)
            .env("BREVET_GOOGLE__API_VERSION", version)
            .args(["google", "check", "--message", "onboarding"])
            .output()
            .unwrap()
    };
    let ok = run("Check_Issuer", "0.1");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stdout = String::from_utf8(ok.stdout).unwrap();
    assert!(
        stdout.contains("healthCheck ok") && stdout.contains("\"onboarding\" echoed"),
        "{stdout}"
    );
    // Google's refusals reach the operator: another issuer id, another API version.
    for (issuer, version, reason) in [
        ("Wrong_Issuer", "0.1", "issuer id does not match"),
        ("Check_Issuer", "0.2", "unsupported version"),
    ] {
        let refused = run(issuer, version);
        assert!(!refused.status.success());
        let stderr = String::from_utf8(refused.stderr).unwrap();
        assert!(
            stderr.contains("Google's healthCheck failed") && stderr.contains(reason),
            "{stderr}"
        );
    }
}

/// How many tables the migrations create (the SQLite set, by name: a table may be rebuilt; a test
/// keeps both sets alike).
fn tables_in_migrations() -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for statement in sql.split("create table ").skip(1) {
            names.insert(statement.split_whitespace().next().unwrap().to_owned());
        }
    }
    names.len()
}
