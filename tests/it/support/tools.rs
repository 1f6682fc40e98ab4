//! Programs the tests run besides `brevet` (curl for the docs' examples, `script` for a terminal,
//! openssl): looked up on PATH, and installed from Debian's packages when missing, so that the
//! README's `cargo test` works on a fresh machine as CI runs it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Mutex;

static CHECKED: Mutex<BTreeMap<&'static str, bool>> = Mutex::new(BTreeMap::new());

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure `program` can be run, installing Debian's `package` if it cannot.
pub fn require(program: &'static str, package: &str) {
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if checked.get(program).copied().unwrap_or(false) {
        return;
    }
    if !on_path(program) {
        eprintln!("tests: installing {package} for {program}");
        let installed = Command::new("sh")
            .args([
                "-c",
                &format!("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package} >/dev/null"),
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed && on_path(program),
            "the tests need `{program}` (Debian package {package}) and could not install it"
        );
    }
    checked.insert(program, true);
}
