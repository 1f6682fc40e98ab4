//! The simulators' outside parties must not agree with Brevet by sharing its code: the files
//! under src/sim/wallet/android (the Android device) may name nothing of the crate but
//! `crate::protocol` (wire types and constants) and their own modules; the files under
//! src/sim/chrome (Google's Chrome Management API, Pub/Sub and the ChromeOS client) nothing of
//! the adapter (`crate::certprov`), only PEM reading and the simulators' serving loop.

use std::path::Path;

const ALLOWED: [&str; 1] = ["crate::protocol"];

/// What the Chrome simulator may use of the crate.
const CHROME_ALLOWED: [&str; 2] = [
    "crate::pki::certs::from_pem",
    "crate::sim::serve_until_stopped",
];

/// The lines of `text` that reach outside the device side.
fn offences(text: &str) -> Vec<String> {
    offences_beyond(text, &ALLOWED)
}

/// The lines of `text` naming anything of the crate but `allowed`.
fn offences_beyond(text: &str, allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        let mut bad = code.contains("super::super") || code.contains("brevet::");
        while let Some(at) = rest.find("crate::") {
            bad |= !allowed
                .iter()
                .any(|allowed| rest[at..].starts_with(allowed));
            rest = &rest[at + "crate::".len()..];
        }
        if bad {
            found.push(format!("{}: {}", number + 1, line.trim()));
        }
    }
    found
}

#[test]
fn the_chrome_simulator_uses_none_of_the_adapter() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim/chrome");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        all.extend(
            offences_beyond(&text, &CHROME_ALLOWED)
                .into_iter()
                .map(|o| format!("{}:{o}", path.display())),
        );
    }
    assert!(
        all.is_empty(),
        "the Chrome simulator reaches into Brevet:\n{}",
        all.join("\n")
    );
    assert_eq!(
        offences_beyond("use crate::certprov::wire::Process;", &CHROME_ALLOWED).len(),
        1,
        "the scan sees the adapter's wire types"
    );
}

#[test]
fn the_device_side_imports_no_server_internals() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim/wallet/android");
    let mut files = 0;
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        all.extend(
            offences(&text)
                .into_iter()
                .map(|o| format!("{}:{o}", path.display())),
        );
    }
    assert!(files >= 5, "the device modules were found ({files})");
    assert!(
        all.is_empty(),
        "the device side reaches into the server:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_scan_flags_every_way_out() {
    let text = "use crate::protocol::wallet;\n\
                use crate::mdoc::android::verify_auth_key_certificate;\n\
                let x = crate::pki::certs::from_der(&d); // comment crate::http\n\
                use super::super::flow;\n\
                use crate::protocol::android as ids; use crate::http::wallet::wire;\n\
                // use crate::mdoc in a comment is fine\n";
    let found = offences(text);
    let lines: Vec<&str> = found.iter().map(|f| f.split(':').next().unwrap()).collect();
    assert_eq!(lines, ["2", "3", "4", "5"], "{found:?}");
}
