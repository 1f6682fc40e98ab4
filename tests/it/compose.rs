//! docker-compose.yml and the Dockerfile, without Docker: each Brevet service's command runs with
//! the image's and the service's environment against the built binary, with only these
//! substitutions: the database → the test's Postgres, absolute paths → temporary folders, listen
//! ports → free ports, the container user ignored. Each service must start (or, if one-shot,
//! succeed) and pass its own health check. The Dockerfile must copy every target Cargo.toml names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::process::{brevet, Server};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The Dockerfile's instructions, continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        if let Some((instruction, rest)) = current.trim().split_once(' ') {
            joined.push((instruction.to_uppercase(), rest.trim().to_owned()));
        }
        current.clear();
    }
    joined
}

/// The image's environment (ENV KEY=VALUE …) in the final stage.
fn image_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (instruction, rest) in dockerfile() {
        if instruction == "FROM" {
            env.clear();
        }
        if instruction == "ENV" {
            for pair in rest.split_whitespace() {
                let (key, value) = pair.split_once('=').expect("ENV KEY=VALUE");
                env.insert(key.to_owned(), value.to_owned());
            }
        }
    }
    env
}

#[test]
fn the_dockerfile_copies_every_path_it_names_and_every_cargo_target() {
    let copied: Vec<String> = dockerfile()
        .into_iter()
        .filter(|(i, rest)| i == "COPY" && !rest.starts_with("--from"))
        .flat_map(|(_, rest)| {
            let parts: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    for path in &copied {
        assert!(
            repo(path).exists(),
            "the Dockerfile copies {path}, which does not exist"
        );
    }
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo("Cargo.toml")).unwrap()).unwrap();
    let mut targets = vec![manifest["lib"]["path"].as_str().unwrap().to_owned()];
    for kind in ["bin", "bench", "example", "test"] {
        for target in manifest
            .get(kind)
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let path = match target.get("path") {
                Some(path) => path.as_str().unwrap().to_owned(),
                None => format!(
                    "{}/{}.rs",
                    if kind == "bench" { "benches" } else { kind },
                    target["name"].as_str().unwrap()
                ),
            };
            targets.push(path);
        }
    }
    assert!(
        targets.iter().any(|t| t.starts_with("benches/")),
        "{targets:?}"
    );
    for target in targets {
        assert!(
            copied.iter().any(|c| target == *c || target.starts_with(&format!("{c}/"))),
            "Cargo.toml declares {target}, which the Dockerfile does not copy: the image would not build"
        );
    }
}

/// Compose's `${VAR:-default}` interpolation, with no variables set (the defaults in force).
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, default)| default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn strings(yaml: &Yaml) -> Vec<String> {
    yaml.as_vec()
        .map(|v| v.iter().map(|s| interpolate(s.as_str().unwrap())).collect())
        .unwrap_or_default()
}

/// Rewrites one value of a container's environment for this machine.
struct Substitutions {
    paths: Vec<(String, PathBuf)>,
    ports: BTreeMap<u16, u16>,
    database_url: String,
}

impl Substitutions {
    fn apply(&mut self, key: &str, value: &str) -> String {
        if key == "BREVET_DATABASE_URL" {
            let url = url::Url::parse(value).unwrap();
            assert_eq!(
                url.host_str(),
                Some("postgres"),
                "the database is the compose service"
            );
            return self.database_url.clone();
        }
        for (prefix, local) in &self.paths {
            if let Some(rest) = value.strip_prefix(prefix.as_str()) {
                return format!("{}{rest}", local.display());
            }
        }
        if let Some(port) = value.strip_prefix("0.0.0.0:") {
            let port: u16 = port.parse().unwrap();
            let local = *self.ports.entry(port).or_insert_with(|| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            });
            return format!("127.0.0.1:{local}");
        }
        value.to_owned()
    }
}

/// Runs the service's health check (`["CMD", "brevet", …]`) until it passes (60 s at most).
fn wait_healthy(check: &[String], dir: &Path, env: &BTreeMap<String, String>, log: &Server) {
    assert_eq!(
        &check[..2],
        ["CMD", "brevet"],
        "health checks use the image's own binary"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = brevet(dir).args(&check[2..]).envs(env).output().unwrap();
        if output.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health check {check:?} never passed: {output:?}\nlog: {:?}",
            log.log
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test]
async fn every_compose_service_starts_with_its_environment_and_passes_its_health_check() {
    let text = std::fs::read_to_string(repo("docker-compose.yml")).unwrap();
    let compose = &YamlLoader::load_from_str(&text).unwrap()[0];
    let services = compose["services"].as_hash().unwrap();
    let image = image_env();
    let workdir = dockerfile()
        .into_iter()
        .rfind(|(i, _)| i == "WORKDIR")
        .unwrap()
        .1;
    let root = tempfile::tempdir().unwrap();
    let database = crate::support::postgres::create_database().await;
    let mut subs = Substitutions {
        paths: vec![
            (workdir.clone(), root.path().join("data")),
            ("/run/secrets".into(), root.path().join("secrets")),
        ],
        ports: BTreeMap::new(),
        database_url: crate::support::postgres::database_url(&database)
            .expose()
            .to_owned(),
    };
    std::fs::create_dir_all(root.path().join("data")).unwrap();
    let workdir_local = root.path().join("data");

    // Services in the order their dependencies put them: one-shot ones first.
    let mut order: Vec<&str> = Vec::new();
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    while order.len() < names.len() {
        for name in &names {
            let service = &compose["services"][*name];
            let deps: Vec<&str> = service["depends_on"]
                .as_hash()
                .map(|h| h.keys().map(|k| k.as_str().unwrap()).collect())
                .unwrap_or_default();
            if !order.contains(name) && deps.iter().all(|d| order.contains(d)) {
                order.push(name);
            }
        }
    }
    assert_eq!(order, ["postgres", "keys", "serve", "worker"]);

    let mut running = Vec::new();
    for name in order {
        let service = &compose["services"][name];
        if service["build"].is_badvalue() {
            continue; // Postgres: the test's own stands for it.
        }
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in &image {
            env.insert(key.clone(), subs.apply(key, value));
        }
        for (key, value) in service["environment"].as_hash().into_iter().flatten() {
            let key = key.as_str().unwrap();
            let value = interpolate(value.as_str().unwrap());
            env.insert(key.to_owned(), subs.apply(key, &value));
        }
        for volume in strings(&service["volumes"]) {
            let target = volume.split(':').nth(1).unwrap();
            assert!(
                target.starts_with(&workdir) || target.starts_with("/run/secrets"),
                "{name}: volume {volume} is outside the paths the test maps"
            );
        }
        let command = strings(&service["command"]);
        let one_shot = service["restart"].as_str() == Some("no");
        if one_shot {
            for run in 0..2 {
                let output = brevet(&workdir_local)
                    .args(&command)
                    .envs(&env)
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{name} (run {run}): {output:?}");
            }
            assert!(
                workdir_local.join("keys/iaca.cert.pem").is_file(),
                "{name} made the keys"
            );
            continue;
        }
        let mut process = Command::new(env!("CARGO_BIN_EXE_brevet"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("BREVET_") {
                process.env_remove(key);
            }
        }
        process
            .current_dir(&workdir_local)
            .args(&command)
            .envs(&env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let server = Server::spawn_command(process);
        let check = strings(&service["healthcheck"]["test"]);
        wait_healthy(&check, &workdir_local, &env, &server);
        running.push((name, server, env));
    }
    let (_, serve, serve_env) = running.iter().find(|(n, _, _)| *n == "serve").unwrap();
    let token = serve
        .stdout_lines(2)
        .pop()
        .expect("the bootstrap token on serve's output");
    // The staff reach the admin API on its own port, as published.
    let admin = serve_env["BREVET_HTTP__ADMIN_LISTEN"].clone();
    let whoami = reqwest::Client::new()
        .get(format!("http://{admin}/admin/v1/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), 200);
    for (_, server, _) in running {
        let (code, _) = server.terminate();
        assert_eq!(code, Some(0));
    }
    crate::support::postgres::drop_database(&database).await;
}
