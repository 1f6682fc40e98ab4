//! `brevet health`: asks a running `brevet serve` (its `/readyz`) or `brevet worker` (its
//! `/healthz`) on this host whether it is well, for container health checks where no curl exists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;

/// Options of `brevet health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Ask the worker (`worker.ops_listen`, `/healthz`) instead of the server (`/readyz` on
    /// `http.ops_listen`, or `listen`).
    #[arg(long)]
    pub worker: bool,
    /// Ask this URL instead of the one the configuration gives.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

/// An address a process listens on, as a client on the same host reaches it: a wildcard bind
/// (`0.0.0.0`, `::`) is asked on loopback.
pub fn reachable(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

/// The URL the configuration says the process answers health on.
pub fn health_url(config: &Config, worker: bool) -> anyhow::Result<String> {
    if worker {
        let address = config.worker.ops_listen.context(
            "setting `worker.ops_listen` is unset: the worker has no health endpoint to ask",
        )?;
        return Ok(format!("http://{}/healthz", reachable(address)));
    }
    let address = config.http.ops_listen.unwrap_or(config.listen);
    Ok(format!("{}/readyz", local_base(config, address)))
}

/// The base URL of `brevet serve`'s listener `address`, as a client on this host reaches it.
pub fn local_base(config: &Config, address: SocketAddr) -> String {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", reachable(address))
}

/// `brevet health`: prints the answer's status line; fails unless the process is ready.
pub async fn health(config: &Config, args: &HealthArgs) -> anyhow::Result<()> {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => health_url(config, args.worker)?,
    };
    // The server's certificate names its public host, not loopback, and nothing secret is sent:
    // for this one local probe its name is not checked.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .danger_accept_invalid_certs(true)
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("no answer from {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        println!("{}: {}", url, body["status"].as_str().unwrap_or("ok"));
        return Ok(());
    }
    let failed: Vec<String> = body["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            format!(
                "{}: {}",
                c["name"].as_str().unwrap_or("?"),
                c["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    anyhow::bail!(
        "{url} answered {status}{}{}",
        if failed.is_empty() { "" } else { "; " },
        failed.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::health_url;
    use crate::config::Config;

    #[test]
    fn health_is_asked_where_the_process_listens_on_this_host() {
        let mut config = Config::default();
        assert_eq!(
            health_url(&config, false).unwrap(),
            "http://127.0.0.1:8080/readyz"
        );
        config.http.ops_listen = Some("0.0.0.0:9090".parse().unwrap());
        assert_eq!(
            health_url(&config, false).unwrap(),
            "http://127.0.0.1:9090/readyz"
        );
        config.worker.ops_listen = Some("[::]:9091".parse().unwrap());
        assert_eq!(
            health_url(&config, true).unwrap(),
            "http://[::1]:9091/healthz"
        );
        config.worker.ops_listen = None;
        assert!(health_url(&config, true)
            .unwrap_err()
            .to_string()
            .starts_with("setting `worker.ops_listen` is unset"));
    }
}
