//! Brevet checked by independent implementations (Python, installed into target/pydeps on first
//! use): pymdoccbor (cbor2, pycose, cryptography) must accept our MSOs' signature, DS chain and
//! every element digest; pyhpke must open what our HPKE seals and seal what it opens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use brevet::mdoc::cbor;
use brevet::mdoc::doctype::{DocTypes, MDL_DOC_TYPE};
use brevet::pki::SoftwareSigner;
use ciborium::Value;

use crate::mdoc::{sample_mdl, TestIssuer};

const PACKAGES: [&str; 2] = ["pymdoccbor==1.4.0", "pyhpke==0.6.2"];

/// The Python packages' directory, installed once per test process (tests run in parallel).
fn pydeps() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(install_pydeps).clone()
}

fn install_pydeps() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pydeps");
    let importable = |dir: &Path| {
        Command::new("python3")
            .args(["-c", "import pymdoccbor.mdoc.verifier, pyhpke"])
            .env("PYTHONPATH", dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable(&dir) {
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--upgrade",
                "--target",
            ])
            .arg(&dir)
            .args(PACKAGES)
            .status()
            .expect("python3 with pip is needed for the cross-check");
        assert!(status.success(), "pip could not install {PACKAGES:?}");
        assert!(importable(&dir), "{PACKAGES:?} installed but do not import");
    }
    dir
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
fn python(script: &str, args: &[&std::ffi::OsStr], stdin: &str) -> Vec<u8> {
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
        let pem = key.csr_pem(&rendered, &signature).unwrap();
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
        let pem = key.csr_pem(&rendered, &forged).unwrap();
        let seen: serde_json::Value = serde_json::from_slice(&python("csr.py", &[], &pem)).unwrap();
        assert_eq!(
            seen["valid"], false,
            "{kind}: a forged signature must not verify"
        );
    }
}
