//! Attestation path validation (pki::chain, issue: forged device attestations): genuine published
//! Pixel chains are accepted, with and without attest keys; the published forgery and a corpus of
//! chains built by pyca/cryptography, each breaking one rule, are refused naming the rule.

use std::time::{Duration, SystemTime};

use brevet::pki::attestation::{self, AttestationPolicy};
use brevet::pki::certs;
use brevet::pki::chain::{Link, Rule};
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::crosscheck::python;
use crate::support::fixtures::pem_chain;

/// Inside every published chain's validity (its batch CAs live 2023-02-19 .. 2023-03-24).
fn published_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_678_406_400) // 2023-03-10T00:00:00Z
}

fn parse(ders: &[Vec<u8>]) -> Vec<Certificate> {
    ders.iter().map(|d| certs::from_der(d).unwrap()).collect()
}

fn anchor_of(chain: &[Vec<u8>]) -> [u8; 32] {
    Sha256::digest(chain.last().unwrap()).into()
}

#[test]
fn genuine_pixel_chains_are_accepted_with_and_without_attest_keys() {
    for (file, links) in [
        ("pixel7pro_normal.pem", vec![Link::Ca, Link::Ca, Link::Ca]),
        (
            "pixel7pro_attest_keys.pem",
            vec![
                Link::AttestKey,
                Link::AttestKey,
                Link::Ca,
                Link::Ca,
                Link::Ca,
            ],
        ),
    ] {
        let ders = pem_chain(file);
        let chain = parse(&ders);
        let found =
            attestation::verify_path(&chain, &[anchor_of(&ders)], published_time()).unwrap();
        assert_eq!(found, links, "{file}");
        // Outside the batch CA's validity it fails on validity, not on anything else.
        let later = published_time() + Duration::from_secs(365 * 86_400);
        let err = attestation::verify_path(&chain, &[anchor_of(&ders)], later).unwrap_err();
        assert_eq!(err.rule, Rule::Validity, "{file}: {err}");
    }
}

#[test]
fn the_published_forgery_is_refused_as_googles_verifier_refuses_it() {
    let ders = pem_chain("pixel7pro_fake_leaf.pem");
    let err =
        attestation::verify_path(&parse(&ders), &[anchor_of(&ders)], published_time()).unwrap_err();
    assert_eq!(err.rule, Rule::IssuerRole);
    assert!(err.to_string().contains("certificate 1 (CN=Android Keystore Key) carries the attestation of a key that is not an attest key (hardware-enforced purposes [2])"), "{err}");
}

/// A chain by name, leaf first, as DER.
pub type NamedChain = (String, Vec<Vec<u8>>);

/// The corpus: {"root": hex, "chains": {name: [hex]}} made by tests/crosscheck/android_formats.py.
pub fn forged(challenge: &[u8]) -> (Vec<u8>, Vec<NamedChain>) {
    let out: Value = serde_json::from_slice(&python(
        "android_formats.py",
        &[
            std::ffi::OsStr::new("forge-chains"),
            std::ffi::OsStr::new(&hex::encode(challenge)),
        ],
        "",
    ))
    .unwrap();
    let root = hex::decode(out["root"].as_str().unwrap()).unwrap();
    let chains = out["chains"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, certs)| {
            let ders = certs
                .as_array()
                .unwrap()
                .iter()
                .map(|c| hex::decode(c.as_str().unwrap()).unwrap())
                .collect();
            (name.clone(), ders)
        })
        .collect();
    (root, chains)
}

#[test]
fn every_rule_broken_once_is_refused_naming_it() {
    let challenge = b"forged-chain-challenge".to_vec();
    let (root, chains) = forged(&challenge);
    let policy = AttestationPolicy {
        anchors: vec![Sha256::digest(&root).into()],
        revoked_serials: Vec::new(),
        status_list: Default::default(),
        package_names: vec!["com.google.android.gms".into()],
    };
    let expected = [
        ("good", None),
        ("good_attest_key", None),
        (
            "ca_false",
            Some((Rule::IssuerRole, "its basicConstraints say cA is false")),
        ),
        (
            "no_basic_constraints",
            Some((Rule::IssuerRole, "has no basicConstraints")),
        ),
        (
            "issuer_mismatch",
            Some((Rule::NameChaining, "is not the subject of certificate 1")),
        ),
        (
            "no_key_cert_sign",
            Some((Rule::IssuerRole, "keyUsage lacks keyCertSign")),
        ),
        (
            "path_length",
            Some((
                Rule::PathLength,
                "allows 0 CA certificates below it, the chain has 1",
            )),
        ),
        (
            "expired_intermediate",
            Some((Rule::Validity, "certificate has expired")),
        ),
        ("bad_signature", Some((Rule::Signature, "does not verify"))),
        (
            "app_key",
            Some((
                Rule::IssuerRole,
                "not an attest key (hardware-enforced purposes [2])",
            )),
        ),
        (
            "attest_key_above_ca",
            Some((
                Rule::AttestKeyOrder,
                "is an attest key above a CA certificate",
            )),
        ),
        (
            "unknown_critical",
            Some((Rule::Extensions, "critical extension 1.3.6.1.4.1.99999.1")),
        ),
        (
            "untrusted_root",
            Some((Rule::TrustAnchor, "not a trusted attestation root")),
        ),
        (
            "leaf_is_ca",
            Some((Rule::Extensions, "the leaf is a CA certificate")),
        ),
    ];
    assert_eq!(
        chains.len(),
        expected.len(),
        "every forged chain has an expectation"
    );
    for (name, outcome) in expected {
        let ders = &chains.iter().find(|(n, _)| n == name).unwrap().1;
        let chain = parse(ders);
        let result = attestation::verify(
            &chain,
            std::slice::from_ref(&challenge),
            &policy,
            SystemTime::now(),
        );
        match outcome {
            None => {
                let key = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(Some(&key), certs::public_key(&chain[0]).ok().as_ref());
            }
            Some((rule, words)) => {
                let err = result.expect_err(name).to_string();
                assert!(
                    err.contains(words) && err.ends_with(&format!("(rule: {})", rule.name())),
                    "{name}: {err}"
                );
                let path = attestation::verify_path(&chain, &policy.anchors, SystemTime::now())
                    .unwrap_err();
                assert_eq!(path.rule, rule, "{name}");
            }
        }
    }
}
