//! Brevet → Google over mutual TLS: the fake Google accepts only clients whose certificate its
//! pinned CA issued, as Google does; Brevet checks Google's server certificate.

use brevet::config::GoogleConfig;
use brevet::google::{GoogleClient, Notifier, NotifyError};
use brevet::sim::google::{FakeGoogle, MutualTls};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

/// A leaf from `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("client"),
    );
    params.extended_key_usages = vec![purpose];
    (
        params.signed_by(&key, &ca.cert, &ca.key).unwrap().pem(),
        key.serialize_pem(),
    )
}

#[tokio::test]
async fn only_the_pinned_client_certificate_gets_through() {
    let google_ca = ca("Fake Google CA");
    let issuer_ca = ca("Issuer mTLS CA");
    let stranger_ca = ca("Somebody else");
    let (server_cert, server_key) = leaf(
        &google_ca,
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let issuer_ca_pem = issuer_ca.cert.pem();
    let tls = MutualTls {
        server_chain_pem: &server_cert,
        server_key_pem: &server_key,
        client_ca_pem: &issuer_ca_pem,
    };
    let google = FakeGoogle::start_mtls("Utopia_US_MDL", &tls).await.unwrap();
    assert!(google.base_url().starts_with("https://localhost:"));

    let dir = tempfile::tempdir().unwrap();
    let google_ca_path = dir.path().join("google-ca.pem");
    std::fs::write(&google_ca_path, google_ca.cert.pem()).unwrap();
    let client = |identity: Option<(String, String)>| {
        let identity_path = identity.map(|(cert, key)| {
            let path = dir
                .path()
                .join(format!("identity-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&path, format!("{cert}{key}")).unwrap();
            path
        });
        let config = GoogleConfig {
            base_url: Some(google.base_url()),
            issuer_id: Some("Utopia_US_MDL".into()),
            client_identity: identity_path,
            ca_certificate: Some(google_ca_path.clone()),
            timeout_secs: Some(5),
            api_version: None,
        };
        GoogleClient::from_config(&config).unwrap().unwrap()
    };

    let ours = client(Some(leaf(
        &issuer_ca,
        &["issuer.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    )));
    ours.notify_credential_status("dev-1", "cred-1")
        .await
        .unwrap();
    assert_eq!(google.accepted().len(), 1);

    for (who, identity) in [
        ("no client certificate", None),
        (
            "a certificate from another CA",
            Some(leaf(
                &stranger_ca,
                &["issuer.example"],
                ExtendedKeyUsagePurpose::ClientAuth,
            )),
        ),
    ] {
        let err = client(identity)
            .notify_credential_status("dev-1", "cred-1")
            .await
            .unwrap_err();
        assert!(matches!(err, NotifyError::Transient(_)), "{who}: {err:?}");
    }
    assert_eq!(
        google.received(),
        1,
        "refused clients never got a request through"
    );

    // Brevet refuses a server whose certificate it cannot verify.
    let config = GoogleConfig {
        base_url: Some(google.base_url()),
        issuer_id: Some("Utopia_US_MDL".into()),
        timeout_secs: Some(5),
        ..Default::default()
    };
    let untrusting = GoogleClient::from_config(&config).unwrap().unwrap();
    let err = untrusting
        .notify_credential_status("dev-1", "cred-1")
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Transient(_)), "{err:?}");
    assert_eq!(google.received(), 1);
}
