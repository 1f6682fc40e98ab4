//! `brevet sim …`: the simulators, pointed at a running Brevet.

use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::sim::wallet::client::IssuerEndpoint;
use crate::sim::wallet::flow::{self, FlowOptions};

/// Options of `sim wallet`.
#[derive(Debug, Args)]
pub struct WalletArgs {
    /// Base URL of the issuer, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub issuer: String,
    /// Operator or admin token of the issuer's admin API (staff steps: create, approve, update,
    /// revoke).
    #[arg(long, env = "BREVET_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// The issuer's IACA certificate (PEM). Default: `<keys_dir>/iaca.cert.pem`.
    #[arg(long)]
    pub iaca: Option<PathBuf>,
    /// Issuer id Google sends in requestMetadata.
    #[arg(long, default_value = "brevet-sim")]
    pub issuer_id: String,
    /// API version "MAJOR.MINOR" Google speaks.
    #[arg(long, default_value = "0.1")]
    pub api_version: String,
    /// PEM file with Google's client certificate and key, for an issuer requiring mutual TLS.
    #[arg(long)]
    pub client_identity: Option<PathBuf>,
    /// Extra CA (PEM) to trust for the issuer's server certificate.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Auth keys per MSO request.
    #[arg(long, default_value_t = 3)]
    pub auth_keys: usize,
}

/// Runs the Wallet flow; fails (non-zero exit) unless every step passed.
pub async fn wallet(config: &Config, args: WalletArgs) -> anyhow::Result<()> {
    let version = crate::http::wallet::ApiVersion::parse(&args.api_version)
        .ok_or_else(|| anyhow::anyhow!("--api-version must be MAJOR.MINOR"))?;
    let options = FlowOptions {
        endpoint: IssuerEndpoint {
            base_url: args.issuer,
            issuer_id: args.issuer_id,
            version: (version.major, version.minor),
            client_identity: args.client_identity,
            ca_certificate: args.ca,
        },
        admin_token: args.admin_token,
        iaca_certificate: args
            .iaca
            .unwrap_or_else(|| config.effective_keys_dir().join("iaca.cert.pem")),
        auth_keys: args.auth_keys.max(1),
    };
    let report = flow::run(&options, &mut std::io::stdout()).await;
    if report.passed() {
        Ok(())
    } else {
        anyhow::bail!("the Wallet flow failed")
    }
}
