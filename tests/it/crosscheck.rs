//! Brevet checked by independent implementations (Python, installed into target/pydeps on first
//! use): pymdoccbor (cbor2, pycose, cryptography) must accept our MSOs' signature, DS chain and
//! every element digest; pyhpke must open what our HPKE seals and seal what it opens; and
//! Android's formats read and written in Python from their definitions (android_formats.py:
//! pyasn1, cbor2, cryptography) must agree with both the server and the simulator's device.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::python::{install, ToolSet};

use brevet::mdoc::cbor;
use brevet::mdoc::doctype::{DocTypes, MDL_DOC_TYPE};
use brevet::pki::SoftwareSigner;
use ciborium::Value;

use crate::mdoc::{sample_mdl, TestIssuer};

/// The independent implementations the cross-checks run.
const TOOLS: ToolSet = ToolSet {
    folder: "pydeps",
    packages: &[
        "pymdoccbor==1.4.0",
        "pyhpke==0.6.2",
        "cbor2==6.3.0",
        "pyasn1==0.6.3",
    ],
    imports: "import pymdoccbor.mdoc.verifier, pyhpke, cbor2, pyasn1, cryptography",
};

fn pydeps() -> PathBuf {
    install(&TOOLS)
}

fn device_response(doc_type: &str, issuer_signed: Value) -> Vec<u8> {
    cbor::to_vec(&Value::Map(vec![
        (Value::Text("version".into()), Value::Text("1.0".into())),
        (
            Value::Text("documents".into()),
            Value::Array(vec![Value::Map(vec![
                (Value::Text("docType".into()), Value::Text(doc_type.into())),
                (Value::Text("issuerSigned".into()), issuer_signed),
            ])]),
        ),
        (Value::Text("status".into()), Value::Integer(0.into())),
    ]))
}

/// Runs `tests/crosscheck/<script>` with `args`, feeding `stdin`; returns its standard output.
pub fn python(script: &str, args: &[&std::ffi::OsStr], stdin: &str) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/crosscheck")
        .join(script);
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", pydeps())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn pymdoccbor_verdict(response: &[u8], iaca_pem: &Path) -> serde_json::Value {
    let out = python(
        "pymdoccbor_verify.py",
        &[iaca_pem.as_os_str()],
        &hex::encode(response),
    );
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn pymdoccbor_accepts_what_brevet_issues_and_rejects_a_forgery() {
    let issuer = TestIssuer::new();
    let dir = tempfile::tempdir().unwrap();
    let iaca_pem = dir.path().join("iaca.pem");
    std::fs::write(&iaca_pem, brevet::pki::certs::to_pem(&issuer.iaca).unwrap()).unwrap();
    let values = DocTypes::builtin()
        .validate(MDL_DOC_TYPE, &sample_mdl())
        .unwrap();
    let issued = issuer.issue(&values, &SoftwareSigner::generate());

    let verdict = pymdoccbor_verdict(
        &device_response(MDL_DOC_TYPE, issued.issuer_signed()),
        &iaca_pem,
    );
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["valid_documents"], 1);
    assert_eq!(verdict["hashes_valid"], serde_json::json!([true]));
    let claims = &verdict["claims"]["org.iso.18013.5.1"];
    assert_eq!(claims["family_name"], "Doe");
    assert_eq!(claims["birth_date"], "1990-05-17");
    assert_eq!(claims["portrait"], "ffd8ffe000104a464946");
    assert_eq!(claims["age_over_21"], "True");

    // The same check fails when one element value is swapped after signing.
    let mut forged = issued.clone();
    let item = &mut forged.items[0].1[0];
    *item = brevet::mdoc::item::IssuerSignedItem::with_salt(
        item.digest_id,
        item.random.clone(),
        &item.element_identifier,
        Value::Text("Mallory".into()),
    );
    let verdict = pymdoccbor_verdict(
        &device_response(MDL_DOC_TYPE, forged.issuer_signed()),
        &iaca_pem,
    );
    assert_eq!(verdict["valid"], false, "{verdict}");
}

fn pyhpke(mode: &str, key_hex: &str, info: &str, stdin: &str) -> String {
    let args: Vec<&std::ffi::OsStr> = [mode, key_hex, info, ""]
        .into_iter()
        .map(std::ffi::OsStr::new)
        .collect();
    String::from_utf8(python("hpke_crosscheck.py", &args, stdin))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn pyhpke_and_brevet_open_each_others_hpke() {
    use brevet::pki::hpke::{seal, HpkeContext, HpkePrivateKey};
    let context = HpkeContext {
        info: b"Credential",
        aad: b"",
    };
    let plaintext = b"an mdoc credential payload".to_vec();

    // Brevet seals to a device key; pyhpke opens it with the private key.
    let device = HpkePrivateKey::generate();
    let sealed = seal(&device.public_bytes(), context, &plaintext).unwrap();
    let input = serde_json::json!({ "enc": hex::encode(&sealed.encapsulated_key), "ct": hex::encode(&sealed.ciphertext) });
    let opened = pyhpke(
        "open",
        &hex::encode(device.secret().to_bytes()),
        "Credential",
        &input.to_string(),
    );
    assert_eq!(opened, hex::encode(&plaintext));

    // pyhpke seals to Brevet's hybrid key; Brevet opens it, and only with the right context.
    let issuer = HpkePrivateKey::generate();
    let out: serde_json::Value = serde_json::from_str(&pyhpke(
        "seal",
        &hex::encode(issuer.public_bytes()),
        "FrontOfLicense",
        &hex::encode(&plaintext),
    ))
    .unwrap();
    let enc = hex::decode(out["enc"].as_str().unwrap()).unwrap();
    let ct = hex::decode(out["ct"].as_str().unwrap()).unwrap();
    let front = HpkeContext {
        info: b"FrontOfLicense",
        aad: b"",
    };
    assert_eq!(issuer.open(front, &enc, &ct).unwrap(), plaintext);
    assert!(issuer.open(context, &enc, &ct).is_err());
}

/// The CSR the device's signature completes is one pyca/cryptography accepts: signature valid,
/// subject, email SAN and clientAuth as the profile says; a flipped signature bit is refused.
#[test]
fn pyca_cryptography_accepts_the_chrome_csr() {
    use brevet::certprov::config::ProfileConfig;
    use brevet::certprov::pop::DeviceKey;
    use brevet::certprov::profile::Profile;
    use brevet::certprov::wire::{ChromeOsUserSession, Process};
    use p256::pkcs8::EncodePublicKey;
    use rsa::signature::{SignatureEncoding, Signer};

    let profile = Profile::new(
        "user",
        ProfileConfig {
            subject: "CN={user.email},O=Brevet Test".into(),
            dns_names: vec![],
            emails: vec!["{user.email}".into()],
            uris: vec![],
            validity_days: 30,
            key_usages: vec!["digitalSignature".into()],
            extended_key_usages: vec!["clientAuth".into()],
        },
    )
    .unwrap();
    let process = Process {
        name: "customers/C1/certificateProvisioningProcesses/p1".into(),
        chrome_os_user_session: Some(ChromeOsUserSession {
            user_primary_email: Some("ada@example.com".into()),
            ..Default::default()
        }),
        ..Process::default()
    };
    let rendered = profile.render(&process).unwrap();
    let ec_key = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
    let rsa_key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    type Sign<'a> = Box<dyn Fn(&[u8]) -> Vec<u8> + 'a>;
    let cases: Vec<(Vec<u8>, Sign, &str)> = vec![
        (
            ec_key
                .verifying_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
            Box::new(|data| {
                let signature: p256::ecdsa::Signature = ec_key.sign(data);
                signature.to_der().as_bytes().to_vec()
            }),
            "ec-secp256r1",
        ),
        (
            rsa::pkcs8::EncodePublicKey::to_public_key_der(&rsa_key.to_public_key())
                .unwrap()
                .as_bytes()
                .to_vec(),
            Box::new(|data| {
                rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_key.clone())
                    .sign(data)
                    .to_vec()
            }),
            "rsa-2048",
        ),
    ];
    for (spki, sign, kind) in cases {
        let key = DeviceKey::parse(&spki).unwrap();
        let info = key.request_info(&rendered).unwrap();
        let signature = key.verify(&info, &sign(&info)).unwrap();
        let pem = brevet::certprov::pop::signed_request(&info, &signature)
            .unwrap()
            .csr_pem;
        let seen: serde_json::Value = serde_json::from_slice(&python("csr.py", &[], &pem)).unwrap();
        assert_eq!(
            seen,
            serde_json::json!({
                "valid": true,
                "subject": "CN=ada@example.com,O=Brevet Test",
                "emails": ["ada@example.com"],
                "eku": ["1.3.6.1.5.5.7.3.2"],
                "key": kind,
            })
        );
        let mut forged = signature.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let pem = brevet::certprov::pop::signed_request(&info, &forged)
            .unwrap()
            .csr_pem;
        let seen: serde_json::Value = serde_json::from_slice(&python("csr.py", &[], &pem)).unwrap();
        assert_eq!(
            seen["valid"], false,
            "{kind}: a forged signature must not verify"
        );
    }
}

mod android_formats {
    //! Android's formats between three implementations: the server's reader, the simulator
    //! device's writer, and tests/crosscheck/android_formats.py written from Android's
    //! definitions with pyasn1, cbor2 and pyca/cryptography.

    use std::time::{Duration, SystemTime};

    use brevet::mdoc::android as server;
    use brevet::mdoc::doctype::{DocTypes, MDL_DOC_TYPE};
    use brevet::pki::attestation::KeyDescription;
    use brevet::protocol::wallet as wire;
    use brevet::sim::wallet::android::identity_credential as device;
    use brevet::sim::wallet::android::{AttestationClaims, AttestationRoot, Device};
    use p256::ecdsa::SigningKey;
    use serde_json::{json, Value};
    use sha2::{Digest, Sha256};

    use super::python;
    use crate::mdoc::sample_mdl;

    fn run(args: &[&str], stdin: &str) -> Value {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        serde_json::from_slice(&python("android_formats.py", &args, stdin)).unwrap()
    }

    fn point(key: &p256::ecdsa::VerifyingKey) -> String {
        hex::encode(key.to_encoded_point(false).as_bytes())
    }

    use crate::support::fixtures::pem_chain;

    fn server_reading(der: &[u8]) -> Option<KeyDescription> {
        let cert = brevet::pki::certs::from_der(der).unwrap();
        brevet::pki::certs::raw_extension_value(
            &cert,
            brevet::pki::attestation::KEY_ATTESTATION_OID,
        )
        .map(|record| KeyDescription::from_der(record).unwrap())
    }

    #[test]
    fn the_devices_attestation_chain_reads_in_pyasn1_as_android_defines_it() {
        let device = Device::new("d", MDL_DOC_TYPE);
        let challenge = b"AAAAbbbbCCCCddddEEEEffffGGGGhhhh".to_vec();
        let claims = AttestationClaims {
            via_attest_key: true,
            ..Default::default()
        };
        let chain: Vec<Vec<u8>> = device
            .chain_under(&AttestationRoot::simulator(), &challenge, &claims)
            .iter()
            .map(|b| wire::decode(b).unwrap())
            .collect();
        assert_eq!(
            chain.len(),
            5,
            "leaf, attest key, batch CA, intermediate, root"
        );
        let hex_chain: Vec<String> = chain.iter().map(hex::encode).collect();
        let read = run(&["key-descriptions"], &json!(hex_chain).to_string());
        let leaf = &read[0];
        assert_eq!(leaf["attestationVersion"], 200);
        assert_eq!(leaf["securityLevel"], 1);
        assert_eq!(leaf["challenge"], hex::encode(&challenge));
        assert_eq!(leaf["hardwareEnforced"]["purposes"], json!([2]));
        assert_eq!(
            leaf["hardwareEnforced"]["rootOfTrust"],
            json!({ "deviceLocked": true, "verifiedBootState": 0 })
        );
        assert_eq!(leaf["hardwareEnforced"]["identityCredentialKey"], true);
        assert_eq!(
            leaf["softwareEnforced"]["packages"],
            json!(["com.google.android.gms"])
        );
        assert_eq!(
            read[1]["hardwareEnforced"]["purposes"],
            json!([7]),
            "the attest key"
        );
        assert_eq!(
            read.as_array().unwrap()[2..],
            [Value::Null, Value::Null, Value::Null],
            "CAs carry no attestation"
        );
        // The server's reading of the same leaf agrees.
        let record = server_reading(&chain[0]).unwrap();
        assert_eq!(record.attestation_challenge, challenge);
        assert!(record.hardware_enforced.identity_credential_key);
        assert_eq!(
            record.software_enforced.package_names,
            Some(vec!["com.google.android.gms".to_owned()])
        );
    }

    #[test]
    fn genuine_pixel_chains_read_the_same_in_python_and_in_brevet() {
        for file in ["pixel7pro_normal.pem", "pixel7pro_attest_keys.pem"] {
            let chain = pem_chain(file);
            let hex_chain: Vec<String> = chain.iter().map(hex::encode).collect();
            let read = run(&["key-descriptions"], &json!(hex_chain).to_string());
            for (der, python) in chain.iter().zip(read.as_array().unwrap()) {
                match server_reading(der) {
                    None => assert_eq!(python, &Value::Null, "{file}"),
                    Some(record) => {
                        assert_eq!(python["challenge"], hex::encode(b"challenge"), "{file}");
                        assert_eq!(
                            hex::encode(&record.attestation_challenge),
                            python["challenge"].as_str().unwrap()
                        );
                        assert_eq!(
                            record.attestation_security_level,
                            python["securityLevel"].as_i64().unwrap()
                        );
                        assert_eq!(
                            json!(record.hardware_enforced.purposes),
                            python["hardwareEnforced"]["purposes"],
                            "{file}"
                        );
                        assert_eq!(
                            python["softwareEnforced"]["packages"],
                            json!(["com.google.attestationexample"])
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_auth_key_certificate_made_by_pyca_as_android_writes_it_is_accepted() {
        let identity = SigningKey::random(&mut rand::rngs::OsRng);
        let pop = [0x42u8; 32];
        let made = run(
            &[
                "make-auth-key",
                &hex::encode(identity.to_bytes()),
                &hex::encode(pop),
            ],
            "",
        );
        let der = hex::decode(made["der"].as_str().unwrap()).unwrap();
        let skew = Duration::from_secs(300);
        let key = server::verify_auth_key_certificate(
            &der,
            identity.verifying_key(),
            Some(&pop),
            SystemTime::now(),
            skew,
        )
        .unwrap();
        assert_eq!(point(&key), made["auth_key"]);
        assert_eq!(
            server::verify_auth_key_certificate(
                &der,
                identity.verifying_key(),
                Some(&[0x43; 32]),
                SystemTime::now(),
                skew
            ),
            Err(server::ProofError::Mismatch(
                "the auth key is bound to another ProofOfProvisioning".into()
            ))
        );
    }

    #[test]
    fn python_reads_the_devices_auth_key_certificates_as_android_does() {
        let mut device = Device::new("d", MDL_DOC_TYPE);
        let values = DocTypes::builtin()
            .validate(MDL_DOC_TYPE, &sample_mdl())
            .unwrap();
        device.store(&server::credential_payload(&values)).unwrap();
        let (key, auth) = device.auth_keys(1).remove(0);
        let der = wire::decode(&auth.certificate).unwrap();
        let read = run(&["read-auth-key"], &hex::encode(der));
        assert_eq!(
            read,
            json!({
                "pop_sha256": hex::encode(device.pop_sha256.unwrap()),
                "critical": false,
                "issuer": "CN=Android Identity Credential Key",
                "subject": "CN=Android Identity Credential Authentication Key",
                "serial": 1,
                "days": 365,
                "auth_key": point(key.verifying_key()),
            })
        );
    }

    #[test]
    fn the_devices_proofs_verify_in_python() {
        let mut device = Device::new("d", MDL_DOC_TYPE);
        let identity = point(&device.identity_key());
        let ephemeral = device.encryption_key();
        let public = wire::decode(&ephemeral.wire.public_key).unwrap();
        let ownership = wire::decode(&ephemeral.wire.signature).unwrap();
        let read = run(&["verify-proof", &identity], &hex::encode(&ownership));
        assert_eq!(
            read,
            json!({
                "valid": true, "unprotected": 0, "tag": "ProofOfOwnership", "docType": MDL_DOC_TYPE,
                "challenge": hex::encode(Sha256::digest(&public)), "testCredential": false,
            })
        );
        // A signature by another key does not verify.
        let stranger = point(&Device::new("s", MDL_DOC_TYPE).identity_key());
        assert_eq!(
            run(&["verify-proof", &stranger], &hex::encode(&ownership))["valid"],
            false
        );

        let values = DocTypes::builtin()
            .validate(MDL_DOC_TYPE, &sample_mdl())
            .unwrap();
        let proof = device.store(&server::credential_payload(&values)).unwrap();
        let read = run(
            &["verify-proof", &identity],
            &hex::encode(wire::decode(&proof.signature).unwrap()),
        );
        assert_eq!(read["valid"], true);
        assert_eq!(read["tag"], "ProofOfProvisioning");
        assert_eq!(read["profiles"], json!([{ "id": 0 }]));
        assert_eq!(read["sha256"], hex::encode(device.pop_sha256.unwrap()));
        let entries = read["nameSpaces"]["org.iso.18013.5.1"].as_array().unwrap();
        let expected: Vec<Value> = values.namespaces[0]
            .1
            .iter()
            .map(|(name, value)| json!([name, hex::encode(brevet::mdoc::cbor::to_vec(value)), [0]]))
            .collect();
        assert_eq!(
            entries, &expected,
            "every element, in the order personalised, byte for byte"
        );
    }

    #[test]
    fn a_provisioning_proof_made_in_python_is_accepted_by_brevet() {
        let identity = SigningKey::random(&mut rand::rngs::OsRng);
        let values = DocTypes::builtin()
            .validate(MDL_DOC_TYPE, &sample_mdl())
            .unwrap();
        let request = json!({ "docType": MDL_DOC_TYPE, "nameSpaces": {
            "org.iso.18013.5.1": values.namespaces[0].1.iter()
                .map(|(name, value)| json!([name, hex::encode(brevet::mdoc::cbor::to_vec(value))]))
                .collect::<Vec<_>>() } });
        let cose = hex::decode(
            run(
                &["make-provisioning", &hex::encode(identity.to_bytes())],
                &request.to_string(),
            )
            .as_str()
            .unwrap(),
        )
        .unwrap();
        let proven = server::verify_provisioning(&cose, identity.verifying_key(), &values).unwrap();
        let read = run(
            &["verify-proof", &point(identity.verifying_key())],
            &hex::encode(&cose),
        );
        assert_eq!(hex::encode(proven.sha256), read["sha256"]);
        // Made for other data, it is refused.
        let mut other = values.clone();
        other.namespaces[0].1[0].1 = ciborium::Value::Text("Someone Else".into());
        assert!(server::verify_provisioning(&cose, identity.verifying_key(), &other).is_err());
    }

    #[test]
    fn python_reads_the_credential_payload_brevet_writes() {
        let values = DocTypes::builtin()
            .validate(MDL_DOC_TYPE, &sample_mdl())
            .unwrap();
        let read = run(
            &["credential-payload"],
            &hex::encode(server::credential_payload(&values)),
        );
        assert_eq!(read["docType"], MDL_DOC_TYPE);
        let elements = read["nameSpaces"]["org.iso.18013.5.1"].as_object().unwrap();
        assert_eq!(elements.len(), values.len());
        for (name, value) in &values.namespaces[0].1 {
            assert_eq!(
                elements[name],
                hex::encode(brevet::mdoc::cbor::to_vec(value)),
                "{name}"
            );
        }
        // And the device's own reading agrees with Python's.
        let (doc_type, data) =
            device::read_credential(&server::credential_payload(&values)).unwrap();
        assert_eq!(doc_type, MDL_DOC_TYPE);
        assert_eq!(data, values.namespaces);
    }
}
