//! The certificate-provisioning adapter against the Chrome simulator (fake Chrome Management API,
//! Pub/Sub and ChromeOS client) and a fake step-ca, on both stores: RSA and EC keys through the
//! built-in CA and step-ca, every failure path's setFailure reason, a lost claim race, restarts
//! mid-flow, duplicate deliveries, two workers at once, and the push endpoint.

use std::collections::BTreeMap;

use brevet::certprov::adapter::Step;
use brevet::certprov::config::{CaConnectionConfig, CertProvConfig, ProfileConfig};
use brevet::certprov::pop::verify_csr_pem;
use brevet::certprov::{self, Parts};
use brevet::pki::{certs, chain};
use brevet::sim::chrome::{
    service_account_key, Behaviour, ChromeSim, KeyType, NewProcess, Route, Verdict, SUBSCRIPTION,
};
use brevet::sim::stepca::{self, FakeStepCa};
use brevet::store::{cert_processes, CertState, Hold, SharedStore};
use serde_json::json;
use x509_cert::der::Encode;

use crate::support::inspect::Inspect;
use crate::support::process::{brevet, Server};
use crate::support::TestDb;

/// Where the rig's built-in CA says its CRL is.
const CRL_URL: &str = "http://crl.example/certprov/v1/crl/default_ca_config";

struct Rig {
    sim: ChromeSim,
    stepca: FakeStepCa,
    store: SharedStore,
    config: CertProvConfig,
    ca: x509_cert::Certificate,
}

fn profile(subject: &str, emails: &[&str]) -> ProfileConfig {
    ProfileConfig {
        subject: subject.into(),
        dns_names: vec![],
        emails: emails.iter().map(|e| (*e).to_owned()).collect(),
        uris: vec![],
        validity_days: 30,
        key_usages: vec!["digitalSignature".into()],
        extended_key_usages: vec!["clientAuth".into()],
    }
}

async fn rig(db: &TestDb) -> Rig {
    let dir = db.dir.join("certprov");
    std::fs::create_dir_all(&dir).unwrap();
    // The key file names Google's token endpoint; the configuration points at the simulator's.
    let (key_file, public) = service_account_key("https://oauth2.googleapis.com/token");
    let sim = ChromeSim::start(([127, 0, 0, 1], 0).into(), public)
        .await
        .unwrap();
    std::fs::write(dir.join("sa.json"), key_file).unwrap();
    let (ca_cert, ca_key) = certprov::ca::BuiltinCa::create_files(
        &dir,
        "Brevet Test Device CA",
        std::time::Duration::from_secs(86_400),
    )
    .unwrap();
    // step-ca set up as the guide says: a template copying the request, a year's maximum
    let stepca = FakeStepCa::start_with(stepca::Provisioner {
        template: stepca::Template::FromRequest,
        max_duration: std::time::Duration::from_secs(366 * 86_400),
    })
    .await
    .unwrap();
    std::fs::write(dir.join("provisioner.pem"), stepca.provisioner_key_pem()).unwrap();
    let mut config = CertProvConfig {
        enabled: true,
        instance_id: Some("adapter-a".into()),
        chrome_base_url: sim.base_url(),
        sign_poll_initial_ms: 0,
        backoff_base_ms: 0,
        max_attempts: 3,
        retry_budget_secs: 0,
        timeout_secs: 5,
        ..CertProvConfig::default()
    };
    config.auth.service_account_key = Some(dir.join("sa.json"));
    config.auth.token_url = Some(sim.token_url());
    config.pubsub.subscription = Some(SUBSCRIPTION.into());
    config.pubsub.endpoint = sim.base_url();
    config.profiles = BTreeMap::from([
        (
            "device_profile".into(),
            profile("CN={device.serialNumber},O=Brevet Test", &[]),
        ),
        (
            "user_profile".into(),
            profile("CN={user.email}", &["{user.email}"]),
        ),
    ]);
    config.ca_connections = BTreeMap::from([
        (
            "default_ca_config".into(),
            CaConnectionConfig::Builtin {
                certificate: ca_cert.clone(),
                private_key: ca_key,
                crl_url: Some(CRL_URL.into()),
            },
        ),
        (
            "step_ca".into(),
            CaConnectionConfig::StepCa {
                url: stepca.url(),
                provisioner: stepca::PROVISIONER.into(),
                key_id: stepca::KEY_ID.into(),
                provisioner_key: dir.join("provisioner.pem"),
                root_certificate: None,
            },
        ),
    ]);
    let ca = certs::from_pem(&std::fs::read_to_string(&ca_cert).unwrap()).unwrap();
    Rig {
        sim,
        stepca,
        store: db.store().await,
        config,
        ca,
    }
}

impl Rig {
    fn worker(&self, instance: &str) -> Parts {
        let mut config = self.config.clone();
        config.instance_id = Some(instance.into());
        certprov::build(&config, self.store.clone()).unwrap()
    }

    /// A replica of the deployment: no configured instance id, so the one kept in the store.
    fn replica(&self) -> Parts {
        let mut config = self.config.clone();
        config.instance_id = None;
        certprov::build(&config, self.store.clone()).unwrap()
    }

    /// Runs the adapter until nothing is due (no intake).
    async fn settle(&self, worker: &Parts) {
        while worker.adapter.run_once().await.unwrap() != Step::Idle {}
    }

    async fn stored(&self, name: &str) -> brevet::store::CertProcess {
        self.store.get_cert_process(name).await.unwrap().unwrap()
    }

    /// Pulls and drives until every message is acknowledged and nothing is due (bounded).
    async fn drive(&self, worker: &mut Parts) {
        for _ in 0..200 {
            let intake = worker.intake.as_mut().unwrap();
            intake.run_once().await.unwrap();
            while worker.adapter.run_once().await.unwrap() != Step::Idle {}
            let intake = worker.intake.as_mut().unwrap();
            intake.upkeep().await.unwrap();
            if intake.held() == 0 && self.sim.unacknowledged() == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the worker did not finish");
    }

    async fn state(&self, name: &str) -> CertState {
        self.store
            .get_cert_process(name)
            .await
            .unwrap()
            .unwrap()
            .state
    }

    fn issued(&self, name: &str) -> x509_cert::Certificate {
        let pem = self.sim.resource(name).unwrap().issued_certificate.unwrap();
        certs::from_pem(&pem).unwrap()
    }
}

fn spki(certificate: &x509_cert::Certificate) -> Vec<u8> {
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap()
}

fn failed(reason: &str) -> Verdict {
    Verdict::Failed(reason.into())
}

both_stores! {
    async fn issues_certificates_for_rsa_and_ec_keys(db: TestDb) {
        let rig = rig(&db).await;
        let ec = rig.sim.create_process(&NewProcess { binary: true, ..NewProcess::default() });
        let raw = rig.sim.create_process(&NewProcess { behaviour: Behaviour::RawEcdsa, ..NewProcess::default() });
        let rsa_user = rig.sim.create_process(&NewProcess {
            key: KeyType::Rsa, user: true, ca_reference: "step_ca".into(),
            profile_reference: "user_profile".into(), ..NewProcess::default()
        });
        let rsa_device = rig.sim.create_process(&NewProcess { key: KeyType::Rsa, ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;

        for name in [&ec, &raw, &rsa_user, &rsa_device] {
            assert_eq!(rig.sim.verdict(name), Verdict::Imported, "{name}");
            assert_eq!(rig.sim.sign_requests(name), 1, "{name}");
            assert_eq!(rig.sim.claimed_by(name).as_deref(), Some("adapter-a"));
            assert_eq!(rig.state(name).await, CertState::Done);
            let resource = rig.sim.resource(name).unwrap();
            let certificate = rig.issued(name);
            // byte-identical key, as the client demands
            assert_eq!(spki(&certificate), resource.subject_public_key_info);
            let stored = rig.store.get_cert_process(name).await.unwrap().unwrap();
            assert_eq!(stored.certificate_serial.unwrap(), certs::serial_hex(&certificate));
            // what the device signed and its signature make a valid PKCS#10 request
            let signed = resource.sign_data.unwrap();
            assert_eq!(stored.sign_data.unwrap(), signed);
            let request = x509_cert::request::CertReq {
                info: x509_cert::der::Decode::from_der(&signed).unwrap(),
                algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                    oid: if name == &rsa_user || name == &rsa_device {
                        x509_cert::der::oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION
                    } else {
                        x509_cert::der::oid::db::rfc5912::ECDSA_WITH_SHA_256
                    },
                    parameters: None,
                },
                signature: x509_cert::der::asn1::BitString::from_bytes(&stored.signature.unwrap()).unwrap(),
            };
            let pem = x509_cert::der::EncodePem::to_pem(&request, x509_cert::der::pem::LineEnding::LF).unwrap();
            verify_csr_pem(&pem).unwrap();
        }
        // built-in CA: issued by our CA with the profile's subject and clientAuth
        let certificate = rig.issued(&ec);
        chain::signed_by(&certificate, &rig.ca).unwrap();
        assert_eq!(certificate.tbs_certificate.subject.to_string(), "CN=SN000001,O=Brevet Test");
        // the profile asks for 30 days; the test CA lives one day, and no leaf outlives its CA
        assert_eq!(certificate.tbs_certificate.validity.not_after, rig.ca.tbs_certificate.validity.not_after);
        let eku = certs::raw_extension_value(&certificate, x509_cert::der::oid::db::rfc5280::ID_CE_EXT_KEY_USAGE).unwrap();
        assert_eq!(eku, [0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]);
        chain::signed_by(&rig.issued(&rsa_device), &rig.ca).unwrap();
        // step-ca: issued by its CA from our CSR, for the user's email
        let user_cert = rig.issued(&rsa_user);
        chain::signed_by(&user_cert, rig.stepca.ca_certificate()).unwrap();
        assert_eq!(user_cert.tbs_certificate.subject.to_string(), "CN=user3@example.com");
        assert_eq!(rig.stepca.issued(), 1);
        assert_eq!(rig.sim.unacknowledged(), 0);
        assert_eq!(rig.sim.tokens_granted(), 2, "one token per scope (Chrome, Pub/Sub), cached");
    }

    async fn every_failure_path_reports_a_reason(db: TestDb) {
        let rig = rig(&db).await;
        let bad = rig.sim.create_process(&NewProcess { behaviour: Behaviour::BadSignature, ..NewProcess::default() });
        let other = rig.sim.create_process(&NewProcess { key: KeyType::Rsa, behaviour: Behaviour::SignsOtherData, ..NewProcess::default() });
        let error = rig.sim.create_process(&NewProcess { behaviour: Behaviour::SigningError, ..NewProcess::default() });
        let no_email = rig.sim.create_process(&NewProcess { profile_reference: "user_profile".into(), ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        // Google checks the proof of possession itself and fails the process (spec §4.1): the
        // adapter records Google's reason and sends no setFailure of its own.
        for name in [&bad, &other] {
            assert_eq!(rig.sim.verdict(name), failed(brevet::sim::chrome::INVALID_SIGNATURE));
            assert_eq!(rig.sim.calls(Route::SetFailure, name), 0, "{name}");
            let reason = rig.stored(name).await.failure_message.unwrap();
            assert!(reason.starts_with("The requested SignData LRO failed because the corresponding certificate provisioning process is in failure state CERTIFICATE_PROVISIONING_RESULT_ERROR_INVALID_SIGNATURE with the following error message: The proof of possession signature is invalid. [operationId="), "{reason}");
        }
        assert_eq!(rig.sim.calls(Route::SetFailure, &error), 1);
        assert_eq!(rig.sim.verdict(&error), failed("The device could not sign the proof-of-possession request: The client failed to sign the data."));
        assert_eq!(rig.sim.verdict(&no_email), failed("the process has no user.email, which the profile needs"));
        assert_eq!(rig.sim.sign_requests(&no_email), 0, "no signData for a process we cannot certify");
        for name in [&bad, &other, &error, &no_email] {
            assert_eq!(rig.state(name).await, CertState::Failed);
            assert!(rig.sim.resource(name).unwrap().issued_certificate.is_none());
        }

        // the CA refuses, then the CA is down for longer than the retries
        let refused = rig.sim.create_process(&NewProcess { ca_reference: "step_ca".into(), ..NewProcess::default() });
        rig.stepca.fail_next(400, 1);
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&refused), failed("The certificate authority refused the request: injected fault"));
        let down = rig.sim.create_process(&NewProcess { ca_reference: "step_ca".into(), ..NewProcess::default() });
        rig.stepca.fail_next(503, 3);
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&down), failed("The certificate authority is unavailable; try again later"));
        assert_eq!(rig.stepca.issued(), 0);
        let stored = rig.store.get_cert_process(&down).await.unwrap().unwrap();
        assert_eq!(stored.failure_message.as_deref(), Some("The certificate authority is unavailable; try again later"));

        // operators see the reasons through the admin API, filtered by state
        let app = db.app().await;
        let token = app.admin_token().await;
        let listed = app.get("/admin/v1/cert-processes?state=failed", Some(&token)).await.json();
        let processes = listed["processes"].as_array().unwrap();
        assert_eq!(processes.len(), 6);
        assert_eq!(processes[0]["name"], down.as_str(), "newest first");
        assert_eq!(processes[0]["failureMessage"], "The certificate authority is unavailable; try again later");
        assert!(processes[0].get("process").is_none(), "no device or user data");
        let none = app.get("/admin/v1/cert-processes?state=done", Some(&token)).await.json();
        assert_eq!(none["processes"], json!([]));
        let bad = app.get("/admin/v1/cert-processes?state=finished", Some(&token)).await;
        assert_eq!(bad.status.as_u16(), 400);
        assert_eq!(app.get("/admin/v1/cert-processes", None).await.status.as_u16(), 401);
        let metrics = app.get("/metrics", None).await.text();
        assert!(metrics.lines().any(|l| l == r#"brevet_cert_processes{state="failed"} 6"#), "{metrics}");
        assert!(metrics.lines().any(|l| l == r#"brevet_cert_processes{state="signing"} 0"#), "{metrics}");
    }

    async fn a_device_that_never_signs_fails_at_the_deadline(db: TestDb) {
        let mut rig = rig(&db).await;
        rig.config.sign_deadline_secs = 1;
        // Polls wait by the worker's clock too: without a wait, a clock that never moves would
        // have the worker poll forever.
        rig.config.sign_poll_initial_ms = 500;
        let asleep = rig.sim.create_process(&NewProcess { behaviour: Behaviour::NeverSigns, ..NewProcess::default() });
        let clock = brevet::clock::Clock::manual(chrono::Utc::now());
        let mut worker = rig.worker("adapter-a").with_clock(clock.clone());
        worker.intake.as_mut().unwrap().run_once().await.unwrap();
        while worker.adapter.run_once().await.unwrap() != Step::Idle {}
        assert_eq!(rig.sim.calls(Route::Operation, &asleep), 0, "the first look is half a second away");
        clock.advance(std::time::Duration::from_millis(600));
        while worker.adapter.run_once().await.unwrap() != Step::Idle {}
        assert_eq!(rig.state(&asleep).await, CertState::Signing, "polled, no signature yet, not late");
        assert_eq!(rig.sim.calls(Route::Operation, &asleep), 1, "the operation was polled");
        // Past the deadline by the worker's clock.
        clock.advance(std::time::Duration::from_secs(1));
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&asleep), failed("The device did not answer the proof-of-possession request within 1 second"));
        assert_eq!(rig.sim.sign_requests(&asleep), 1);
    }

    async fn messages_are_held_until_their_process_ends(db: TestDb) {
        let rig = rig(&db).await;
        let asleep = rig.sim.create_process(&NewProcess { behaviour: Behaviour::NeverSigns, ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a");
        let intake = worker.intake.as_mut().unwrap();
        intake.run_once().await.unwrap();
        assert_eq!(rig.sim.ack_deadline_extensions(), 1, "deadline set on receipt");
        while worker.adapter.run_once().await.unwrap() != Step::Idle {}
        assert_eq!(rig.state(&asleep).await, CertState::Signing);
        let intake = worker.intake.as_mut().unwrap();
        intake.upkeep().await.unwrap();
        assert_eq!(rig.sim.ack_deadline_extensions(), 1, "not yet due for renewal");
        // 50 s later (renewal at two thirds of the 60 s deadline): extended, not acknowledged
        let later = std::time::Instant::now() + std::time::Duration::from_secs(50);
        intake.upkeep_at(later).await.unwrap();
        assert_eq!(rig.sim.ack_deadline_extensions(), 2);
        assert_eq!((intake.held(), rig.sim.unacknowledged()), (1, 1));
        intake.upkeep_at(later).await.unwrap();
        assert_eq!(rig.sim.ack_deadline_extensions(), 2, "the next renewal is 40 s later");
    }

    async fn processes_that_are_not_ours_are_left_alone(db: TestDb) {
        let rig = rig(&db).await;
        let taken = rig.sim.create_process(&NewProcess { behaviour: Behaviour::ClaimTaken, ..NewProcess::default() });
        let foreign = rig.sim.create_process(&NewProcess { ca_reference: "someone_elses_ca".into(), ..NewProcess::default() });
        rig.sim.publish_raw(b"\xff\xfe not a notification");
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        // lost race: stop quietly, no signData, no setFailure on someone else's process
        assert_eq!(rig.sim.claimed_by(&taken).as_deref(), Some("another-adapter"));
        assert_eq!(rig.sim.calls(Route::Claim, &taken), 1);
        assert_eq!(rig.sim.sign_requests(&taken), 0);
        assert_eq!(rig.sim.calls(Route::SetFailure, &taken), 0);
        assert_eq!(rig.sim.verdict(&taken), Verdict::Pending);
        assert_eq!(rig.state(&taken).await, CertState::Skipped);
        assert_eq!(
            rig.stored(&taken).await.last_error.as_deref(),
            Some("claimed by another deployment (FAILED_PRECONDITION: The process was claimed by another instance.)"),
            "operators see why"
        );
        // unknown CA connection: never claimed
        assert_eq!(rig.sim.calls(Route::Claim, &foreign), 0);
        assert_eq!(rig.sim.claimed_by(&foreign), None);
        assert_eq!(rig.state(&foreign).await, CertState::Skipped);
        assert_eq!(rig.sim.unacknowledged(), 0, "all three messages acknowledged");
    }

    async fn transient_errors_are_retried(db: TestDb) {
        let rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess::default());
        rig.sim.fail_next(Route::Get, 503, 2);
        rig.sim.fail_next(Route::Claim, 429, 1);
        rig.sim.fail_next(Route::Upload, 500, 2);
        rig.sim.fail_next(Route::Pull, 503, 1);
        let mut worker = rig.worker("adapter-a");
        assert!(worker.intake.as_mut().unwrap().run_once().await.is_err(), "pull failure reported");
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        assert_eq!(rig.sim.sign_requests(&name), 1);
        assert_eq!(rig.sim.calls(Route::Upload, &name), 3);
        // what the worker's /metrics says of it
        let metrics = worker.metrics.encode(&rig.store).await.unwrap();
        for line in [
            r#"brevet_certprov_calls_total{service="chrome",call="get",outcome="transient"} 2"#,
            r#"brevet_certprov_calls_total{service="chrome",call="claim",outcome="transient"} 1"#,
            r#"brevet_certprov_calls_total{service="chrome",call="claim",outcome="ok"} 1"#,
            r#"brevet_certprov_calls_total{service="chrome",call="uploadCertificate",outcome="transient"} 2"#,
            r#"brevet_certprov_calls_total{service="chrome",call="uploadCertificate",outcome="ok"} 1"#,
            r#"brevet_certprov_calls_total{service="pubsub",call="pull",outcome="transient"} 1"#,
            r#"brevet_certprov_calls_total{service="ca",call="issue",outcome="ok"} 1"#,
            r#"brevet_certprov_call_duration_seconds_count{service="chrome",call="signData"} 1"#,
            r#"brevet_certprov_retries_total{step="received"} 3"#,
            r#"brevet_certprov_retries_total{step="uploading"} 2"#,
            r#"brevet_certprov_token_failures_total 0"#,
            r#"brevet_certprov_held_messages 0"#,
            r#"brevet_cert_processes{state="done"} 1"#,
            r#"brevet_cert_processes{state="signing"} 0"#,
            r#"brevet_cert_process_oldest_unfinished_seconds 0"#,
        ] {
            assert!(metrics.lines().any(|l| l == line), "{line} missing from\n{metrics}");
        }
    }

    async fn a_restart_never_signs_twice_nor_issues_twice(db: TestDb) {
        let rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess { key: KeyType::Rsa, ca_reference: "step_ca".into(), ..NewProcess::default() });
        let mut first = rig.worker("adapter-a");
        first.intake.as_mut().unwrap().run_once().await.unwrap();
        assert_eq!(first.adapter.run_once().await.unwrap(), Step::Worked(name.clone(), CertState::Signing));
        assert_eq!(rig.sim.sign_requests(&name), 1);
        // crash: the worker and its held message are gone; Pub/Sub redelivers
        drop(first);
        rig.sim.expire_ack_deadlines();
        // and as if it died after signData reached Google but before the operation was recorded
        let mut tx = rig.store.begin().await.unwrap();
        let mut row = cert_processes::claim(&mut tx, "test", std::time::Duration::from_secs(5), chrono::Utc::now()).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        row.operation_name = None;
        assert!(cert_processes::save(&mut rig.store.db(), &row, "test", Hold::Release).await.unwrap());

        let mut second = rig.worker("adapter-a");
        rig.drive(&mut second).await;
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        assert_eq!(rig.sim.sign_requests(&name), 1, "signData once across the restart");
        assert_eq!(rig.stepca.issued(), 1, "one certificate");

        // a crash after issuing: the recorded certificate is uploaded, not a new one issued
        let late = rig.sim.create_process(&NewProcess { ca_reference: "step_ca".into(), ..NewProcess::default() });
        rig.sim.fail_next(Route::Upload, 503, 1);
        let mut third = rig.worker("adapter-a");
        third.intake.as_mut().unwrap().run_once().await.unwrap();
        assert_eq!(third.adapter.run_once().await.unwrap(), Step::Worked(late.clone(), CertState::Signing));
        assert_eq!(third.adapter.run_once().await.unwrap(), Step::Worked(late.clone(), CertState::Uploading));
        let stored = rig.store.get_cert_process(&late).await.unwrap().unwrap();
        assert_eq!(stored.last_error.as_deref(), Some("503 injected fault"));
        drop(third);
        rig.sim.expire_ack_deadlines();
        let mut fourth = rig.worker("adapter-a");
        rig.drive(&mut fourth).await;
        assert_eq!(rig.sim.verdict(&late), Verdict::Imported);
        assert_eq!(rig.stepca.issued(), 2, "one more certificate, for the second process only");
        let stored = rig.store.get_cert_process(&late).await.unwrap().unwrap();
        assert_eq!(Some(stored.certificate_pem.unwrap()), rig.sim.resource(&late).unwrap().issued_certificate);
    }

    async fn duplicate_deliveries_make_one_process(db: TestDb) {
        let rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess { copies: 3, ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        assert_eq!(rig.sim.sign_requests(&name), 1);
        assert_eq!(rig.sim.calls(Route::Claim, &name), 1);
        assert_eq!(rig.store.list_cert_processes(None, 10).await.unwrap().len(), 1);
        // a late duplicate of a finished process is acknowledged at once
        rig.sim.create_process(&NewProcess::default());
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.unacknowledged(), 0);
    }

    async fn two_workers_share_the_load(db: TestDb) {
        let rig = rig(&db).await;
        let names: Vec<String> = (0..6)
            .map(|i| rig.sim.create_process(&NewProcess { key: if i % 2 == 0 { KeyType::Ec } else { KeyType::Rsa }, ..NewProcess::default() }))
            .collect();
        let mut a = rig.worker("adapter-a");
        let mut b = rig.worker("adapter-b");
        tokio::join!(rig.drive(&mut a), rig.drive(&mut b));
        for name in &names {
            assert_eq!(rig.sim.verdict(name), Verdict::Imported, "{name}");
            assert_eq!(rig.sim.sign_requests(name), 1, "{name}");
            assert_eq!(rig.sim.calls(Route::Claim, name), 1, "{name}: claimed once");
        }
    }

    async fn the_push_endpoint_records_processes(db: TestDb) {
        let mut config = db.config();
        config.certprov.pubsub.push_token = Some("push-secret".to_owned().into());
        let app = db.app_with(config).await;
        let envelope = |data: &[u8]| json!({
            "message": { "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data),
                         "messageId": "1", "publishTime": "2026-11-28T10:00:00Z" },
            "subscription": "projects/p/subscriptions/push",
        });
        let event = brevet::certprov::wire::ProcessCreated { process_id: "p1".into(), customer_id: "C01".into() };
        let wrong = app.post("/certprov/v1/pubsub/push?token=nope", &envelope(&event.to_protobuf()), None).await;
        assert_eq!(wrong.status.as_u16(), 403);
        assert_eq!(wrong.json()["error"]["message"], "the push request is not authenticated");
        assert!(app.store.list_cert_processes(None, 10).await.unwrap().is_empty());
        let ok = app.post("/certprov/v1/pubsub/push?token=push-secret", &envelope(&event.to_protobuf()), None).await;
        assert_eq!(ok.status.as_u16(), 204);
        let again = app.post("/certprov/v1/pubsub/push?token=push-secret", &envelope(&event.to_json()), None).await;
        assert_eq!(again.status.as_u16(), 204);
        let garbage = app.post("/certprov/v1/pubsub/push?token=push-secret", &envelope(b"junk"), None).await;
        assert_eq!(garbage.status.as_u16(), 204, "acknowledged: redelivery would not help");
        let stored = app.store.list_cert_processes(None, 10).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, "customers/C01/certificateProvisioningProcesses/p1");
        assert_eq!(stored[0].state, CertState::Received);
        // without a configured token the route does not exist
        let plain = db.app().await;
        assert_eq!(plain.post("/certprov/v1/pubsub/push?token=x", &envelope(b"x"), None).await.status.as_u16(), 404);
    }

    async fn the_push_endpoint_checks_googles_oidc_token(db: TestDb) {
        let rig = rig(&db).await;
        let audience = "https://brevet.example/certprov/v1/pubsub/push";
        let mut config = db.config();
        config.certprov.pubsub.push_audience = Some(audience.into());
        config.certprov.pubsub.push_service_account = Some(brevet::sim::chrome::PUSH_SERVICE_ACCOUNT.into());
        config.certprov.pubsub.google_jwks_url = rig.sim.jwks_url();
        let app = db.app_with(config).await;
        let event = brevet::certprov::wire::ProcessCreated { process_id: "p7".into(), customer_id: "C01".into() };
        let body = json!({ "message": { "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, event.to_json()) } });
        let push = |token: Option<String>| {
            let body = body.to_string();
            let app = &app;
            async move {
                let mut request = axum::http::Request::post("/certprov/v1/pubsub/push").header("content-type", "application/json");
                if let Some(token) = token {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
                app.send(request.body(axum::body::Body::from(body)).unwrap()).await.status.as_u16()
            }
        };
        let sa = brevet::sim::chrome::PUSH_SERVICE_ACCOUNT;
        assert_eq!(push(None).await, 403, "no token");
        assert_eq!(push(Some("not.a.jwt".into())).await, 403);
        assert_eq!(push(Some(rig.sim.push_token("https://elsewhere.example/", sa, 300))).await, 403, "other audience");
        assert_eq!(push(Some(rig.sim.push_token(audience, "someone@example.com", 300))).await, 403, "other account");
        assert_eq!(push(Some(rig.sim.push_token(audience, sa, -120))).await, 403, "expired");
        let other_sim = ChromeSim::start(([127, 0, 0, 1], 0).into(), rig.sim.service_account().clone()).await.unwrap();
        assert_eq!(push(Some(other_sim.push_token(audience, sa, 300))).await, 403, "signed by another key with the same kid");
        assert!(app.store.list_cert_processes(None, 10).await.unwrap().is_empty(), "nothing recorded");
        assert_eq!(push(Some(rig.sim.push_token(audience, sa, 300))).await, 204);
        let stored = app.store.list_cert_processes(None, 10).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, "customers/C01/certificateProvisioningProcesses/p7");
    }

    async fn a_worker_killed_mid_flow_is_replaced_without_signing_twice(db: TestDb) {
        let sim_dir = db.dir.join("sim");
        let sim_dir_arg = sim_dir.display().to_string();
        // devices take 2 s to sign, so the first worker dies with every process waiting
        let mut sim = Server::spawn_args(brevet(&db.dir), &["sim", "chrome", "--dir", &sim_dir_arg, "--processes", "4", "--timeout-secs", "90", "--sign-delay-ms", "2000"]);
        let ready = sim.wait_for_log(|line| line["worker_config"].is_string());
        let config = ready["worker_config"].as_str().unwrap().to_owned();
        // two pods of one deployment: different host names, one callerInstanceId from the store
        let worker = |db: &TestDb, pod: &str| {
            let mut command = brevet(&db.dir);
            command.arg("--config").arg(&config).env("BREVET_DATABASE_URL", db.url.expose()).env("HOSTNAME", pod);
            Server::spawn(command, "worker")
        };
        let mut first = worker(&db, "worker-7f9c-a");
        for _ in 0..4 {
            first.wait_for_log(|line| line["message"] == "proof of possession requested from the device");
        }
        first.kill_hard();
        let store = db.store().await;
        let waiting = store.list_cert_processes(Some(CertState::Signing), 10).await.unwrap();
        assert_eq!(waiting.len(), 4, "all four were waiting for their devices when the worker died");
        // the replacement waits out a lease the dead worker may still hold (10 s in the simulator's
        // configuration), then finishes every process from the store
        let _second = worker(&db, "worker-7f9c-b");
        let (code, out) = sim.wait_exit(std::time::Duration::from_secs(120));
        // the simulator's "ok" includes: imported, chained to the CA, and signData exactly once
        assert_eq!(code, Some(0), "{out:?}");
        assert_eq!(out.last().map(String::as_str), Some("4 of 4 processes provisioned"), "{out:?}");
        let done = store.list_cert_processes(Some(CertState::Done), 10).await.unwrap();
        assert_eq!(done.len(), 4);
    }

    async fn brevet_sim_chrome_drives_the_worker_binary(db: TestDb) {
        let sim_dir = db.dir.join("sim");
        let sim_dir_arg = sim_dir.display().to_string();
        let mut sim = Server::spawn_args(brevet(&db.dir), &["sim", "chrome", "--dir", &sim_dir_arg, "--processes", "4", "--timeout-secs", "60"]);
        let ready = sim.wait_for_log(|line| line["worker_config"].is_string());
        let config = ready["worker_config"].as_str().unwrap().to_owned();
        let mut command = brevet(&db.dir);
        command.arg("--config").arg(&config).env("BREVET_DATABASE_URL", db.url.expose());
        let mut worker = Server::spawn(command, "worker");
        worker.wait_for_log(|line| line["message"] == "certificate-provisioning adapter started");
        let (code, out) = sim.wait_exit(std::time::Duration::from_secs(90));
        assert_eq!(code, Some(0), "{out:?}");
        assert_eq!(out.last().map(String::as_str), Some("4 of 4 processes provisioned"), "{out:?}");
        assert_eq!(out.iter().filter(|l| l.starts_with("ok ")).count(), 4);
        let (exit, log) = worker.terminate();
        assert_eq!(exit, Some(0), "the worker stops cleanly on SIGTERM");
        let log = log.join("\n");
        assert!(!log.contains("ya29.") && !log.contains("PRIVATE KEY"), "no token or key in the log");
        let store = db.store().await;
        let stored = store.list_cert_processes(None, 10).await.unwrap();
        assert_eq!(stored.len(), 4);
        assert!(stored.iter().all(|p| p.state == CertState::Done));
    }
}

/// Moves a process's lease to another owner for an hour, as if another replica had taken it.
async fn steal_lease(store: &SharedStore, name: &str) {
    use brevet::store::sql::query;
    use brevet::store::Exec;
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let moved = store
        .db()
        .execute(
            query("update cert_processes set lease_owner = 'intruder', lease_expires_at = $2 where name = $1")
                .bind(name)
                .bind(until),
        )
        .await
        .unwrap();
    assert_eq!(moved, 1);
}

both_stores! {
    async fn a_step_longer_than_its_lease_keeps_it_and_signs_once(db: TestDb) {
        let mut rig = rig(&db).await;
        rig.config.lease_secs = 3;
        rig.config.timeout_secs = 2;
        // after its step the process is not due again for half a second: the other replica may
        // not take it up while the first is still returning
        rig.config.sign_poll_initial_ms = 500;
        let name = rig.sim.create_process(&NewProcess::default());
        let mut a = rig.replica();
        let b = rig.replica();
        a.intake.as_mut().unwrap().run_once().await.unwrap();
        // signData fails once: the process waits in Signing with nothing sent
        rig.sim.fail_next(Route::SignData, 503, 1);
        assert_eq!(a.adapter.run_once().await.unwrap(), Step::Worked(name.clone(), CertState::Signing));
        assert_eq!(rig.sim.sign_requests(&name), 0);
        // the next step looks at the process and sends signData, each call 1.8 s in the network:
        // longer together than the 3 s lease
        rig.sim.delay_next(Route::Get, std::time::Duration::from_millis(1800), 1);
        rig.sim.delay_next(Route::SignData, std::time::Duration::from_millis(1800), 1);
        let finished = std::sync::atomic::AtomicBool::new(false);
        let (first, others) = tokio::join!(
            async {
                let step = a.adapter.run_once().await.unwrap();
                finished.store(true, std::sync::atomic::Ordering::SeqCst);
                step
            },
            async {
                // the first replica has taken the process by then (its look is 1.8 s long)
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let mut taken = Vec::new();
                while !finished.load(std::sync::atomic::Ordering::SeqCst) {
                    let step = b.adapter.run_once().await.unwrap();
                    if step != Step::Idle {
                        taken.push(step);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                taken
            }
        );
        assert_eq!(first, Step::Worked(name.clone(), CertState::Signing));
        assert_eq!(others, vec![], "the other replica never got the process while a call was in flight");
        assert_eq!(rig.sim.sign_requests(&name), 1);
        rig.drive(&mut a).await;
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        assert_eq!(rig.sim.sign_requests(&name), 1);
    }

    async fn a_worker_that_lost_its_lease_makes_no_call(db: TestDb) {
        let mut rig = rig(&db).await;
        rig.config.lease_secs = 3;
        rig.config.timeout_secs = 2;
        let name = rig.sim.create_process(&NewProcess::default());
        let mut a = rig.replica();
        a.intake.as_mut().unwrap().run_once().await.unwrap();
        rig.sim.fail_next(Route::SignData, 503, 1);
        assert_eq!(a.adapter.run_once().await.unwrap(), Step::Worked(name.clone(), CertState::Signing));
        // while the worker's look at the process is in flight, someone else takes the row
        rig.sim.delay_next(Route::Get, std::time::Duration::from_millis(1500), 1);
        let (step, ()) = tokio::join!(a.adapter.run_once(), async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            steal_lease(&rig.store, &name).await;
        });
        assert_eq!(step.unwrap(), Step::LostLease(name.clone()));
        assert_eq!(rig.sim.sign_requests(&name), 0, "no signData without a confirmed lease");
        assert_eq!(rig.sim.calls(Route::SetFailure, &name), 0);
        assert_eq!(rig.state(&name).await, CertState::Signing, "left as the new owner finds it");
    }

    async fn a_signature_that_arrived_during_an_outage_is_taken(db: TestDb) {
        let mut rig = rig(&db).await;
        rig.config.sign_deadline_secs = 60;
        rig.config.sign_poll_initial_ms = 1000;
        let name = rig.sim.create_process(&NewProcess::default());
        let clock = brevet::clock::Clock::manual(chrono::Utc::now());
        let mut worker = rig.worker("adapter-a").with_clock(clock.clone());
        worker.intake.as_mut().unwrap().run_once().await.unwrap();
        rig.settle(&worker).await;
        assert_eq!(rig.state(&name).await, CertState::Signing);
        assert_eq!(rig.sim.calls(Route::Operation, &name), 0);
        // the worker was down for ten minutes, far past the deadline; the device signed meanwhile
        clock.advance(std::time::Duration::from_secs(600));
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        assert_eq!(rig.sim.calls(Route::Operation, &name), 1, "one look, which found the signature");
    }

    async fn a_vanished_operation_is_looked_up_on_the_process(db: TestDb) {
        let rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess::default());
        rig.sim.fail_next(Route::Operation, 404, 1);
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        assert_eq!(rig.sim.sign_requests(&name), 1);
        assert_eq!(rig.sim.calls(Route::Operation, &name), 1);
    }

    async fn retries_are_budgeted_in_time_and_start_over_on_progress(db: TestDb) {
        let mut rig = rig(&db).await;
        rig.config.retry_budget_secs = 100;
        rig.config.backoff_base_ms = 1000;
        rig.config.sign_poll_initial_ms = 1000;
        let clock = brevet::clock::Clock::manual(chrono::Utc::now());
        let mut worker = rig.worker("adapter-a").with_clock(clock.clone());
        let minute = std::time::Duration::from_secs(60);
        let asleep = rig.sim.create_process(&NewProcess { behaviour: Behaviour::NeverSigns, ..NewProcess::default() });
        worker.intake.as_mut().unwrap().run_once().await.unwrap();
        rig.settle(&worker).await;
        // five failed polls, each followed by a good one: more failures than max_attempts (3),
        // but never a run of them
        for round in 0..5 {
            rig.sim.fail_next(Route::Operation, 503, 1);
            clock.advance(minute);
            rig.settle(&worker).await;
            assert_eq!(rig.stored(&asleep).await.attempts, 1, "round {round}: failed once");
            clock.advance(minute);
            rig.settle(&worker).await;
            let stored = rig.stored(&asleep).await;
            assert_eq!((stored.state, stored.attempts, stored.failing_since), (CertState::Signing, 0, None), "round {round}: progress");
        }
        rig.sim.set_behaviour(&asleep, Behaviour::Honest);
        clock.advance(minute);
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&asleep), Verdict::Imported);

        // an unbroken run of failures gives up once it has lasted the budget, not at 3 tries
        let late = rig.sim.create_process(&NewProcess { behaviour: Behaviour::NeverSigns, ..NewProcess::default() });
        worker.intake.as_mut().unwrap().run_once().await.unwrap();
        rig.settle(&worker).await;
        rig.sim.fail_next(Route::Operation, 503, 1000);
        let mut rounds = 0;
        while rig.state(&late).await == CertState::Signing && rounds < 20 {
            clock.advance(std::time::Duration::from_secs(30));
            rig.settle(&worker).await;
            rounds += 1;
        }
        assert_eq!(rig.sim.verdict(&late), failed("Google kept failing while the device was signing"));
        // failures at 30, 60, 90, 120 and 150 s: the fifth is the first 100 s after the first
        assert_eq!(rig.sim.calls(Route::Operation, &late), 5);
    }

    async fn a_replacement_replica_claims_as_the_same_deployment(db: TestDb) {
        let rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess::default());
        let mut first = rig.replica();
        first.intake.as_mut().unwrap().run_once().await.unwrap();
        // the claim lands at Google, but the pod dies before it hears so
        rig.sim.lose_answers(Route::Claim, 1);
        assert_eq!(first.adapter.run_once().await.unwrap(), Step::Worked(name.clone(), CertState::Received));
        let claimed = rig.sim.claimed_by(&name).unwrap();
        drop(first);
        rig.sim.expire_ack_deadlines();
        let mut second = rig.replica();
        rig.drive(&mut second).await;
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        assert_eq!(rig.sim.calls(Route::Claim, &name), 2, "claimed again, idempotently");
        assert_eq!(rig.sim.claimed_by(&name), Some(claimed.clone()));
        assert_eq!(rig.sim.calls(Route::SetFailure, &name), 0);
        // the id is the deployment's, kept in the store, not a host name
        let stored = brevet::store::settings::get_or_init(&mut rig.store.db(), certprov::adapter::INSTANCE_ID_SETTING, "unused").await.unwrap();
        assert_eq!(claimed, stored);
        assert!(claimed.starts_with("brevet-") && claimed.len() == 39, "{claimed}");
    }

    async fn the_certificate_says_what_the_device_signed(db: TestDb) {
        let mut rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess { behaviour: Behaviour::NeverSigns, ..NewProcess::default() });
        let mut first = rig.worker("adapter-a");
        first.intake.as_mut().unwrap().run_once().await.unwrap();
        rig.settle(&first).await;
        assert_eq!(rig.state(&name).await, CertState::Signing);
        // staff edit the profile while the device is asleep; a new worker starts with it
        rig.config.profiles.insert("device_profile".into(), profile("CN=Edited,O=Elsewhere", &["x@example.com"]));
        drop(first);
        rig.sim.expire_ack_deadlines();
        let mut second = rig.worker("adapter-a");
        rig.sim.set_behaviour(&name, Behaviour::Honest);
        rig.drive(&mut second).await;
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        let certificate = rig.issued(&name);
        assert_eq!(certificate.tbs_certificate.subject.to_string(), "CN=SN000001,O=Brevet Test");
        let signed: x509_cert::request::CertReqInfo = x509_cert::der::Decode::from_der(&rig.sim.resource(&name).unwrap().sign_data.unwrap()).unwrap();
        assert_eq!(signed.subject, certificate.tbs_certificate.subject);
        assert!(certs::raw_extension_value(&certificate, x509_cert::der::oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME).is_none(), "no SAN the device did not sign");
    }

    async fn an_upload_whose_answers_were_lost_is_found_done(db: TestDb) {
        let rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess::default());
        // the first upload lands; it and every retry answer 503
        rig.sim.lose_answers(Route::Upload, 3);
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.calls(Route::Upload, &name), 3);
        assert_eq!(rig.sim.verdict(&name), Verdict::Imported);
        assert_eq!(rig.state(&name).await, CertState::Done);
        assert_eq!(rig.sim.calls(Route::SetFailure, &name), 0);
    }

    async fn a_process_someone_else_drives_is_left_alone(db: TestDb) {
        let rig = rig(&db).await;
        // claimed under our own instance id, and signData sent with bytes we never recorded
        let name = rig.sim.create_process(&NewProcess { driven_by: Some("adapter-a".into()), ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        assert_eq!(rig.state(&name).await, CertState::Skipped);
        assert_eq!(
            rig.stored(&name).await.last_error.as_deref(),
            Some("another adapter already asked the device to sign; the process is not ours to drive")
        );
        assert_eq!(rig.sim.calls(Route::Claim, &name), 0);
        assert_eq!(rig.sim.calls(Route::SetFailure, &name), 0);
        assert_eq!(rig.sim.sign_requests(&name), 1, "only the other adapter's");
        assert_eq!(rig.sim.verdict(&name), Verdict::Pending);
    }

    async fn a_revoked_token_is_replaced_once(db: TestDb) {
        let rig = rig(&db).await;
        let first = rig.sim.create_process(&NewProcess::default());
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&first), Verdict::Imported);
        assert_eq!(rig.sim.tokens_granted(), 2);
        rig.sim.revoke_tokens();
        let second = rig.sim.create_process(&NewProcess::default());
        rig.drive(&mut worker).await;
        assert_eq!(rig.sim.verdict(&second), Verdict::Imported);
        assert_eq!(rig.sim.tokens_granted(), 4, "one new token per scope, fetched once");
        assert_eq!(rig.stored(&second).await.last_error, None);
    }

    async fn the_signing_operation_starts_with_signdata(db: TestDb) {
        let rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess { behaviour: Behaviour::NeverSigns, ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a");
        worker.intake.as_mut().unwrap().run_once().await.unwrap();
        rig.settle(&worker).await;
        let operation = rig.stored(&name).await.operation_name.unwrap();
        let tokens = brevet::certprov::auth::ServiceAccount::load(&db.dir.join("certprov/sa.json"), Some(&rig.sim.token_url()), None, reqwest::Client::new()).unwrap();
        let chrome = brevet::certprov::chrome::ChromeClient::new(&rig.sim.base_url(), std::sync::Arc::new(tokens), std::time::Duration::from_secs(5), Default::default()).unwrap();
        let answer = chrome.get_operation(&name, &operation).await.unwrap();
        assert!(!answer.done);
        let started = answer.metadata.unwrap()["startTime"].as_str().unwrap().to_owned();
        let created = rig.sim.resource(&name).unwrap().start_time;
        assert!(started > created, "the operation started at signData ({started}), after the process ({created})");
    }

    async fn step_ca_issues_what_the_profile_says_or_is_caught(db: TestDb) {
        let mut rig = rig(&db).await;
        // a second step-ca as `step ca init` leaves it: default template, 24 hours at most
        let plain = FakeStepCa::start().await.unwrap();
        let key = db.dir.join("certprov/plain-provisioner.pem");
        std::fs::write(&key, plain.provisioner_key_pem()).unwrap();
        rig.config.ca_connections.insert("plain_step_ca".into(), CaConnectionConfig::StepCa {
            url: plain.url(), provisioner: stepca::PROVISIONER.into(), key_id: stepca::KEY_ID.into(),
            provisioner_key: key, root_certificate: None,
        });
        rig.config.profiles.insert("day_profile".into(), ProfileConfig { validity_days: 1, ..profile("CN={user.email}", &["{user.email}"]) });
        let user = |key, ca: &str, profile: &str| NewProcess { key, user: true, ca_reference: ca.into(), profile_reference: profile.into(), ..NewProcess::default() };
        let month = rig.sim.create_process(&user(KeyType::Ec, "plain_step_ca", "user_profile"));
        let day = rig.sim.create_process(&user(KeyType::Ec, "plain_step_ca", "day_profile"));
        let good = rig.sim.create_process(&user(KeyType::Rsa, "step_ca", "user_profile"));
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        // the profile's 30 days are asked for, and step-ca's default maximum refuses them
        assert_eq!(rig.sim.verdict(&month), failed("The certificate authority refused the request: requested duration of 720h is more than the authorized maximum certificate duration of 24h"));
        // one day passes, but the default template adds serverAuth: caught before upload
        assert_eq!(rig.sim.verdict(&day), failed("The certificate authority issued a certificate that does not match the profile: extended key usage not as requested"));
        assert_eq!(plain.issued(), 1);
        // with a template that copies the request, the certificate is the profile's, for its 30 days
        assert_eq!(rig.sim.verdict(&good), Verdict::Imported);
        let certificate = rig.issued(&good);
        let validity = &certificate.tbs_certificate.validity;
        let lifetime = validity.not_after.to_system_time().duration_since(validity.not_before.to_system_time()).unwrap();
        assert_eq!(lifetime, std::time::Duration::from_secs(30 * 86_400));
        let eku = certs::raw_extension_value(&certificate, x509_cert::der::oid::db::rfc5280::ID_CE_EXT_KEY_USAGE).unwrap();
        assert_eq!(eku, [0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02], "clientAuth only");
        let ku = certs::raw_extension_value(&certificate, x509_cert::der::oid::db::rfc5280::ID_CE_KEY_USAGE).unwrap();
        assert_eq!(ku, [0x03, 0x02, 0x07, 0x80], "digitalSignature only, though the key is RSA");
    }

    async fn a_revoked_device_certificate_is_in_the_published_crl(db: TestDb) {
        let rig = rig(&db).await;
        let name = rig.sim.create_process(&NewProcess::default());
        let other = rig.sim.create_process(&NewProcess { ca_reference: "step_ca".into(), ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        let certificate = rig.issued(&name);
        let point = certs::raw_extension_value(&certificate, x509_cert::der::oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS).unwrap();
        assert!(point.windows(CRL_URL.len()).any(|w| w == CRL_URL.as_bytes()), "the certificate names the CRL");
        let serial = certs::serial_hex(&certificate);
        let mut config = db.config();
        config.certprov = rig.config.clone();
        let app = db.app_with(config).await;
        let token = app.admin_token().await;
        let path = "/certprov/v1/crl/default_ca_config";
        assert_eq!(app.get(path, None).await.status.as_u16(), 404, "nothing published yet");
        assert_eq!(worker.adapter.publish_crls().await.unwrap(), 1, "an empty CRL for the built-in CA");
        assert_eq!(worker.adapter.publish_crls().await.unwrap(), 0, "still fresh");

        let revoke = |serial: String, body: serde_json::Value| {
            let (app, token) = (&app, &token);
            async move { app.post(&format!("/admin/v1/device-certificates/{serial}/revoke"), &body, Some(token)).await }
        };
        let first = revoke(serial.to_lowercase(), json!({ "reason": "keyCompromise" })).await;
        assert_eq!(first.status.as_u16(), 200, "{}", first.text());
        let view = first.json();
        assert_eq!((view["serial"].as_str(), view["caConnection"].as_str(), view["reason"].as_str()), (Some(serial.as_str()), Some("default_ca_config"), Some("keyCompromise")));
        let again = revoke(serial.clone(), json!({})).await.json();
        assert_eq!((again["revokedAt"].clone(), again["reason"].clone()), (view["revokedAt"].clone(), view["reason"].clone()), "revoking again changes nothing");
        assert_eq!(revoke("ABCDEF".into(), json!({})).await.status.as_u16(), 404);
        assert_eq!(revoke(serial.clone(), json!({ "reason": "whim" })).await.status.as_u16(), 400);
        let stepca_serial = rig.stored(&other).await.certificate_serial.unwrap();
        let refused = revoke(stepca_serial, json!({})).await;
        assert_eq!(refused.status.as_u16(), 409);
        assert!(refused.json()["error"]["message"].as_str().unwrap().contains("revoke it at that CA"));
        let audit = app.get("/admin/v1/audit", Some(&token)).await.json();
        assert_eq!(audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "device_certificate.revoke").count(), 1);

        assert_eq!(worker.adapter.publish_crls().await.unwrap(), 1, "a revocation newer than the CRL");
        let crl = app.get(path, None).await;
        assert_eq!(crl.status.as_u16(), 200);
        assert_eq!(crl.headers["content-type"], "application/pkix-crl");
        // openssl, not our parser, checks it: signed by the CA, listing the serial and its reason
        let dir = db.dir.join("crl-check");
        std::fs::create_dir_all(&dir).unwrap();
        crate::support::tools::require("openssl", "openssl");
        std::fs::write(dir.join("crl.der"), &crl.body).unwrap();
        std::fs::write(dir.join("ca.pem"), certs::to_pem(&rig.ca).unwrap()).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-noout", "-text"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let (text, verdict) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && verdict.contains("verify OK"), "{verdict}");
        assert!(text.contains(&format!("Serial Number: {serial}")), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Version 2") && text.contains("X509v3 CRL Number"), "{text}");
        assert_eq!(app.get("/certprov/v1/crl/step_ca", None).await.status.as_u16(), 404, "step-ca publishes its own");
    }

    async fn an_est_server_issues_through_simpleenroll(db: TestDb) {
        use brevet::sim::est::{self, FakeEst};
        let mut rig = rig(&db).await;
        let server = FakeEst::start().await.unwrap();
        let dir = db.dir.join("certprov");
        std::fs::write(dir.join("est-password"), format!("{}\n", est::PASSWORD)).unwrap();
        std::fs::write(dir.join("est-wrong"), "not the password").unwrap();
        let connection = |password: &str| CaConnectionConfig::Est {
            url: server.url(), username: Some(est::USER.into()), password_file: Some(dir.join(password)),
            root_certificate: None, client_identity: None,
        };
        rig.config.ca_connections.insert("est_ca".into(), connection("est-password"));
        rig.config.ca_connections.insert("est_wrong".into(), connection("est-wrong"));
        let rsa_user = rig.sim.create_process(&NewProcess { key: KeyType::Rsa, user: true, ca_reference: "est_ca".into(), profile_reference: "user_profile".into(), ..NewProcess::default() });
        let ec_device = rig.sim.create_process(&NewProcess { ca_reference: "est_ca".into(), ..NewProcess::default() });
        let refused = rig.sim.create_process(&NewProcess { ca_reference: "est_wrong".into(), ..NewProcess::default() });
        // the first enrollment is held for approval (202), and issued when asked again
        server.hold_next(1);
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        for name in [&rsa_user, &ec_device] {
            assert_eq!(rig.sim.verdict(name), Verdict::Imported, "{name}");
            chain::signed_by(&rig.issued(name), server.ca_certificate()).unwrap();
        }
        assert_eq!(rig.issued(&rsa_user).tbs_certificate.subject.to_string(), "CN=user1@example.com");
        assert_eq!(server.issued(), 2);
        assert_eq!(rig.sim.verdict(&refused), failed("The certificate authority refused the request: 401 authentication required"));
        let metrics = worker.metrics.encode(&rig.store).await.unwrap();
        assert!(metrics.lines().any(|l| l == r#"brevet_certprov_calls_total{service="ca",call="issue",outcome="transient"} 1"#), "{metrics}");
    }

    async fn each_customer_has_its_own_settings(db: TestDb) {
        use brevet::certprov::config::CustomerConfig;
        use brevet::sim::chrome::CUSTOMER;
        const OTHER: &str = "C0other2";
        let (topic, subscription) = ("projects/brevet-sim/topics/other", "projects/brevet-sim/subscriptions/other");
        let mut rig = rig(&db).await;
        rig.sim.add_subscription(topic, subscription);
        let (other_cert, other_key) = certprov::ca::BuiltinCa::create_files(&db.dir.join("other-ca"), "Other Agency CA", std::time::Duration::from_secs(86_400)).unwrap();
        let other_ca = certs::from_pem(&std::fs::read_to_string(&other_cert).unwrap()).unwrap();
        rig.config.customers = vec![CUSTOMER.into(), OTHER.into()];
        rig.config.customer.insert(OTHER.into(), CustomerConfig {
            subscription: Some(subscription.into()),
            profiles: BTreeMap::from([("device_profile".into(), profile("CN={device.serialNumber},O=Other Agency", &[]))]),
            ca_connections: BTreeMap::from([("default_ca_config".into(), CaConnectionConfig::Builtin { certificate: other_cert, private_key: other_key, crl_url: None })]),
        });
        let ours = rig.sim.create_process(&NewProcess::default());
        let theirs = rig.sim.create_process(&NewProcess { customer: OTHER.into(), topic: topic.into(), ..NewProcess::default() });
        let stranger = rig.sim.create_process(&NewProcess { customer: "C0stranger".into(), ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a");
        assert_eq!(worker.customer_intakes.len(), 1, "the other customer's subscription is pulled too");
        for _ in 0..200 {
            worker.intake.as_mut().unwrap().run_once().await.unwrap();
            worker.customer_intakes[0].run_once().await.unwrap();
            rig.settle(&worker).await;
            worker.intake.as_mut().unwrap().upkeep().await.unwrap();
            worker.customer_intakes[0].upkeep().await.unwrap();
            if rig.sim.unacknowledged() == 0 && rig.sim.unacknowledged_on(subscription) == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(rig.sim.verdict(&ours), Verdict::Imported);
        chain::signed_by(&rig.issued(&ours), &rig.ca).unwrap();
        assert_eq!(rig.issued(&ours).tbs_certificate.subject.to_string(), "CN=SN000001,O=Brevet Test");
        assert_eq!(rig.sim.verdict(&theirs), Verdict::Imported);
        chain::signed_by(&rig.issued(&theirs), &other_ca).unwrap();
        assert_eq!(rig.issued(&theirs).tbs_certificate.subject.to_string(), "CN=SN000002,O=Other Agency");
        assert_eq!(rig.state(&stranger).await, CertState::Skipped);
        assert_eq!(rig.stored(&stranger).await.last_error.as_deref(), Some("customer C0stranger is not served here (certprov.customers)"));
        assert_eq!(rig.sim.calls(Route::Claim, &stranger), 0);
        assert_eq!(rig.sim.calls(Route::Get, &stranger), 0);
        // a customer's own settings for a customer not served stop the worker at start
        let mut config = rig.config.clone();
        config.customers = vec![CUSTOMER.into()];
        let error = certprov::build(&config, rig.store.clone()).err().unwrap().to_string();
        assert_eq!(error, "certprov.customer.C0other2 is configured but C0other2 is not in certprov.customers");
    }

    async fn google_cas_issues_once_per_process(db: TestDb) {
        use brevet::sim::cas::FakeCas;
        let mut rig = rig(&db).await;
        let cas = FakeCas::start().await.unwrap();
        rig.config.ca_connections.insert("cas_pool".into(), CaConnectionConfig::GoogleCas {
            pool: "projects/agency/locations/europe-west1/caPools/devices".into(),
            base_url: cas.base_url(),
        });
        let user = rig.sim.create_process(&NewProcess { key: KeyType::Rsa, user: true, ca_reference: "cas_pool".into(), profile_reference: "user_profile".into(), ..NewProcess::default() });
        let device = rig.sim.create_process(&NewProcess { ca_reference: "cas_pool".into(), ..NewProcess::default() });
        // the first certificate is issued, but the answer is lost on the way back
        cas.lose_answers(1);
        let mut worker = rig.worker("adapter-a");
        rig.drive(&mut worker).await;
        for name in [&user, &device] {
            assert_eq!(rig.sim.verdict(name), Verdict::Imported, "{name}");
            chain::signed_by(&rig.issued(name), cas.ca_certificate()).unwrap();
        }
        assert_eq!(rig.issued(&user).tbs_certificate.subject.to_string(), "CN=user1@example.com");
        // asked three times, issued twice: the repeat found the first certificate (409, read back)
        assert_eq!((cas.creates(), cas.issued()), (3, 2));
        assert_eq!(rig.sim.tokens_granted(), 3, "Chrome, Pub/Sub and cloud-platform, one each");
    }

    async fn finished_processes_are_purged_after_the_retention(db: TestDb) {
        let mut rig = rig(&db).await;
        rig.config.retention_days = 30;
        // polls wait by the manual clock, which moves only when told
        rig.config.sign_poll_initial_ms = 1000;
        let clock = brevet::clock::Clock::manual(chrono::Utc::now());
        let done = rig.sim.create_process(&NewProcess::default());
        let asleep = rig.sim.create_process(&NewProcess { behaviour: Behaviour::NeverSigns, ..NewProcess::default() });
        let mut worker = rig.worker("adapter-a").with_clock(clock.clone());
        worker.intake.as_mut().unwrap().run_once().await.unwrap();
        rig.settle(&worker).await;
        clock.advance(std::time::Duration::from_secs(2));
        rig.settle(&worker).await;
        assert_eq!((rig.state(&done).await, rig.state(&asleep).await), (CertState::Done, CertState::Signing));
        assert_eq!(worker.adapter.purge_once().await.unwrap(), 0, "nothing is 30 days old yet");
        clock.advance(std::time::Duration::from_secs(31 * 86_400));
        assert_eq!(worker.adapter.purge_once().await.unwrap(), 1);
        assert!(rig.store.get_cert_process(&done).await.unwrap().is_none(), "the device serial is gone");
        assert!(rig.store.get_cert_process(&asleep).await.unwrap().is_some(), "unfinished processes stay");
        // retention 0 keeps everything
        rig.config.retention_days = 0;
        let keeper = rig.worker("adapter-a").with_clock(clock.clone());
        clock.advance(std::time::Duration::from_secs(3650 * 86_400));
        assert_eq!(keeper.adapter.purge_once().await.unwrap(), 0);
    }

    async fn one_worker_drives_several_processes_at_once(db: TestDb) {
        let mut rig = rig(&db).await;
        rig.config.concurrency = 4;
        rig.config.poll_interval_ms = 50;
        let names: Vec<String> = (0..8).map(|_| rig.sim.create_process(&NewProcess::default())).collect();
        let mut worker = rig.worker("adapter-a");
        worker.intake.as_mut().unwrap().run_once().await.unwrap();
        // every first look at a process spends half a second in the network
        rig.sim.delay_next(Route::Get, std::time::Duration::from_millis(500), 8);
        let all_imported = async {
            while names.iter().any(|n| rig.sim.verdict(n) != Verdict::Imported) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), worker.adapter.run(std::time::Duration::from_millis(50), all_imported))
            .await
            .expect("the worker finished");
        assert_eq!(rig.sim.peak_in_network(), 4, "four processes in flight, never more");
        for name in &names {
            assert_eq!(rig.sim.sign_requests(name), 1);
        }
    }

    async fn pubsub_outages_back_off_and_say_why(db: TestDb) {
        let config = db.dir.join("intake.toml");
        std::fs::write(&config, "[certprov]\nenabled = true\npoll_interval_ms = 100\n[certprov.pubsub]\nsubscription = \"projects/p/subscriptions/s\"\nendpoint = \"http://127.0.0.1:9/\"\n").unwrap();
        let mut command = brevet(&db.dir);
        command.arg("--config").arg(&config).env("BREVET_DATABASE_URL", db.url.expose()).env_remove("PUBSUB_EMULATOR_HOST")
            .env("BREVET_WORKER__OPS_LISTEN", "127.0.0.1:0");
        let mut worker = Server::spawn(command, "worker");
        let ops = worker.wait_for_log(|line| line["message"] == "worker ops endpoint listening (/healthz, /metrics)");
        let ops = format!("http://{}", ops["address"].as_str().unwrap());
        let mut waits = Vec::new();
        for _ in 0..3 {
            let line = worker.wait_for_log(|line| line["message"] == "Pub/Sub intake failed");
            let error = line["error"].as_str().unwrap().to_owned();
            assert!(error.starts_with("Pub/Sub pull: error sending request") && error.contains("Connection refused"), "{error}");
            waits.push(line["retry_in_ms"].as_u64().unwrap());
        }
        // (the first failure may come before the ops endpoint's line, and be passed over)
        assert!([100, 200].contains(&waits[0]), "{waits:?}");
        assert_eq!((waits[1], waits[2]), (waits[0] * 2, waits[0] * 4), "the wait doubles");
        // the worker's own ops endpoint
        let health = reqwest::get(format!("{ops}/healthz")).await.unwrap();
        assert_eq!(health.status().as_u16(), 200);
        let metrics = reqwest::get(format!("{ops}/metrics")).await.unwrap().text().await.unwrap();
        let failed_pulls = metrics
            .lines()
            .find_map(|l| l.strip_prefix(r#"brevet_certprov_calls_total{service="pubsub",call="pull",outcome="transient"} "#))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no failed pulls in\n{metrics}"));
        assert!(failed_pulls >= 3, "{failed_pulls}");
        assert!(metrics.lines().any(|l| l == r#"brevet_cert_processes{state="received"} 0"#), "{metrics}");
        let (code, _) = worker.terminate();
        assert_eq!(code, Some(0));
    }
}

/// A worker whose adapter settings are wrong stops at start with a message naming the setting.
#[test]
fn a_bad_adapter_setting_stops_the_worker_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worker.toml");
    let write = |profile: &str, ca: &str| {
        std::fs::write(
            &config,
            format!("[certprov]\nenabled = true\n{profile}\n{ca}\n"),
        )
        .unwrap()
    };
    let run = || {
        let output = brevet(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("worker")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    write(
        "[certprov.profiles.device_profile]\nsubject = \"CN=x\"\nkey_usages = [\"keyCertSign\"]",
        "",
    );
    let (code, stderr) = run();
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("profile device_profile: unknown key usage \"keyCertSign\""),
        "{stderr}"
    );
    write(
        "",
        "[certprov.ca_connections.default_ca_config]\nkind = \"builtin\"\ncertificate = \"missing.pem\"\nprivate_key = \"missing.key\"",
    );
    let (code, stderr) = run();
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("certprov.ca_connections.default_ca_config")
            && stderr.contains("missing.pem"),
        "{stderr}"
    );
    write("", "[certprov.ca_connections.x]\nkind = \"acme\"");
    let (code, stderr) = run();
    assert_eq!(code, Some(2), "a configuration error: {stderr}");
    assert!(stderr.contains("acme"), "{stderr}");
}
