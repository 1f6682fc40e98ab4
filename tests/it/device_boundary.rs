//! The simulator's Android device must not agree with the server by sharing its code: the files
//! under src/sim/wallet/android may name nothing of the crate but `crate::protocol` (wire types
//! and constants) and their own modules.

use std::path::Path;

const ALLOWED: [&str; 1] = ["crate::protocol"];

/// The lines of `text` that reach outside the device side.
fn offences(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        let mut bad = code.contains("super::super") || code.contains("brevet::");
        while let Some(at) = rest.find("crate::") {
            bad |= !ALLOWED
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
