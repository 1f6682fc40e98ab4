//! The `brevet` command line. Everything it does lives in the library; see `brevet --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use brevet::config::Config;

/// Issuer back end for mdoc credentials in Google Wallet, and a Chrome certificate-provisioning adapter.
#[derive(Debug, Parser)]
#[command(name = "brevet", version)]
struct Cli {
    /// TOML configuration file; environment variables (BREVET_*) override it.
    #[arg(long, global = true, env = "BREVET_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (Wallet API, admin API, health and metrics).
    Serve,
    /// Run the background worker.
    Worker,
    /// Apply the store's migrations and exit.
    Migrate,
    /// Manage the IACA root and document-signer keys and certificates.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Simulators of the services Brevet talks to, driving a running Brevet end to end.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Calls to Google's Wallet backend with the configured identity (onboarding checks).
    #[command(subcommand)]
    Google(GoogleCommand),
}

#[derive(Debug, Subcommand)]
enum GoogleCommand {
    /// Call Google's healthCheck over the configured mutual-TLS identity and print the answer.
    Check(brevet::commands::GoogleCheckArgs),
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Play Google's servers and an Android device through the whole Wallet flow; exits non-zero
    /// on any failure.
    Wallet(brevet::commands::sim::WalletArgs),
    /// Seed credentials through the Wallet flow and write request bodies for scripts/load.
    Seed(brevet::commands::sim::SeedArgs),
    /// Play Google's Chrome Management API, Pub/Sub and ChromeOS devices for `brevet worker`;
    /// exits non-zero unless every process got its certificate.
    Chrome(brevet::commands::sim::ChromeArgs),
    /// Open-loop HTTP load at a steady rate (latency counted from each scheduled start).
    Pace(brevet::commands::sim::PaceArgs),
    /// Measure the raw ES256 signing rate of this machine (the MSO issuance ceiling).
    SignRate(brevet::commands::sim::SignRateArgs),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an IACA root and a first DS key and certificate (ISO 18013-5 Annex B profiles).
    Init(brevet::commands::keys::InitArgs),
    /// Import an existing IACA certificate (and optionally its key) and a DS certificate and key (PEM).
    Import(brevet::commands::keys::ImportArgs),
    /// Print the chain, fingerprints and expiry dates (never key material).
    Show,
    /// Add a new DS key signed by the IACA; older DS keys stay for MSOs already issued.
    RotateDs(brevet::commands::keys::RotateArgs),
    /// Create the certificate-provisioning adapter's built-in device CA (P-256) in
    /// `<keys_dir>/device-ca/`.
    InitDeviceCa(brevet::commands::keys::DeviceCaArgs),
    /// Add a new Wallet identity (signing) key; older ones stay published until they expire.
    RotateIdentity,
    /// Add a new Wallet hybrid-encryption key; older ones keep decrypting until they expire.
    RotateHybrid,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("brevet: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    brevet::telemetry::init(&config);
    tracing::debug!(?config, "configuration loaded");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("brevet: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => brevet::commands::serve(config).await,
            Command::Worker => brevet::commands::worker(config).await,
            Command::Migrate => brevet::commands::migrate(config).await,
            Command::Keys(KeysCommand::Init(args)) => brevet::commands::keys::init(&config, &args),
            Command::Keys(KeysCommand::Import(args)) => {
                brevet::commands::keys::import(&config, &args)
            }
            Command::Keys(KeysCommand::Show) => brevet::commands::keys::show(&config),
            Command::Keys(KeysCommand::InitDeviceCa(args)) => {
                brevet::commands::keys::init_device_ca(&config, &args)
            }
            Command::Keys(KeysCommand::RotateDs(args)) => {
                brevet::commands::keys::rotate_ds(&config, &args)
            }
            Command::Keys(KeysCommand::RotateIdentity) => {
                brevet::commands::keys::rotate_wallet_key(
                    &config,
                    brevet::pki::wallet_keys::WalletKeyKind::Identity,
                )
            }
            Command::Keys(KeysCommand::RotateHybrid) => brevet::commands::keys::rotate_wallet_key(
                &config,
                brevet::pki::wallet_keys::WalletKeyKind::Hybrid,
            ),
            Command::Sim(SimCommand::Wallet(args)) => {
                brevet::commands::sim::wallet(&config, args).await
            }
            Command::Sim(SimCommand::Chrome(args)) => brevet::commands::sim::chrome(args).await,
            Command::Sim(SimCommand::Pace(args)) => brevet::commands::sim::pace(args).await,
            Command::Sim(SimCommand::Seed(args)) => brevet::commands::sim::seed(args).await,
            Command::Sim(SimCommand::SignRate(args)) => brevet::commands::sim::sign_rate(&args),
            Command::Google(GoogleCommand::Check(args)) => {
                brevet::commands::google_check(&config, &args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` keeps the chain of context on one line.
            eprintln!("brevet: {error:#}");
            ExitCode::FAILURE
        }
    }
}
