//! `brevet keys …`: create, import, show and rotate the IACA and DS keys in the key directory.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::pki::keystore::{AuthorityFile, ImportMaterial, KeyStore, Lifetimes};
use crate::pki::wallet_keys::WalletKeyKind;

/// Options of `keys init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// ISO 3166-1 alpha-2 country of the issuing authority.
    #[arg(long)]
    pub country: String,
    /// Subdivision (stateOrProvinceName), if the authority is a state's.
    #[arg(long)]
    pub state: Option<String>,
    /// Common name of the IACA root certificate.
    #[arg(long)]
    pub iaca_name: String,
    /// Common name of DS certificates (a number is appended). Default: "<iaca-name> DS".
    #[arg(long)]
    pub ds_name: Option<String>,
    /// Contact for IssuerAlternativeName: an email address or an https URL.
    #[arg(long)]
    pub contact: String,
    /// CRL distribution point URL.
    #[arg(long)]
    pub crl_url: Option<String>,
    /// IACA validity in days.
    #[arg(long, default_value_t = 3650)]
    pub iaca_days: u64,
    /// DS validity in days (at most 457).
    #[arg(long, default_value_t = 365)]
    pub ds_days: u64,
    /// Do nothing (and succeed) when the key directory already holds keys: for a one-shot
    /// set-up step that runs at every deployment.
    #[arg(long)]
    pub if_missing: bool,
}

/// Options of `keys import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// IACA certificate (PEM).
    #[arg(long)]
    pub iaca_cert: PathBuf,
    /// IACA private key (PKCS#8 PEM); leave out to keep the IACA key offline.
    #[arg(long)]
    pub iaca_key: Option<PathBuf>,
    /// DS certificate (PEM).
    #[arg(long)]
    pub ds_cert: PathBuf,
    /// DS private key (PKCS#8 PEM).
    #[arg(long)]
    pub ds_key: PathBuf,
}

/// Options of `keys init-device-ca`.
#[derive(Debug, Args)]
pub struct DeviceCaArgs {
    /// Common name of the CA, e.g. "Example Agency ChromeOS Device CA".
    #[arg(long)]
    pub name: String,
    /// Directory of the new CA; default `<keys_dir>/device-ca`. A rotation makes its new CA in
    /// a directory of its own (docs/KEYS.md).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Validity in days.
    #[arg(long, default_value_t = 3650)]
    pub days: u64,
}

/// Options of `keys rotate-ds`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Validity of the new DS certificate in days (at most 457).
    #[arg(long, default_value_t = 365)]
    pub days: u64,
    /// When the new DS starts to sign (RFC 3339, e.g. 2027-01-01T00:00:00Z); default: at once.
    /// Every replica switches at this instant.
    #[arg(long, value_parser = parse_instant)]
    pub at: Option<SystemTime>,
}

fn parse_instant(text: &str) -> Result<SystemTime, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc).into())
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2027-01-01T00:00:00Z"))
}

/// How close to expiry `keys show` flags a certificate: the largest warning threshold.
fn soon(config: &Config) -> Duration {
    let most = config
        .keys
        .expiry_warning_days
        .iter()
        .max()
        .copied()
        .unwrap_or(30);
    days(u64::from(most))
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// `keys init`
pub fn init(config: &Config, args: &InitArgs) -> anyhow::Result<()> {
    let store = KeyStore::from_config(config)?;
    if args.if_missing && store.is_initialised() {
        println!(
            "{} already holds keys; nothing to do",
            store.dir().display()
        );
        return Ok(());
    }
    crate::progress::step("generating the IACA and DS keys and certificates");
    let authority = AuthorityFile {
        country: args.country.clone(),
        state: args.state.clone(),
        ds_common_name: args
            .ds_name
            .clone()
            .unwrap_or_else(|| format!("{} DS", args.iaca_name)),
        iaca_common_name: args.iaca_name.clone(),
        contact: args.contact.clone(),
        crl_url: args.crl_url.clone(),
    };
    store
        .init(
            &authority,
            Lifetimes {
                iaca: days(args.iaca_days),
                ds: days(args.ds_days),
            },
        )
        .context("keys init failed")?;
    print!("{}", store.describe(SystemTime::now(), soon(config))?);
    Ok(())
}

/// `keys import`
pub fn import(config: &Config, args: &ImportArgs) -> anyhow::Result<()> {
    let store = KeyStore::from_config(config)?;
    let material = ImportMaterial {
        iaca_cert: args.iaca_cert.clone(),
        iaca_key: args.iaca_key.clone(),
        ds_cert: args.ds_cert.clone(),
        ds_key: args.ds_key.clone(),
    };
    let number = store.import(&material).context("keys import failed")?;
    store
        .ensure_wallet_keys()
        .context("cannot create the Wallet identity and hybrid keys")?;
    if args.iaca_key.is_some() {
        store
            .ensure_status_list_signer()
            .context("cannot create a status-list signer")?;
    }
    println!("imported DS {number:04}; it is now the active document signer");
    print!("{}", store.describe(SystemTime::now(), soon(config))?);
    Ok(())
}

/// `keys show`
pub fn show(config: &Config) -> anyhow::Result<()> {
    let store = KeyStore::from_config(config)?;
    print!(
        "{}",
        store
            .describe(SystemTime::now(), soon(config))
            .context("keys show failed")?
    );
    // The Chrome adapter's built-in CAs, wherever their files are.
    for (name, path) in crate::certprov::builtin_ca_certificates(&config.certprov) {
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("device CA {name}: cannot read {}", path.display()))?;
        let cert = crate::pki::certs::from_pem(&pem)
            .with_context(|| format!("device CA {name}: {}", path.display()))?;
        print!(
            "{}",
            crate::pki::keystore::describe_cert(
                &format!("Device CA {name}"),
                &cert,
                SystemTime::now(),
                soon(config)
            )?
        );
    }
    Ok(())
}

/// `keys rotate-ds`
pub fn rotate_ds(config: &Config, args: &RotateArgs) -> anyhow::Result<()> {
    let store = KeyStore::from_config(config)?;
    let number = store
        .rotate_ds_at(days(args.days), args.at)
        .context("keys rotate-ds failed")?;
    match args.at {
        Some(at) => println!(
            "created DS {number:04}; it signs from {} (running servers load it within keys.reload_secs)",
            chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339()
        ),
        None => println!("created DS {number:04}; it is now the active document signer (running servers load it within keys.reload_secs; older ones stay valid for MSOs they signed)"),
    }
    print!("{}", store.describe(SystemTime::now(), soon(config))?);
    Ok(())
}

/// `keys rotate-status-list` arguments.
#[derive(Debug, clap::Args)]
pub struct StatusListArgs {
    /// Lifetime of the new certificate, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u64,
}

/// `keys import-status-list` arguments.
#[derive(Debug, clap::Args)]
pub struct StatusListImportArgs {
    /// The signer's certificate (PEM), issued by the IACA.
    #[arg(long)]
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    #[arg(long)]
    pub key: PathBuf,
}

/// `keys import-status-list`: a status-list signer certified elsewhere by an offline IACA.
pub fn import_status_list(config: &Config, args: &StatusListImportArgs) -> anyhow::Result<()> {
    let store = KeyStore::from_config(config)?;
    let number = store
        .import_status_list_signer(&args.cert, &args.key)
        .context("keys import-status-list failed")?;
    println!("imported status-list signer {number:04}; running servers sign new status list tokens with it within keys.reload_secs");
    print!("{}", store.describe(SystemTime::now(), soon(config))?);
    Ok(())
}

/// `keys rotate-status-list`: a new status-list signer, certified by the IACA, signs the tokens
/// built from now on (running servers load it within keys.reload_secs).
pub fn rotate_status_list(config: &Config, args: &StatusListArgs) -> anyhow::Result<()> {
    let store = KeyStore::from_config(config)?;
    let number = store
        .rotate_status_list_signer(days(args.days))
        .context("keys rotate-status-list failed")?;
    println!("created status-list signer {number:04}; running servers sign new status list tokens with it within keys.reload_secs");
    print!("{}", store.describe(SystemTime::now(), soon(config))?);
    Ok(())
}

/// `keys rotate-identity` / `keys rotate-hybrid`: a new Wallet key becomes the active one; older
/// ones stay published (identity) or keep decrypting (hybrid) until their certificates expire.
pub fn rotate_wallet_key(config: &Config, kind: WalletKeyKind) -> anyhow::Result<()> {
    let store = KeyStore::from_config(config)?;
    let number = store
        .rotate_wallet_key(kind)
        .context("Wallet key rotation failed")?;
    let what = match kind {
        WalletKeyKind::Identity => "identity",
        WalletKeyKind::Hybrid => "hybrid-encryption",
    };
    println!("created Wallet {what} key {number:04}; running servers publish it within keys.reload_secs and use it keys.publish_delay_secs later");
    Ok(())
}

/// `keys init-device-ca`: the built-in CA of the certificate-provisioning adapter, in
/// `<keys_dir>/device-ca/`; prints the `[certprov.ca_connections.…]` lines that use it.
pub fn init_device_ca(config: &Config, args: &DeviceCaArgs) -> anyhow::Result<()> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| config.effective_keys_dir().join("device-ca"));
    let token = crate::pki::pkcs11::Token::configured(config.keys.pkcs11.as_ref())?;
    let (certificate, key) = crate::certprov::ca::BuiltinCa::create_files_with(
        &dir,
        &args.name,
        days(args.days),
        token.as_ref(),
    )
    .context("keys init-device-ca failed")?;
    println!(
        "created the device CA \"{}\" ({} days)",
        args.name, args.days
    );
    println!("[certprov.ca_connections.default_ca_config]\nkind = \"builtin\"\ncertificate = \"{}\"\nprivate_key = \"{}\"", certificate.display(), key.display());
    Ok(())
}
