//! The real listener's limits, over sockets: request heads and idle connections that take too
//! long are cut, TLS handshakes too, connections past the cap wait, and the surfaces split by
//! address.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::process::{brevet, Server};

/// A port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn address(server: &Server) -> String {
    server.base_url.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes or `limit` passes; returns how long the close took, or `None`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

fn response_within(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buffer = [0u8; 4096];
    match stream.read(&mut buffer) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
        _ => None,
    }
}

#[test]
fn slow_heads_and_idle_connections_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = brevet(dir.path());
    command.env("BREVET_HTTP__HEADER_READ_TIMEOUT_SECS", "1");
    let server = Server::start(command);
    // Partial headers, never finished.
    let mut partial = TcpStream::connect(address(&server)).unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: brevet\r\n")
        .unwrap();
    let took = closed_within(&mut partial, Duration::from_secs(5)).expect("a slow head is cut");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A kept-alive connection left idle after its request.
    let mut idle = TcpStream::connect(address(&server)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: brevet\r\n\r\n")
        .unwrap();
    let answer = response_within(&mut idle, Duration::from_secs(5)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let took = closed_within(&mut idle, Duration::from_secs(5)).expect("an idle connection is cut");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn connections_past_the_cap_wait_for_a_free_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = brevet(dir.path());
    command
        .env("BREVET_HTTP__MAX_CONNECTIONS", "1")
        .env("BREVET_HTTP__HEADER_READ_TIMEOUT_SECS", "30");
    let server = Server::start(command);
    let first = TcpStream::connect(address(&server)).unwrap();
    let mut second = TcpStream::connect(address(&server)).unwrap();
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: brevet\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        response_within(&mut second, Duration::from_millis(700)),
        None,
        "the second connection waits"
    );
    drop(first);
    let answer =
        response_within(&mut second, Duration::from_secs(5)).expect("served once the first leaves");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_stalled_tls_handshake_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
    let mut command = brevet(dir.path());
    command
        .env("BREVET_TLS__CERTIFICATE", dir.path().join("server.pem"))
        .env("BREVET_TLS__PRIVATE_KEY", dir.path().join("server.key"))
        .env("BREVET_HTTP__TLS_HANDSHAKE_TIMEOUT_SECS", "1");
    let server = Server::start(command);
    let mut silent = TcpStream::connect(address(&server)).unwrap();
    let took =
        closed_within(&mut silent, Duration::from_secs(5)).expect("a silent TLS client is cut");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn surfaces_split_by_address_serve_only_their_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (wallet, staff) = (free_port(), free_port());
    let mut command = brevet(dir.path());
    command
        .args(["serve"])
        .env("BREVET_LOG_FORMAT", "json")
        .env("BREVET_LISTEN", format!("127.0.0.1:{wallet}"))
        .env("BREVET_HTTP__ADMIN_LISTEN", format!("127.0.0.1:{staff}"))
        .env("BREVET_HTTP__OPS_LISTEN", format!("127.0.0.1:{staff}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut server = Server::spawn_command(command);
    for port in [wallet, staff] {
        server.wait_for_log(|line| line["address"].as_str() == Some(&format!("127.0.0.1:{port}")));
    }
    let status = |port: u16, path: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: brevet\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let answer = response_within(&mut stream, Duration::from_secs(5)).unwrap();
        answer.split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(status(wallet, "/metrics"), "404");
    assert_eq!(status(wallet, "/admin/v1/whoami"), "404");
    assert_eq!(status(staff, "/metrics"), "200");
    assert_eq!(status(staff, "/admin/v1/whoami"), "401");
    assert_eq!(
        status(staff, "/v1/vdc/healthCheck"),
        "404",
        "no Wallet route on the staff listener"
    );
    assert_eq!(
        status(wallet, "/v1/vdc/healthCheck"),
        "405",
        "the Wallet route, called with GET"
    );
}
