//! `brevet sim wallet`: Google's servers and an Android device, against a running Brevet.

pub mod client;
pub mod device;
pub mod flow;
pub mod load;

use std::time::{Duration, SystemTime};

use crate::pki::certs::{self, CertTemplate};
use crate::pki::{Signer, SoftwareSigner};

/// The simulator's attestation root: a fixed key (checked in, for tests and demos only) and a
/// certificate made from it deterministically (RFC 6979 signatures, fixed serial and validity),
/// so that a server can trust it by fingerprint (`wallet.attestation.trust_simulator_root`).
pub fn attestation_root() -> (SoftwareSigner, x509_cert::Certificate) {
    let key = SoftwareSigner::from_pkcs8_pem(include_str!("attestation_root.key.pem"))
        .expect("the simulator's root key is a valid P-256 key");
    let template = CertTemplate {
        subject: "CN=Brevet simulator attestation root - NOT GOOGLE,O=Brevet".into(),
        issuer: None,
        serial: Some(vec![0x01]),
        not_before: SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600), // 2025-01-01
        lifetime: Duration::from_secs(20 * 365 * 86_400),
        public_key: key.verifying_key().into(),
        ca: true,
        extensions: Vec::new(),
    };
    let cert = certs::issue_certificate(&template, &key)
        .expect("the simulator's root certificate can be built");
    (key, cert)
}
