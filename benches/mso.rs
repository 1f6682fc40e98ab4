//! MSOs issued per second on one core for an mDL of 22 elements, next to the raw ES256 signing
//! rate of the same signer, in the same run. `cargo bench --bench mso` prints criterion's figures
//! and then a summary line with both rates and their ratio.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops loudly on a broken setup"
)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use brevet::mdoc::doctype::{DocTypes, MDL_DOC_TYPE};
use brevet::mdoc::issue::{self, DocumentSigner, Validity};
use brevet::pki::certs::{self, Authority};
use brevet::pki::{Signer, SoftwareSigner};
use chrono::Utc;
use criterion::{criterion_group, Criterion};
use serde_json::json;

struct Setup {
    ds_key: SoftwareSigner,
    fast: Box<dyn Signer>,
    ds: x509_cert::Certificate,
    values: brevet::mdoc::doctype::ElementValues,
    device: SoftwareSigner,
    to_be_signed: Vec<u8>,
}

/// A DS certificate for `ds_key` under a fresh IACA.
fn ds_certificate(ds_key: &p256::ecdsa::VerifyingKey, name: &str) -> x509_cert::Certificate {
    let authority = Authority {
        country: "US".into(),
        state: None,
        iaca_common_name: "Bench IACA".into(),
        contact: "bench@example.com".into(),
        crl_url: None,
    };
    let now = SystemTime::now() - Duration::from_secs(60);
    let iaca_key = SoftwareSigner::generate();
    let iaca = certs::issue_iaca(
        &iaca_key,
        &authority,
        now,
        Duration::from_secs(3650 * 86_400),
    )
    .unwrap();
    certs::issue_ds(
        &iaca_key,
        &iaca,
        &authority,
        name,
        ds_key,
        now,
        Duration::from_secs(365 * 86_400),
    )
    .unwrap()
}

fn setup() -> Setup {
    let ds_key = SoftwareSigner::generate();
    let ds = ds_certificate(&ds_key.verifying_key(), "Bench DS");
    let holder = json!({ "org.iso.18013.5.1": {
        "family_name": "Doe", "given_name": "Jane", "birth_date": "1990-05-17",
        "issue_date": "2024-01-02", "expiry_date": "2029-01-02", "issuing_country": "US",
        "issuing_authority": "Utopia DMV", "document_number": "D1234567",
        "portrait": base64_portrait(), "un_distinguishing_sign": "USA",
        "driving_privileges": [{ "vehicle_category_code": "B", "issue_date": "2024-01-02" }],
        "sex": 2, "height": 170, "weight": 65, "eye_colour": "brown", "hair_colour": "black",
        "birth_place": "Utopia City", "resident_address": "1 Main St", "age_in_years": 35,
        "age_birth_year": 1990, "age_over_18": true, "age_over_21": true,
    }});
    let values = DocTypes::builtin().validate(MDL_DOC_TYPE, &holder).unwrap();
    assert_eq!(values.len(), 22);
    let device = SoftwareSigner::generate();
    let to_be_signed = issue::prepare(&values, &device.verifying_key(), validity(), &ds)
        .unwrap()
        .to_be_signed();
    let fast = brevet::pki::fast_signer(&ds_key).unwrap();
    Setup {
        ds_key,
        fast,
        ds,
        values,
        device,
        to_be_signed,
    }
}

/// A 4 KiB stand-in for a JPEG portrait, the usual size class.
fn base64_portrait() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(vec![0x5a; 4096])
}

fn validity() -> Validity {
    let now = Utc::now();
    Validity {
        signed: now,
        valid_from: now,
        valid_until: now + chrono::Duration::days(30),
        expected_update: None,
    }
}

fn issue_one(s: &Setup, signer: &dyn Signer) -> Vec<u8> {
    let ds = DocumentSigner {
        signer,
        certificate: &s.ds,
    };
    issue::issue(&s.values, &s.device.verifying_key(), validity(), &ds)
        .unwrap()
        .issuer_signed_bytes()
}

fn benches(c: &mut Criterion) {
    let s = setup();
    c.bench_function("es256_sign/p256 (MSO-sized message)", |b| {
        b.iter(|| s.ds_key.sign(black_box(&s.to_be_signed)).unwrap())
    });
    c.bench_function("es256_sign/fast (MSO-sized message)", |b| {
        b.iter(|| s.fast.sign(black_box(&s.to_be_signed)).unwrap())
    });
    c.bench_function("mso_issue_mdl_22_elements/p256", |b| {
        b.iter(|| black_box(issue_one(&s, &s.ds_key)))
    });
    c.bench_function("mso_issue_mdl_22_elements/fast", |b| {
        b.iter(|| black_box(issue_one(&s, s.fast.as_ref())))
    });
}

/// A DS key made in a fresh SoftHSM2 token, with its certificate from `s`'s IACA; `None` when
/// SoftHSM2 is not installed (`apt-get install softhsm2`).
fn softhsm_signer(dir: &std::path::Path) -> Option<(Box<dyn Signer>, x509_cert::Certificate)> {
    const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
    if !std::path::Path::new(MODULE).is_file() {
        return None;
    }
    let conf = dir.join("softhsm2.conf");
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    // Read by the module when it is initialised, which happens below, in this thread.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let status = std::process::Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?;
    assert!(status.success());
    let token = brevet::pki::pkcs11::Token::open(&brevet::pki::pkcs11::Pkcs11Config {
        module: MODULE.into(),
        token_label: "bench".into(),
        slot: None,
        pin_file: None,
        pin: Some("1234".to_owned().into()),
        sessions: 4,
    })
    .unwrap();
    let key = token.generate_p256("bench-ds").unwrap();
    let ds = ds_certificate(&key.verifying_key(), "Bench HSM DS");
    Some((Box::new(key), ds))
}

fn rate(duration: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn summary() {
    let mut s = setup();
    let tokens = std::env::temp_dir().join(format!("brevet-bench-softhsm-{}", std::process::id()));
    let hsm = softhsm_signer(&tokens);
    let mut signers: Vec<(&str, &dyn Signer)> = vec![
        ("p256", &s.ds_key as &dyn Signer),
        ("fast", s.fast.as_ref()),
    ];
    let hsm_ds;
    if let Some((signer, ds)) = &hsm {
        hsm_ds = ds.clone();
        signers.push(("softhsm", signer.as_ref()));
    } else {
        hsm_ds = s.ds.clone();
        println!("summary softhsm: skipped (SoftHSM2 is not installed)");
    }
    for (name, signer) in signers {
        // Each signer's MSOs carry its own DS certificate.
        s.ds = if name == "softhsm" {
            hsm_ds.clone()
        } else {
            s.ds.clone()
        };
        let sign = rate(Duration::from_secs(3), || {
            black_box(signer.sign(&s.to_be_signed).unwrap());
        });
        let mso = rate(Duration::from_secs(3), || {
            black_box(issue_one(&s, signer));
        });
        println!(
            "summary {name} (one core): raw ES256 sign {sign:.0}/s ({:.1} µs), MSO issuance {mso:.0}/s ({:.1} µs), ratio {:.2}",
            1e6 / sign,
            1e6 / mso,
            mso / sign
        );
    }
    let _ = std::fs::remove_dir_all(&tokens);
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
