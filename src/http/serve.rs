//! Serving a bound listener, plain or TLS, with the limits a server facing the internet needs:
//! at most `max_connections` open at once (past it, new connections wait in the kernel's backlog),
//! a TLS handshake that must finish in time, and a deadline for the request head: a client that
//! sends partial headers, or keeps an idle connection open without sending the next request,
//! is disconnected when it passes. HTTP/1.1 only (what Google's calls use), so that every
//! connection is under that deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::tls::PeerCertificate;
use crate::config::Config;

/// Limits on connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time to send a request head, and longest idle time between requests on a connection.
    pub header_read_timeout: Duration,
    /// Time to complete a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Connections open at once, per listener.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs),
            tls_handshake_timeout: Duration::from_secs(config.http.tls_handshake_timeout_secs),
            max_connections: config.http.max_connections,
        }
    }
}

/// Serves `app` on `listener` (through `tls` when given) until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let app = app.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            match tls {
                None => {
                    let service = hyper_util::service::TowerToHyperService::new(app.map_request(
                        |request: axum::http::Request<hyper::body::Incoming>| {
                            request.map(axum::body::Body::new)
                        },
                    ));
                    let connection = builder.serve_connection(TokioIo::new(tcp), service);
                    let _ = watcher.watch(connection).await;
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(
                        limits.tls_handshake_timeout,
                        acceptor.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::info!(%remote, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%remote, "TLS handshake timed out");
                            return;
                        }
                    };
                    let peer = PeerCertificate(
                        tls.get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .map(|leaf| leaf.to_vec()),
                    );
                    let service = hyper_util::service::TowerToHyperService::new(app.map_request(
                        move |mut request: axum::http::Request<hyper::body::Incoming>| {
                            request.extensions_mut().insert(peer.clone());
                            request.map(axum::body::Body::new)
                        },
                    ));
                    let connection = builder.serve_connection(TokioIo::new(tls), service);
                    let _ = watcher.watch(connection).await;
                }
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}
