//! `brevet admin …`: the staff CLI. Every subcommand is one call of the admin API
//! (docs/ADMIN_API.md) over HTTP, so it is checked and audited exactly as the API is; only
//! `mint-token` works on the store directly, for a lost bootstrap token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::config::Config;

/// Options every `brevet admin` call shares.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Base URL of the admin API's listener; default: `http.admin_listen` (or `listen`) of the
    /// configuration, asked on this host.
    #[arg(long, env = "BREVET_ADMIN_URL", value_name = "URL", global = true)]
    pub url: Option<String>,
    /// Admin token (`Authorization: Bearer`).
    #[arg(
        long,
        env = "BREVET_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Extra CA (PEM) trusted for the server's certificate.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_certificate: Option<PathBuf>,
    /// How answers are printed.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The API's JSON, as it came.
    Json,
    /// Columns for lists, `key: value` lines for one record.
    Table,
    /// Only the id of the record (or of each listed one), for scripts.
    Id,
}

/// `brevet admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Credential records.
    #[command(subcommand)]
    Records(RecordsCommand),
    /// The proofing review queue.
    #[command(subcommand)]
    Proofings(ProofingsCommand),
    /// Notifications to Google.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Admin tokens (admin role).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Create an admin token directly in the store, for when no admin token is left (a lost
    /// bootstrap token). Needs the store's credentials, not a token; audited as `system`.
    MintToken(MintTokenArgs),
}

/// `admin records …`
#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Create a record from a holder-data file (`{ namespace: { element: value } }`).
    Create {
        /// Holder data (JSON), e.g. examples/holder.json.
        #[arg(long)]
        file: PathBuf,
        /// Doc type of the record.
        #[arg(long, default_value = "org.iso.18013.5.1.mDL")]
        doc_type: String,
    },
    /// Show one record.
    Get {
        /// Credential id.
        id: String,
    },
    /// List records (newest first), every page, optionally of one status or doc type.
    List {
        /// `active`, `suspended` or `revoked`.
        #[arg(long)]
        status: Option<String>,
        /// Only records of this doc type.
        #[arg(long)]
        doc_type: Option<String>,
    },
    /// Replace a record's holder data with a file's (a new version; every element must be in
    /// the file, since the whole holder data is replaced).
    Update {
        /// Credential id.
        id: String,
        /// Holder data (JSON).
        #[arg(long)]
        file: PathBuf,
        /// The version you read (its ETag); default: the current one, read just before.
        #[arg(long)]
        if_match: Option<u32>,
    },
    /// Revoke a record (final; Google is told).
    Revoke {
        /// Credential id.
        id: String,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
    },
    /// Change many records at once: merge the elements of a file (`{ namespace: { element:
    /// value or null } }`, null removes) into every selected record, in the background, and wait
    /// for the end showing progress. Records whose data the merge leaves as it is get no version.
    BulkUpdate {
        /// The merge (JSON).
        #[arg(long)]
        merge_file: PathBuf,
        /// The records: a file of credential ids, one per line (or give a filter).
        #[arg(long, conflicts_with_all = ["doc_type", "status"])]
        ids_file: Option<PathBuf>,
        /// Every record of this doc type.
        #[arg(long)]
        doc_type: Option<String>,
        /// Every record in this status (usually `active`).
        #[arg(long)]
        status: Option<String>,
        /// Records to change per second (0: as fast as the store allows); default: the
        /// server's `bulk_update.records_per_sec`.
        #[arg(long)]
        records_per_second: Option<u32>,
        /// Print the started update and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show a bulk update's progress.
    BulkStatus {
        /// Bulk update id.
        id: String,
    },
}

/// `admin proofings …`
#[derive(Debug, Subcommand)]
pub enum ProofingsCommand {
    /// List proofings, oldest first.
    List {
        /// Only this status, e.g. `pending`.
        #[arg(long)]
        status: Option<String>,
    },
    /// Accept a proofing for an active record.
    Approve {
        /// Proofing id.
        id: String,
        /// The record provisionCredential will serve.
        #[arg(long)]
        record: String,
    },
    /// Refuse a proofing for one of the spec's reasons (e.g. `evidenceMismatch`).
    Reject {
        /// Proofing id.
        id: String,
        /// `evidenceMismatch`, `evidenceIncomplete`, `lowRiskScore`, `recordNotFound`,
        /// `recordInvalid`, `maxProvisioningsReached`, `riskCheckFailure` or
        /// `livenessCheckFailure`.
        #[arg(long)]
        reason: String,
    },
}

/// `admin outbox …`
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List notifications, newest first.
    List {
        /// `pending`, `done` or `dead`.
        #[arg(long)]
        state: Option<String>,
    },
    /// Put a dead notification back in the queue.
    Retry {
        /// Outbox id.
        id: String,
    },
}

/// `admin tokens …`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; its value is printed once.
    Create {
        /// A unique label, e.g. `clerk-anna`.
        #[arg(long)]
        name: String,
        /// `viewer`, `operator` or `admin`.
        #[arg(long)]
        role: String,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token (the last admin token cannot be revoked).
    Revoke {
        /// Token id.
        id: String,
    },
}

/// Options of `admin mint-token`.
#[derive(Debug, Args)]
pub struct MintTokenArgs {
    /// A unique label for the token.
    #[arg(long)]
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    #[arg(long, default_value = "admin")]
    pub role: String,
}

/// One call's answer: status, ETag and body.
struct Answer {
    etag: Option<String>,
    body: Value,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(config: &Config, args: &AdminArgs) -> anyhow::Result<Self> {
        let token = args.token.clone().context(
            "no admin token: pass --token or set BREVET_ADMIN_TOKEN (the bootstrap token, or one made by `brevet admin tokens create`)",
        )?;
        let base = match &args.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                super::health::local_base(config, config.http.admin_listen.unwrap_or(config.listen))
            }
        };
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(path) = &args.ca_certificate {
            let pem = std::fs::read(path)
                .with_context(|| format!("--ca-certificate: cannot read {}", path.display()))?;
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("--ca-certificate: {}", path.display()))?,
            );
        }
        Ok(Self {
            http: builder.build()?,
            base,
            token,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<u32>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}/admin/v1{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(version) = if_match {
            request = request.header("if-match", format!("\"{version}\""));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_owned());
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let error = &parsed["error"];
            match (error["code"].as_str(), error["message"].as_str()) {
                (Some(code), Some(message)) => {
                    anyhow::bail!("{method} {path}: {} {code}: {message}", status.as_u16())
                }
                _ => anyhow::bail!("{method} {path}: {status}"),
            }
        }
        let body = if status == StatusCode::NO_CONTENT || text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).context("the admin API answered something not JSON")?
        };
        Ok(Answer { etag, body })
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The columns shown for a list, by the list's field name.
fn columns(list: &str) -> &'static [&'static str] {
    match list {
        "credentials" => &[
            "credentialId",
            "docType",
            "status",
            "versionNumber",
            "updatedAt",
        ],
        "proofings" => &["proofingId", "status", "credentialId", "createdAt"],
        "jobs" => &["outboxId", "kind", "state", "attempts", "lastError"],
        "tokens" => &["tokenId", "name", "role", "createdAt", "revokedAt"],
        _ => &[],
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A list answer as columns, or one record as `key: value` lines.
pub fn table(body: &Value) -> String {
    let Some(object) = body.as_object() else {
        return format!("{}\n", cell(body));
    };
    let list = object
        .iter()
        .find(|(key, value)| value.is_array() && !columns(key).is_empty());
    let mut out = String::new();
    if let Some((name, Value::Array(rows))) = list {
        let heads = columns(name);
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| heads.iter().map(|h| cell(&row[*h])).collect())
            .collect();
        let widths: Vec<usize> = heads
            .iter()
            .enumerate()
            .map(|(i, h)| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(h.len())
            })
            .collect();
        let line = |values: Vec<String>| {
            let padded: Vec<String> = values
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        out.push_str(&line(heads.iter().map(|h| h.to_string()).collect()));
        for row in cells {
            out.push_str(&line(row));
        }
        if let Some(warning) = object.get("warning").and_then(Value::as_str) {
            out.push_str(&format!("warning: {warning}\n"));
        }
        return out;
    }
    for (key, value) in object {
        let shown = match value {
            Value::Object(_) | Value::Array(_) => {
                serde_json::to_string_pretty(value).unwrap_or_default()
            }
            other => cell(other),
        };
        out.push_str(&format!("{key}: {shown}\n"));
    }
    out
}

/// The id fields of the admin API's records.
const ID_FIELDS: [&str; 4] = ["credentialId", "proofingId", "outboxId", "tokenId"];

/// The id of one record, or of each listed one, a line each.
pub fn ids(body: &Value) -> String {
    let id_of = |record: &Value| {
        ID_FIELDS
            .iter()
            .find_map(|f| record[*f].as_str().map(str::to_owned))
    };
    let listed = body.as_object().and_then(|object| {
        object
            .iter()
            .find(|(key, value)| value.is_array() && !columns(key).is_empty())
            .and_then(|(_, rows)| rows.as_array())
    });
    let found: Vec<String> = match listed {
        Some(rows) => rows.iter().filter_map(id_of).collect(),
        None => id_of(body).into_iter().collect(),
    };
    found.iter().map(|id| format!("{id}\n")).collect()
}

fn show(output: Output, answer: &Answer) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        ),
        Output::Table => print!("{}", table(&answer.body)),
        Output::Id => print!("{}", ids(&answer.body)),
    }
}

fn query(pairs: &[(&str, &Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn segment(id: &str) -> String {
    urlencode(id)
}

/// `brevet admin …`
pub async fn run(config: &Config, args: AdminArgs) -> anyhow::Result<()> {
    if let AdminCommand::MintToken(mint) = &args.command {
        return mint_token(config, mint).await;
    }
    let client = Client::new(config, &args)?;
    let answer = match args.command {
        AdminCommand::Records(command) => records(&client, command).await?,
        AdminCommand::Proofings(command) => proofings(&client, command).await?,
        AdminCommand::Outbox(command) => match command {
            OutboxCommand::List { state } => {
                client
                    .call(
                        Method::GET,
                        &format!("/outbox{}", query(&[("state", &state)])),
                        None,
                        None,
                    )
                    .await?
            }
            OutboxCommand::Retry { id } => {
                client
                    .call(
                        Method::POST,
                        &format!("/outbox/{}/retry", segment(&id)),
                        None,
                        None,
                    )
                    .await?
            }
        },
        AdminCommand::Tokens(command) => match command {
            TokensCommand::Create { name, role } => {
                client
                    .call(
                        Method::POST,
                        "/tokens",
                        Some(json!({ "name": name, "role": role })),
                        None,
                    )
                    .await?
            }
            TokensCommand::List => client.call(Method::GET, "/tokens", None, None).await?,
            TokensCommand::Revoke { id } => {
                client
                    .call(
                        Method::DELETE,
                        &format!("/tokens/{}", segment(&id)),
                        None,
                        None,
                    )
                    .await?;
                Answer {
                    etag: None,
                    body: json!({ "revoked": id }),
                }
            }
        },
        AdminCommand::MintToken(_) => unreachable!("handled above"),
    };
    show(args.output, &answer);
    Ok(())
}

async fn records(client: &Client, command: RecordsCommand) -> anyhow::Result<Answer> {
    Ok(match command {
        RecordsCommand::Create { file, doc_type } => {
            let holder_data = read_json(&file)?;
            client
                .call(
                    Method::POST,
                    "/credentials",
                    Some(json!({ "docType": doc_type, "holderData": holder_data })),
                    None,
                )
                .await?
        }
        RecordsCommand::Get { id } => {
            client
                .call(
                    Method::GET,
                    &format!("/credentials/{}", segment(&id)),
                    None,
                    None,
                )
                .await?
        }
        RecordsCommand::List { status, doc_type } => {
            // The API pages by cursor; the CLI follows the pages and shows one list.
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            let limit = Some("200".to_owned());
            loop {
                let path = format!(
                    "/credentials{}",
                    query(&[
                        ("status", &status),
                        ("docType", &doc_type),
                        ("limit", &limit),
                        ("cursor", &cursor),
                    ])
                );
                let page = client.call(Method::GET, &path, None, None).await?;
                if let Some(records) = page.body["credentials"].as_array() {
                    all.extend(records.iter().cloned());
                }
                match page.body["nextCursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            Answer {
                etag: None,
                body: json!({ "credentials": all }),
            }
        }
        RecordsCommand::Update { id, file, if_match } => {
            let holder_data = read_json(&file)?;
            let path = format!("/credentials/{}", segment(&id));
            let version = match if_match {
                Some(version) => version,
                None => {
                    let current = client.call(Method::GET, &path, None, None).await?;
                    current
                        .etag
                        .and_then(|tag| tag.parse().ok())
                        .context("the record's answer carried no ETag")?
                }
            };
            client
                .call(
                    Method::PATCH,
                    &path,
                    Some(json!({ "holderData": holder_data })),
                    Some(version),
                )
                .await?
        }
        RecordsCommand::Revoke { id, reason } => {
            client
                .call(
                    Method::POST,
                    &format!("/credentials/{}/revoke", segment(&id)),
                    Some(json!({ "reason": reason })),
                    None,
                )
                .await?
        }
        RecordsCommand::BulkUpdate {
            merge_file,
            ids_file,
            doc_type,
            status,
            records_per_second,
            no_wait,
        } => {
            let mut body = json!({ "merge": read_json(&merge_file)? });
            if let Some(path) = ids_file {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let ids: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                body["credentialIds"] = json!(ids);
            }
            if let Some(doc_type) = doc_type {
                body["docType"] = json!(doc_type);
            }
            if let Some(status) = status {
                body["status"] = json!(status);
            }
            if let Some(pace) = records_per_second {
                body["recordsPerSecond"] = json!(pace);
            }
            let started = client
                .call(Method::POST, "/credentials/bulk-updates", Some(body), None)
                .await?;
            if no_wait {
                return Ok(started);
            }
            let path = format!(
                "/credentials/bulk-updates/{}",
                started.body["bulkUpdateId"].as_str().unwrap_or_default()
            );
            let mut last = None;
            loop {
                let now = client.call(Method::GET, &path, None, None).await?;
                let line = format!(
                    "bulk update: {} of {} records handled ({} changed, {} unchanged, {} failed)",
                    now.body["selected"],
                    now.body["total"],
                    now.body["changed"],
                    now.body["unchanged"],
                    now.body["failed"]
                );
                if crate::progress::shown() && last.as_ref() != Some(&line) {
                    eprintln!("{line}");
                }
                if now.body["state"] != "running" {
                    break now;
                }
                last = Some(line);
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
        RecordsCommand::BulkStatus { id } => {
            client
                .call(
                    Method::GET,
                    &format!("/credentials/bulk-updates/{}", segment(&id)),
                    None,
                    None,
                )
                .await?
        }
    })
}

async fn proofings(client: &Client, command: ProofingsCommand) -> anyhow::Result<Answer> {
    let review = |id: &str, decision: Value| {
        let path = format!("/proofings/{}/review", segment(id));
        async move { client.call(Method::POST, &path, Some(decision), None).await }
    };
    match command {
        ProofingsCommand::List { status } => {
            client
                .call(
                    Method::GET,
                    &format!("/proofings{}", query(&[("status", &status)])),
                    None,
                    None,
                )
                .await
        }
        ProofingsCommand::Approve { id, record } => {
            review(
                &id,
                json!({ "decision": "approve", "credentialId": record }),
            )
            .await
        }
        ProofingsCommand::Reject { id, reason } => {
            review(&id, json!({ "decision": "reject", "reason": reason })).await
        }
    }
}

/// `admin mint-token`: a new token straight into the store, audited as made by `system` through
/// the CLI, and printed once.
async fn mint_token(config: &Config, args: &MintTokenArgs) -> anyhow::Result<()> {
    let role: crate::domain::admin_token::Role =
        serde_json::from_value(Value::String(args.role.clone())).map_err(|_| {
            anyhow::anyhow!("--role {:?}: must be viewer, operator or admin", args.role)
        })?;
    let store = super::open_store(config).await?;
    let secret = crate::domain::admin_token::TokenSecret::generate();
    let token = crate::store::NewAdminToken {
        name: args.name.clone(),
        role,
        token_hash: secret.hash(),
    };
    let created = crate::service::tokens::mint(&store, &token)
        .await
        .with_context(|| format!("cannot create the token {:?}", args.name))?;
    tracing::warn!(token_id = %created.admin_token_id, name = %args.name, "admin token minted on the store by `brevet admin mint-token`");
    println!(
        "Admin token {:?} ({}), id {} (shown once; only its hash is kept):",
        args.name, args.role, created.admin_token_id
    );
    println!("{}", secret.expose());
    Ok(())
}
