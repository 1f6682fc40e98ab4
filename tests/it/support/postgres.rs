//! Postgres for the tests. `BREVET_TEST_DATABASE_URL` names a server to use (any database on it;
//! each test creates and drops its own). Without it, the first test that needs Postgres starts a
//! throwaway cluster from the Postgres binaries installed on the machine (initdb + postgres on a
//! Unix socket in a temporary directory). A watchdog shell stops the cluster and deletes its
//! directory when this test process exits, however it exits.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use brevet::config::DatabaseUrl;
use sqlx::{Connection, PgConnection};

const INSTALL_HINT: &str = "the Postgres tests need either BREVET_TEST_DATABASE_URL=postgres://… \
     or the Postgres server binaries (initdb, postgres, pg_isready; Debian: apt-get install postgresql)";

/// Where the server is: a base URL whose database part each test replaces.
struct Server {
    /// `postgres://user@host:port` or a socket URL, without a database name or query.
    base: url::Url,
    /// Keeps the watchdog's stdin open for the life of the process; closing it stops the cluster.
    _watchdog: Option<Mutex<Child>>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("BREVET_TEST_DATABASE_URL") {
        Ok(raw) => {
            let mut base = url::Url::parse(&raw).expect("BREVET_TEST_DATABASE_URL is not a URL");
            base.set_path("");
            Server {
                base,
                _watchdog: None,
            }
        }
        Err(_) => start_cluster().unwrap_or_else(|why| panic!("{why}\n{INSTALL_HINT}")),
    })
}

/// The URL of database `name` on the test server.
pub fn database_url(name: &str) -> DatabaseUrl {
    let mut url = server().base.clone();
    url.set_path(&format!("/{name}"));
    DatabaseUrl::parse(url.as_str()).expect("valid test database URL")
}

async fn admin_connection() -> PgConnection {
    let url = database_url("postgres");
    PgConnection::connect(url.expose())
        .await
        .expect("connect to the test Postgres server")
}

/// Creates an empty database with a unique name and returns the name.
pub async fn create_database() -> String {
    let name = format!("brevet_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin_connection().await;
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    name
}

/// Drops a database made by [`create_database`], disconnecting whoever still uses it.
pub async fn drop_database(name: &str) {
    let mut conn = admin_connection().await;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    conn.close().await.ok();
}

fn bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    // Highest major version first (directory names are the major versions).
    candidates.sort_by_key(|bin| {
        std::cmp::Reverse(
            bin.parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok()),
        )
    });
    candidates.into_iter().next().or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file())
    })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Postgres refuses to run as root; as root, run it as the `postgres` system user.
fn as_cluster_user(program: &Path) -> Result<Command, String> {
    if !running_as_root() {
        return Ok(Command::new(program));
    }
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    Ok(command)
}

fn postgres_user_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(
                "running as root, and there is no `postgres` user to run the cluster as".to_owned(),
            );
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} postgres: {e}"))
    };
    Ok((id("-u")?, id("-g")?))
}

fn start_cluster() -> Result<Server, String> {
    let bin = bin_dir()
        .ok_or("no Postgres binaries (initdb) found under /usr/lib/postgresql or on PATH")?;
    let root = tempfile::Builder::new()
        .prefix("brevet-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a directory for the test cluster: {e}"))?
        // The watchdog deletes it; the TempDir must not race it.
        .keep();
    if running_as_root() {
        let (uid, gid) = postgres_user_ids()?;
        std::os::unix::fs::chown(&root, Some(uid), Some(gid))
            .map_err(|e| format!("chown test cluster dir: {e}"))?;
    }
    let data = root.join("data");
    let init = as_cluster_user(&bin.join("initdb"))?
        .args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !init.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    // The watchdog runs postgres in the background and waits for its stdin to close (this process
    // ending); then it stops postgres and removes the cluster.
    let script = r#"
        "$1/postgres" -D "$2/data" -k "$2" -p 5432 -c listen_addresses='' -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 >"$2/log" 2>&1 &
        pid=$!
        cat >/dev/null
        kill -INT "$pid"
        wait "$pid"
        rm -rf "$2"
    "#;
    let child = as_cluster_user(Path::new("/bin/sh"))?
        .args(["-c", script, "brevet-test-postgres"])
        .arg(&bin)
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the test cluster: {e}"))?;
    wait_until_ready(&bin, &root)?;
    let base = url::Url::parse(&format!(
        "postgres://postgres@localhost:5432?host={}",
        root.display()
    ))
    .map_err(|e| e.to_string())?;
    Ok(Server {
        base,
        _watchdog: Some(Mutex::new(child)),
    })
}

fn wait_until_ready(bin: &Path, root: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .arg("-q")
            .arg("-h")
            .arg(root)
            .args(["-p", "5432"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            let mut log = String::new();
            std::fs::File::open(root.join("log"))
                .and_then(|mut f| f.read_to_string(&mut log))
                .ok();
            return Err(format!(
                "the test cluster did not become ready in 60 s; its log:\n{log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
