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
    /// Base URL of the issuer's admin API, when it listens apart from the Wallet API
    /// (`http.admin_listen`). Default: the --issuer URL.
    #[arg(long)]
    pub admin_url: Option<String>,
    /// Issuer id Google sends in requestMetadata. Default: `google.issuer_id` of the
    /// configuration, else `brevet-sim`.
    #[arg(long)]
    pub issuer_id: Option<String>,
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
    let version = crate::protocol::wallet::ApiVersion::parse(&args.api_version)
        .ok_or_else(|| anyhow::anyhow!("--api-version must be MAJOR.MINOR"))?;
    let options = FlowOptions {
        endpoint: IssuerEndpoint {
            base_url: args.issuer,
            issuer_id: args
                .issuer_id
                .or_else(|| config.google.issuer_id.clone())
                .unwrap_or_else(|| "brevet-sim".into()),
            version: (version.major, version.minor),
            client_identity: args.client_identity,
            ca_certificate: args.ca,
        },
        admin_token: args.admin_token,
        admin_url: args.admin_url,
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
    /// Base URL of the admin API when it listens apart (`http.admin_listen`). Default: --issuer.
    #[arg(long)]
    pub admin_url: Option<String>,
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
    let admin = AdminClient::new(
        args.admin_url.as_deref().unwrap_or(&args.issuer),
        &args.admin_token,
        None,
    )
    .map_err(anyhow::Error::msg)?;
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

/// `sim mso-rate`: the composite MSO ceiling as JSON (what provisionMobileSecurityObjects must do
/// per MSO: auth-key check, DS signature, HPKE seal, identity signature), one thread per core.
pub fn mso_rate(args: &SignRateArgs) -> anyhow::Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (total, per_thread) = crate::sim::wallet::load::mso_rate(
        threads,
        std::time::Duration::from_secs(args.seconds.max(1)),
    )
    .map_err(anyhow::Error::msg)?;
    println!(
        "{}",
        serde_json::json!({ "threads": threads, "msos_per_second": total.round(), "per_thread": per_thread.round() })
    );
    Ok(())
}

/// Options of `sim chrome`.
#[derive(Debug, Args)]
pub struct ChromeArgs {
    /// Where the simulator writes the worker's configuration, service-account key and CA.
    #[arg(long, default_value = "./brevet-data/sim-chrome")]
    pub dir: PathBuf,
    /// Address of the simulated Google endpoints (Chrome Management, Pub/Sub, OAuth).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Processes to create: device and user certificates, RSA-2048 and P-256 keys in turn.
    #[arg(long, default_value_t = 4)]
    pub processes: usize,
    /// Give up waiting for the worker after this long.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// Devices take this long to sign after signData (a worker can be stopped meanwhile).
    #[arg(long, default_value_t = 0)]
    pub sign_delay_ms: u64,
    /// Keep serving after the check (for trying the worker by hand) until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Use the device CA in this directory (`brevet keys init-device-ca --dir`, its key perhaps
    /// in a PKCS#11 token) instead of making one; the worker then needs the same `[keys.pkcs11]`.
    #[arg(long)]
    pub ca_dir: Option<PathBuf>,
}

/// Plays Google (Chrome Management, Pub/Sub, OAuth) and ChromeOS devices for `brevet worker`:
/// writes a worker configuration, creates processes, waits for the worker to finish them and
/// checks every certificate as the device would; fails unless all were imported.
pub async fn chrome(args: ChromeArgs) -> anyhow::Result<()> {
    use anyhow::Context;

    use crate::certprov::ca::BuiltinCa;
    use crate::sim::chrome::{self, ChromeSim, KeyType, NewProcess, Verdict};

    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    for file in ["sa.json", "ca.crt.pem", "ca.key.pem", "worker.toml"] {
        let _ = std::fs::remove_file(args.dir.join(file));
    }
    let (key_file, public) = chrome::service_account_key("https://oauth2.googleapis.com/token");
    crate::pki::keystore::write_new(&args.dir.join("sa.json"), key_file.as_bytes(), 0o600)?;
    let (ca_cert, ca_key) = match &args.ca_dir {
        Some(dir) => {
            let key = ["ca.key.pem", "ca.key.pkcs11"]
                .iter()
                .map(|name| dir.join(name))
                .find(|path| path.is_file())
                .with_context(|| format!("{} holds no device CA key", dir.display()))?;
            (dir.join("ca.crt.pem"), key)
        }
        None => BuiltinCa::create_files(
            &args.dir,
            "Brevet Simulated Device CA",
            std::time::Duration::from_secs(365 * 86_400),
        )?,
    };
    let sim = ChromeSim::start(args.listen, public).await?;
    let base = sim.base_url();
    let worker = format!(
        r#"# Written by `brevet sim chrome`: a worker pointed at the simulator.
[certprov]
enabled = true
# no instance_id: every worker on one database claims as that deployment's stored id
chrome_base_url = "{base}"
sign_poll_initial_ms = 200
# short leases so that a worker stopped mid-flow is replaced quickly in demos and tests
timeout_secs = 5
lease_secs = 10

[certprov.auth]
service_account_key = "{sa}"
token_url = "{token}"

[certprov.pubsub]
subscription = "{subscription}"
endpoint = "{base}"

[certprov.profiles.device_profile]
subject = "CN={{device.serialNumber}},O=Brevet Simulation"

[certprov.profiles.user_profile]
subject = "CN={{user.email}},O=Brevet Simulation"
emails = ["{{user.email}}"]

[certprov.ca_connections.default_ca_config]
kind = "builtin"
certificate = "{cert}"
private_key = "{key}"
"#,
        sa = args.dir.join("sa.json").canonicalize()?.display(),
        token = sim.token_url(),
        subscription = chrome::SUBSCRIPTION,
        cert = ca_cert.canonicalize()?.display(),
        key = ca_key.canonicalize()?.display(),
    );
    let config_path = args.dir.join("worker.toml");
    std::fs::write(&config_path, worker)?;
    tracing::info!(address = %sim.address(), worker_config = %config_path.display(), "Chrome simulator listening; start `brevet worker --config {}`", config_path.display());

    let mut names = Vec::new();
    for i in 0..args.processes {
        let new = NewProcess {
            key: if i % 2 == 0 {
                KeyType::Ec
            } else {
                KeyType::Rsa
            },
            user: i % 4 >= 2,
            profile_reference: if i % 4 >= 2 {
                "user_profile"
            } else {
                "device_profile"
            }
            .into(),
            binary: i % 3 == 0,
            sign_delay: std::time::Duration::from_millis(args.sign_delay_ms),
            ..NewProcess::default()
        };
        names.push((sim.create_process(&new), new.key, new.user));
    }
    tracing::info!(
        processes = names.len(),
        "processes created and announced on Pub/Sub"
    );
    let ca = crate::pki::certs::from_pem(&std::fs::read_to_string(&ca_cert)?)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.timeout_secs);
    while names
        .iter()
        .any(|(n, _, _)| sim.verdict(n) == Verdict::Pending)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut failures = 0;
    let mut out = String::new();
    for (name, key, user) in &names {
        let verdict = sim.verdict(name);
        let chained = sim
            .resource(name)
            .and_then(|r| r.issued_certificate)
            .and_then(|pem| crate::pki::certs::from_pem(&pem).ok())
            .is_some_and(|cert| crate::pki::chain::signed_by(&cert, &ca).is_ok());
        let ok = verdict == Verdict::Imported && chained && sim.sign_requests(name) == 1;
        failures += usize::from(!ok);
        out.push_str(&format!(
            "{} {name} {} {} {verdict:?}\n",
            if ok { "ok  " } else { "FAIL" },
            if *key == KeyType::Rsa {
                "rsa-2048"
            } else {
                "p-256"
            },
            if *user { "user" } else { "device" },
        ));
    }
    print!("{out}");
    println!(
        "{} of {} processes provisioned",
        names.len() - failures,
        names.len()
    );
    if args.serve {
        crate::http::shutdown_signal().await;
    }
    if failures > 0 {
        anyhow::bail!("{failures} processes were not provisioned");
    }
    Ok(())
}

/// Options of `sim pace`.
#[derive(Debug, Args)]
pub struct PaceArgs {
    /// URL to POST to.
    #[arg(long)]
    pub url: String,
    /// File of JSON request bodies, one per line, replayed round robin.
    #[arg(long)]
    pub bodies: PathBuf,
    /// Requests per second, on a fixed schedule.
    #[arg(long)]
    pub rate: f64,
    /// Seconds to send.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
}

/// Open-loop load at a steady rate; prints one JSON summary line (latency from scheduled start).
pub async fn pace(args: PaceArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = std::fs::read_to_string(&args.bodies)
        .with_context(|| format!("cannot read {}", args.bodies.display()))?;
    let summary = crate::sim::pace::run(crate::sim::pace::Plan {
        url: args.url,
        bodies: text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        rate: args.rate,
        duration: std::time::Duration::from_secs(args.seconds.max(1)),
        max_in_flight: args.max_in_flight,
    })
    .await?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// Options of `sim google`.
#[derive(Debug, Args)]
pub struct GoogleArgs {
    /// The issuer id the fake accepts in its paths and requests.
    #[arg(long, default_value = "brevet-load")]
    pub issuer_id: String,
}

/// Serves the fake Google Wallet backend on a loopback port until Ctrl-C or SIGTERM: prints its
/// base URL, then, when stopped, how many notifications it accepted.
pub async fn google(args: &GoogleArgs) -> anyhow::Result<()> {
    let stop = crate::http::shutdown_signal();
    let fake = crate::sim::google::FakeGoogle::start(&args.issuer_id).await?;
    println!("{}", fake.base_url());
    stop.await;
    println!("accepted {}", fake.accepted().len());
    Ok(())
}

/// Options of `sim notify-rate`.
#[derive(Debug, Args)]
pub struct NotifyRateArgs {
    /// Base URL of the (fake) Google backend.
    #[arg(long)]
    pub google: String,
    /// Its issuer id.
    #[arg(long, default_value = "brevet-load")]
    pub issuer_id: String,
    /// Notifications to send.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// At once (the dispatcher's `outbox.lanes`).
    #[arg(long, default_value_t = 8)]
    pub lanes: usize,
}

/// The ceiling of notification fan-out: `count` notifyCredentialStatusUpdateAvailable calls
/// through the same HTTP client the dispatcher uses, `lanes` at once, with no store in between.
/// Prints JSON.
pub async fn notify_rate(args: &NotifyRateArgs) -> anyhow::Result<()> {
    use crate::google::Notifier;
    let config = crate::config::GoogleConfig {
        base_url: Some(args.google.clone()),
        issuer_id: Some(args.issuer_id.clone()),
        ..Default::default()
    };
    let client = std::sync::Arc::new(
        crate::google::GoogleClient::from_config(&config)?
            .ok_or_else(|| anyhow::anyhow!("--google and --issuer-id are needed"))?,
    );
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let mut lanes = tokio::task::JoinSet::new();
    for _ in 0..args.lanes.max(1) {
        let (client, next, count) = (client.clone(), next.clone(), args.count);
        lanes.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                client
                    .notify_credential_status(
                        &format!("rate-device-{n}"),
                        &format!("rate-copy-{n}"),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        });
    }
    while let Some(lane) = lanes.join_next().await {
        lane??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({ "count": args.count, "lanes": args.lanes, "seconds": seconds, "per_second": args.count as f64 / seconds })
    );
    Ok(())
}
