//! The issuer-hosted Wallet methods (spec/wallet-api.md §4) method by method, with the simulator's
//! device making real keys, attestations, proofs and encryption, and every error case the spec
//! names answered with its ErrorResponse member and no change to the store.

use std::time::SystemTime;

use axum::http::StatusCode;
use brevet::config::{Config, Mode};
use brevet::http::{build_app, AppState, Limits};
use brevet::pki::certs;
use brevet::pki::keystore::{AuthorityFile, KeyStore, Lifetimes};
use brevet::pki::wallet_keys::WalletKeyKind;
use brevet::protocol::wallet as wire;
use brevet::service::WalletContext;
use brevet::sim::wallet::android::identity_credential as device_ic;
use brevet::sim::wallet::android::{AttestationClaims, AttestationRoot, Device, EphemeralKey};
use brevet::sim::wallet::flow::{sample_holder, MDL};
use p256::ecdsa::SigningKey;
use serde_json::{json, Value};
use x509_cert::Certificate;

use crate::support::http::{TestApp, TestResponse};
use crate::support::inspect::Inspect;
use crate::support::TestDb;

pub(crate) struct Harness {
    pub(crate) app: TestApp,
    pub(crate) token: String,
    pub(crate) keys: KeyStore,
    /// The served policy's attestation status list, for tests to fill.
    pub(crate) status_list: std::sync::Arc<brevet::pki::attestation_status::StatusList>,
    /// The use cases behind the router (for background work the tests run by hand).
    pub(crate) services: brevet::service::Services,
}

pub(crate) struct Provisioned {
    pub(crate) device: Device,
    pub(crate) record_id: String,
    pub(crate) proofing_id: String,
    pub(crate) credential_id: String,
    pub(crate) version: String,
    pub(crate) proof: Value,
}

fn keystore(dir: &std::path::Path) -> KeyStore {
    let keys = KeyStore::new(dir.join("keys"));
    if keys.is_initialised() {
        // A second harness in the same test shares the first one's keys.
        return keys;
    }
    keys.init(
        &AuthorityFile {
            country: "US".into(),
            state: None,
            iaca_common_name: "Test IACA".into(),
            ds_common_name: "Test DS".into(),
            contact: "https://dmv.example".into(),
            crl_url: None,
        },
        Lifetimes::default(),
    )
    .unwrap();
    keys
}

impl Harness {
    pub(crate) async fn new(db: &TestDb) -> Self {
        Self::with(db, |_| {}).await
    }

    pub(crate) async fn with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::with_wallet(db, tweak, |_| {}).await
    }

    pub(crate) async fn with_wallet(
        db: &TestDb,
        tweak: impl FnOnce(&mut Config),
        tweak_wallet: impl FnOnce(&mut WalletContext),
    ) -> Self {
        let keys = keystore(&db.dir);
        let mut config = db.config();
        config.keys_dir = Some(keys.dir().to_owned());
        config.mode = Some(Mode::Development);
        tweak(&mut config);
        let store = db.store().await;
        let mut wallet = WalletContext::load(
            &config,
            &brevet::commands::extra_attestation_anchors(&config),
        )
        .unwrap();
        tweak_wallet(&mut wallet);
        let status_list = wallet.attestation.status_list.clone();
        let state = AppState::new(store.clone(), &config).with_wallet(wallet);
        let services = state.services.clone();
        let router = build_app(state, Limits::from_config(&config));
        let app = TestApp { router, store };
        let token = app.admin_token().await;
        Self {
            app,
            token,
            keys,
            status_list,
            services,
        }
    }

    pub(crate) async fn call(&self, method: &str, mut body: Value) -> TestResponse {
        body["requestMetadata"] = json!({
            "requestId": format!("req-{method}"),
            "version": { "major": 0, "minor": 1 },
            "issuerId": "Test_Issuer",
        });
        self.app
            .post(&format!("/v1/vdc/{method}"), &body, None)
            .await
    }

    /// Calls and expects 200 with the request id echoed.
    pub(crate) async fn ok(&self, method: &str, body: Value) -> Value {
        let response = self.call(method, body).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{method}: {}",
            response.text()
        );
        let json = response.json();
        if !method.starts_with("get") || method.ends_with("Status") || method.ends_with("Nonce") {
            assert_eq!(
                json["responseMetadata"]["requestId"],
                format!("req-{method}")
            );
        }
        json
    }

    /// Calls and expects the ErrorResponse member `member` with `status`.
    pub(crate) async fn refused(
        &self,
        method: &str,
        body: Value,
        member: &str,
        status: StatusCode,
    ) -> String {
        let response = self.call(method, body).await;
        let json = response.json();
        assert_eq!(response.status, status, "{method}: {json}");
        assert!(
            json.get(member).is_some(),
            "{method}: expected {member}, got {json}"
        );
        assert_eq!(
            json["responseMetadata"]["requestId"],
            format!("req-{method}")
        );
        json["errorDescription"].as_str().unwrap().to_owned()
    }

    pub(crate) fn identity_certs(&self) -> Vec<Certificate> {
        self.keys
            .wallet_keys(SystemTime::now())
            .unwrap()
            .identity
            .into_iter()
            .map(|k| k.certificate)
            .collect()
    }

    pub(crate) fn hybrid_cert(&self) -> Certificate {
        self.keys
            .wallet_keys(SystemTime::now())
            .unwrap()
            .hybrid
            .pop()
            .unwrap()
            .certificate
    }

    pub(crate) async fn nonce(&self, device: &Device) -> Vec<u8> {
        let answer = self
            .ok(
                "getDeviceRegistrationNonce",
                json!({ "deviceReferenceId": device.device_reference_id }),
            )
            .await;
        wire::decode(answer["nonce"].as_str().unwrap()).unwrap()
    }

    pub(crate) async fn registered(&self, id: &str) -> Device {
        let device = Device::new(id, MDL);
        let nonce = self.nonce(&device).await;
        let chain = device.attestation_chain(&nonce, &AttestationClaims::default());
        self.ok(
            "registerDevice",
            json!({ "deviceReferenceId": id, "deviceIdentityCertificateChain": chain }),
        )
        .await;
        device
    }

    pub(crate) async fn record(&self) -> (String, String) {
        self.record_of(&sample_holder()).await
    }

    pub(crate) async fn record_of(&self, holder: &Value) -> (String, String) {
        let created = self
            .app
            .post(
                "/admin/v1/credentials",
                &json!({ "docType": MDL, "holderData": holder }),
                Some(&self.token),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let etag = created.headers["etag"].to_str().unwrap().to_owned();
        (
            created.json()["credentialId"].as_str().unwrap().to_owned(),
            etag,
        )
    }

    pub(crate) async fn proofing(&self, device: &Device, id: &str) {
        self.ok(
            "proofUser",
            json!({ "deviceReferenceId": device.device_reference_id, "proofingId": id,
                    "evidence": [{ "preAuthorizedCode": "code-1" }] }),
        )
        .await;
    }

    pub(crate) async fn approve(&self, proofing_id: &str, record_id: &str) {
        let review = self
            .app
            .post(
                &format!("/admin/v1/proofings/{proofing_id}/review"),
                &json!({ "decision": "approve", "credentialId": record_id }),
                Some(&self.token),
            )
            .await;
        assert_eq!(review.status, StatusCode::OK, "{}", review.text());
    }

    pub(crate) fn provision_body(
        &self,
        device: &Device,
        credential_id: &str,
        proofing_id: &str,
        key: &EphemeralKey,
    ) -> Value {
        json!({ "deviceReferenceId": device.device_reference_id, "credentialId": credential_id,
                "proofingId": proofing_id, "deviceEncryptionKey": key.wire })
    }

    /// A device with a registered key, an accepted proofing and a provisioned credential.
    pub(crate) async fn provisioned(&self, device_id: &str) -> Provisioned {
        self.provisioned_with(device_id, &sample_holder()).await
    }

    /// The same for a record with `holder` data.
    pub(crate) async fn provisioned_with(&self, device_id: &str, holder: &Value) -> Provisioned {
        let mut device = self.registered(device_id).await;
        let (record_id, _) = self.record_of(holder).await;
        let proofing_id = format!("proofing-{device_id}");
        self.proofing(&device, &proofing_id).await;
        self.approve(&proofing_id, &record_id).await;
        let credential_id = format!("credential-{device_id}");
        let key = device.encryption_key();
        let answer = self
            .ok(
                "provisionCredential",
                self.provision_body(&device, &credential_id, &proofing_id, &key),
            )
            .await;
        let data: wire::EncryptedData =
            serde_json::from_value(answer["credential"]["encryptedData"].clone()).unwrap();
        let payload = device
            .open(&key, "Credential", &data, &self.identity_certs())
            .unwrap();
        let proof = serde_json::to_value(device.store(&payload).unwrap()).unwrap();
        Provisioned {
            device,
            record_id,
            proofing_id,
            credential_id,
            version: answer["credentialVersionId"].as_str().unwrap().to_owned(),
            proof,
        }
    }

    pub(crate) fn msos_body(
        &self,
        p: &Provisioned,
        version: &str,
        proof: Option<&Value>,
        keys: usize,
    ) -> (Vec<SigningKey>, EphemeralKey, Value) {
        let auth = p.device.auth_keys(keys);
        let key = p.device.encryption_key();
        let mut body = json!({
            "deviceReferenceId": p.device.device_reference_id, "credentialId": p.credential_id,
            "credentialVersionId": version, "deviceEncryptionKey": key.wire,
            "authKeys": auth.iter().map(|(_, a)| a).collect::<Vec<_>>(),
        });
        if let Some(proof) = proof {
            body["proofOfProvisioning"] = proof.clone();
        }
        (auth.into_iter().map(|(s, _)| s).collect(), key, body)
    }

    pub(crate) async fn status(&self, p: &Provisioned) -> Value {
        self.ok(
            "getCredentialStatus",
            json!({ "deviceReferenceId": p.device.device_reference_id, "credentialId": p.credential_id }),
        )
        .await
    }

    pub(crate) fn iaca(&self) -> Vec<Certificate> {
        vec![self.keys.iaca_certificate().unwrap()]
    }
}

const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const CONFLICT: StatusCode = StatusCode::CONFLICT;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;

both_stores! {
    async fn key_methods_publish_every_unexpired_identity_certificate(db: TestDb) {
        let h = Harness::new(&db).await;
        let empty = h.app.post_raw("/v1/vdc/getIdentityKey", "", None).await;
        assert_eq!(empty.status, StatusCode::OK);
        let certs_now = empty.json()["issuerIdentityCertificate"].as_array().unwrap().clone();
        assert_eq!(certs_now.len(), 1);
        let der = wire::decode(certs_now[0].as_str().unwrap()).unwrap();
        assert_eq!(certs::from_der(&der).unwrap(), h.identity_certs()[0]);

        let hybrid = h.app.post_raw("/v1/vdc/getHybridEncryptionKey", "{}", None).await.json();
        let der = wire::decode(hybrid["issuerEncryptionCertificate"].as_str().unwrap()).unwrap();
        let hybrid_cert = certs::from_der(&der).unwrap();
        assert_eq!(hybrid_cert, h.hybrid_cert());
        // The hybrid certificate is issued by the identity key.
        certs::check_signature(&hybrid_cert, &certs::public_key(&h.identity_certs()[0]).unwrap()).unwrap();

        let garbage = h.app.post_raw("/v1/vdc/getIdentityKey", "[1,2]", None).await;
        assert_eq!(garbage.status, BAD_REQUEST);
        assert!(garbage.json().get("invalidFieldValue").is_some());

        // A rotation publishes both identity certificates; a server started after it signs with the new one.
        h.keys.rotate_wallet_key(WalletKeyKind::Identity).unwrap();
        let mut config = db.config();
        config.keys_dir = Some(h.keys.dir().to_owned());
        let rotated = build_app(
            AppState::new(h.app.store.clone(), &config).with_wallet(WalletContext::load(&config, &[]).unwrap()),
            Limits::from_config(&config),
        );
        let app = TestApp { router: rotated, store: h.app.store.clone() };
        let both = app.post_raw("/v1/vdc/getIdentityKey", "", None).await.json();
        assert_eq!(both["issuerIdentityCertificate"].as_array().unwrap().len(), 2);
    }

    async fn register_device_checks_the_attestation_and_changes_nothing_when_it_fails(db: TestDb) {
        let h = Harness::new(&db).await;
        let device = Device::new("dev-1", MDL);
        let id = json!("dev-1");
        let body = |chain: Vec<String>| json!({ "deviceReferenceId": id, "deviceIdentityCertificateChain": chain });

        // No nonce was ever issued.
        let chain = device.attestation_chain(&[1; 32], &AttestationClaims::default());
        h.refused("registerDevice", body(chain), "invalidIdentifier", NOT_FOUND).await;

        let nonce = h.nonce(&device).await;
        let bad_claims = [
            (AttestationClaims { device_locked: false, ..Default::default() }, "bootloader is unlocked"),
            (AttestationClaims { verified_boot_state: 2, ..Default::default() }, "verified image"),
            (AttestationClaims { package_name: "com.evil.app".into(), ..Default::default() }, "allowed Google packages"),
            (AttestationClaims { identity_credential_key: false, ..Default::default() }, "identity credential key"),
        ];
        for (claims, why) in bad_claims {
            let chain = device.attestation_chain(&nonce, &claims);
            let description = h.refused("registerDevice", body(chain), "invalidFieldValue", BAD_REQUEST).await;
            assert!(description.contains(why), "{description}");
        }
        let wrong_nonce = device.attestation_chain(&[9; 32], &AttestationClaims::default());
        let description = h.refused("registerDevice", body(wrong_nonce), "invalidFieldValue", BAD_REQUEST).await;
        assert!(description.contains("not the registration nonce"), "{description}");

        let untrusted = device.chain_under(&AttestationRoot::random(), &nonce, &AttestationClaims::default());
        let description = h.refused("registerDevice", body(untrusted), "invalidFieldValue", BAD_REQUEST).await;
        assert!(description.contains("trusted attestation root"), "{description}");

        let mut broken = device.attestation_chain(&nonce, &AttestationClaims::default());
        broken[0] = "not base64 !".into();
        h.refused("registerDevice", body(broken), "invalidFieldValue", BAD_REQUEST).await;
        h.refused("registerDevice", json!({ "deviceReferenceId": "dev-1" }), "missingRequiredField", BAD_REQUEST).await;

        let stored = h.app.store.get_device("dev-1").await.unwrap().unwrap();
        assert_eq!(stored.status.as_str(), "nonceIssued", "no failed attempt registered anything");
        assert_eq!(stored.registration_nonce.as_deref(), Some(&nonce[..]), "nor used the nonce");

        // Google's status list names the chain's intermediate: refused, nothing changes.
        let listed = device.attestation_chain(&nonce, &AttestationClaims::default());
        let intermediate = certs::from_der(&brevet::certprov::wire::decode_base64(&listed[1]).unwrap()).unwrap();
        let serial = certs::serial_hex(&intermediate).to_lowercase();
        h.status_list.load(json!({ "entries": { serial: { "status": "SUSPENDED", "reason": "KEY_COMPROMISE" } } }).to_string().as_bytes()).unwrap();
        let description = h.refused("registerDevice", body(listed), "invalidFieldValue", BAD_REQUEST).await;
        assert!(description.contains("certificate 1 of the chain is revoked or suspended"), "{description}");
        h.status_list.load(br#"{"entries": {}}"#).unwrap();

        // The good chain registers; the same call again (Google retries) is answered the same way.
        let chain = device.attestation_chain(&nonce, &AttestationClaims::default());
        h.ok("registerDevice", body(chain.clone())).await;
        h.ok("registerDevice", body(chain.clone())).await;
        let stored = h.app.store.get_device("dev-1").await.unwrap().unwrap();
        assert_eq!(stored.status.as_str(), "registered");
        assert_eq!(stored.registration_nonce, None, "the nonce is used up");

        // Another key for the same deviceReferenceId, even with a fresh nonce, is refused.
        let impostor = Device::new("dev-1", MDL);
        let nonce = h.nonce(&impostor).await;
        let chain = impostor.attestation_chain(&nonce, &AttestationClaims::default());
        h.refused("registerDevice", body(chain), "invalidState", CONFLICT).await;

        // An expired nonce is refused.
        let late = Device::new("dev-2", MDL);
        let dev2 = brevet::protocol::ids::DeviceReferenceId::parse("dev-2").unwrap();
        brevet::store::devices::issue_nonce(&mut h.app.store.db(), &dev2, &[5; 32], chrono::Utc::now() - chrono::Duration::seconds(1)).await.unwrap();
        let chain = late.attestation_chain(&[5; 32], &AttestationClaims::default());
        let description = h.refused("registerDevice", json!({ "deviceReferenceId": "dev-2", "deviceIdentityCertificateChain": chain }), "invalidIdentifier", NOT_FOUND).await;
        assert!(description.contains("expired"), "{description}");
    }

    async fn proof_user_opens_encrypted_evidence_and_is_idempotent(db: TestDb) {
        let h = Harness::new(&db).await;
        let device = h.registered("dev-p").await;
        let hybrid = h.hybrid_cert();
        let image = device.encrypt_to_issuer(&hybrid, "FrontOfLicense", b"front image bytes");
        let body = json!({ "deviceReferenceId": "dev-p", "proofingId": "p-1",
            "evidence": [ { "frontOfLicenseImage": image }, { "livenessScore": 0.93 } ] });
        let answer = h.ok("proofUser", body.clone()).await;
        assert_eq!(answer["proofingId"], "p-1");
        h.ok("proofUser", body.clone()).await;
        let stored = h.app.store.get_proofing("p-1").await.unwrap().unwrap();
        assert_eq!(stored.evidence[0]["frontOfLicenseImage"]["decrypted"], wire::encode(b"front image bytes"));
        assert_eq!(stored.evidence[1], json!({ "livenessScore": 0.93 }), "unknown evidence is kept as sent");
        assert_eq!(h.app.store.list_proofings(None, 10).await.unwrap().len(), 1);

        // The same proofingId from another device.
        let other = h.registered("dev-q").await;
        let mut again = body.clone();
        again["deviceReferenceId"] = json!("dev-q");
        again["evidence"] = json!([{ "preAuthorizedCode": "x" }]);
        h.refused("proofUser", again, "invalidState", CONFLICT).await;

        let evidence = |e: Value| json!({ "deviceReferenceId": "dev-q", "proofingId": "p-2", "evidence": [e] });
        let mut unknown_key = other.encrypt_to_issuer(&hybrid, "FrontOfLicense", b"x");
        unknown_key.recipient_key_id = "00FF".into();
        h.refused("proofUser", evidence(json!({ "frontOfLicenseImage": unknown_key })), "invalidPayloadEncryption", BAD_REQUEST).await;
        let mut tampered = other.encrypt_to_issuer(&hybrid, "FrontOfLicense", b"x");
        let mut bytes = wire::decode(&tampered.encrypted_value).unwrap();
        bytes[0] ^= 1;
        tampered.encrypted_value = wire::encode(&bytes);
        h.refused("proofUser", evidence(json!({ "frontOfLicenseImage": tampered })), "invalidPayloadEncryption", BAD_REQUEST).await;
        let wrong_context = other.encrypt_to_issuer(&hybrid, "Barcode", b"x");
        h.refused("proofUser", evidence(json!({ "frontOfLicenseImage": wrong_context })), "invalidPayloadEncryption", BAD_REQUEST).await;
        // Signed by another device's identity key.
        let forged = device.encrypt_to_issuer(&hybrid, "FrontOfLicense", b"x");
        h.refused("proofUser", evidence(json!({ "frontOfLicenseImage": forged })), "invalidPayloadSignature", UNAUTHORIZED).await;
        h.refused("proofUser", json!({ "deviceReferenceId": "dev-q", "proofingId": "p-2", "evidence": [] }), "invalidFieldValue", BAD_REQUEST).await;
        h.refused("proofUser", evidence(json!({ "a": 1, "b": 2 })), "invalidFieldValue", BAD_REQUEST).await;
        h.refused("proofUser", json!({ "deviceReferenceId": "nobody", "proofingId": "p-3", "evidence": [{ "preAuthorizedCode": "c" }] }), "invalidIdentifier", NOT_FOUND).await;
        assert!(h.app.store.get_proofing("p-2").await.unwrap().is_none(), "no refused proofing was stored");
    }

    async fn proofing_status_and_cancel_follow_the_lifecycle(db: TestDb) {
        let h = Harness::new(&db).await;
        let device = h.registered("dev-c").await;
        let q = |id: &str| json!({ "deviceReferenceId": "dev-c", "proofingId": id });
        h.proofing(&device, "c-1").await;
        assert_eq!(h.ok("getProofingStatus", q("c-1")).await["proofingStatus"], json!({ "pending": {} }));
        h.ok("cancelProofing", q("c-1")).await;
        assert_eq!(h.ok("getProofingStatus", q("c-1")).await["proofingStatus"], json!({ "canceled": {} }));
        h.ok("cancelProofing", q("c-1")).await; // a canceled proofing may be canceled again

        let (record, _) = h.record().await;
        h.proofing(&device, "c-2").await;
        h.approve("c-2", &record).await;
        assert_eq!(h.ok("getProofingStatus", q("c-2")).await["proofingStatus"], json!({ "accepted": {} }));
        let description = h.refused("cancelProofing", q("c-2"), "invalidState", CONFLICT).await;
        assert_eq!(description, "the proofing is accepted and cannot be canceled");
        assert_eq!(h.ok("getProofingStatus", q("c-2")).await["proofingStatus"], json!({ "accepted": {} }));

        h.refused("getProofingStatus", q("nope"), "invalidIdentifier", NOT_FOUND).await;
        h.registered("dev-d").await;
        h.refused("getProofingStatus", json!({ "deviceReferenceId": "dev-d", "proofingId": "c-2" }), "invalidIdentifier", NOT_FOUND).await;
        h.refused("cancelProofing", json!({ "deviceReferenceId": "dev-d", "proofingId": "c-1" }), "invalidIdentifier", NOT_FOUND).await;
    }

    async fn provision_credential_errors_and_retries(db: TestDb) {
        let h = Harness::new(&db).await;
        let p = h.provisioned("dev-a").await;
        let body = |device: &Device, credential: &str, proofing: &str| {
            let key = device.encryption_key();
            h.provision_body(device, credential, proofing, &key)
        };
        // Google retries with the same credentialId: the same version, still one device copy.
        let again = h.ok("provisionCredential", body(&p.device, &p.credential_id, &p.proofing_id)).await;
        assert_eq!(again["credentialVersionId"], p.version.as_str());
        let record_id = uuid::Uuid::parse_str(&p.record_id).unwrap();
        assert_eq!(h.app.store.list_wallet_credentials(record_id).await.unwrap().len(), 1);

        h.refused("provisionCredential", body(&Device::new("ghost", MDL), "c-x", &p.proofing_id), "invalidIdentifier", NOT_FOUND).await;
        // A proofing that is not accepted, or belongs to another device.
        let other = h.registered("dev-b").await;
        h.proofing(&other, "pending-b").await;
        h.refused("provisionCredential", body(&other, "c-b", "pending-b"), "invalidIdentifier", NOT_FOUND).await;
        h.refused("provisionCredential", body(&other, "c-b", &p.proofing_id), "invalidIdentifier", NOT_FOUND).await;
        // The credentialId of another device's copy.
        h.approve("pending-b", &p.record_id).await;
        h.refused("provisionCredential", body(&other, &p.credential_id, "pending-b"), "invalidState", CONFLICT).await;

        // deviceEncryptionKey: signed by another device, not a point, absent.
        let mut forged = p.device.encryption_key().wire;
        forged.signature = other.encryption_key().wire.signature;
        h.refused("provisionCredential", json!({ "deviceReferenceId": "dev-b", "credentialId": "c-b", "proofingId": "pending-b", "deviceEncryptionKey": forged }), "invalidFieldValue", BAD_REQUEST).await;
        let foreign = p.device.encryption_key().wire;
        h.refused("provisionCredential", json!({ "deviceReferenceId": "dev-b", "credentialId": "c-b", "proofingId": "pending-b", "deviceEncryptionKey": foreign }), "invalidPayloadSignature", UNAUTHORIZED).await;
        let mut short = other.encryption_key().wire;
        short.public_key = wire::encode(&[4; 33]);
        h.refused("provisionCredential", json!({ "deviceReferenceId": "dev-b", "credentialId": "c-b", "proofingId": "pending-b", "deviceEncryptionKey": short }), "invalidFieldValue", BAD_REQUEST).await;
        h.refused("provisionCredential", json!({ "deviceReferenceId": "dev-b", "credentialId": "c-b", "proofingId": "pending-b" }), "missingRequiredField", BAD_REQUEST).await;
        assert!(h.app.store.get_wallet_credential("c-b").await.unwrap().is_none(), "no refused call bound a copy");

        // A revoked record is never provisioned again.
        let revoke = h.app.post(&format!("/admin/v1/credentials/{}/revoke", p.record_id), &json!({ "reason": "test" }), Some(&h.token)).await;
        assert_eq!(revoke.status, StatusCode::OK);
        h.refused("provisionCredential", body(&p.device, &p.credential_id, &p.proofing_id), "invalidState", CONFLICT).await;
    }

    async fn sandbox_plaintext_mode_answers_unencrypted_when_allowed(db: TestDb) {
        let h = Harness::with(&db, |c| c.wallet.allow_plaintext = true).await;
        let device = h.registered("dev-s").await;
        let (record, _) = h.record().await;
        h.proofing(&device, "s-1").await;
        h.approve("s-1", &record).await;
        let answer = h.ok("provisionCredential", json!({ "deviceReferenceId": "dev-s", "credentialId": "cs", "proofingId": "s-1" })).await;
        assert!(answer["credential"].get("encryptedData").is_none());
        let payload = wire::decode(answer["credential"]["unencryptedValue"].as_str().unwrap()).unwrap();
        let (doc_type, values) = device_ic::read_credential(&payload).unwrap();
        let expected = brevet::mdoc::doctype::DocTypes::builtin().validate(MDL, &sample_holder()).unwrap();
        assert_eq!(doc_type, MDL);
        assert_eq!(values, expected.namespaces, "the payload holds exactly the record's typed values");
    }

    async fn mobile_security_objects_per_auth_key_and_their_refusals(db: TestDb) {
        let h = Harness::new(&db).await;
        let mut p = h.provisioned("dev-m").await;
        let msos = "provisionMobileSecurityObjects";

        // Refresh before any proof of provisioning.
        let (_, _, refresh) = h.msos_body(&p, &p.version, None, 1);
        h.refused(msos, refresh, "invalidState", CONFLICT).await;
        // A stale or unknown version.
        let (_, _, stale) = h.msos_body(&p, "01900000-0000-7000-8000-000000000000", Some(&p.proof), 1);
        h.refused(msos, stale, "invalidState", CONFLICT).await;
        let (_, _, garbage) = h.msos_body(&p, "not-a-version", Some(&p.proof), 1);
        h.refused(msos, garbage, "invalidState", CONFLICT).await;
        // No auth key, too many.
        let (_, _, none) = h.msos_body(&p, &p.version, Some(&p.proof), 0);
        h.refused(msos, none, "invalidFieldValue", BAD_REQUEST).await;
        let (_, _, many) = h.msos_body(&p, &p.version, Some(&p.proof), 65);
        h.refused(msos, many, "invalidFieldValue", BAD_REQUEST).await;
        // A proof signed by another key, a proof of other data.
        let stranger = Device::new("x", MDL);
        let not_a_pop = json!({ "signature": wire::encode(&device_ic::proof_of_ownership(p.device.credential_key(), MDL, &[0; 32])) });
        let (_, _, forged) = h.msos_body(&p, &p.version, Some(&not_a_pop), 1);
        let description = h.refused(msos, forged, "invalidFieldValue", BAD_REQUEST).await;
        assert!(description.contains("not a ProofOfProvisioning"), "{description}");
        let mut other_values = p.device.stored.clone().unwrap();
        other_values[0].1[0].1 = ciborium::Value::Text("Somebody Else".into());
        let wrong_data = json!({ "signature": wire::encode(&device_ic::sign1(p.device.credential_key(), device_ic::proof_of_provisioning_payload(MDL, &other_values))) });
        let (_, _, wrong) = h.msos_body(&p, &p.version, Some(&wrong_data), 1);
        let description = h.refused(msos, wrong, "invalidFieldValue", BAD_REQUEST).await;
        assert!(description.contains("another value for org.iso.18013.5.1/family_name"), "{description}");
        let real_payload = device_ic::proof_of_provisioning_payload(MDL, p.device.stored.as_ref().unwrap());
        let by_stranger = json!({ "signature": wire::encode(&device_ic::sign1(stranger.credential_key(), real_payload)) });
        let (_, _, sig) = h.msos_body(&p, &p.version, Some(&by_stranger), 1);
        h.refused(msos, sig, "invalidPayloadSignature", UNAUTHORIZED).await;
        // An auth key certified by another device.
        let (_, _, mut foreign_key) = h.msos_body(&p, &p.version, Some(&p.proof), 1);
        foreign_key["authKeys"] = json!([stranger.auth_keys(1)[0].1]);
        h.refused(msos, foreign_key, "invalidPayloadSignature", UNAUTHORIZED).await;
        let record_id = uuid::Uuid::parse_str(&p.record_id).unwrap();
        assert!(h.app.store.list_mso_issuances(record_id, 10).await.unwrap().is_empty(), "nothing issued yet");
        assert_eq!(h.status(&p).await["credentialStatus"], json!({ "provisionPending": {} }));

        // The real thing: one MSO per auth key, each for its key, each recorded.
        let (signers, key, body) = h.msos_body(&p, &p.version, Some(&p.proof), 4);
        let answer = h.ok(msos, body).await;
        let objects = answer["mobileSecurityObjects"].as_array().unwrap();
        assert_eq!(objects.len(), 4);
        for (signer, object) in signers.iter().zip(objects) {
            let data: wire::EncryptedData = serde_json::from_value(object["encryptedData"].clone()).unwrap();
            assert_eq!(data.recipient_key_id, key.wire.key_id);
            let sad = p.device.open(&key, "MobileSecurityObject", &data, &h.identity_certs()).unwrap();
            let reading = p.device.verify_mso(&sad, signer.verifying_key(), &h.iaca()).unwrap();
            let days = (reading.valid_until - reading.valid_from).num_days();
            assert_eq!(days, 30, "MSO validity follows wallet.mso_validity_secs");
        }
        assert_eq!(h.app.store.list_mso_issuances(record_id, 10).await.unwrap().len(), 4);
        assert_eq!(h.status(&p).await["credentialStatus"], json!({ "active": {} }));

        // Refresh without proof; an auth key bound to another proof is refused.
        let (_, _, refresh) = h.msos_body(&p, &p.version, None, 2);
        assert_eq!(h.ok(msos, refresh).await["mobileSecurityObjects"].as_array().unwrap().len(), 2);
        let bound = p.device.pop_sha256;
        p.device.pop_sha256 = Some([7; 32]);
        let (_, _, misbound) = h.msos_body(&p, &p.version, None, 1);
        let description = h.refused(msos, misbound, "invalidFieldValue", BAD_REQUEST).await;
        assert!(description.contains("bound to another ProofOfProvisioning"), "{description}");
        p.device.pop_sha256 = bound;
        assert_eq!(h.app.store.list_mso_issuances(record_id, 10).await.unwrap().len(), 6);
    }

    async fn status_update_reverification_deletion(db: TestDb) {
        let h = Harness::new(&db).await;
        let p = h.provisioned("dev-u").await;
        let (_, _, body) = h.msos_body(&p, &p.version, Some(&p.proof), 1);
        h.ok("provisionMobileSecurityObjects", body).await;
        let status = h.status(&p).await;
        assert_eq!(status["credentialStatus"], json!({ "active": {} }));
        assert_eq!(status["credentialVersionId"], p.version.as_str());

        // Staff ask for reverification: the status says what the user must do.
        let reverify = h.app.post(&format!("/admin/v1/credentials/{}/request-reverification", p.record_id), &json!({}), Some(&h.token)).await;
        assert_eq!(reverify.status, StatusCode::OK, "{}", reverify.text());
        assert_eq!(h.status(&p).await["credentialStatus"], json!({
            "active": {}, "userActionRequired": { "submitProofing": { "unlimitedAttempts": {} } } }));

        // The holder re-proofs; once staff accept it, nothing more is asked.
        h.ok("proofUser", json!({ "deviceReferenceId": "dev-u", "proofingId": "re-1",
            "evidence": [{ "preAuthorizedCode": "again" }],
            "reverificationContext": { "credentialId": p.credential_id } })).await;
        assert!(h.status(&p).await["credentialStatus"].get("userActionRequired").is_some(), "still asked while pending");
        let notifications = || async {
            h.app.store.list_outbox(None, 500).await.unwrap().into_iter()
                .filter(|j| j.kind == brevet::store::JobKind::NotifyCredentialStatus && j.payload["deviceReferenceId"] == "dev-u")
                .count()
        };
        let before = notifications().await;
        h.approve("re-1", &p.record_id).await;
        assert_eq!(h.status(&p).await["credentialStatus"], json!({ "active": {} }));
        assert_eq!(notifications().await, before + 1, "Google is told the request was answered");

        h.refused("getCredentialStatus", json!({ "deviceReferenceId": "dev-u", "credentialId": "nope" }), "invalidIdentifier", NOT_FOUND).await;
        h.registered("dev-v").await;
        h.refused("getCredentialStatus", json!({ "deviceReferenceId": "dev-v", "credentialId": p.credential_id }), "invalidIdentifier", NOT_FOUND).await;

        // The wallet deletes its copy: deleted, repeat acknowledged, nothing provisioned again.
        let q = json!({ "deviceReferenceId": "dev-u", "credentialId": p.credential_id });
        h.ok("notifyCredentialDeleted", q.clone()).await;
        h.ok("notifyCredentialDeleted", q.clone()).await;
        assert_eq!(h.status(&p).await["credentialStatus"], json!({ "deleted": {} }));
        let key = p.device.encryption_key();
        h.refused("provisionCredential", h.provision_body(&p.device, &p.credential_id, &p.proofing_id, &key), "invalidState", CONFLICT).await;
        let (_, _, body) = h.msos_body(&p, &p.version, None, 1);
        h.refused("provisionMobileSecurityObjects", body, "invalidState", CONFLICT).await;
        h.refused("notifyCredentialDeleted", json!({ "deviceReferenceId": "dev-v", "credentialId": p.credential_id }), "invalidIdentifier", NOT_FOUND).await;
    }

    async fn a_pre_authorized_code_accepts_one_proofing_at_once(db: TestDb) {
        let h = Harness::new(&db).await;
        let (record, _) = h.record().await;
        let path = format!("/admin/v1/credentials/{record}/pre-authorized-codes");
        let created = h.app.post(&path, &json!({}), Some(&h.token)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let code = created.json()["code"].as_str().unwrap().to_owned();
        assert_eq!(code.len(), 43, "32 random bytes, base64url");
        let too_long = h.app.post(&path, &json!({ "ttlSecs": 31 * 86_400 }), Some(&h.token)).await;
        assert_eq!(too_long.status, BAD_REQUEST);

        let device = h.registered("dev-code").await;
        let proof = |id: &str, code: &str| json!({ "deviceReferenceId": device.device_reference_id, "proofingId": id, "evidence": [{ "preAuthorizedCode": code }] });
        h.ok("proofUser", proof("pc-1", &code)).await;
        let status = |id: &str| json!({ "deviceReferenceId": "dev-code", "proofingId": id });
        assert_eq!(h.ok("getProofingStatus", status("pc-1")).await["proofingStatus"], json!({ "accepted": {} }));
        let stored = h.app.store.get_proofing("pc-1").await.unwrap().unwrap();
        assert_eq!(stored.credential_id.unwrap().to_string(), record);
        assert!(!stored.evidence.to_string().contains(&code), "the code is stored as its hash only");
        // Google retries the same call: still one accepted proofing.
        h.ok("proofUser", proof("pc-1", &code)).await;
        assert_eq!(h.ok("getProofingStatus", status("pc-1")).await["proofingStatus"], json!({ "accepted": {} }));
        // The code is used up, a made-up one is no good: those proofings wait for staff.
        h.ok("proofUser", proof("pc-2", &code)).await;
        h.ok("proofUser", proof("pc-3", "not-a-code")).await;
        for id in ["pc-2", "pc-3"] {
            assert_eq!(h.ok("getProofingStatus", status(id)).await["proofingStatus"], json!({ "pending": {} }));
        }
        // An expired code neither.
        use sha2::Digest;
        brevet::store::codes::insert(
            &mut h.app.store.db(), &sha2::Sha256::digest(b"old-code").into(),
            uuid::Uuid::parse_str(&record).unwrap(), chrono::Utc::now() - chrono::Duration::seconds(1)).await.unwrap();
        h.ok("proofUser", proof("pc-4", "old-code")).await;
        assert_eq!(h.ok("getProofingStatus", status("pc-4")).await["proofingStatus"], json!({ "pending": {} }));
        // The accepted proofing provisions the credential.
        let key = device.encryption_key();
        h.ok("provisionCredential", h.provision_body(&device, "cred-code", "pc-1", &key)).await;
        // A revoked record gets no codes.
        h.app.post(&format!("/admin/v1/credentials/{record}/revoke"), &json!({ "reason": "test" }), Some(&h.token)).await;
        assert_eq!(h.app.post(&path, &json!({}), Some(&h.token)).await.status, CONFLICT);
    }

    async fn new_methods_check_the_api_version_first(db: TestDb) {
        let h = Harness::new(&db).await;
        for method in ["registerDevice", "proofUser", "provisionCredential", "provisionMobileSecurityObjects", "getCredentialStatus", "cancelProofing"] {
            let body = json!({ "requestMetadata": { "requestId": "r", "version": { "major": 9, "minor": 9 }, "issuerId": "x" } });
            let response = h.app.post(&format!("/v1/vdc/{method}"), &body, None).await;
            assert_eq!(response.status, BAD_REQUEST, "{method}");
            assert_eq!(response.json()["invalidApiVersion"]["requestVersion"], json!({ "major": 9, "minor": 9 }), "{method}");
        }
    }
}

/// The document signer of `wallet`, replaced by one whose certificate covers only
/// `not_before .. not_before + lifetime`.
fn ds_valid_between(
    wallet: &mut WalletContext,
    not_before: SystemTime,
    lifetime: std::time::Duration,
) {
    let key = brevet::pki::SoftwareSigner::generate();
    let certificate = certs::issue_certificate(
        &certs::CertTemplate {
            subject: "CN=Out-of-date DS,C=US".into(),
            issuer: None,
            serial: None,
            not_before,
            lifetime,
            public_key: brevet::pki::Signer::verifying_key(&key).into(),
            ca: false,
            extensions: vec![],
        },
        &key,
    )
    .unwrap();
    wallet.keys_mut().document_signers = vec![brevet::service::wallet::DocumentSignerKey {
        number: 9,
        certificate,
        signer: Box::new(key),
        activate_at: None,
    }];
}

both_stores! {
    async fn android_auth_key_certificates_carry_proof_of_binding_in_one_wrap(db: TestDb) {
        let h = Harness::new(&db).await;
        let p = h.provisioned("dev-pob").await;
        // As Android writes it (the device's certificates): accepted.
        let (_, _, body) = h.msos_body(&p, &p.version, Some(&p.proof), 1);
        h.ok("provisionMobileSecurityObjects", body).await;
        // The extension's CBOR wrapped in a second OCTET STRING (what Brevet once expected) is
        // not Android's format: refused, naming ProofOfBinding.
        use x509_cert::der::Encode;
        let pop = p.device.pop_sha256.unwrap();
        let double = x509_cert::der::asn1::OctetString::new(device_ic::proof_of_binding(&pop)).unwrap().to_der().unwrap();
        let auth = SigningKey::random(&mut rand::rngs::OsRng);
        let cert = brevet::sim::wallet::android::x509::issue(&brevet::sim::wallet::android::x509::Template {
            subject: "CN=Android Identity Credential Authentication Key",
            issuer: Some(&brevet::sim::wallet::android::x509::name("CN=Android Identity Credential Key")),
            serial: &[1], not_before: SystemTime::now(), lifetime: std::time::Duration::from_secs(86_400),
            key: auth.verifying_key(), role: brevet::sim::wallet::android::x509::Role::Bare,
            extensions: vec![(x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.1.26"), false, double)],
        }, p.device.credential_key());
        let (_, _, mut body) = h.msos_body(&p, &p.version, None, 1);
        body["authKeys"] = json!([{ "certificate": wire::encode(&brevet::sim::wallet::android::x509::der(&cert)) }]);
        let description = h.refused("provisionMobileSecurityObjects", body, "invalidFieldValue", BAD_REQUEST).await;
        assert!(description.contains("ProofOfBinding"), "{description}");
    }

    async fn the_registration_nonce_is_accepted_as_its_string_or_its_bytes(db: TestDb) {
        for (form, string_ok, bytes_ok) in [
            (brevet::config::ChallengeForm::Either, true, true),
            (brevet::config::ChallengeForm::String, true, false),
            (brevet::config::ChallengeForm::Bytes, false, true),
        ] {
            let h = Harness::with(&db, |c| c.wallet.attestation.challenge_form = form).await;
            for (as_string, expected) in [(true, string_ok), (false, bytes_ok)] {
                let id = format!("dev-{form:?}-{as_string}");
                let device = Device::new(&id, MDL);
                let answer = h.ok("getDeviceRegistrationNonce", json!({ "deviceReferenceId": id })).await;
                let text = answer["nonce"].as_str().unwrap();
                assert_eq!(text.len(), 32);
                let challenge = if as_string { text.as_bytes().to_vec() } else { wire::decode(text).unwrap() };
                let chain = device.attestation_chain(&challenge, &AttestationClaims::default());
                let body = json!({ "deviceReferenceId": id, "deviceIdentityCertificateChain": chain });
                if expected {
                    h.ok("registerDevice", body).await;
                } else {
                    let description = h.refused("registerDevice", body, "invalidFieldValue", BAD_REQUEST).await;
                    assert!(description.contains("not the registration nonce"), "{form:?}: {description}");
                }
            }
        }
    }

    async fn msos_are_backdated_and_never_outlive_the_document(db: TestDb) {
        let h = Harness::with(&db, |c| {
            c.wallet.mso_refresh_secs = Some(7 * 86_400);
            c.wallet.doc_type.insert(MDL.into(), brevet::config::DocTypePolicy { mso_validity_secs: Some(90 * 86_400), ..Default::default() });
        }).await;
        // A licence that expires in ten days (at 00:00 UTC of its expiry date).
        let expiry = (chrono::Utc::now() + chrono::Duration::days(10)).date_naive();
        let mut holder = sample_holder();
        holder["org.iso.18013.5.1"]["expiry_date"] = json!(expiry.to_string());
        let p = h.provisioned_with("dev-v", &holder).await;
        let (signers, key, body) = h.msos_body(&p, &p.version, Some(&p.proof), 1);
        let started = chrono::Utc::now();
        let answer = h.ok("provisionMobileSecurityObjects", body).await;
        let data: wire::EncryptedData = serde_json::from_value(answer["mobileSecurityObjects"][0]["encryptedData"].clone()).unwrap();
        let sad = p.device.open(&key, "MobileSecurityObject", &data, &h.identity_certs()).unwrap();
        let reading = p.device.verify_mso(&sad, signers[0].verifying_key(), &h.iaca()).unwrap();
        // Backdated by the 300 s skew, but never before the document signer's certificate starts
        // (the harness made it a moment ago).
        let ds_from: chrono::DateTime<chrono::Utc> = h.keys.active_ds().unwrap().certificate.tbs_certificate.validity.not_before.to_system_time().into();
        let expected = (started - chrono::Duration::seconds(300)).max(ds_from);
        assert!((reading.signed - expected).num_seconds().abs() <= 1, "signed {}, expected {expected}", reading.signed);
        assert_eq!(reading.valid_from, reading.signed);
        assert_eq!(reading.valid_until, expiry.and_hms_opt(0, 0, 0).unwrap().and_utc(), "the document's expiry, not 90 days");
        assert_eq!(reading.expected_update, Some(reading.signed + chrono::Duration::days(7)));
    }

    async fn a_document_signer_out_of_date_is_retryable_and_changes_nothing(db: TestDb) {
        let expired = |w: &mut WalletContext| ds_valid_between(w, SystemTime::now() - std::time::Duration::from_secs(400 * 86_400), std::time::Duration::from_secs(365 * 86_400));
        let h = Harness::with_wallet(&db, |_| {}, expired).await;
        let device = h.registered("dev-ds").await;
        let (record, _) = h.record().await;
        h.proofing(&device, "ds-1").await;
        h.approve("ds-1", &record).await;
        let key = device.encryption_key();
        let response = h.call("provisionCredential", h.provision_body(&device, "c-ds", "ds-1", &key)).await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers["retry-after"], "1");
        let json = response.json();
        let members: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(members, ["errorDescription", "issuerErrorIdentifier", "responseMetadata"], "no union member: {json}");
        assert!(h.app.store.get_wallet_credential("c-ds").await.unwrap().is_none(), "nothing bound");

        // No document signer at all: the same.
        let h = Harness::with_wallet(&db, |_| {}, |w| w.keys_mut().document_signers.clear()).await;
        let device = h.registered("dev-nods").await;
        h.proofing(&device, "nods-1").await;
        h.approve("nods-1", &record).await;
        let key = device.encryption_key();
        let response = h.call("provisionCredential", h.provision_body(&device, "c-nods", "nods-1", &key)).await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    async fn a_failing_signer_is_retryable_and_changes_nothing(db: TestDb) {
        // An HSM that stops answering: every signature fails, with the keys still known.
        struct Failing(p256::ecdsa::VerifyingKey);
        impl brevet::pki::Signer for Failing {
            fn verifying_key(&self) -> p256::ecdsa::VerifyingKey {
                self.0
            }
            fn sign(&self, _: &[u8]) -> Result<p256::ecdsa::Signature, brevet::pki::SignerError> {
                Err(brevet::pki::SignerError::Failed("CKR_DEVICE_REMOVED".into()))
            }
        }
        let failing = |w: &mut WalletContext| {
            let set = w.keys_mut();
            let ds = set.document_signers.last_mut().unwrap();
            ds.signer = Box::new(Failing(ds.signer.verifying_key()));
            for identity in &mut set.keys.as_mut().unwrap().identity {
                identity.signer = Box::new(Failing(identity.signer.verifying_key()));
            }
        };
        let h = Harness::with_wallet(&db, |_| {}, failing).await;
        let device = h.registered("dev-hsm").await;
        let (record, _) = h.record().await;
        h.proofing(&device, "hsm-1").await;
        h.approve("hsm-1", &record).await;
        let key = device.encryption_key();
        let response = h.call("provisionCredential", h.provision_body(&device, "c-hsm", "hsm-1", &key)).await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE, "{}", response.text());
        assert_eq!(response.headers["retry-after"], "1");
        assert!(!response.text().contains("CKR_DEVICE_REMOVED"), "the cause stays in the log: {}", response.text());
        assert!(h.app.store.get_wallet_credential("c-hsm").await.unwrap().is_none(), "nothing bound");
    }

    async fn an_expired_document_is_not_provisioned(db: TestDb) {
        let h = Harness::new(&db).await;
        let device = h.registered("dev-old").await;
        let mut holder = sample_holder();
        holder["org.iso.18013.5.1"]["issue_date"] = json!("2015-01-01");
        holder["org.iso.18013.5.1"]["expiry_date"] = json!("2020-01-01");
        let created = h.app.post("/admin/v1/credentials", &json!({ "docType": MDL, "holderData": holder }), Some(&h.token)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let record = created.json()["credentialId"].as_str().unwrap().to_owned();
        h.proofing(&device, "old-1").await;
        h.approve("old-1", &record).await;
        let key = device.encryption_key();
        let description = h.refused("provisionCredential", h.provision_body(&device, "c-old", "old-1", &key), "invalidState", CONFLICT).await;
        assert_eq!(description, "the document expired on 2020-01-01 00:00:00 UTC");
        assert!(h.app.store.get_wallet_credential("c-old").await.unwrap().is_none());
    }

    async fn an_off_curve_encryption_key_is_refused_before_anything_changes(db: TestDb) {
        let h = Harness::new(&db).await;
        let device = h.registered("dev-oc").await;
        let (record, _) = h.record().await;
        h.proofing(&device, "oc-1").await;
        h.approve("oc-1", &record).await;
        // A well-formed uncompressed point that is not on P-256, properly signed by the device.
        let mut point = vec![0x04];
        point.extend_from_slice(&[0x11; 64]);
        let signature = device_ic::proof_of_ownership(device.credential_key(), MDL, &<sha2::Sha256 as sha2::Digest>::digest(&point));
        let off_curve = json!({ "publicKey": wire::encode(&point), "signature": wire::encode(&signature), "keyId": "k1" });
        let description = h.refused("provisionCredential", json!({ "deviceReferenceId": "dev-oc", "credentialId": "c-oc", "proofingId": "oc-1", "deviceEncryptionKey": off_curve }), "invalidFieldValue", BAD_REQUEST).await;
        assert!(description.contains("not an uncompressed point on P-256"), "{description}");
        assert!(h.app.store.get_wallet_credential("c-oc").await.unwrap().is_none(), "no copy bound");

        // With a proof of provisioning: refused, and the proof is not recorded.
        let p = h.provisioned("dev-oc2").await;
        let (_, _, mut body) = h.msos_body(&p, &p.version, Some(&p.proof), 1);
        let signature = device_ic::proof_of_ownership(p.device.credential_key(), MDL, &<sha2::Sha256 as sha2::Digest>::digest(&point));
        body["deviceEncryptionKey"] = json!({ "publicKey": wire::encode(&point), "signature": wire::encode(&signature), "keyId": "k2" });
        h.refused("provisionMobileSecurityObjects", body, "invalidFieldValue", BAD_REQUEST).await;
        let copy = h.app.store.get_wallet_credential(&p.credential_id).await.unwrap().unwrap();
        assert_eq!(copy.proven_version_id, None, "the proof was not committed");
        assert_eq!(h.status(&p).await["credentialStatus"], json!({ "provisionPending": {} }));
    }

    async fn the_issuer_id_is_checked_when_configured(db: TestDb) {
        let h = Harness::with(&db, |c| c.google.issuer_id = Some("Test_Issuer".into())).await;
        h.ok("getDeviceRegistrationNonce", json!({ "deviceReferenceId": "dev-i" })).await;
        let mut body = json!({ "deviceReferenceId": "dev-i" });
        body["requestMetadata"] = json!({ "requestId": "r-i", "version": { "major": 0, "minor": 1 }, "issuerId": "Someone_Else" });
        let response = h.app.post("/v1/vdc/getDeviceRegistrationNonce", &body, None).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        let json = response.json();
        assert!(json.get("permissionDenied").is_some(), "{json}");
        assert_eq!(json["responseMetadata"]["requestId"], "r-i");
    }

    async fn staff_see_the_status_google_sees(db: TestDb) {
        let h = Harness::new(&db).await;
        let p = h.provisioned("dev-st").await;
        let devices = || async {
            h.app.get(&format!("/admin/v1/credentials/{}/devices", p.record_id), Some(&h.token)).await.json()["devices"][0]["status"].as_str().unwrap().to_owned()
        };
        assert_eq!(devices().await, "provisionPending");
        let (_, _, body) = h.msos_body(&p, &p.version, Some(&p.proof), 1);
        h.ok("provisionMobileSecurityObjects", body).await;
        assert_eq!(devices().await, "active");
        let current = h.app.get(&format!("/admin/v1/credentials/{}", p.record_id), Some(&h.token)).await;
        let etag = current.headers["etag"].to_str().unwrap().to_owned();
        let mut changed = sample_holder();
        changed["org.iso.18013.5.1"]["resident_address"] = json!("9 Elsewhere");
        let patched = h.app.patch(&format!("/admin/v1/credentials/{}", p.record_id), &json!({ "holderData": changed }), Some(&h.token), Some(&etag)).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        assert_eq!(devices().await, "provisionPending", "an update makes every copy pending, as getCredentialStatus says");
        assert_eq!(h.status(&p).await["credentialStatus"], json!({ "provisionPending": {} }));
    }
}

both_stores! {
    async fn the_simulator_root_is_trusted_only_in_development_mode(db: TestDb) {
        for (mode, setting, trusted) in [
            (Mode::Production, None, false),
            (Mode::Development, Some(false), false),
            (Mode::Development, None, true),
        ] {
            let h = Harness::with(&db, |c| {
                c.mode = Some(mode);
                c.wallet.attestation.trust_simulator_root = setting;
            })
            .await;
            let id = format!("dev-{mode:?}-{setting:?}");
            let device = Device::new(&id, MDL);
            let nonce = h.nonce(&device).await;
            let body = json!({ "deviceReferenceId": id, "deviceIdentityCertificateChain": device.attestation_chain(&nonce, &AttestationClaims::default()) });
            if trusted {
                h.ok("registerDevice", body).await;
            } else {
                let description = h.refused("registerDevice", body, "invalidFieldValue", BAD_REQUEST).await;
                assert!(description.contains("trusted attestation root"), "{mode:?} {setting:?}: {description}");
            }
        }
    }
}

both_stores! {
    async fn register_device_refuses_forged_attestation_chains_naming_the_rule(db: TestDb) {
        // The three forgeries registerDevice once accepted, built by pyca/cryptography for the
        // nonce the server hands out, under a root the operator configured; and a valid chain
        // from the same independent builder, which registers.
        let probe = Harness::new(&db).await;
        let nonce = probe.nonce(&Device::new("dev-forged", MDL)).await;
        let (root, chains) = crate::attestation::forged(&nonce);
        let root_pem = db.dir.join("forge-root.pem");
        std::fs::write(&root_pem, certs::to_pem(&certs::from_der(&root).unwrap()).unwrap()).unwrap();
        let h = Harness::with(&db, |c| c.wallet.attestation.roots = vec![root_pem.clone()]).await;
        let chain = |name: &str| -> Vec<String> {
            chains.iter().find(|(n, _)| n == name).unwrap().1.iter().map(|d| wire::encode(d)).collect()
        };
        let body = |name: &str| json!({ "deviceReferenceId": "dev-forged", "deviceIdentityCertificateChain": chain(name) });
        for (name, rule) in [("ca_false", "issuer role"), ("no_basic_constraints", "issuer role"), ("issuer_mismatch", "name chaining")] {
            let description = h.refused("registerDevice", body(name), "invalidFieldValue", BAD_REQUEST).await;
            assert!(description.starts_with("device attestation refused: ") && description.ends_with(&format!("(rule: {rule})")), "{name}: {description}");
        }
        let stored = h.app.store.get_device("dev-forged").await.unwrap().unwrap();
        assert_eq!(stored.status.as_str(), "nonceIssued", "nothing registered");
        h.ok("registerDevice", body("good")).await;
        assert_eq!(h.app.store.get_device("dev-forged").await.unwrap().unwrap().status.as_str(), "registered");
    }
}
