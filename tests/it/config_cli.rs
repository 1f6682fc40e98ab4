//! `brevet config check | print | reference`, the generated reference (docs/CONFIGURATION.md), the
//! example configuration, shell completions and man pages.

use std::collections::BTreeSet;
use std::path::Path;

use brevet::config::{reference, Config};

use crate::support::process::brevet;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every leaf of a configuration's serialised form, as key paths.
fn leaves(config: &Config) -> Vec<Vec<String>> {
    fn walk(path: &mut Vec<String>, value: &serde_json::Value, out: &mut Vec<Vec<String>>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    path.push(key.clone());
                    walk(path, child, out);
                    path.pop();
                }
            }
            _ => out.push(path.clone()),
        }
    }
    let mut out = Vec::new();
    walk(
        &mut Vec::new(),
        &serde_json::to_value(config).unwrap(),
        &mut out,
    );
    out
}

/// Configurations that between them set every kind of setting: the defaults, the example file
/// and every TOML block of the docs.
fn sample_configs() -> Vec<(String, Config)> {
    let mut configs = vec![("defaults".to_owned(), Config::default())];
    let example = repo("examples/brevet.toml");
    configs.push((
        "examples/brevet.toml".into(),
        Config::load(Some(&example)).expect("examples/brevet.toml loads"),
    ));
    for (name, block) in crate::docs_examples::blocks("toml") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("block.toml");
        std::fs::write(&file, &block).unwrap();
        let config = Config::load(Some(&file))
            .unwrap_or_else(|e| panic!("the TOML example in {name} does not load: {e}\n{block}"));
        configs.push((name, config));
    }
    configs
}

#[test]
fn the_reference_covers_every_setting_and_the_docs_are_generated_from_it() {
    let configs = sample_configs();
    let mut seen: BTreeSet<&'static str> = BTreeSet::new();
    for (name, config) in &configs {
        for path in leaves(config) {
            let unset_table = reference::SETTINGS
                .iter()
                .any(|s| s.key.starts_with(&format!("{}.", path.join("."))));
            if unset_table {
                continue; // an optional table left out (`[tls]`): its keys come from another sample
            }
            let setting = reference::find(&path).unwrap_or_else(|| {
                panic!(
                    "setting {} (in {name}) is missing from src/config/reference.rs",
                    path.join(".")
                )
            });
            seen.insert(setting.key);
        }
    }
    // The other way round: no row describes a setting that does not exist. (The push token is
    // never serialised, being a secret.)
    let unseen: Vec<&str> = reference::SETTINGS
        .iter()
        .map(|s| s.key)
        .filter(|k| {
            !seen.contains(k) && !["certprov.pubsub.push_token", "keys.pkcs11.pin"].contains(k)
        })
        .collect();
    assert!(
        unseen.is_empty(),
        "rows of the reference that no configuration sets (a removed setting, or a sample to extend): {unseen:?}"
    );
    assert!(
        reference::SETTINGS.len() > 100,
        "{}",
        reference::SETTINGS.len()
    );

    let generated = brevet(Path::new("."))
        .args(["config", "reference"])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let committed = std::fs::read_to_string(repo("docs/CONFIGURATION.md")).unwrap();
    assert!(
        String::from_utf8(generated.stdout).unwrap() == committed,
        "docs/CONFIGURATION.md is stale: run `cargo run -- config reference > docs/CONFIGURATION.md`"
    );
    assert!(committed.contains("| `http.admin_listen` | `BREVET_HTTP__ADMIN_LISTEN` | `listen` |"));
    assert!(committed.contains("| `certprov.profiles.<reference>.subject` | (file only) |"));
}

#[test]
fn config_print_shows_each_value_with_its_source_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("brevet.toml"),
        "data_dir = \"from-file\"\n[certprov.pubsub]\npush_token = \"s3cret-push-token\"\n",
    )
    .unwrap();
    let output = brevet(dir.path())
        .args(["--config", "brevet.toml", "config", "print"])
        .env(
            "BREVET_DATABASE_URL",
            "postgres://brevet:hunter2@db.internal/brevet",
        )
        .env("BREVET_OUTBOX__MAX_ATTEMPTS", "5")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // figment records the file's full path; the test compares what follows the directory.
    let mut text = String::from_utf8(output.stdout).unwrap();
    for prefix in [dir.path().to_path_buf(), dir.path().canonicalize().unwrap()] {
        text = text.replace(&format!("{}/", prefix.display()), "");
    }
    let line = |key: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} ")))
            .unwrap_or_else(|| panic!("no line for {key} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("data_dir"),
        "data_dir = \"from-file\" # file brevet.toml"
    );
    assert_eq!(
        line("outbox.max_attempts"),
        "outbox.max_attempts = 5 # env BREVET_OUTBOX__MAX_ATTEMPTS"
    );
    assert_eq!(
        line("outbox.lease_secs"),
        "outbox.lease_secs = 60 # default"
    );
    assert_eq!(
        line("database_url"),
        "database_url = \"postgres://brevet:***@db.internal/brevet\" # env BREVET_DATABASE_URL"
    );
    assert_eq!(
        line("certprov.pubsub.push_token"),
        "certprov.pubsub.push_token = \"(secret, set)\" # file brevet.toml"
    );
    assert_eq!(
        line("google.base_url"),
        "# google.base_url (unset) # default"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("s3cret"),
        "{text}"
    );
}

#[test]
fn config_check_reports_every_problem_on_its_own_line_and_passes_a_good_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("brevet.toml"),
        "listen = \"0.0.0.0:8443\"\n[google]\nbase_url = \"https://vgw.sandbox.google.com\"\nissuer_id = \"1\"\nclient_identity = \"missing-mtls.pem\"\n[wallet.attestation]\nroots = [\"missing-root.pem\"]\n",
    )
    .unwrap();
    let output = brevet(dir.path())
        .args(["--config", "brevet.toml", "config", "check"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("problem: "))
        .collect();
    assert_eq!(problems.len(), 3, "{stderr}");
    assert!(problems[0].contains("setting `listen`: 0.0.0.0:8443 is not a loopback address"));
    assert!(problems[1].contains("wallet.attestation.roots: cannot read missing-root.pem"));
    assert!(problems[2].contains("setting `google`") && problems[2].contains("missing-mtls.pem"));
    assert!(
        stderr.ends_with("brevet: the configuration has 3 problems\n"),
        "{stderr}"
    );

    // A laptop set-up with keys: nothing to report.
    let good = tempfile::tempdir().unwrap();
    let init = brevet(good.path())
        .args([
            "keys",
            "init",
            "--country",
            "XX",
            "--iaca-name",
            "Check IACA",
            "--contact",
            "https://issuer.example",
        ])
        .env("BREVET_MODE", "production")
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let output = brevet(good.path())
        .args(["config", "check"])
        .env("BREVET_MODE", "production")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8(output.stdout).unwrap().starts_with(
        "configuration OK (defaults and environment): production mode, store sqlite://"
    ));
}

#[test]
fn command_line_mistakes_are_one_line_naming_the_argument() {
    for (args, expected) in [
        (
            &["admin", "records", "create"][..],
            "brevet: the following required arguments were not provided: --file <FILE> (see --help)",
        ),
        (
            &["admin", "--output", "xml", "tokens", "list"][..],
            "brevet: invalid value 'xml' for '--output <OUTPUT>'",
        ),
        (&["serve", "--bogus"][..], "brevet: unexpected argument '--bogus' found"),
    ] {
        let output = brevet(Path::new(".")).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(expected), "{stderr}");
    }
}

#[test]
fn keys_init_if_missing_runs_once_and_then_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "keys",
        "init",
        "--if-missing",
        "--country",
        "XX",
        "--iaca-name",
        "Once IACA",
        "--contact",
        "https://issuer.example",
    ];
    // A server's listener settings do not stop a one-shot command.
    let env = [
        ("BREVET_LISTEN", "0.0.0.0:8080"),
        ("BREVET_MODE", "production"),
    ];
    let first = brevet(dir.path()).args(args).envs(env).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    assert!(
        !String::from_utf8_lossy(&first.stderr).contains("generating"),
        "no progress lines when standard error is not a terminal: {first:?}"
    );
    let iaca = std::fs::read(dir.path().join("brevet-data/keys/iaca.cert.pem")).unwrap();
    let second = brevet(dir.path()).args(args).envs(env).output().unwrap();
    assert!(second.status.success(), "{second:?}");
    assert!(String::from_utf8(second.stdout)
        .unwrap()
        .ends_with("already holds keys; nothing to do\n"));
    assert_eq!(
        std::fs::read(dir.path().join("brevet-data/keys/iaca.cert.pem")).unwrap(),
        iaca,
        "the keys are not replaced"
    );
}

#[test]
fn progress_shows_on_a_terminal_only() {
    crate::support::tools::require("script", "bsdutils");
    // `script` (util-linux) gives the command a pseudo-terminal, as a person's shell would.
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} keys init --country XX --iaca-name 'Tty IACA' --contact https://issuer.example",
        env!("CARGO_BIN_EXE_brevet")
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("BREVET_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.starts_with("… generating the IACA and DS keys and certificates"),
        "{shown}"
    );
}

#[test]
fn completions_and_man_pages_are_generated_from_the_cli() {
    for shell in ["bash", "zsh", "fish"] {
        let output = brevet(Path::new("."))
            // A broken configuration does not stop what needs none.
            .env("BREVET_LISTEN", "nonsense")
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        for word in ["serve", "worker", "admin", "mint-token", "rotate-ds"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let output = brevet(dir.path())
        .args(["man", "--dir", "man"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let page = std::fs::read_to_string(dir.path().join("man/brevet.1")).unwrap();
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{}", &page[..80]);
    assert!(page.contains("Issuer back end"));
    let admin =
        std::fs::read_to_string(dir.path().join("man/brevet-admin-records-create.1")).unwrap();
    assert!(admin.contains("examples/holder.json"), "{admin}");
    assert!(dir.path().join("man/brevet-keys-init.1").is_file());
}
