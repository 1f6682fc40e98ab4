//! SoftHSM2 tokens for the tests: Debian's `softhsm2` (installed when missing), a configuration
//! and token directory of the test's own, and a fresh token in it. The `brevet` processes find it
//! through `SOFTHSM2_CONF`, as an operator's would.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian puts the module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every test token.
pub const PIN: &str = "2468-test";

/// A throwaway token.
pub struct SoftHsm {
    /// The `softhsm2.conf` to point `SOFTHSM2_CONF` at.
    pub conf: PathBuf,
    /// The token's label.
    pub label: String,
    /// A file holding [`PIN`].
    pub pin_file: PathBuf,
    /// The slot softhsm2-util put the token in.
    pub slot: u64,
}

impl SoftHsm {
    /// A new token labelled `label` in `dir`.
    pub fn new(dir: &Path, label: &str) -> Self {
        super::tools::require("softhsm2-util", "softhsm2");
        let tokens = dir.join("softhsm-tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let output = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                "1357-so",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        assert!(output.status.success(), "softhsm2-util: {output:?}");
        // "The token has been initialized and is reassigned to slot N"
        let said = String::from_utf8_lossy(&output.stdout);
        let slot = said
            .split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no slot in {said:?}"));
        let pin_file = dir.join("hsm-pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        Self {
            conf,
            label: label.to_owned(),
            pin_file,
            slot,
        }
    }

    /// The `[keys.pkcs11]` table for this token.
    pub fn config(&self) -> String {
        format!(
            "[keys.pkcs11]\nmodule = \"{MODULE}\"\ntoken_label = \"{}\"\npin_file = \"{}\"\n",
            self.label,
            self.pin_file.display()
        )
    }
}
