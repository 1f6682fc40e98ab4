//! Expiry of the certificates in use: seconds-to-expiry gauges, `/readyz` once no valid DS or
//! identity key is left, a warning at start as a threshold is crossed, `keys show` flagging.

use std::time::Duration;

use axum::http::StatusCode;

use crate::support::process::{brevet, Server};
use crate::support::TestDb;

both_stores! {
    async fn expiry_is_exported_and_judged_by_readiness(db: TestDb) {
        let config = db.config();
        crate::support::keys::init(
            &config.effective_keys_dir(),
            "Expiry",
            brevet::pki::keystore::Lifetimes { iaca: Duration::from_secs(3650 * 86_400), ds: Duration::from_secs(90 * 86_400) },
        );
        let wallet = brevet::service::WalletContext::load(&config, &[]).unwrap();
        let watched = brevet::pki::expiry::in_use(&config, &wallet);
        let roles: Vec<(&str, &str)> = watched.iter().map(|w| (w.role, w.id.as_str())).collect();
        assert_eq!(roles, [("iaca", "iaca"), ("ds", "0001"), ("status-list", "0001"), ("identity", "0001"), ("hybrid", "0001")]);
        let store = db.store().await;
        let app_at = |clock: brevet::clock::Clock| {
            let wallet = brevet::service::WalletContext::load(&config, &[]).unwrap();
            let router = brevet::http::build_app(
                brevet::http::AppState::new(store.clone(), &config)
                    .with_wallet(wallet)
                    .with_watched_certificates(watched.clone())
                    .with_clock(clock),
                brevet::http::Limits::from_config(&config),
            );
            crate::support::http::TestApp { router, store: store.clone() }
        };
        let now = chrono::Utc::now();
        let app = app_at(brevet::clock::Clock::manual(now));
        let text = app.get("/metrics", None).await.text();
        let ds_left: i64 = text.lines()
            .find_map(|l| l.strip_prefix(r#"brevet_certificate_expiry_seconds{role="ds",id="0001"} "#))
            .unwrap_or_else(|| panic!("no DS gauge in\n{text}"))
            .parse().unwrap();
        assert!((89 * 86_400..=90 * 86_400).contains(&ds_left), "{ds_left}");
        assert!(text.contains(r#"brevet_certificate_expiry_seconds{role="iaca",id="iaca"} "#));
        assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);

        // A hundred days on, the DS has expired: not ready, and the gauge is negative.
        let later = app_at(brevet::clock::Clock::manual(now + chrono::Duration::days(100)));
        let ready = later.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        let mdoc = &ready.json()["checks"][2];
        assert_eq!(mdoc["name"], "mdoc_keys");
        assert!(mdoc["detail"].as_str().unwrap().starts_with("document signer 0001 is not valid now"), "{mdoc}");
        let text = later.get("/metrics", None).await.text();
        assert!(text.lines().any(|l| l.starts_with(r#"brevet_certificate_expiry_seconds{role="ds",id="0001"} -"#)), "{text}");

        // Years on, the identity key too.
        let much_later = app_at(brevet::clock::Clock::manual(now + chrono::Duration::days(3000)));
        let wallet_check = &much_later.get("/readyz", None).await.json()["checks"][3];
        assert_eq!(wallet_check["ok"], false, "{wallet_check}");
        assert!(wallet_check["detail"].as_str().unwrap().contains("has expired: run `brevet keys rotate-"), "{wallet_check}");
    }
}

#[test]
fn serve_warns_of_a_certificate_near_expiry_and_keys_show_flags_it() {
    let dir = tempfile::tempdir().unwrap();
    let init = brevet(dir.path())
        .args([
            "keys",
            "init",
            "--country",
            "XX",
            "--iaca-name",
            "Soon IACA",
            "--contact",
            "https://issuer.example",
            "--ds-days",
            "10",
        ])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let show = brevet(dir.path()).args(["keys", "show"]).output().unwrap();
    let shown = String::from_utf8(show.stdout).unwrap();
    assert!(
        shown.contains("(EXPIRES SOON: in 9 days; rotate it (docs/KEYS.md))"),
        "{shown}"
    );
    assert!(shown.contains("IACA: CN=Soon IACA,C=XX"), "{shown}");
    let mut server = Server::start(brevet(dir.path()));
    // Said as the server starts: among the lines read while starting, or just after.
    let wanted = |l: &serde_json::Value| {
        l["message"] == "certificate expires soon; rotate it (docs/KEYS.md)"
    };
    let seen = server
        .log
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| wanted(l));
    let warning = match seen {
        Some(warning) => warning,
        None => server.wait_for_log(wanted),
    };
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["certificate.role"], "ds");
    assert_eq!(warning["days_left"], 9);
    assert_eq!(warning["threshold_days"], 30);
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}
