//! `brevet config check | print | reference`: validate a configuration the way `serve` and `worker`
//! would use it, show the settings in force with their sources, print the reference.

use std::path::Path;

use crate::config::{reference, sources, Config};

/// `config check`: everything `serve` and `worker` would refuse at start, found now. Each problem
/// is one line naming the setting; the error counts them.
pub async fn check(config: &Config, file: Option<&Path>) -> anyhow::Result<()> {
    let mut problems: Vec<String> = Vec::new();
    if let Err(error) = config.validate_listeners() {
        problems.push(error.to_string());
    }
    if let Err(error) = super::load_doc_types(config) {
        problems.push(format!("setting `mdoc.doc_types_dir`: {error:#}"));
    }
    if let Some(tls) = &config.tls {
        if let Err(error) = crate::http::tls::acceptor(tls) {
            problems.push(format!("setting `tls`: {error:#}"));
        }
    }
    if let Err(error) = crate::service::WalletContext::load(config, &[]) {
        problems.push(format!("{error:#}"));
    }
    if let Err(error) = crate::google::GoogleClient::from_config(&config.google) {
        problems.push(format!("setting `google`: {error:#}"));
    }
    if config.certprov.enabled {
        // The adapter is built as the worker builds it, over a throwaway in-memory store.
        let scratch =
            crate::config::DatabaseUrl::parse("sqlite::memory:").map_err(|e| anyhow::anyhow!(e))?;
        let store = crate::store::connect(&scratch, 1).await?;
        let token = crate::pki::pkcs11::Token::configured(config.keys.pkcs11.as_ref())
            .unwrap_or_else(|error| {
                problems.push(error.to_string());
                None
            });
        let metrics = std::sync::Arc::new(crate::certprov::metrics::AdapterMetrics::new());
        if let Err(error) = crate::certprov::build_with(&config.certprov, store, token, metrics) {
            problems.push(format!("setting `certprov`: {error:#}"));
        }
    }
    let keys = crate::pki::keystore::KeyStore::new(config.effective_keys_dir());
    let mut notes = Vec::new();
    if !keys.is_initialised() && !config.is_development() {
        notes.push(format!(
            "no mdoc keys in {}: run `brevet keys init` before `brevet serve` is ready",
            keys.dir().display()
        ));
    }
    if config.google.base_url.is_none() {
        notes.push(crate::http::ops::NOTIFICATIONS_DISABLED.to_owned());
    }
    for problem in &problems {
        eprintln!("problem: {problem}");
    }
    for note in &notes {
        eprintln!("note: {note}");
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "the configuration has {} problem{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
    }
    let mode = if config.is_development() {
        "development"
    } else {
        "production"
    };
    let origin = file.map_or_else(
        || "defaults and environment".to_owned(),
        |f| format!("{} and environment", f.display()),
    );
    println!(
        "configuration OK ({origin}): {mode} mode, store {}",
        config.effective_database_url()
    );
    Ok(())
}

/// `config print`: the settings in force, secrets redacted, each with its source.
pub fn print(file: Option<&Path>) -> anyhow::Result<()> {
    let (config, figment) = Config::load_with_sources(file)?;
    print!(
        "{}",
        sources::render(&sources::effective(&config, &figment))
    );
    Ok(())
}

/// `config reference`: the Markdown reference (docs/CONFIGURATION.md).
pub fn print_reference() {
    print!("{}", reference::markdown());
}
