//! Issuer keys for tests, made as `brevet keys init` makes them (software keys).

use brevet::pki::keystore::{AuthorityFile, KeyStore, Lifetimes};

/// Creates an IACA `"{name} IACA"` and its first DS `"{name} DS"` (with the Wallet keys) in
/// `dir`, with `lifetimes`.
pub fn init(dir: &std::path::Path, name: &str, lifetimes: Lifetimes) -> KeyStore {
    let keys = KeyStore::new(dir);
    keys.init(
        &AuthorityFile {
            country: "US".into(),
            state: None,
            iaca_common_name: format!("{name} IACA"),
            ds_common_name: format!("{name} DS"),
            contact: "https://issuer.example".into(),
            crl_url: None,
        },
        lifetimes,
    )
    .expect("create test keys");
    keys
}
