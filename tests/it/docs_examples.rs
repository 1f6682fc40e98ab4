//! The docs' examples, run: every `sh` block of README.md and docs/*.md against a fresh
//! zero-configuration `brevet serve`, every `toml` block loaded as a configuration (in
//! config_cli.rs), every `toml doc-type` block as a doc type file. A block that cannot run in a
//! test says so on its first line, visibly, with the reason; this test lists them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::process::{brevet, Server};

/// First line of a shell block the tests do not run, followed by the reason and `)`.
const NOT_RUN: &str = "# (not run by the doc tests: ";

/// The shell blocks that are not run, by file and reason. A new one must be added here, so that
/// skipping an example is a visible decision.
const EXPECTED_NOT_RUN: &[(&str, &str)] = &[
    ("README.md", "builds the release binary and runs until stopped"),
    ("README.md", "this is the test suite itself"),
    ("docs/CONSOLE.md", "it rewrites the screenshots in docs/console/"),
    ("docs/OPERATIONS.md", "needs Docker, which CI machines lack; tests/it/compose.rs runs each service's command instead"),
    ("docs/STATUS_LIST.md", "the doc tests' server already has a signer; tests/it/keys_cli.rs rotates one"),
    ("docs/cert-provisioning.md", "needs a step-ca server; the fake in src/sim/stepca.rs stands for it in tests"),
    ("docs/cert-provisioning.md", "needs a certificate issued by a running worker; tests/it/certprov.rs revokes one"),
    ("docs/cert-provisioning.md", "runs until stopped; tests/it/certprov.rs runs the simulator against the worker"),
    ("docs/wallet-api.md", "builds the release binary and runs until stopped"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One fenced block of a Markdown file.
#[derive(Debug, Clone)]
pub struct Block {
    /// The file, relative to the repository.
    pub file: String,
    /// Line of the opening fence.
    pub line: usize,
    /// The fence's info string (`sh`, `toml`, `toml doc-type`).
    pub info: String,
    /// The block's text.
    pub body: String,
}

/// Every fenced block of README.md and docs/*.md, in file order.
pub fn all_blocks() -> Vec<Block> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut blocks = Vec::new();
    for path in files {
        let name = path.strip_prefix(repo()).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut open: Option<Block> = None;
        for (n, line) in text.lines().enumerate() {
            match (&mut open, line.strip_prefix("```")) {
                (None, Some(info)) => {
                    open = Some(Block {
                        file: name.clone(),
                        line: n + 1,
                        info: info.trim().to_owned(),
                        body: String::new(),
                    })
                }
                (Some(_), Some("")) => blocks.push(open.take().unwrap()),
                (Some(block), _) => {
                    block.body.push_str(line);
                    block.body.push('\n');
                }
                (None, None) => {}
            }
        }
        assert!(open.is_none(), "{name}: a code block is never closed");
    }
    blocks
}

/// The blocks whose info string is exactly `info`, named `file:line`.
pub fn blocks(info: &str) -> Vec<(String, String)> {
    all_blocks()
        .into_iter()
        .filter(|b| b.info == info)
        .map(|b| (format!("{}:{}", b.file, b.line), b.body))
        .collect()
}

/// Runs `script` with bash (errexit, pipefail) in `dir`; returns (success, output).
fn run_script(script: &str, dir: &Path, env: &[(&str, String)]) -> (bool, String) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_brevet"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BREVET_") {
            command.env_remove(key);
        }
    }
    let output_file = dir.join(".example-output");
    let out = std::fs::File::create(&output_file).unwrap();
    let mut child = command
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&output_file).unwrap_or_default();
    (status.is_some_and(|s| s.success()), output)
}

#[tokio::test]
async fn every_shell_example_in_the_docs_runs_against_a_fresh_server() {
    crate::support::tools::require("curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("examples"), dir.path().join("examples")).unwrap();
    let server = Server::start(brevet(dir.path()));
    let token = server.stdout_lines(2).pop().expect("bootstrap token");
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let env = [
        ("BREVET_ADMIN_TOKEN", token.clone()),
        // The client commands (`brevet admin`, `brevet health`) find the server as an operator's
        // would: from the configuration's listen address.
        ("BREVET_LISTEN", address.clone()),
    ];
    let mut not_run = Vec::new();
    let mut ran = 0;
    for block in all_blocks().into_iter().filter(|b| b.info == "sh") {
        if let Some(rest) = block
            .body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix(NOT_RUN))
        {
            let reason = rest.strip_suffix(')').unwrap_or_else(|| {
                panic!(
                    "{}:{}: the not-run marker ends with ')'",
                    block.file, block.line
                )
            });
            not_run.push((block.file.clone(), reason.to_owned()));
            continue;
        }
        let script = block.body.replace("127.0.0.1:8080", &address);
        let started = Instant::now();
        let (ok, output) = run_script(&script, dir.path(), &env);
        eprintln!(
            "ran {}:{} in {:?}",
            block.file,
            block.line,
            started.elapsed()
        );
        assert!(
            ok,
            "the example at {}:{} failed:\n{}\n--- output ---\n{output}",
            block.file, block.line, block.body
        );
        if block.file == "docs/wallet-api.md" {
            assert!(output.contains("PASS"), "the simulator's run:\n{output}");
            assert!(!output.contains("FAIL"), "the simulator's run:\n{output}");
        }
        ran += 1;
    }
    eprintln!("doc examples not run (each says why in the doc):");
    for (file, reason) in &not_run {
        eprintln!("  {file}: {reason}");
    }
    let expected: Vec<(String, String)> = EXPECTED_NOT_RUN
        .iter()
        .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
        .collect();
    assert_eq!(not_run, expected, "the examples marked not-run changed");
    assert!(ran >= 6, "only {ran} examples ran");
    // The examples worked on this server: a record made, changed and revoked, a recovery token.
    let client = reqwest::Client::new();
    let audit: serde_json::Value = client
        .get(format!("{}/admin/v1/audit?limit=200", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "credential.create",
        "credential.update",
        "credential.revoke",
        "admin_token.revoke",
        "admin_token.mint",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn doc_type_examples_load_as_doc_type_files() {
    let examples = blocks("toml doc-type");
    assert!(!examples.is_empty());
    for (name, body) in examples {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("example.toml"), &body).unwrap();
        brevet::mdoc::doctype::DocTypes::load_dir(dir.path())
            .unwrap_or_else(|e| panic!("the doc type example at {name} does not load: {e}"));
    }
}
