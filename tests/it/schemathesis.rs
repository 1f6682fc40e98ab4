//! Property-based HTTP tests generated from the OpenAPI documents: schemathesis sends bodies,
//! parameters and headers drawn from openapi/wallet.json and openapi/admin.json to a running
//! `brevet serve` on each store, and every check must pass — no 5xx, every response of a
//! documented status and schema, schema-valid requests accepted and schema-violating ones refused
//! (the exceptions, each with its reason, are in tests/crosscheck/schemathesis.toml). Both
//! documents must also pass openapi-spec-validator.

use std::path::Path;
use std::process::Command;

use crate::support::process::{brevet, Server};
use crate::support::python::{install, ToolSet};
use crate::support::TestDb;

const TOOLS: ToolSet = ToolSet {
    folder: "pydeps-schemathesis",
    packages: &["schemathesis==4.32.5", "openapi-spec-validator==0.9.0"],
    imports: "import schemathesis, openapi_spec_validator",
};

/// Examples per operation and phase: enough to reach every documented refusal, bounded so that
/// both documents on both stores take well under a minute.
const MAX_EXAMPLES: &str = "25";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn both_documents_pass_openapi_spec_validator() {
    let tools = install(&TOOLS);
    for document in ["openapi/admin.json", "openapi/wallet.json"] {
        let output = Command::new("python3")
            .args([
                "-c",
                "import sys\nfrom openapi_spec_validator import validate\nfrom openapi_spec_validator.readers import read_from_filename\nvalidate(read_from_filename(sys.argv[1])[0])",
            ])
            .arg(root().join(document))
            .env("PYTHONPATH", &tools)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{document}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn schemathesis(document: &str, base_url: &str, token: Option<&str>) {
    let tools = install(&TOOLS);
    let mut command = Command::new("python3");
    command
        .args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(root().join("tests/crosscheck/schemathesis.toml"))
        .arg("run")
        .arg(root().join(document))
        .args([
            "--url",
            base_url,
            "--checks",
            "all",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "20261130",
        ])
        .env("PYTHONPATH", &tools)
        // Schemathesis keeps its hypothesis database and reports in the working directory.
        .current_dir(tempfile::tempdir().unwrap().keep());
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures in {document}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" passed"), "{stdout}");
}

both_stores! {
    async fn generated_requests_meet_the_documents(db: TestDb) {
        // Keys exist, as in any real set-up, so that the key methods answer.
        let keys = brevet(&db.dir)
            .env("BREVET_DATA_DIR", &db.dir)
            .args(["keys", "init", "--country", "US", "--iaca-name", "Schemathesis IACA", "--contact", "https://dmv.example"])
            .output()
            .unwrap();
        assert!(keys.status.success(), "{}", String::from_utf8_lossy(&keys.stderr));
        let mut command = brevet(&db.dir);
        command
            .env("BREVET_DATABASE_URL", db.url.expose())
            .env("BREVET_DATA_DIR", &db.dir);
        let server = Server::start(command);
        let token = server.stdout_lines(2).pop().unwrap();
        let (base, token) = (server.base_url.clone(), token);
        tokio::task::spawn_blocking(move || {
            schemathesis("openapi/wallet.json", &base, None);
            schemathesis("openapi/admin.json", &base, Some(&token));
        })
        .await
        .unwrap();
        let (code, log) = server.terminate();
        assert_eq!(code, Some(0));
        assert!(!log.iter().any(|line| line.contains("\"level\":\"ERROR\"")), "no server error was logged:\n{}", log.join("\n"));
    }
}
