//! Two `brevet serve` replicas and two `brevet worker`s on one Postgres, as a deployment runs
//! them: staff edits spread over both replicas lose no update, and every notification reaches
//! (the fake) Google exactly once; both serve the same status list token, built once per change.

use std::time::{Duration, Instant};

use brevet::sim::google::FakeGoogle;

use crate::support::inspect::{bind_copy, Inspect};
use crate::support::process::{brevet, Server};
use crate::support::TestDb;

const ISSUER: &str = "Replica_Issuer";
const RECORDS: usize = 12;
const EDITS: i32 = 3;
const STATUS_BASE: &str = "https://status.dmv.example";

#[tokio::test]
async fn two_replicas_and_two_workers_lose_no_update_and_notify_each_change_once() {
    crate::support::with_db(brevet::config::Backend::Postgres, |db: TestDb| async move {
        let google = FakeGoogle::start(ISSUER).await.unwrap();
        let init = brevet(&db.dir)
            .args(["keys", "init", "--country", "US", "--iaca-name", "Replica IACA", "--contact", "https://dmv.example"])
            .output()
            .unwrap();
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        let start = |args: &[&str], google_url: Option<&str>| {
            let mut command = brevet(&db.dir);
            command
                .env("BREVET_DATABASE_URL", db.url.expose())
                .env("BREVET_STATUS_LIST__BASE_URL", STATUS_BASE)
                .env("BREVET_STATUS_LIST__PUBLISH_INTERVAL_MS", "100")
                .env("BREVET_OUTBOX__POLL_INTERVAL_MS", "50")
                .env("BREVET_OUTBOX__BACKOFF_BASE_MS", "10");
            if let Some(url) = google_url {
                command
                    .env("BREVET_GOOGLE__BASE_URL", url)
                    .env("BREVET_GOOGLE__ISSUER_ID", ISSUER);
            }
            if args == ["serve"] {
                Server::start(command)
            } else {
                Server::spawn_args(command, args)
            }
        };
        let a = start(&["serve"], None);
        let token = a.stdout_lines(2).pop().unwrap();
        let b = start(&["serve"], None);
        let mut w1 = start(&["worker"], Some(&google.base_url()));
        let mut w2 = start(&["worker"], Some(&google.base_url()));
        for worker in [&mut w1, &mut w2] {
            worker.wait_for_log(|l| l["message"].as_str().is_some_and(|m| m.starts_with("brevet worker started")));
        }

        // Records made through one replica, each with a device copy.
        let client = reqwest::Client::new();
        let holder: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/holder.json")).unwrap(),
        )
        .unwrap();
        let store = db.store().await;
        let mut ids = Vec::new();
        for n in 0..RECORDS {
            let created: serde_json::Value = client
                .post(format!("{}/admin/v1/credentials", a.base_url))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "docType": "org.iso.18013.5.1.mDL", "holderData": holder }))
                .send().await.unwrap().json().await.unwrap();
            let id = uuid::Uuid::parse_str(created["credentialId"].as_str().unwrap()).unwrap();
            bind_copy(&store, &format!("copy-{n}"), id, &format!("device-{n}")).await;
            ids.push(id);
        }

        // Every record edited EDITS times, alternating replicas, all records at once.
        let replicas = [a.base_url.clone(), b.base_url.clone()];
        let edits = ids.iter().map(|id| {
            let (client, token, replicas, holder) = (client.clone(), token.clone(), replicas.clone(), holder.clone());
            async move {
                for version in 1..=EDITS {
                    let mut changed = holder.clone();
                    changed["org.iso.18013.5.1"]["resident_address"] = serde_json::json!(format!("{version} Edit Street"));
                    let base = &replicas[(version as usize) % 2];
                    let response = client
                        .patch(format!("{base}/admin/v1/credentials/{id}"))
                        .bearer_auth(&token)
                        .header("if-match", format!("\"{version}\""))
                        .json(&serde_json::json!({ "holderData": changed }))
                        .send().await.unwrap();
                    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
                }
            }
        });
        futures::future::join_all(edits).await;

        // The workers drain the queue.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !store.list_outbox(Some("pending"), 1).await.unwrap().is_empty() {
            assert!(Instant::now() < deadline, "notifications still pending");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // No lost update: every record at its last version with the last change.
        for id in &ids {
            let record = store.get_credential(*id).await.unwrap().unwrap();
            assert_eq!(record.current_version_number, EDITS + 1);
            assert_eq!(record.holder_data["org.iso.18013.5.1"]["resident_address"], format!("{EDITS} Edit Street"));
        }
        // Each job delivered once: as many accepted notifications as jobs done without being
        // folded into another, every copy told, and no notification accepted twice.
        let done = store.list_outbox(Some("done"), 1000).await.unwrap();
        let delivered_jobs = done.iter().filter(|j| j.last_error.is_none()).count();
        let accepted = google.accepted();
        assert_eq!(accepted.len(), delivered_jobs, "one notification per delivered job");
        let mut told: Vec<String> = accepted.iter().map(|n| n.subject_id.clone()).collect();
        told.sort();
        told.dedup();
        assert_eq!(told.len(), RECORDS, "every copy was told");
        let request_ids: std::collections::BTreeSet<&str> = accepted.iter().map(|n| n.request_id.as_str()).collect();
        assert_eq!(request_ids.len(), accepted.len(), "no notification sent twice");
        assert!(store.list_outbox(Some("dead"), 10).await.unwrap().is_empty());

        // Status lists: MSOs of one record recorded with entries (as provisionMobileSecurityObjects
        // records them); both replicas serve the same token, built once per change.
        let record = store.get_credential(ids[0]).await.unwrap().unwrap();
        let entries = brevet::store::status_lists::allocate(&mut store.db(), "", 3, 1024).await.unwrap();
        let msos: Vec<_> = entries.iter().zip(0u8..).map(|(entry, n)| brevet::store::NewMsoIssuance {
            credential_version_id: record.current_version_id,
            device_reference_id: "device-0",
            auth_key_sha256: [n; 32],
            ds_key_id: "0001",
            valid_from: chrono::Utc::now(),
            valid_until: chrono::Utc::now() + chrono::Duration::days(30),
            status: Some(*entry),
        }).collect();
        brevet::store::copies::insert_msos(&mut store.db(), &msos).await.unwrap();
        let served = |etag_before: Option<String>| {
            let client = client.clone();
            let replicas = replicas.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let mut bodies = Vec::new();
                    for base in &replicas {
                        let response = client.get(format!("{base}/status-lists/1")).send().await.unwrap();
                        let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
                        bodies.push((response.status(), etag, response.bytes().await.unwrap()));
                    }
                    let fresh = bodies[0].0 == 200 && bodies[0].1 != etag_before;
                    if fresh && bodies[0] == bodies[1] {
                        return (bodies[0].1.clone().unwrap(), bodies[0].2.to_vec());
                    }
                    assert!(Instant::now() < deadline, "replicas serve {:?}", bodies.iter().map(|b| (b.0, b.1.clone())).collect::<Vec<_>>());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let iaca = brevet::pki::keystore::KeyStore::new(db.dir.join("brevet-data/keys")).iaca_certificate().unwrap();
        let uri = format!("{STATUS_BASE}/status-lists/1");
        let read = |token: &[u8], idx: i64| {
            brevet::sim::wallet::android::status::read_token(token, &uri, idx as u64, std::slice::from_ref(&iaca), std::time::SystemTime::now())
        };
        let (etag, list_token) = served(None).await;
        assert!(entries.iter().all(|e| read(&list_token, e.index) == Ok(brevet::sim::wallet::android::status::EntryStatus::Valid)));
        let revoked = client
            .post(format!("{}/admin/v1/credentials/{}/revoke", b.base_url, ids[0]))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "reason": "replica test" }))
            .send().await.unwrap();
        assert_eq!(revoked.status(), 200);
        let (_, list_token) = served(Some(etag)).await;
        assert!(entries.iter().all(|e| read(&list_token, e.index) == Ok(brevet::sim::wallet::android::status::EntryStatus::Invalid)));

        let mut builds = 0;
        for server in [a, b, w1, w2] {
            let (code, log) = server.terminate();
            assert_eq!(code, Some(0));
            builds += log.iter().filter(|l| l.contains("status list token published")).count();
        }
        assert_eq!(builds, 2, "one build per change across both replicas");
    })
    .await;
}
