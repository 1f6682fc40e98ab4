//! Running the real `brevet` binary: a clean environment, a scratch working directory, and its
//! output read line by line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `brevet` with no BREVET_* variables inherited, run in `dir`.
pub fn brevet(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_brevet"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BREVET_") {
            command.env_remove(key);
        }
    }
    command.current_dir(dir).stdin(Stdio::null());
    command
}

/// A running `brevet serve` whose logs are JSON lines on stderr.
pub struct Server {
    child: Child,
    stderr: Receiver<String>,
    stdout: Receiver<String>,
    /// Every stderr line read so far.
    pub log: Vec<String>,
    /// `http://ip:port` the server listens on.
    pub base_url: String,
}

fn lines(reader: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Server {
    /// Starts `command serve` on port 0 with JSON logs and waits until it listens.
    pub fn start(command: Command) -> Self {
        let mut server = Self::spawn(command, "serve");
        let listening = server.wait_for_log(|line| {
            line["address"].is_string()
                && line["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("listening"))
        });
        server.base_url = format!("http://{}", listening["address"].as_str().expect("address"));
        server
    }

    /// Starts `command <subcommand>` with JSON logs, without waiting for anything.
    pub fn spawn(command: Command, subcommand: &str) -> Self {
        Self::spawn_args(command, &[subcommand])
    }

    /// Starts `command <args…>` with JSON logs, without waiting for anything.
    pub fn spawn_args(mut command: Command, args: &[&str]) -> Self {
        command
            .args(args)
            .env("BREVET_LISTEN", "127.0.0.1:0")
            .env("BREVET_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self::spawn_command(command)
    }

    /// Starts `command` as it is (arguments, environment and piped output set by the caller).
    pub fn spawn_command(mut command: Command) -> Self {
        let mut child = command.spawn().expect("spawn brevet");
        let stderr = lines(child.stderr.take().expect("stderr"));
        let stdout = lines(child.stdout.take().expect("stdout"));
        Server {
            child,
            stderr,
            stdout,
            log: Vec::new(),
            base_url: String::new(),
        }
    }

    /// Reads stderr until a JSON line satisfies `predicate` (60 s at most) and returns it.
    pub fn wait_for_log(&mut self, predicate: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    let parsed: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
                    if predicate(&parsed) {
                        return parsed;
                    }
                }
                Err(_) => panic!("log line not seen; log so far:\n{}", self.log.join("\n")),
            }
        }
    }

    /// Everything written to stdout so far (waits briefly for it to arrive).
    pub fn stdout_lines(&self, expected: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < expected {
            match self.stdout.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => out.push(line),
                Err(_) => break,
            }
        }
        while let Ok(line) = self.stdout.try_recv() {
            out.push(line);
        }
        out
    }

    /// Waits (at most `timeout`) for the process to exit by itself; returns its exit code and
    /// its standard output.
    pub fn wait_exit(mut self, timeout: Duration) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit; log:\n{}",
                self.log.join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut out = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(2)) {
            out.push(line);
        }
        (status.code(), out)
    }

    /// Kills the process with SIGKILL, as a crash or an OOM kill would.
    pub fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit code and the rest of its log.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait for brevet");
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        (exit.code(), std::mem::take(&mut self.log))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
