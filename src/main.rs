//! The `brevet` command line. Everything it does lives in the library; see `brevet --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// The staff CLI: records, proofings, notifications and tokens over the admin API.
    Admin(brevet::commands::admin::AdminArgs),
    /// Check, print or document the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask the running server (or worker) on this host whether it is ready; exits non-zero if not
    /// (container health checks).
    Health(brevet::commands::health::HealthArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (brevet.1 and one per subcommand) into a directory.
    Man {
        /// Where to write them.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration as `serve` and `worker` would (listeners, files, keys, CA
    /// connections) and report every problem, one line each.
    Check,
    /// Print the settings in force, secrets redacted, each with where it came from.
    Print,
    /// Print the reference of every setting (Markdown; docs/CONFIGURATION.md).
    Reference,
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
    /// Measure the raw ES256 signing rate of this machine.
    SignRate(brevet::commands::sim::SignRateArgs),
    /// Serve the fake Google Wallet backend (for load runs); prints its URL.
    Google(brevet::commands::sim::GoogleArgs),
    /// Measure the ceiling of notification fan-out: the notify calls alone, no store.
    NotifyRate(brevet::commands::sim::NotifyRateArgs),
    /// Measure the composite MSO ceiling: per MSO the auth-key check, DS signature, HPKE seal and
    /// identity signature provisionMobileSecurityObjects needs, with the server's own code.
    MsoRate(brevet::commands::sim::SignRateArgs),
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
    /// Add a new status-list signer certified by the IACA; it signs the next tokens.
    RotateStatusList(brevet::commands::keys::StatusListArgs),
    /// Import a status-list signer (certificate and key) certified elsewhere by an offline IACA.
    ImportStatusList(brevet::commands::keys::StatusListImportArgs),
}

/// Writes the man page of `command` and of each of its subcommands into `dir`.
fn write_man_pages(command: clap::Command, dir: &std::path::Path) -> std::io::Result<usize> {
    let name = command
        .get_display_name()
        .unwrap_or(command.get_name())
        .to_owned();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)?;
    let mut written = 1;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let sub = sub
            .clone()
            .display_name(format!("{name}-{}", sub.get_name()));
        written += write_man_pages(sub, dir)?;
    }
    Ok(written)
}

/// Parses the command line; a mistake in it is one line naming the argument, and an exit code
/// of 2, like a bad setting.
fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                error.exit();
            }
            // clap's first paragraph, on one line (it lists missing arguments below its heading).
            let rendered = error.render().to_string();
            let paragraph: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let what = paragraph.join(" ");
            let what = what.strip_prefix("error: ").unwrap_or(&what);
            eprintln!("brevet: {what} (see --help)");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // What needs no configuration works whatever the configuration says.
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "brevet",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Command::Man { dir } => {
            let mut command = Cli::command();
            command.build();
            return match std::fs::create_dir_all(dir).and_then(|()| write_man_pages(command, dir)) {
                Ok(n) => {
                    println!("wrote {n} man pages to {}", dir.display());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!(
                        "brevet: cannot write man pages to {}: {error}",
                        dir.display()
                    );
                    ExitCode::FAILURE
                }
            };
        }
        Command::Config(ConfigCommand::Reference) => {
            brevet::commands::config::print_reference();
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("brevet: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    // A client command's output is its answer: the server's start-up chatter (store opened, doc
    // types loaded) stays out unless asked for with BREVET_LOG.
    let client = matches!(
        cli.command,
        Command::Admin(_) | Command::Config(_) | Command::Health(_)
    );
    if client && std::env::var_os("BREVET_LOG").is_none() {
        "warn".clone_into(&mut config.log);
    }
    if matches!(cli.command, Command::Serve) {
        if let Err(error) = config.validate_listeners() {
            eprintln!("brevet: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    }
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
            Command::Keys(KeysCommand::RotateStatusList(args)) => {
                brevet::commands::keys::rotate_status_list(&config, &args)
            }
            Command::Keys(KeysCommand::ImportStatusList(args)) => {
                brevet::commands::keys::import_status_list(&config, &args)
            }
            Command::Sim(SimCommand::Wallet(args)) => {
                brevet::commands::sim::wallet(&config, args).await
            }
            Command::Sim(SimCommand::Chrome(args)) => brevet::commands::sim::chrome(args).await,
            Command::Sim(SimCommand::Pace(args)) => brevet::commands::sim::pace(args).await,
            Command::Sim(SimCommand::Seed(args)) => brevet::commands::sim::seed(args).await,
            Command::Sim(SimCommand::SignRate(args)) => brevet::commands::sim::sign_rate(&args),
            Command::Sim(SimCommand::Google(args)) => brevet::commands::sim::google(&args).await,
            Command::Sim(SimCommand::NotifyRate(args)) => {
                brevet::commands::sim::notify_rate(&args).await
            }
            Command::Sim(SimCommand::MsoRate(args)) => brevet::commands::sim::mso_rate(&args),
            Command::Google(GoogleCommand::Check(args)) => {
                brevet::commands::google_check(&config, &args).await
            }
            Command::Admin(args) => brevet::commands::admin::run(&config, args).await,
            Command::Config(ConfigCommand::Check) => {
                brevet::commands::config::check(&config, cli.config.as_deref()).await
            }
            Command::Config(ConfigCommand::Print) => {
                brevet::commands::config::print(cli.config.as_deref())
            }
            Command::Config(ConfigCommand::Reference)
            | Command::Completions { .. }
            | Command::Man { .. } => Ok(()),
            Command::Health(args) => brevet::commands::health::health(&config, &args).await,
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
