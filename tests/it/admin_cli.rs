//! `brevet admin`, the staff CLI, against a running `brevet serve` on both stores: each command's
//! effect on the records, its output formats, and one-line errors.

use std::path::Path;
use std::process::Output;

use crate::support::process::{brevet, Server};
use crate::support::TestDb;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

struct Staff {
    dir: std::path::PathBuf,
    url: String,
    token: String,
    database_url: String,
}

impl Staff {
    fn run_as(&self, token: &str, args: &[&str]) -> Output {
        brevet(&self.dir)
            .arg("admin")
            .args(args)
            .env("BREVET_ADMIN_URL", &self.url)
            .env("BREVET_ADMIN_TOKEN", token)
            .env("BREVET_DATABASE_URL", &self.database_url)
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_as(&self.token, args)
    }

    /// Standard output of a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// The one-line error of a command that must fail.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        stderr.trim_end().to_owned()
    }
}

both_stores! {
    async fn the_staff_cli_manages_records_proofings_outbox_and_tokens(db: TestDb) {
        let mut command = brevet(&db.dir);
        command.env("BREVET_DATABASE_URL", db.url.expose());
        let server = Server::start(command);
        let token = server.stdout_lines(2).pop().unwrap();
        let staff = Staff {
            dir: db.dir.clone(),
            url: server.base_url.clone(),
            token,
            database_url: db.url.expose().to_owned(),
        };
        let holder: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(example("holder.json")).unwrap()).unwrap();

        // Records: create from the example file, read, replace, revoke.
        let id = staff.ok(&["records", "create", "--file", &example("holder.json"), "--output", "id"]);
        let id = id.trim_end().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id:?}");
        let record = staff.json(&["records", "get", &id]);
        assert_eq!(record["versionNumber"], 1);
        assert_eq!(record["holderData"], holder);
        let moved = staff.json(&["records", "update", &id, "--file", &example("holder-moved.json")]);
        assert_eq!(moved["versionNumber"], 2);
        assert_eq!(moved["holderData"]["org.iso.18013.5.1"]["resident_address"], "22 New Road, Springfield");
        let stale = staff.fails(&["records", "update", &id, "--file", &example("holder.json"), "--if-match", "1"]);
        assert!(stale.starts_with(&format!("brevet: PATCH /credentials/{id}: 412 precondition_failed: the credential changed since it was read")), "{stale}");
        let table = staff.ok(&["records", "list"]);
        let mut lines = table.lines();
        assert_eq!(lines.next().unwrap().split_whitespace().collect::<Vec<_>>(), ["credentialId", "docType", "status", "versionNumber", "updatedAt"]);
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(&row[..4], [id.as_str(), "org.iso.18013.5.1.mDL", "active", "2"]);
        let revoked = staff.json(&["records", "revoke", &id, "--reason", "withdrawn by court order"]);
        assert_eq!(revoked["status"], "revoked");
        assert_eq!(staff.ok(&["records", "list", "--status", "active", "--output", "id"]), "");

        // Bad input: named, one line, nothing changed.
        let missing = staff.fails(&["records", "create", "--file", "no-such-file.json"]);
        assert!(missing.starts_with("brevet: cannot read no-such-file.json"), "{missing}");
        let partial = db.dir.join("partial.json");
        let mut incomplete = holder.clone();
        incomplete["org.iso.18013.5.1"].as_object_mut().unwrap().remove("family_name");
        std::fs::write(&partial, incomplete.to_string()).unwrap();
        let invalid = staff.fails(&["records", "create", "--file", partial.to_str().unwrap()]);
        assert!(invalid.contains("400") && invalid.contains("org.iso.18013.5.1/family_name: mandatory element is missing"), "{invalid}");
        assert_eq!(staff.ok(&["records", "list", "--output", "id"]).lines().count(), 1, "no record was made");
        let unknown = staff.fails(&["records", "get", "00000000-0000-0000-0000-000000000000"]);
        assert_eq!(unknown, "brevet: GET /credentials/00000000-0000-0000-0000-000000000000: 404 not_found: no such credential");
        let no_token = brevet(&db.dir).args(["admin", "tokens", "list"]).env("BREVET_ADMIN_URL", &staff.url).output().unwrap();
        assert!(String::from_utf8(no_token.stderr).unwrap().starts_with("brevet: no admin token: pass --token or set BREVET_ADMIN_TOKEN"));

        // The proofing queue and the outbox (empty here; the Wallet tests fill them).
        assert_eq!(staff.ok(&["proofings", "list", "--status", "pending"]).trim_end(), "proofingId  status  credentialId  createdAt");
        let active = staff.ok(&["records", "create", "--file", &example("holder.json"), "--output", "id"]);
        let approve = staff.fails(&["proofings", "approve", "no-such-proofing", "--record", active.trim_end()]);
        assert!(approve.contains("404 not_found"), "{approve}");
        assert_eq!(staff.json(&["outbox", "list", "--state", "dead"])["jobs"], serde_json::json!([]));
        let warning = staff.ok(&["outbox", "list"]);
        assert!(warning.ends_with(&format!("warning: {}\n", brevet::http::ops::NOTIFICATIONS_DISABLED)), "{warning}");
        assert!(staff.fails(&["outbox", "retry", "00000000-0000-0000-0000-000000000000"]).contains("404 not_found"));

        // Tokens: one made, used, revoked; then useless.
        let made = staff.json(&["tokens", "create", "--name", "clerk-anna", "--role", "viewer"]);
        let clerk = made["token"].as_str().unwrap().to_owned();
        let clerk_id = made["tokenId"].as_str().unwrap().to_owned();
        assert!(staff.ok(&["tokens", "list"]).contains("clerk-anna"));
        let as_clerk = staff.run_as(&clerk, &["records", "list", "--output", "id"]);
        assert!(as_clerk.status.success());
        let refused = staff.run_as(&clerk, &["records", "revoke", &id, "--reason", "x"]);
        assert!(String::from_utf8(refused.stderr).unwrap().contains("403 forbidden"));
        assert_eq!(staff.json(&["tokens", "revoke", &clerk_id]), serde_json::json!({ "revoked": clerk_id }));
        let after = staff.run_as(&clerk, &["records", "list"]);
        assert!(String::from_utf8_lossy(&after.stderr).contains("401 unauthorized"), "{after:?}");

        // A list longer than a page: the CLI follows the cursor through every page.
        let client = reqwest::Client::new();
        for _ in 0..205 {
            let created = client
                .post(format!("{}/admin/v1/credentials", staff.url))
                .bearer_auth(&staff.token)
                .json(&serde_json::json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": holder }))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
        }
        let listed = staff.ok(&["records", "list", "--output", "id"]);
        assert_eq!(listed.lines().count(), 207, "every page");
        let unique: std::collections::BTreeSet<&str> = listed.lines().collect();
        assert_eq!(unique.len(), 207, "no record twice");
        assert_eq!(staff.ok(&["records", "list", "--doc-type", "org.example.none", "--output", "id"]), "");

        // A bulk update of every active record, worked on by the server in batches; the CLI waits.
        let merge = db.dir.join("merge.json");
        std::fs::write(&merge, r#"{ "org.iso.18013.5.1": { "resident_address": "1 Bulk Road" } }"#).unwrap();
        let bulk = staff.json(&["records", "bulk-update", "--status", "active", "--merge-file", merge.to_str().unwrap()]);
        assert_eq!(bulk["state"], "done", "{bulk}");
        assert_eq!((bulk["total"].as_i64(), bulk["changed"].as_i64(), bulk["failed"].as_i64()), (Some(206), Some(206), Some(0)), "{bulk}");
        let again = staff.json(&["records", "bulk-status", bulk["bulkUpdateId"].as_str().unwrap()]);
        assert_eq!(again["changed"], 206);
        let one = staff.json(&["records", "get", active.trim_end()]);
        assert_eq!(one["holderData"]["org.iso.18013.5.1"]["resident_address"], "1 Bulk Road");
        let neither = staff.fails(&["records", "bulk-update", "--merge-file", merge.to_str().unwrap()]);
        assert!(neither.contains("400 bad_request: give credentialIds, or a filter: docType and/or status"), "{neither}");

        // A lost bootstrap token: a new one minted on the store, audited as the system's.
        let minted = staff.ok(&["mint-token", "--name", "recovery", "--role", "admin"]);
        let recovery = minted.lines().last().unwrap().to_owned();
        assert!(recovery.starts_with("brv_"), "{minted}");
        assert!(staff.run_as(&recovery, &["tokens", "list"]).status.success());
        let audit: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/admin/v1/audit", staff.url))
            .bearer_auth(&recovery)
            .send().await.unwrap().json().await.unwrap();
        let mint = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "admin_token.mint").expect("mint audited");
        assert_eq!(mint["actor"], "system");
        let again = staff.fails(&["mint-token", "--name", "recovery"]);
        assert!(again.starts_with("brevet: cannot create the token \"recovery\""), "{again}");
        drop(server);
    }
}
