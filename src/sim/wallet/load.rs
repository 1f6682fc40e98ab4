//! Support for `scripts/load`: seeding N credentials through the real Wallet flow (so that the
//! rows are exactly what production would hold), writing the request bodies the load generator
//! replays, and measuring the raw signing ceiling of this machine.
//!
//! Each seeded credential costs: a record (admin API), a registered device, a proofing approved by
//! staff, and a provisioned copy; the first `with_msos` also prove their copy, so that MSO
//! refreshes (10 auth keys each) can be replayed against them.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::android::Device;
use super::client::{AdminClient, WalletClient};
use super::flow::{sample_holder, MDL};
use crate::pki::{fast_signer, Signer, SoftwareSigner};
use crate::protocol::wallet as wire;

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Credentials to create.
    pub count: usize,
    /// Of which this many get a proven copy (for MSO refreshes).
    pub with_msos: usize,
    /// Auth keys per replayed MSO request.
    pub auth_keys: usize,
    /// Flows in flight at once.
    pub concurrency: usize,
}

/// The bodies of one seeded credential.
struct Seeded {
    status: Value,
    provision: Value,
    msos: Option<Value>,
}

fn metadata(body: &mut Value, n: usize) {
    body["requestMetadata"] = json!({
        "requestId": format!("load-{n}"),
        "version": { "major": 0, "minor": 1 },
        "issuerId": "brevet-load",
    });
}

async fn seed_one(
    wallet: &WalletClient,
    admin: &AdminClient,
    n: usize,
    proven: bool,
    auth_keys: usize,
    identity_certs: &[x509_cert::Certificate],
) -> Result<Seeded, String> {
    let device_ref = format!("load-device-{n}-{}", uuid::Uuid::new_v4().simple());
    let mut device = Device::new(&device_ref, MDL);
    let mut holder = sample_holder();
    holder["org.iso.18013.5.1"]["document_number"] = json!(format!("LOAD-{n:07}"));
    let (record_id, _) = admin.create_record(MDL, &holder).await?;
    let body = |extra: Value| {
        let mut body = json!({ "deviceReferenceId": device_ref });
        if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), extra) {
            map.extend(extra);
        }
        body
    };
    let nonce = wallet
        .call("getDeviceRegistrationNonce", body(json!({})))
        .await
        .map_err(|e| e.to_string())?;
    let nonce = wire::decode(nonce["nonce"].as_str().unwrap_or_default()).ok_or("bad nonce")?;
    let chain = device.attestation_chain(&nonce, &Default::default());
    wallet
        .call(
            "registerDevice",
            body(json!({ "deviceIdentityCertificateChain": chain })),
        )
        .await
        .map_err(|e| e.to_string())?;
    let proofing_id = format!("load-proofing-{n}-{}", uuid::Uuid::new_v4().simple());
    wallet
        .call(
            "proofUser",
            body(
                json!({ "proofingId": proofing_id, "evidence": [{ "preAuthorizedCode": "load" }] }),
            ),
        )
        .await
        .map_err(|e| e.to_string())?;
    admin
        .send(
            Method::POST,
            &format!("/proofings/{proofing_id}/review"),
            Some(&json!({ "decision": "approve", "credentialId": record_id })),
            None,
        )
        .await?;
    let credential_id = format!("load-credential-{n}-{}", uuid::Uuid::new_v4().simple());
    let key = device.encryption_key();
    let mut provision = body(json!({
        "credentialId": credential_id, "proofingId": proofing_id, "deviceEncryptionKey": key.wire,
    }));
    let answer = wallet
        .call("provisionCredential", provision.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut status = body(json!({ "credentialId": credential_id }));
    metadata(&mut status, n);
    metadata(&mut provision, n);
    let mut msos = None;
    if proven {
        let version = answer["credentialVersionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The device must hold the data to prove it: decrypt with the ephemeral key.
        let data: wire::EncryptedData =
            serde_json::from_value(answer["credential"]["encryptedData"].clone())
                .map_err(|e| e.to_string())?;
        let payload = device.open(&key, "Credential", &data, identity_certs)?;
        let proof = device.store(&payload)?;
        let keys = device.auth_keys(1);
        let first = body(json!({
            "credentialId": credential_id, "credentialVersionId": version,
            "authKeys": [keys[0].1], "proofOfProvisioning": proof,
            "deviceEncryptionKey": device.encryption_key().wire,
        }));
        wallet
            .call("provisionMobileSecurityObjects", first)
            .await
            .map_err(|e| e.to_string())?;
        let refresh_keys = device.auth_keys(auth_keys);
        let mut refresh = body(json!({
            "credentialId": credential_id, "credentialVersionId": version,
            "authKeys": refresh_keys.iter().map(|(_, k)| k).collect::<Vec<_>>(),
            "deviceEncryptionKey": device.encryption_key().wire,
        }));
        metadata(&mut refresh, n);
        msos = Some(refresh);
    }
    Ok(Seeded {
        status,
        provision,
        msos,
    })
}

/// Seeds `options.count` credentials and writes `status.jsonl`, `provision.jsonl` and
/// `msos.jsonl` (one request body per line) into `out`. A running count is drawn on a terminal;
/// `summary` gets one line at the end.
pub async fn seed(
    wallet: WalletClient,
    admin: AdminClient,
    options: &SeedOptions,
    out: &Path,
    summary: &mut dyn Write,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let open = |name: &str| {
        std::fs::File::create(out.join(name))
            .map(std::io::BufWriter::new)
            .map_err(|e| format!("{name}: {e}"))
    };
    let (mut status, mut provision, mut msos) = (
        open("status.jsonl")?,
        open("provision.jsonl")?,
        open("msos.jsonl")?,
    );
    // The issuer's identity certificates, fetched once: every proven copy checks its answer
    // against them.
    let identity = wallet
        .call_empty("getIdentityKey")
        .await
        .map_err(|e| e.to_string())?;
    let identity_certs: Arc<[x509_cert::Certificate]> = identity["issuerIdentityCertificate"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| wire::decode(c.as_str()?))
        .filter_map(|der| <x509_cert::Certificate as x509_cert::der::Decode>::from_der(&der).ok())
        .collect();
    let limit = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut counter = crate::progress::Counter::new("credentials", options.count as u64);
    let mut done = 0usize;
    let mut next = 0usize;
    let write = |seeded: Seeded,
                 status: &mut dyn Write,
                 provision: &mut dyn Write,
                 msos: &mut dyn Write|
     -> std::io::Result<()> {
        writeln!(status, "{}", seeded.status)?;
        writeln!(provision, "{}", seeded.provision)?;
        if let Some(body) = seeded.msos {
            writeln!(msos, "{body}")?;
        }
        Ok(())
    };
    while done < options.count {
        while next < options.count && tasks.len() < options.concurrency.max(1) {
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let (wallet, admin) = (wallet.clone(), admin.clone());
            let identity_certs = identity_certs.clone();
            let (n, proven, keys) = (next, next < options.with_msos, options.auth_keys);
            tasks.spawn(async move {
                let result = seed_one(&wallet, &admin, n, proven, keys, &identity_certs).await;
                drop(permit);
                result
            });
            next += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let seeded = joined.map_err(|e| e.to_string())??;
        write(seeded, &mut status, &mut provision, &mut msos).map_err(|e| e.to_string())?;
        done += 1;
        counter.tick();
    }
    counter.finish();
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
    let _ = writeln!(
        summary,
        "seeded {done}/{} ({rate:.0} credentials/s)",
        options.count
    );
    for mut file in [status, provision, msos] {
        file.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Raw ES256 signatures per second of the signer Brevet uses (ring when built with it), on
/// `threads` threads for `duration`; returns (total per second, per thread).
pub fn sign_rate(threads: usize, duration: Duration) -> (f64, f64) {
    let message = [0x5au8; 200];
    let threads = threads.max(1);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let key = SoftwareSigner::generate();
                let signer: Box<dyn Signer> = fast_signer(&key).unwrap_or_else(|_| Box::new(key));
                let mut count = 0u64;
                let until = Instant::now() + duration;
                while Instant::now() < until {
                    for _ in 0..64 {
                        let _ = signer.sign(&message);
                    }
                    count += 64;
                }
                count
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let per_second = total as f64 / started.elapsed().as_secs_f64();
    (per_second, per_second / threads as f64)
}

/// Composite MSO ceiling: per MSO, the work provisionMobileSecurityObjects cannot avoid, with the
/// server's own code and signer — the auth-key certificate's signature checked, the MSO issued
/// and signed by a DS, its static auth data sealed to the device (HPKE) and the sealed value
/// signed by the identity key — on `threads` threads for `duration`; returns MSOs per second
/// (total, per thread).
pub fn mso_rate(threads: usize, duration: Duration) -> Result<(f64, f64), String> {
    use crate::mdoc::issue::{self, DocumentSigner, Validity};
    use crate::pki::certs::{self, CertTemplate};
    let threads = threads.max(1);
    let values = crate::mdoc::doctype::DocTypes::builtin()
        .validate(MDL, &sample_holder())
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let values = values.clone();
            std::thread::spawn(move || -> Result<u64, String> {
                let err = |e: &dyn std::fmt::Display| e.to_string();
                let software = SoftwareSigner::generate();
                let ds_signer = fast_signer(&software).map_err(|e| err(&e))?;
                let identity_key = SoftwareSigner::generate();
                let identity = fast_signer(&identity_key).map_err(|e| err(&e))?;
                let device_identity = SoftwareSigner::generate();
                let device_hpke = crate::pki::hpke::HpkePrivateKey::generate().public_bytes();
                let template = |public: p256::ecdsa::VerifyingKey, ca: bool| CertTemplate {
                    subject: "CN=Brevet MSO ceiling,C=XX".into(),
                    issuer: None,
                    serial: None,
                    not_before: std::time::SystemTime::now() - Duration::from_secs(60),
                    lifetime: Duration::from_secs(365 * 86_400),
                    public_key: public.into(),
                    ca,
                    extensions: Vec::new(),
                };
                let ds_cert =
                    certs::issue_certificate(&template(software.verifying_key(), false), &software)
                        .map_err(|e| err(&e))?;
                let auth_key = SoftwareSigner::generate();
                let auth_cert = certs::issue_certificate(
                    &template(auth_key.verifying_key(), false),
                    &device_identity,
                )
                .map_err(|e| err(&e))?;
                let ds = DocumentSigner {
                    signer: ds_signer.as_ref(),
                    certificate: &ds_cert,
                };
                let now = chrono::Utc::now();
                let validity = Validity {
                    signed: now,
                    valid_from: now,
                    valid_until: now + chrono::Duration::days(30),
                    expected_update: None,
                };
                let context = crate::pki::hpke::HpkeContext {
                    info: b"MobileSecurityObject",
                    aad: b"",
                };
                let mut count = 0u64;
                let until = Instant::now() + duration;
                while Instant::now() < until {
                    certs::check_signature(&auth_cert, &device_identity.verifying_key())
                        .map_err(|e| err(&e))?;
                    let mso = issue::issue(&values, &auth_key.verifying_key(), validity, &ds)
                        .map_err(|e| err(&e))?;
                    let plaintext = crate::mdoc::cbor::to_vec(&mso.static_auth_data());
                    let sealed = crate::pki::hpke::seal(&device_hpke, context, &plaintext)
                        .map_err(|e| err(&e))?;
                    let digest = crate::mdoc::android::sha256_concat(&plaintext, &device_hpke);
                    crate::mdoc::android::sign1(digest.to_vec(), identity.as_ref())
                        .map_err(|e| err(&e))?;
                    std::hint::black_box(sealed);
                    count += 1;
                }
                Ok(count)
            })
        })
        .collect();
    let mut total = 0u64;
    for handle in handles {
        total += handle
            .join()
            .map_err(|_| "a measuring thread panicked".to_owned())??;
    }
    let per_second = total as f64 / started.elapsed().as_secs_f64();
    Ok((per_second, per_second / threads as f64))
}
