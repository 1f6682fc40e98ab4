//! Token Status Lists (docs/STATUS_LIST.md): every MSO names its own entry, entries are handed
//! out once across lists that fill up, the published tokens are read by an independent verifier
//! written in Python from the draft (checked first against the draft's own examples), and staff
//! revocation turns exactly the revoked record's entries invalid — published by a round that
//! reads only the store, as a restarted server would.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use brevet::pki::certs;
use brevet::protocol::wallet as wire;
use brevet::service::status_lists::{publish_due, Publication};
use brevet::sim::wallet::android::status;
use serde_json::{json, Value};

use brevet::config::DocTypeKeys;
use brevet::pki::keystore::{AuthorityFile, KeyStore, Lifetimes};
use brevet::sim::wallet::flow::MDL;

use crate::crosscheck::python;
use crate::support::TestDb;
use crate::wallet_api::{Harness, Provisioned};

const BASE: &str = "https://status.dmv.example";

/// `provisionMobileSecurityObjects` for `keys` auth keys; the (uri, idx) each MSO names, after
/// the device verified it.
async fn entries(h: &Harness, p: &Provisioned, proof: bool, keys: usize) -> Vec<(String, u64)> {
    entries_under(h, p, proof, keys, &h.iaca()).await
}

/// [`entries`], the MSOs verified against `iaca`.
async fn entries_under(
    h: &Harness,
    p: &Provisioned,
    proof: bool,
    keys: usize,
    iaca: &[x509_cert::Certificate],
) -> Vec<(String, u64)> {
    let (signers, key, body) = h.msos_body(p, &p.version, proof.then_some(&p.proof), keys);
    let answer = h.ok("provisionMobileSecurityObjects", body).await;
    let mut named = Vec::new();
    for (signer, mso) in signers
        .iter()
        .zip(answer["mobileSecurityObjects"].as_array().unwrap())
    {
        let data: wire::EncryptedData =
            serde_json::from_value(mso["encryptedData"].clone()).unwrap();
        let sad = p
            .device
            .open(&key, "MobileSecurityObject", &data, &h.identity_certs())
            .unwrap();
        let reading = p
            .device
            .verify_mso(&sad, signer.verifying_key(), iaca)
            .unwrap();
        match reading.status {
            Some(member) => {
                let (idx, uri) = status::reference(&member).unwrap();
                named.push((uri, idx));
            }
            None => named.push((String::new(), u64::MAX)),
        }
    }
    named
}

fn list(n: u32) -> String {
    format!("{BASE}/status-lists/{n}")
}

/// The list each of `entries` names, by number.
fn lists(entries: &[(String, u64)]) -> Vec<u32> {
    let prefix = format!("{BASE}/status-lists/");
    entries
        .iter()
        .map(|(uri, _)| uri.strip_prefix(&prefix).unwrap().parse().unwrap())
        .collect()
}

/// The indexes `entries` name in list `n`, in the order they were handed out, after checking that
/// none repeats and each is inside a list of `size`.
fn indexes_in(n: u32, size: u64, entries: &[(String, u64)]) -> Vec<u64> {
    let indexes: Vec<u64> = entries
        .iter()
        .filter(|(uri, _)| *uri == list(n))
        .map(|(_, i)| *i)
        .collect();
    let distinct: std::collections::BTreeSet<u64> = indexes.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        indexes.len(),
        "an entry handed out twice: {indexes:?}"
    );
    assert!(indexes.iter().all(|&i| i < size), "{indexes:?}");
    indexes
}

async fn fetch(
    h: &Harness,
    n: u32,
    if_none_match: Option<&str>,
) -> crate::support::http::TestResponse {
    let mut request = Request::get(format!("/status-lists/{n}"));
    if let Some(tag) = if_none_match {
        request = request.header("If-None-Match", tag);
    }
    h.app.send(request.body(Body::empty()).unwrap()).await
}

/// The statuses the Python verifier reads for `entries` from the tokens now served.
async fn verified(h: &Harness, entries: &[(String, u64)]) -> (Vec<Value>, Value) {
    let out = python_verify(h, &[1, 2], &h.keys.iaca_certificate().unwrap(), entries).await;
    assert!(
        out.get("refused").is_none(),
        "the verifier refused a token: {out}"
    );
    (
        out["statuses"].as_array().unwrap().clone(),
        out["tokens"].clone(),
    )
}

/// What the Python verifier says of lists `lists` and `entries`, trusting `iaca`.
async fn python_verify(
    h: &Harness,
    lists: &[u32],
    iaca: &x509_cert::Certificate,
    entries: &[(String, u64)],
) -> Value {
    let mut tokens = BTreeMap::new();
    for &n in lists {
        let response = fetch(h, n, None).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.body[0], 0x84, "an untagged COSE_Sign1");
        tokens.insert(list(n), hex::encode(&response.body));
    }
    let request = json!({
        "iaca": certs::to_pem(iaca).unwrap(),
        "now": chrono::Utc::now().timestamp(),
        "tokens": tokens,
        "entries": entries.iter().map(|(uri, idx)| json!({ "uri": uri, "idx": idx })).collect::<Vec<_>>(),
    });
    serde_json::from_slice(&python(
        "status_list_verify.py",
        &["verify".as_ref()],
        &request.to_string(),
    ))
    .unwrap()
}

#[test]
fn the_independent_verifier_reads_the_drafts_examples() {
    let out = python("status_list_verify.py", &["selftest".as_ref()], "");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "ok");
}

both_stores! {
    async fn each_mso_names_its_own_entry_and_revocation_invalidates_exactly_its_records(db: TestDb) {
        // Lists of 16 entries, so that the calls below fill one and start another; each call
        // reserves just what it needs.
        let h = Harness::with_wallet(
            &db,
            |c| {
                c.status_list.list_size = 16;
                c.status_list.reserve_entries = 1;
            },
            |w| w.settings.status_lists.base_url = Some(BASE.into()),
        )
        .await;
        let publication = Publication {
            base_url: BASE.into(),
            ttl: Duration::from_secs(900),
            validity: Duration::from_secs(86_400),
        };
        let a = h.provisioned("dev-a").await;
        let b = h.provisioned("dev-b").await;
        let a_first = entries(&h, &a, true, 10).await;
        let a_refresh = entries(&h, &a, false, 10).await;
        let b_first = entries(&h, &b, true, 3).await;
        // Ten fit in list 1; the next ten do not fit in its six left and open list 2; three
        // more fit in list 1 again. No entry is handed out twice.
        assert_eq!(lists(&a_first), vec![1; 10]);
        assert_eq!(lists(&a_refresh), vec![2; 10]);
        assert_eq!(lists(&b_first), vec![1; 3]);
        assert_eq!(indexes_in(1, 16, &[a_first.clone(), b_first.clone()].concat()).len(), 13);
        assert_eq!(indexes_in(2, 16, &a_refresh).len(), 10);

        // Not yet published: the list says so and when to come back.
        let early = fetch(&h, 1, None).await;
        assert_eq!(early.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(early.headers["retry-after"], "1");
        assert_eq!(fetch(&h, 3, None).await.status, StatusCode::NOT_FOUND);
        let unknown = h.app.get("/status-lists/not-a-number", None).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown.json()["error"]["code"], "not_found");

        assert_eq!(publish_due(&h.services, &publication, "replica-1").await.unwrap(), 2);
        let served = fetch(&h, 1, None).await;
        assert_eq!(served.headers["content-type"], "application/statuslist+cwt");
        assert_eq!(served.headers["cache-control"], "public, max-age=900");
        assert_eq!(served.headers["access-control-allow-origin"], "*");
        let etag = served.headers["etag"].to_str().unwrap().to_owned();
        let again = fetch(&h, 1, Some(&etag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        assert!(again.body.is_empty());

        let all: Vec<(String, u64)> = [a_first.clone(), a_refresh.clone(), b_first.clone()].concat();
        let (statuses, tokens) = verified(&h, &all).await;
        assert!(statuses.iter().all(|s| s == &json!(0)), "every entry valid: {statuses:?}");
        for n in [1, 2] {
            let token = &tokens[list(n)];
            assert_eq!(token["bits"], 1);
            assert_eq!(token["size"], 16);
            assert_eq!(token["ttl"], 900);
            assert_eq!(token["exp"].as_i64().unwrap() - token["iat"].as_i64().unwrap(), 86_400);
            assert!(token["signer"].as_str().unwrap().contains("CN=Test DS Status List 1"), "{token}");
        }
        // Nothing changed, nothing to publish.
        assert_eq!(publish_due(&h.services, &publication, "replica-1").await.unwrap(), 0);

        // Staff revoke A. Both of its lists are stale in the store; no publisher runs here,
        // so what follows is what a restarted server's first round does.
        let revoked = h.app.post(&format!("/admin/v1/credentials/{}/revoke", a.record_id), &json!({ "reason": "licence withdrawn" }), Some(&h.token)).await;
        assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
        let lists = brevet::store::status_lists::list(&mut h.app.store.db()).await.unwrap();
        assert_eq!(lists.iter().map(|l| (l.list_id, l.allocated, l.current)).collect::<Vec<_>>(), vec![(1, 13, false), (2, 10, false)]);
        let metrics = h.app.get("/metrics", None).await.text();
        assert!(metrics.contains("brevet_status_lists{state=\"stale\"} 2"), "{metrics}");
        assert!(metrics.contains("brevet_status_lists{state=\"current\"} 0"), "{metrics}");
        // Another replica holding a list's lease keeps this one off it until the lease ends.
        assert!(brevet::store::status_lists::claim(&mut h.app.store.db(), 2, "replica-2", Duration::from_secs(60), chrono::Utc::now()).await.unwrap().is_some());
        assert_eq!(publish_due(&h.services, &publication, "replica-1").await.unwrap(), 1, "list 1 only");
        assert_eq!(publish_due(&h.services, &publication, "replica-2").await.unwrap(), 1, "its holder publishes list 2");
        let (statuses, _) = verified(&h, &all).await;
        let expected: Vec<Value> = [vec![json!(1); 20], vec![json!(0); 3]].concat();
        assert_eq!(statuses, expected, "A's twenty entries invalid, B's three valid");
        assert_ne!(fetch(&h, 1, None).await.headers["etag"].to_str().unwrap(), etag, "a new token, a new ETag");

        // The simulator's verifier, written apart from the server, agrees.
        let token = fetch(&h, 1, None).await.body;
        let iaca = h.iaca();
        let (a_index, b_index) = (a_first[0].1, b_first[0].1);
        assert_eq!(status::read_token(&token, &list(1), a_index, &iaca, std::time::SystemTime::now()), Ok(status::EntryStatus::Invalid));
        assert_eq!(status::read_token(&token, &list(1), b_index, &iaca, std::time::SystemTime::now()), Ok(status::EntryStatus::Valid));
        let other_uri = status::read_token(&token, &list(2), b_index, &iaca, std::time::SystemTime::now());
        assert!(other_uri.unwrap_err().contains("sub"), "a token for another list is refused");
        let mut forged = token.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(status::read_token(&forged, &list(1), a_index, &iaca, std::time::SystemTime::now()).is_err(), "a forged signature is refused");

        // A revoked record gets no MSOs (and so no entries) any more; an unknown one is a clear error.
        let (_, _, body) = h.msos_body(&a, &a.version, None, 1);
        h.refused("provisionMobileSecurityObjects", body, "invalidState", StatusCode::CONFLICT).await;
        let unknown = h.app.post(&format!("/admin/v1/credentials/{}/revoke", uuid::Uuid::nil()), &json!({ "reason": "x" }), Some(&h.token)).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown.json()["error"]["code"], "not_found");
        let lists = brevet::store::status_lists::list(&mut h.app.store.db()).await.unwrap();
        assert_eq!(lists.iter().map(|l| (l.allocated, l.current)).collect::<Vec<_>>(), vec![(13, true), (10, true)]);
        let metrics = h.app.get("/metrics", None).await.text();
        assert!(metrics.contains("brevet_status_lists{state=\"current\"} 2"), "{metrics}");
        let expiry: i64 = metrics.lines().find_map(|l| l.strip_prefix("brevet_status_list_token_expiry_seconds ")).unwrap().parse().unwrap();
        assert!((86_300..=86_400).contains(&expiry), "{expiry}");
    }

    async fn a_doc_type_with_its_own_keys_has_lists_signed_under_its_own_iaca(db: TestDb) {
        let own = KeyStore::new(db.dir.join("mdl-keys"));
        own.init(
            &AuthorityFile {
                country: "US".into(),
                state: None,
                iaca_common_name: "mDL IACA".into(),
                ds_common_name: "mDL DS".into(),
                contact: "https://dmv.example".into(),
                crl_url: None,
            },
            Lifetimes::default(),
        )
        .unwrap();
        let h = Harness::with_wallet(
            &db,
            |c| {
                c.keys.doc_type.insert(MDL.into(), DocTypeKeys { keys_dir: own.dir().to_owned() });
            },
            |w| w.settings.status_lists.base_url = Some(BASE.into()),
        )
        .await;
        let a = h.provisioned("dev-own").await;
        let own_iaca = own.iaca_certificate().unwrap();
        let entries = entries_under(&h, &a, true, 2, std::slice::from_ref(&own_iaca)).await;
        assert_eq!(lists(&entries), vec![1, 1]);
        let lists = brevet::store::status_lists::list(&mut h.app.store.db()).await.unwrap();
        assert_eq!(lists[0].scope, MDL, "the list belongs to the doc type's own key directory");
        let publication = Publication { base_url: BASE.into(), ttl: Duration::from_secs(900), validity: Duration::from_secs(86_400) };
        assert_eq!(publish_due(&h.services, &publication, "replica-1").await.unwrap(), 1);
        let out = python_verify(&h, &[1], &own_iaca, &entries).await;
        assert_eq!(out["statuses"], json!([0, 0]), "{out}");
        assert!(out["tokens"][list(1)]["signer"].as_str().unwrap().contains("mDL DS Status List 1"), "{out}");
        // The main IACA did not certify this list's signer: a verifier trusting it alone refuses.
        let out = python_verify(&h, &[1], &h.keys.iaca_certificate().unwrap(), &entries).await;
        assert!(out["reason"].as_str().unwrap().contains("not issued by the IACA"), "{out}");
    }

    async fn entries_come_from_blocks_reserved_in_the_store(db: TestDb) {
        let h = Harness::with_wallet(
            &db,
            |c| {
                c.status_list.list_size = 16;
                c.status_list.reserve_entries = 8;
            },
            |w| w.settings.status_lists.base_url = Some(BASE.into()),
        )
        .await;
        let a = h.provisioned("dev-block").await;
        let allocated = || async {
            brevet::store::status_lists::list(&mut h.app.store.db()).await.unwrap().iter().map(|l| (l.list_id, l.allocated)).collect::<Vec<_>>()
        };
        // The first call reserves a block of 8 and takes 3; the next takes 3 more from memory.
        let mut handed = entries(&h, &a, true, 3).await;
        assert_eq!(lists(&handed), vec![1; 3]);
        assert_eq!(allocated().await, vec![(1, 8)]);
        handed.extend(entries(&h, &a, false, 3).await);
        assert_eq!(lists(&handed), vec![1; 6]);
        assert_eq!(allocated().await, vec![(1, 8)], "no statement for entries in hand");
        // The third takes the block's last two and one of a new block: the rest of list 1.
        handed.extend(entries(&h, &a, false, 3).await);
        assert_eq!(allocated().await, vec![(1, 16)]);
        // A call larger than what is left takes what is left, then a block of list 2.
        handed.extend(entries(&h, &a, false, 10).await);
        assert_eq!(lists(&handed), [vec![1; 16], vec![2; 3]].concat());
        assert_eq!(allocated().await, vec![(1, 16), (2, 8)]);
        // List 1 is full: every one of its indexes was handed out once, in the order of its
        // permutation, not 0, 1, 2… (the draft's advice against sequential indexes).
        let in_list_1 = indexes_in(1, 16, &handed);
        let mut sorted = in_list_1.clone();
        sorted.sort();
        assert_eq!(sorted, (0..16).collect::<Vec<_>>());
        assert_ne!(in_list_1, sorted, "indexes handed out in order");
    }

    async fn with_status_lists_off_msos_carry_no_status_member(db: TestDb) {
        let h = Harness::with_wallet(
            &db,
            |c| c.status_list.enabled = Some(false),
            |w| w.settings.status_lists.base_url = Some(BASE.into()),
        )
        .await;
        let a = h.provisioned("dev-off").await;
        assert_eq!(entries(&h, &a, true, 2).await, vec![(String::new(), u64::MAX); 2]);
        assert!(brevet::store::status_lists::list(&mut h.app.store.db()).await.unwrap().is_empty());
    }
}
