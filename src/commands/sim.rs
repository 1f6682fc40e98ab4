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
    /// Accept the proofing with a pre-authorized code staff issue (issuer-initiated provisioning)
    /// instead of a staff review.
    #[arg(long)]
    pub pre_authorized: bool,
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
        pre_authorized: args.pre_authorized,
    };
    let report = flow::run(&options, &mut std::io::stdout()).await;
    if report.passed() {
        Ok(())
    } else {
        anyhow::bail!("the Wallet flow failed")
    }
}

/// Options of `sim seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Base URL of the issuer.
    #[arg(long)]
    pub issuer: String,
    /// Operator or admin token.
    #[arg(long, env = "BREVET_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// Credentials to create.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// How many of them get proven copies for MSO refresh bodies.
    #[arg(long, default_value_t = 200)]
    pub with_msos: usize,
    /// Auth keys per MSO refresh body.
    #[arg(long, default_value_t = 10)]
    pub auth_keys: usize,
    /// Flows in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Directory for the request bodies (status.jsonl, provision.jsonl, msos.jsonl).
    #[arg(long)]
    pub out: PathBuf,
}

/// Seeds credentials through the Wallet flow and writes replayable request bodies.
pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    use crate::sim::wallet::client::{AdminClient, WalletClient};
    use crate::sim::wallet::load;
    let wallet = WalletClient::new(IssuerEndpoint {
        base_url: args.issuer.clone(),
        issuer_id: "brevet-load".into(),
        version: (0, 1),
        client_identity: None,
        ca_certificate: None,
    })
    .map_err(anyhow::Error::msg)?;
    let admin =
        AdminClient::new(&args.issuer, &args.admin_token, None).map_err(anyhow::Error::msg)?;
    let options = load::SeedOptions {
        count: args.count,
        with_msos: args.with_msos.min(args.count),
        auth_keys: args.auth_keys.max(1),
        concurrency: args.concurrency.max(1),
    };
    load::seed(wallet, admin, &options, &args.out, &mut std::io::stderr())
        .await
        .map_err(anyhow::Error::msg)
}

/// Options of `sim sign-rate`.
#[derive(Debug, Args)]
pub struct SignRateArgs {
    /// Threads signing at once (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds to measure.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
}

/// Prints the raw ES256 signing rate as JSON: the ceiling MSO issuance is compared with.
pub fn sign_rate(args: &SignRateArgs) -> anyhow::Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (total, per_thread) = crate::sim::wallet::load::sign_rate(
        threads,
        std::time::Duration::from_secs(args.seconds.max(1)),
    );
    println!(
        "{}",
        serde_json::json!({ "threads": threads, "signatures_per_second": total.round(), "per_thread": per_thread.round() })
    );
    Ok(())
}
