//! The whole Wallet flow against a running issuer, step by step (spec/wallet-api.md §9): health,
//! keys, registration, proofing approved by staff, provisioning, MSOs for several auth keys (each
//! verified against the IACA), a refresh, the update flow of the seed (steps 1–12) and a
//! revocation. Every step is printed; the first failure ends the run.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};
use x509_cert::Certificate;

use super::android::identity_credential::Namespace;
use super::android::{status, Device, EphemeralKey};
use super::client::{AdminClient, CallError, IssuerEndpoint, WalletClient};
use crate::protocol::wallet::{self as wire, EncryptedData};

/// The mDL doc type.
pub const MDL: &str = "org.iso.18013.5.1.mDL";

/// What `brevet sim wallet` needs.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// The issuer.
    pub endpoint: IssuerEndpoint,
    /// An operator (or admin) token of the issuer's admin API.
    pub admin_token: String,
    /// Base URL of the issuer's admin API when it listens apart from the Wallet API.
    pub admin_url: Option<String>,
    /// The issuer's IACA certificate (PEM file).
    pub iaca_certificate: PathBuf,
    /// Auth keys per MSO request.
    pub auth_keys: usize,
    /// Proof the holder with a pre-authorized code instead of staff review.
    pub pre_authorized: bool,
}

/// The outcome: each step's name and result.
#[derive(Debug, Default)]
pub struct Report {
    /// Steps in order.
    pub steps: Vec<(String, Result<String, String>)>,
}

impl Report {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|(_, r)| r.is_ok())
    }
}

/// Sample holder data of the flow's licence.
pub fn sample_holder() -> Value {
    json!({ "org.iso.18013.5.1": {
        "family_name": "Mustermann", "given_name": "Erika", "birth_date": "1984-08-12",
        "issue_date": "2025-03-01", "expiry_date": "2030-03-01", "issuing_country": "US",
        "issuing_authority": "Brevet Simulator DMV", "document_number": "SIM-0001",
        "portrait": "/9j/4AAQSkZJRgABAQ==", "un_distinguishing_sign": "USA",
        "driving_privileges": [{ "vehicle_category_code": "B", "issue_date": "2025-03-01" }],
        "resident_address": "1 Simulation Way", "age_over_18": true, "age_over_21": true,
    }})
}

struct Run<'a> {
    report: Report,
    out: &'a mut dyn Write,
}

impl Run<'_> {
    async fn step<T>(
        &mut self,
        name: &str,
        work: impl Future<Output = Result<(T, String), String>>,
    ) -> Result<T, ()> {
        let result = work.await;
        let line = match &result {
            Ok((_, detail)) => format!("  ok    {name}: {detail}"),
            Err(error) => format!("  FAIL  {name}: {error}"),
        };
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
        match result {
            Ok((value, detail)) => {
                self.report.steps.push((name.to_owned(), Ok(detail)));
                Ok(value)
            }
            Err(error) => {
                self.report.steps.push((name.to_owned(), Err(error)));
                Err(())
            }
        }
    }
}

fn err(e: CallError) -> String {
    e.to_string()
}

fn expect_refusal(result: Result<Value, CallError>, member: &str) -> Result<((), String), String> {
    match result {
        Ok(_) => Err(format!("accepted; expected {member}")),
        Err(e) if e.member() == Some(member) => Ok(((), format!("refused with {member}"))),
        Err(e) => Err(format!("expected {member}, got {e}: {}", e.body)),
    }
}

fn certificates(list: &[Value]) -> Result<Vec<Certificate>, String> {
    use x509_cert::der::Decode;
    list.iter()
        .map(|v| {
            let der = wire::decode(v.as_str().unwrap_or_default()).ok_or("not base64")?;
            Certificate::from_der(&der).map_err(|e| e.to_string())
        })
        .collect()
}

/// Whether the elements a device personalised are the holder data staff entered, read the way a
/// person would check them: text and numbers as they are, `full-date` (tag 1004) and `tdate`
/// (tag 0) as their text, byte strings against the base64 in the record, arrays and maps member
/// by member. Returns the number of elements compared.
pub fn delivered_matches_holder(stored: &[Namespace], holder: &Value) -> Result<usize, String> {
    fn same(cbor: &ciborium::Value, json: &Value) -> bool {
        use base64::Engine;
        use ciborium::Value as C;
        match (cbor, json) {
            (C::Text(t), Value::String(s)) => t == s,
            (C::Tag(0 | 1004, inner), Value::String(s)) => {
                matches!(inner.as_ref(), C::Text(t) if t == s || t.trim_end_matches('Z') == s.trim_end_matches('Z'))
            }
            (C::Bytes(b), Value::String(s)) => wire::decode(s)
                .or_else(|| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .is_some_and(|d| &d == b),
            (C::Bool(a), Value::Bool(b)) => a == b,
            (C::Integer(i), Value::Number(n)) => {
                n.as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
                    == Some(i128::from(*i))
            }
            (C::Array(items), Value::Array(values)) => {
                items.len() == values.len() && items.iter().zip(values).all(|(c, j)| same(c, j))
            }
            (C::Map(entries), Value::Object(members)) => {
                entries.len() == members.len()
                    && entries.iter().all(|(k, v)| match k {
                        C::Text(name) => members.get(name).is_some_and(|j| same(v, j)),
                        _ => false,
                    })
            }
            _ => false,
        }
    }
    let expected = holder.as_object().ok_or("holder data is not an object")?;
    let mut compared = 0;
    for (ns, members) in expected {
        let members = members.as_object().ok_or("a namespace is not an object")?;
        let delivered = stored
            .iter()
            .find(|(name, _)| name == ns)
            .map(|(_, e)| e.as_slice())
            .unwrap_or_default();
        if delivered.len() != members.len() {
            return Err(format!(
                "{ns}: {} elements delivered, {} in the record",
                delivered.len(),
                members.len()
            ));
        }
        for (name, value) in members {
            let got = delivered
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| format!("{ns}/{name} was not delivered"))?;
            if !same(&got.1, value) {
                return Err(format!("{ns}/{name} was delivered with another value"));
            }
            compared += 1;
        }
    }
    Ok(compared)
}

/// Runs the flow, printing to `out`.
pub async fn run(options: &FlowOptions, out: &mut dyn Write) -> Report {
    let mut run = Run {
        report: Report::default(),
        out,
    };
    let _ = writeln!(run.out, "brevet sim wallet → {}", options.endpoint.base_url);
    let _ = flow(options, &mut run).await;
    let passed = run.report.steps.iter().filter(|(_, r)| r.is_ok()).count();
    let total = run.report.steps.len();
    let verdict = if run.report.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(run.out, "{verdict}: {passed} of {total} steps passed");
    run.report
}

struct Session {
    wallet: WalletClient,
    admin: AdminClient,
    identity_certs: Vec<Certificate>,
    iaca: Vec<Certificate>,
    device: Device,
    /// The status list entries (idx, uri) of every MSO received.
    entries: std::sync::Mutex<Vec<(u64, String)>>,
}

impl Session {
    fn body(&self, extra: Value) -> Value {
        let mut body = json!({ "deviceReferenceId": self.device.device_reference_id });
        if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), extra) {
            map.extend(extra);
        }
        body
    }

    async fn status(&self, credential_id: &str) -> Result<(String, String), String> {
        let answer = self
            .wallet
            .call(
                "getCredentialStatus",
                self.body(json!({ "credentialId": credential_id })),
            )
            .await
            .map_err(err)?;
        let status = answer["credentialStatus"]
            .as_object()
            .and_then(|m| m.keys().find(|k| *k != "userActionRequired").cloned())
            .ok_or("no status member")?;
        let version = answer["credentialVersionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok((status, version))
    }

    fn open(&self, key: &EphemeralKey, context: &str, data: &Value) -> Result<Vec<u8>, String> {
        let data: EncryptedData =
            serde_json::from_value(data.clone()).map_err(|e| format!("not EncryptedData: {e}"))?;
        self.device.open(key, context, &data, &self.identity_certs)
    }

    /// provisionCredential, decrypt, store; returns (version id, ProofOfProvisioning).
    async fn provision(
        &mut self,
        credential_id: &str,
        proofing_id: &str,
        expected: &Value,
    ) -> Result<((String, Value), String), String> {
        let key = self.device.encryption_key();
        let answer = self
            .wallet
            .call(
                "provisionCredential",
                self.body(json!({ "credentialId": credential_id, "proofingId": proofing_id, "deviceEncryptionKey": key.wire })),
            )
            .await
            .map_err(err)?;
        let context = self.device.contexts.credential.clone();
        let payload = self.open(&key, &context, &answer["credential"]["encryptedData"])?;
        let pop = self.device.store(&payload)?;
        let compared =
            delivered_matches_holder(self.device.stored.as_deref().unwrap_or_default(), expected)?;
        let version = answer["credentialVersionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok((
            (
                version.clone(),
                serde_json::to_value(pop).unwrap_or_default(),
            ),
            format!("{compared} elements, version {version}"),
        ))
    }

    /// provisionMobileSecurityObjects with `count` fresh auth keys; verifies every MSO.
    async fn msos(
        &self,
        credential_id: &str,
        version: &str,
        proof: Option<&Value>,
        count: usize,
    ) -> Result<((), String), String> {
        let keys = self.device.auth_keys(count);
        let key = self.device.encryption_key();
        let mut body = self.body(json!({
            "credentialId": credential_id,
            "credentialVersionId": version,
            "authKeys": keys.iter().map(|(_, k)| k).collect::<Vec<_>>(),
            "deviceEncryptionKey": key.wire,
        }));
        if let Some(proof) = proof {
            body["proofOfProvisioning"] = proof.clone();
        }
        let answer = self
            .wallet
            .call("provisionMobileSecurityObjects", body)
            .await
            .map_err(err)?;
        let msos = answer["mobileSecurityObjects"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if msos.len() != count {
            return Err(format!("{} MSOs for {count} auth keys", msos.len()));
        }
        let mut until = String::new();
        let mut statuses = Vec::new();
        let context = self.device.contexts.mobile_security_object.clone();
        for ((signer, sent), mso) in keys.iter().zip(&msos) {
            if mso["authKeyCertificate"].as_str() != Some(sent.certificate.as_str()) {
                return Err("an MSO names another auth key certificate".into());
            }
            let sad = self.open(&key, &context, &mso["encryptedData"])?;
            let reading = self
                .device
                .verify_mso(&sad, signer.verifying_key(), &self.iaca)?;
            until = reading.valid_until.to_rfc3339();
            // A verifier checks the entry the MSO names, as it would before trusting it.
            if let Some(status) = &reading.status {
                let (idx, uri) = status::reference(status)?;
                match status::check(self.wallet.http(), &uri, idx, &self.iaca).await? {
                    status::EntryStatus::Valid => {}
                    other => return Err(format!("{uri} entry {idx} says {other:?}")),
                }
                statuses.push(format!("{uri}#{idx}"));
                self.entries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((idx, uri));
            }
        }
        let status = if statuses.is_empty() {
            "no status list named".to_owned()
        } else {
            format!("status valid at {}", statuses.join(", "))
        };
        Ok((
            (),
            format!("{count} MSOs verified against the IACA, valid until {until}; {status}"),
        ))
    }

    /// Waits (up to 10 s: the issuer coalesces its tokens) until the status list says every
    /// MSO received is invalid.
    async fn all_entries_invalid(&self) -> Result<((), String), String> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if entries.is_empty() {
            return Ok(((), "the MSOs name no status list".into()));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        for (idx, uri) in &entries {
            loop {
                match status::check(self.wallet.http(), uri, *idx, &self.iaca).await? {
                    status::EntryStatus::Invalid => break,
                    other if std::time::Instant::now() > deadline => {
                        return Err(format!("{uri} entry {idx} still says {other:?}"))
                    }
                    _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
                }
            }
        }
        Ok(((), format!("{} MSOs' entries say invalid", entries.len())))
    }
}

async fn flow(options: &FlowOptions, run: &mut Run<'_>) -> Result<(), ()> {
    let wallet = WalletClient::new(options.endpoint.clone()).map_err(|e| {
        let _ = writeln!(run.out, "  FAIL  set-up: {e}");
        run.report.steps.push(("set-up".into(), Err(e)));
    })?;
    let admin = AdminClient::new(
        options
            .admin_url
            .as_deref()
            .unwrap_or(&options.endpoint.base_url),
        &options.admin_token,
        options.endpoint.ca_certificate.as_ref(),
    )
    .map_err(|_| ())?;
    let iaca = run
        .step("IACA certificate", async {
            let pem = std::fs::read_to_string(&options.iaca_certificate)
                .map_err(|e| format!("{}: {e}", options.iaca_certificate.display()))?;
            let cert = <Certificate as x509_cert::der::DecodePem>::from_pem(&pem)
                .map_err(|e| format!("not a PEM certificate: {e}"))?;
            let subject = cert.tbs_certificate.subject.to_string();
            Ok((vec![cert], subject))
        })
        .await?;

    run.step("healthCheck", async {
        let answer = wallet
            .call("healthCheck", json!({ "clientMessage": "brevet sim" }))
            .await
            .map_err(err)?;
        match answer["clientMessage"].as_str() {
            Some("brevet sim") => Ok(((), "clientMessage echoed".into())),
            _ => Err("clientMessage not echoed".into()),
        }
    })
    .await?;

    let identity_certs = run
        .step("getIdentityKey", async {
            let answer = wallet.call_empty("getIdentityKey").await.map_err(err)?;
            let list = answer["issuerIdentityCertificate"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let certs = certificates(&list)?;
            if certs.is_empty() {
                return Err("no identity certificate".into());
            }
            let n = certs.len();
            Ok((certs, format!("{n} certificate(s)")))
        })
        .await?;
    let hybrid = run
        .step("getHybridEncryptionKey", async {
            let answer = wallet
                .call_empty("getHybridEncryptionKey")
                .await
                .map_err(err)?;
            let cert = certificates(&[answer["issuerEncryptionCertificate"].clone()])?
                .pop()
                .ok_or("no certificate")?;
            let serial = hex::encode_upper(cert.tbs_certificate.serial_number.as_bytes());
            Ok((cert, format!("serial {serial}")))
        })
        .await?;

    let holder = sample_holder();
    let (record_id, etag) = run
        .step("staff create the holder record", async {
            let (id, etag) = admin.create_record(MDL, &holder).await?;
            let detail = format!("record {id}");
            Ok(((id, etag), detail))
        })
        .await?;

    let device_ref = format!("sim-device-{}", uuid::Uuid::new_v4());
    let mut session = Session {
        wallet: wallet.clone(),
        admin: admin.clone(),
        identity_certs,
        iaca,
        device: Device::new(&device_ref, MDL),
        entries: Default::default(),
    };

    let nonce = run
        .step("getDeviceRegistrationNonce", async {
            let answer = session
                .wallet
                .call("getDeviceRegistrationNonce", session.body(json!({})))
                .await
                .map_err(err)?;
            // Google relays the nonce string to the device, which passes its bytes to
            // getCredentialKeyCertificateChain(challenge): at most 32 (spec §4.4).
            let nonce = answer["nonce"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            if nonce.is_empty() || nonce.len() > 32 {
                return Err(format!(
                    "a nonce of {} bytes does not fit Android's 32",
                    nonce.len()
                ));
            }
            let n = nonce.len();
            Ok((
                nonce,
                format!("{n}-byte nonce as the attestation challenge"),
            ))
        })
        .await?;
    run.step("registerDevice", async {
        let chain = session
            .device
            .attestation_chain(&nonce, &Default::default());
        session
            .wallet
            .call(
                "registerDevice",
                session.body(json!({ "deviceIdentityCertificateChain": chain })),
            )
            .await
            .map_err(err)?;
        Ok(((), "attested identity key registered".into()))
    })
    .await?;

    let proofing_id = uuid::Uuid::new_v4().to_string();
    if options.pre_authorized {
        proof_with_code(run, &session, &proofing_id, &record_id).await?;
    } else {
        run.step("proofUser (encrypted document image)", async {
            let image = session.device.encrypt_to_issuer(&hybrid, "FrontOfLicense", b"\xff\xd8 simulated front of licence");
            session
                .wallet
                .call("proofUser", session.body(json!({ "proofingId": proofing_id, "evidence": [ { "frontOfLicenseImage": image } ] })))
                .await
                .map_err(err)?;
            Ok(((), format!("proofing {proofing_id} submitted")))
        })
        .await?;
        run.step(
            "getProofingStatus before review",
            proofing_is(&session, &proofing_id, "pending"),
        )
        .await?;
        run.step("staff approve the proofing", async {
            session
                .admin
                .send(
                    Method::POST,
                    &format!("/proofings/{proofing_id}/review"),
                    Some(&json!({ "decision": "approve", "credentialId": record_id })),
                    None,
                )
                .await?;
            Ok(((), "approved".into()))
        })
        .await?;
        run.step(
            "getProofingStatus after review",
            proofing_is(&session, &proofing_id, "accepted"),
        )
        .await?;
    }

    let credential_id = uuid::Uuid::new_v4().to_string();
    let (v1, pop1) = run
        .step(
            "provisionCredential",
            session.provision(&credential_id, &proofing_id, &holder),
        )
        .await?;
    run.step(
        "getCredentialStatus before MSOs",
        status_is(&session, &credential_id, "provisionPending", &v1),
    )
    .await?;
    run.step(
        "provisionMobileSecurityObjects with proof of provisioning",
        session.msos(&credential_id, &v1, Some(&pop1), options.auth_keys),
    )
    .await?;
    run.step(
        "getCredentialStatus after MSOs",
        status_is(&session, &credential_id, "active", &v1),
    )
    .await?;
    run.step(
        "MSO refresh without proof",
        session.msos(&credential_id, &v1, None, 2),
    )
    .await?;

    // The seed's update flow.
    let mut updated = holder.clone();
    updated["org.iso.18013.5.1"]["resident_address"] = json!("2 Updated Avenue");
    run.step("staff update the holder record", async {
        session
            .admin
            .send(
                Method::PATCH,
                &format!("/credentials/{record_id}"),
                Some(&json!({ "holderData": updated })),
                Some(&etag),
            )
            .await?;
        Ok(((), "resident_address changed".into()))
    })
    .await?;
    let v2 = run
        .step("getCredentialStatus after the update", async {
            let (status, version) = session.status(&credential_id).await?;
            if status != "provisionPending" || version == v1 {
                return Err(format!("{status} with version {version}"));
            }
            Ok((
                version.clone(),
                format!("provisionPending, new version {version}"),
            ))
        })
        .await?;
    run.step("MSOs for the stale version are refused", async {
        let keys = session.device.auth_keys(1);
        let result = session
            .wallet
            .call("provisionMobileSecurityObjects", session.body(json!({
                "credentialId": credential_id, "credentialVersionId": v1,
                "authKeys": [keys[0].1], "deviceEncryptionKey": session.device.encryption_key().wire })))
            .await;
        expect_refusal(result, "invalidState")
    })
    .await?;
    let (v2_served, pop2) = run
        .step(
            "provisionCredential of the new version",
            session.provision(&credential_id, &proofing_id, &updated),
        )
        .await?;
    run.step("the new version is the announced one", async {
        if v2_served == v2 {
            Ok(((), v2.clone()))
        } else {
            Err(format!("served {v2_served}, announced {v2}"))
        }
    })
    .await?;
    run.step(
        "provisionMobileSecurityObjects for the new version",
        session.msos(&credential_id, &v2, Some(&pop2), options.auth_keys),
    )
    .await?;
    run.step(
        "getCredentialStatus after the new MSOs",
        status_is(&session, &credential_id, "active", &v2),
    )
    .await?;

    // Revocation.
    run.step("staff revoke the credential", async {
        session
            .admin
            .send(
                Method::POST,
                &format!("/credentials/{record_id}/revoke"),
                Some(&json!({ "reason": "simulated revocation" })),
                None,
            )
            .await?;
        Ok(((), "revoked".into()))
    })
    .await?;
    run.step(
        "getCredentialStatus after revocation",
        status_is(&session, &credential_id, "revoked", &v2),
    )
    .await?;
    run.step(
        "the status list revokes every MSO issued",
        session.all_entries_invalid(),
    )
    .await?;
    run.step("no MSOs after revocation", async {
        let keys = session.device.auth_keys(1);
        let result = session
            .wallet
            .call("provisionMobileSecurityObjects", session.body(json!({
                "credentialId": credential_id, "credentialVersionId": v2,
                "authKeys": [keys[0].1], "deviceEncryptionKey": session.device.encryption_key().wire })))
            .await;
        expect_refusal(result, "invalidState")
    })
    .await?;
    run.step("notifyCredentialDeleted", async {
        session
            .wallet
            .call(
                "notifyCredentialDeleted",
                session.body(json!({ "credentialId": credential_id })),
            )
            .await
            .map_err(err)?;
        Ok(((), "acknowledged".into()))
    })
    .await?;
    run.step(
        "a revoked credential stays revoked",
        status_is(&session, &credential_id, "revoked", &v2),
    )
    .await?;
    Ok(())
}

/// Issuer-initiated proofing: staff hand out a pre-authorized code, the device presents it, and
/// the proofing is accepted without review.
async fn proof_with_code(
    run: &mut Run<'_>,
    session: &Session,
    proofing_id: &str,
    record_id: &str,
) -> Result<(), ()> {
    let code = run
        .step("staff issue a pre-authorized code", async {
            let (_, _, body) = session
                .admin
                .send(
                    Method::POST,
                    &format!("/credentials/{record_id}/pre-authorized-codes"),
                    Some(&json!({})),
                    None,
                )
                .await?;
            let code = body["code"].as_str().unwrap_or_default().to_owned();
            Ok((code, "one-time code issued".into()))
        })
        .await?;
    run.step("proofUser (pre-authorized code)", async {
        session
            .wallet
            .call(
                "proofUser",
                session.body(json!({ "proofingId": proofing_id, "evidence": [{ "preAuthorizedCode": code }] })),
            )
            .await
            .map_err(err)?;
        Ok(((), format!("proofing {proofing_id} submitted")))
    })
    .await?;
    run.step(
        "getProofingStatus: accepted without review",
        proofing_is(session, proofing_id, "accepted"),
    )
    .await
}

async fn proofing_is(
    session: &Session,
    proofing_id: &str,
    wanted: &str,
) -> Result<((), String), String> {
    let answer = session
        .wallet
        .call(
            "getProofingStatus",
            session.body(json!({ "proofingId": proofing_id })),
        )
        .await
        .map_err(err)?;
    if answer["proofingStatus"].get(wanted).is_some() {
        Ok(((), wanted.to_owned()))
    } else {
        Err(format!(
            "expected {wanted}, got {}",
            answer["proofingStatus"]
        ))
    }
}

async fn status_is(
    session: &Session,
    credential_id: &str,
    wanted: &str,
    version: &str,
) -> Result<((), String), String> {
    let (status, current) = session.status(credential_id).await?;
    if status == wanted && current == version {
        Ok(((), format!("{status}, version {current}")))
    } else {
        Err(format!(
            "expected {wanted} at {version}, got {status} at {current}"
        ))
    }
}
