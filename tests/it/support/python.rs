//! Python tools the tests run (the cross-checks, schemathesis), installed with pip into a folder
//! under target/ on first use, one folder per tool set, and found again by later runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// A pinned set of packages and the import line that proves them usable.
pub struct ToolSet {
    /// Folder name under target/.
    pub folder: &'static str,
    /// `name==version` pins.
    pub packages: &'static [&'static str],
    /// Python statements that succeed once the packages are usable.
    pub imports: &'static str,
}

/// The folder holding `tools`, installing it once per test process (tests run in parallel).
pub fn install(tools: &ToolSet) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<&'static str, PathBuf>>> = OnceLock::new();
    let done = DONE.get_or_init(Default::default);
    let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = done.get(tools.folder) {
        return dir.clone();
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(tools.folder);
    let importable = |dir: &Path| {
        Command::new("python3")
            .args(["-c", tools.imports])
            .env("PYTHONPATH", dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable(&dir) {
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--upgrade",
                "--target",
            ])
            .arg(&dir)
            .args(tools.packages)
            .status()
            .expect("python3 with pip is needed by the cross-checks");
        assert!(
            status.success(),
            "pip could not install {:?}",
            tools.packages
        );
        assert!(
            importable(&dir),
            "{:?} installed but do not import",
            tools.packages
        );
    }
    done.insert(tools.folder, dir.clone());
    dir
}
