//! The staff console in a real browser (headless Chromium through WebDriver) against a real
//! `brevet serve`, on both stores: sign in, create a record through the doc type's form, review a
//! proofing a simulated device submitted, edit and revoke the record while the device watches its
//! copy, retry a dead notification, and a viewer who sees no evidence and whose attempts the server
//! refuses. With BREVET_CONSOLE_SCREENSHOTS=1 the main pages are saved to docs/console/.

use std::path::Path;

use brevet::sim::wallet::android::Device;
use brevet::sim::wallet::client::{IssuerEndpoint, WalletClient};
use brevet::store::{outbox, Job};
use reqwest::StatusCode;
use serde_json::{json, Value};
use x509_cert::der::Decode;
use x509_cert::Certificate;

use crate::support::browser::Browser;
use crate::support::inspect::Inspect;
use crate::support::process::{brevet, Server};
use crate::support::TestDb;

const MDL: &str = "org.iso.18013.5.1.mDL";
const NS: &str = "org.iso.18013.5.1";

/// An 8×8 PNG: evidence and portrait a browser can really decode.
const PNG: &str = "89504e470d0a1a0a0000000d49484452000000080000000808020000004b6d29dc0000001149444154789c635048588015310c2d0900026c4801b2dc6d820000000049454e44ae426082";

fn field(element: &str) -> String {
    format!("{NS}/{element}")
}

async fn shot(browser: &Browser, name: &str) {
    if std::env::var_os("BREVET_CONSOLE_SCREENSHOTS").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), browser.screenshot().await).unwrap();
    }
}

fn certificates(list: &Value) -> Vec<Certificate> {
    let list = match list {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    list.iter()
        .map(|v| {
            Certificate::from_der(&brevet::protocol::wallet::decode(v.as_str().unwrap()).unwrap())
                .unwrap()
        })
        .collect()
}

/// A simulated Android device talking to the Wallet API as Google relays it.
struct Phone {
    wallet: WalletClient,
    device: Device,
    identity: Vec<Certificate>,
}

impl Phone {
    async fn new(base_url: &str) -> Self {
        let wallet = WalletClient::new(IssuerEndpoint {
            base_url: base_url.to_owned(),
            issuer_id: "brevet-sim".into(),
            version: (0, 1),
            client_identity: None,
            ca_certificate: None,
        })
        .unwrap();
        let identity = certificates(
            &wallet.call_empty("getIdentityKey").await.unwrap()["issuerIdentityCertificate"],
        );
        let device = Device::new(&format!("console-device-{}", uuid::Uuid::new_v4()), MDL);
        Phone {
            wallet,
            device,
            identity,
        }
    }

    fn body(&self, extra: Value) -> Value {
        let mut body = json!({ "deviceReferenceId": self.device.device_reference_id });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    }

    async fn call(&self, method: &str, extra: Value) -> Value {
        self.wallet
            .call(method, self.body(extra))
            .await
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    /// Registration and a proofing with an image of the licence.
    async fn submit_proofing(&self, proofing_id: &str) {
        let nonce = self.call("getDeviceRegistrationNonce", json!({})).await["nonce"]
            .as_str()
            .unwrap()
            .to_owned();
        let chain = self
            .device
            .attestation_chain(nonce.as_bytes(), &Default::default());
        self.call(
            "registerDevice",
            json!({ "deviceIdentityCertificateChain": chain }),
        )
        .await;
        let hybrid = self
            .wallet
            .call_empty("getHybridEncryptionKey")
            .await
            .unwrap();
        let hybrid = certificates(&hybrid["issuerEncryptionCertificate"]).remove(0);
        let image =
            self.device
                .encrypt_to_issuer(&hybrid, "FrontOfLicense", &hex::decode(PNG).unwrap());
        self.call(
            "proofUser",
            json!({ "proofingId": proofing_id, "evidence": [{ "frontOfLicenseImage": image }] }),
        )
        .await;
    }

    /// provisionCredential, then MSOs with the proof of provisioning: the copy becomes active.
    async fn provision(&mut self, credential_id: &str, proofing_id: &str) {
        let key = self.device.encryption_key();
        let answer = self.call("provisionCredential", json!({ "credentialId": credential_id, "proofingId": proofing_id, "deviceEncryptionKey": key.wire })).await;
        let data = serde_json::from_value(answer["credential"]["encryptedData"].clone()).unwrap();
        let context = self.device.contexts.credential.clone();
        let payload = self
            .device
            .open(&key, &context, &data, &self.identity)
            .unwrap();
        let pop = self.device.store(&payload).unwrap();
        let version = answer["credentialVersionId"].as_str().unwrap().to_owned();
        let keys = self.device.auth_keys(1);
        let key = self.device.encryption_key();
        self.call("provisionMobileSecurityObjects", json!({
            "credentialId": credential_id, "credentialVersionId": version,
            "authKeys": [keys[0].1], "deviceEncryptionKey": key.wire, "proofOfProvisioning": pop,
        })).await;
    }

    async fn status(&self, credential_id: &str) -> String {
        let answer = self
            .call(
                "getCredentialStatus",
                json!({ "credentialId": credential_id }),
            )
            .await;
        answer["credentialStatus"]
            .as_object()
            .unwrap()
            .keys()
            .find(|k| *k != "userActionRequired")
            .unwrap()
            .clone()
    }
}

async fn sign_in(browser: &Browser, base: &str, token: &str) {
    browser.go(&format!("{base}/console/sign-in")).await;
    browser.type_into("token", token).await;
    browser.click("form.stack button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/dashboard");
}

async fn sign_out(browser: &Browser) {
    browser.click("form.signout button").await;
    assert_eq!(browser.path().await, "/console/sign-in");
}

/// Fills the new-record form with a complete mDL, the portrait uploaded from `portrait`.
async fn fill_mdl(browser: &Browser, portrait: &Path, issuing_country: &str) {
    for (element, value) in [
        ("family_name", "Mustermann"),
        ("given_name", "Erika"),
        ("birth_date", "1984-08-12"),
        ("issue_date", "2025-03-01"),
        ("expiry_date", "2030-03-01"),
        ("issuing_country", issuing_country),
        ("issuing_authority", "Console DMV"),
        ("document_number", "CON-0001"),
        ("un_distinguishing_sign", "USA"),
        (
            "driving_privileges",
            r#"[{"vehicle_category_code": "B", "issue_date": "2025-03-01"}]"#,
        ),
        ("resident_address", "1 Console Way"),
        ("height", "172"),
    ] {
        browser.set(&field(element), value).await;
    }
    browser
        .set(&format!("{NS}/*"), r#"{"age_over_18": true}"#)
        .await;
    let upload = browser
        .client
        .find(fantoccini::Locator::Id(&field("portrait")))
        .await
        .unwrap();
    upload.send_keys(portrait.to_str().unwrap()).await.unwrap();
}

/// A POST made outside the browser with its session cookie, as a forged or replayed form would be.
async fn post_form(
    base: &str,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}{path}"))
        .header(
            "Cookie",
            format!("{}={cookie}", brevet::http::console::SESSION_COOKIE),
        )
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The CSRF token of the page open in the browser (every page's sign-out form carries it).
async fn csrf(browser: &Browser) -> String {
    browser
        .client
        .find(fantoccini::Locator::Css("form.signout input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap()
}

both_stores! {
    async fn staff_do_their_work_in_the_console(db: TestDb) {
        let mut command = brevet(&db.dir);
        // Development mode: development keys and the simulator's attestation root, on this store.
        command.env("BREVET_DATABASE_URL", db.url.expose()).env("BREVET_MODE", "development");
        let server = Server::start(command);
        let admin_token = server.stdout_lines(2).pop().unwrap();
        let base = server.base_url.clone();
        let store = db.store().await;
        let portrait = db.dir.join("portrait.png");
        std::fs::write(&portrait, hex::decode(PNG).unwrap()).unwrap();
        let browser = Browser::start(1280).await;

        // Signed out, every page leads to sign-in; a wrong token is refused in words.
        browser.go(&format!("{base}/console/records")).await;
        assert_eq!(browser.path().await, "/console/sign-in");
        browser.type_into("token", "not-a-token").await;
        browser.click("form.stack button[type=submit]").await;
        assert_eq!(browser.text("#sign-in-error").await, "That token is not valid: it is unknown or has been revoked.");
        shot(&browser, "sign-in").await;
        sign_in(&browser, &base, &admin_token).await;
        assert_eq!(browser.text("h1").await, "Dashboard");
        assert_eq!(browser.text("[data-count=records-active]").await, "0");
        shot(&browser, "dashboard").await;

        // A record through the form: a mistake is shown next to its field and nothing is saved.
        browser.go(&format!("{base}/console/records/new")).await;
        assert!(browser.has(&format!("label[for='{}'] .mandatory", field("family_name"))).await, "mandatory elements are marked");
        fill_mdl(&browser, &portrait, "usa").await;
        browser.click("form.record button[type=submit]").await;
        assert_eq!(browser.text("#form-problems p").await, "Nothing was saved. Please correct the fields marked below.");
        let note = browser.text(&format!("[id='{}-note'] .field-error", field("issuing_country"))).await;
        assert!(note.contains("two-letter upper-case country code"), "{note}");
        assert_eq!(store.list_credentials(&brevet::store::CredentialFilter { limit: 10, ..Default::default() }).await.unwrap().len(), 0, "nothing saved");
        shot(&browser, "record-form-error").await;
        browser.set(&field("issuing_country"), "US").await;
        let upload = browser.client.find(fantoccini::Locator::Id(&field("portrait"))).await.unwrap();
        upload.send_keys(portrait.to_str().unwrap()).await.unwrap();
        browser.click("form.record button[type=submit]").await;
        assert_eq!(browser.text(".notice").await, "Record created.");
        let record_id = browser.text("#record-id").await;
        let record = store.get_credential(uuid::Uuid::parse_str(&record_id).unwrap()).await.unwrap().unwrap();
        assert_eq!(record.holder_data[NS]["portrait"], json!(base64_png()), "the uploaded image is the portrait");
        assert_eq!(record.holder_data[NS]["height"], json!(172));
        assert_eq!(record.holder_data[NS]["age_over_18"], json!(true));
        assert_eq!(record.holder_data[NS]["driving_privileges"][0]["vehicle_category_code"], "B");

        // A device submits a proofing; an operator sees the evidence image and approves it.
        let mut phone = Phone::new(&base).await;
        let proofing_id = uuid::Uuid::new_v4().to_string();
        phone.submit_proofing(&proofing_id).await;
        browser.go(&format!("{base}/console/proofings")).await;
        browser.click(&format!("a[href='/console/proofings/{proofing_id}']")).await;
        let decoded = browser.client.execute("const i = document.querySelector('img.evidence'); return i.complete && i.naturalWidth;", vec![]).await.unwrap();
        assert_eq!(decoded, json!(8), "the evidence image is served and decodes");
        let evidence = reqwest::Client::new()
            .get(format!("{base}/console/proofings/{proofing_id}/evidence/0"))
            .header("Cookie", format!("{}={}", brevet::http::console::SESSION_COOKIE, browser.cookie(brevet::http::console::SESSION_COOKIE).await))
            .send().await.unwrap();
        assert_eq!(evidence.headers()["cache-control"], "no-store");
        assert_eq!(evidence.headers()["content-type"], "image/png");
        assert_eq!(evidence.bytes().await.unwrap().to_vec(), hex::decode(PNG).unwrap());
        shot(&browser, "proofing").await;
        browser.type_into("credentialId", &record_id).await;
        browser.click("form.stack:first-of-type button").await;
        assert_eq!(browser.path().await, "/console/proofings?done=1", "no other proofing waits");
        let wire = phone.call("getProofingStatus", json!({ "proofingId": proofing_id })).await;
        assert_eq!(wire["proofingStatus"], json!({ "accepted": {} }));

        // The device provisions; an edit in the console sends its copy to provisionPending.
        let wallet_credential = uuid::Uuid::new_v4().to_string();
        phone.provision(&wallet_credential, &proofing_id).await;
        assert_eq!(phone.status(&wallet_credential).await, "active");
        browser.go(&format!("{base}/console/records/{record_id}/edit")).await;
        browser.set(&field("resident_address"), "2 Edited Avenue").await;
        browser.click("form.record button[type=submit]").await;
        assert_eq!(browser.text("#record-version").await, "2");
        assert_eq!(browser.text("#copies td.copy-status").await, "provisionPending");
        assert!(browser.text("#versions").await.contains("Version 2") && browser.text("#versions").await.contains("changed resident_address"));
        assert_eq!(phone.status(&wallet_credential).await, "provisionPending");
        shot(&browser, "record").await;

        // A concurrent edit: the form opened at version 2 loses to a save made meanwhile.
        browser.go(&format!("{base}/console/records/{record_id}/edit")).await;
        let rest = reqwest::Client::new();
        let mut moved = record.holder_data.clone();
        moved[NS]["resident_address"] = json!("3 Elsewhere Road");
        let patched = rest.patch(format!("{base}/admin/v1/credentials/{record_id}")).bearer_auth(&admin_token).header("If-Match", "\"2\"").json(&json!({ "holderData": moved })).send().await.unwrap();
        assert_eq!(patched.status(), StatusCode::OK);
        browser.set(&field("resident_address"), "4 Lost Street").await;
        browser.click("form.record button[type=submit]").await;
        assert!(browser.text("#conflict").await.contains("it is now at version 3) while you were editing version 2. Your changes were not saved."));
        let now = store.get_credential(record.credential_id).await.unwrap().unwrap();
        assert_eq!(now.holder_data[NS]["resident_address"], "3 Elsewhere Road");

        // Revoke with a reason.
        browser.go(&format!("{base}/console/records/{record_id}")).await;
        browser.type_into("reason", "licence withdrawn by court order").await;
        browser.client.execute("window.confirm = () => true;", vec![]).await.unwrap();
        browser.click("button.danger").await;
        assert_eq!(browser.text("#record-status").await, "revoked");
        assert_eq!(browser.text("#copies td.copy-status").await, "revoked");
        assert_eq!(phone.status(&wallet_credential).await, "revoked");

        // A dead notification, retried.
        let job = Job::credential_status("dead-device", "dead-copy");
        outbox::enqueue(&mut store.db(), &job, chrono::Utc::now()).await.unwrap();
        let dead = loop {
            let mut tx = store.begin().await.unwrap();
            let claimed = outbox::claim(&mut tx, "test", std::time::Duration::from_secs(60), chrono::Utc::now()).await.unwrap().unwrap();
            tx.commit().await.unwrap();
            let is_ours = claimed.payload.to_string().contains("dead-copy");
            outbox::fail(&mut store.db(), claimed.outbox_id, "test", if is_ours { "Google answered 400: invalid credential" } else { "later" }, (!is_ours).then(|| chrono::Utc::now() + chrono::Duration::hours(1))).await.unwrap();
            if is_ours { break claimed.outbox_id; }
        };
        browser.go(&format!("{base}/console/notifications?state=dead")).await;
        assert_eq!(browser.text("#jobs td.last-error").await, "Google answered 400: invalid credential");
        shot(&browser, "notifications").await;
        browser.click("#jobs button").await;
        assert_eq!(browser.text(".notice").await, "The job is queued again and will be sent shortly.");
        let pending = outbox::list(&mut store.db(), Some(brevet::store::JobState::Pending), 100).await.unwrap();
        assert!(pending.iter().any(|j| j.outbox_id == dead), "the dead job is pending again");

        // The audit log, filtered by record, shows the console's changes with their actor.
        browser.go(&format!("{base}/console/audit?targetId={record_id}")).await;
        let audit = browser.text("#audit tbody").await;
        for action in ["credential.create", "credential.update", "credential.revoke"] {
            assert!(audit.contains(action), "{action} in {audit}");
        }
        assert!(!audit.contains("console.sign_in"), "filtered by record");

        // Tokens: a viewer made in the console (shown once).
        browser.go(&format!("{base}/console/tokens")).await;
        browser.type_into("name", "clerk-viewer").await;
        browser.click("form.stack button").await;
        let viewer = browser.text("#new-token code").await;
        let admin_csrf = csrf(&browser).await;
        let admin_cookie = browser.cookie(brevet::http::console::SESSION_COOKIE).await;
        sign_out(&browser).await;
        let (status, _) = post_form(&base, &admin_cookie, &format!("/console/records/{record_id}/code"), &[("csrf", &admin_csrf)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "a signed-out session is gone");

        // The viewer sees records but no evidence and no operator buttons; the server refuses too.
        sign_in(&browser, &base, &viewer).await;
        browser.go(&format!("{base}/console/records/{record_id}")).await;
        assert!(!browser.has("button.danger").await && !browser.has("a[href$='/edit']").await, "no operator buttons");
        browser.go(&format!("{base}/console/proofings/{proofing_id}")).await;
        assert_eq!(browser.text("p.error").await, "Evidence is shown only to operators and administrators.");
        assert!(!browser.has("img.evidence").await);
        browser.go(&format!("{base}/console/dashboard")).await;
        let viewer_csrf = csrf(&browser).await;
        let viewer_cookie = browser.cookie(brevet::http::console::SESSION_COOKIE).await;
        let (status, page) = post_form(&base, &viewer_cookie, "/console/notifications/00000000-0000-0000-0000-000000000000/retry", &[("csrf", &viewer_csrf)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("this action needs the operator role"), "{page}");
        let evidence = reqwest::Client::new().get(format!("{base}/console/proofings/{proofing_id}/evidence/0")).header("Cookie", format!("{}={viewer_cookie}", brevet::http::console::SESSION_COOKIE)).send().await.unwrap();
        assert_eq!(evidence.status(), StatusCode::FORBIDDEN);

        // A form from elsewhere (wrong CSRF token) changes nothing and says so.
        let (status, page) = post_form(&base, &viewer_cookie, "/console/sign-out", &[("csrf", "forged")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("This form has expired"), "{page}");

        // Revoking the viewer's token ends the viewer's session on the next request.
        let tokens: Value = rest.get(format!("{base}/admin/v1/tokens")).bearer_auth(&admin_token).send().await.unwrap().json().await.unwrap();
        let viewer_id = tokens["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "clerk-viewer").unwrap()["tokenId"].as_str().unwrap().to_owned();
        rest.delete(format!("{base}/admin/v1/tokens/{viewer_id}")).bearer_auth(&admin_token).send().await.unwrap();
        browser.go(&format!("{base}/console/dashboard")).await;
        assert_eq!(browser.path().await, "/console/sign-in?ended=1");
        assert_eq!(browser.text("#sign-in-error").await, "Your session has ended. Sign in again to continue.");

        // Every console page carries the policy that forbids inline scripts.
        let page = rest.get(format!("{base}/console/sign-in")).send().await.unwrap();
        assert!(page.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'; script-src 'self';"));
        assert_eq!(page.headers()["cache-control"], "no-store");
        let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        browser.close().await;
    }
}

fn base64_png() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hex::decode(PNG).unwrap())
}

/// The value of cookie `name` set by `response`.
fn set_cookie(response: &crate::support::http::TestResponse, name: &str) -> String {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

fn form_request(
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> axum::http::Request<axum::body::Body> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    axum::http::Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(axum::body::Body::from(body))
        .unwrap()
}

fn page_request(path: &str, cookie: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(path)
        .header("cookie", cookie)
        .body(axum::body::Body::empty())
        .unwrap()
}

both_stores! {
    async fn console_sessions_expire_and_forms_need_their_token(db: TestDb) {
        let clock = brevet::clock::Clock::manual(chrono::Utc::now());
        let store = db.store().await;
        let config = db.config();
        let router = brevet::http::build_app(
            brevet::http::AppState::new(store.clone(), &config).with_clock(clock.clone()),
            brevet::http::Limits::from_config(&config),
        );
        let app = crate::support::http::TestApp { router, store };
        let token = app.admin_token().await;

        // The sign-in form's token is bound to its own cookie: without it, no session.
        let form = app.send(page_request("/console/sign-in", "")).await;
        let sign_in_cookie = set_cookie(&form, "brevet_console_sign_in");
        let forged = app.send(form_request("/console/sign-in", "", &[("csrf", &sign_in_cookie), ("token", &token)])).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(forged.text().contains("The sign-in form had expired"));
        let signed_in = app.send(form_request("/console/sign-in", &format!("brevet_console_sign_in={sign_in_cookie}"), &[("csrf", &sign_in_cookie), ("token", &token)])).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
        let session = format!("{}={}", brevet::http::console::SESSION_COOKIE, set_cookie(&signed_in, brevet::http::console::SESSION_COOKIE));
        assert!(app.store.list_audit(5).await.unwrap().iter().any(|e| e.action == "console.sign_in"), "sign-in is audited");

        // Within its lifetime the session works; a minute after, it has ended and says so.
        assert_eq!(app.send(page_request("/console/dashboard", &session)).await.status, StatusCode::OK);
        clock.advance(std::time::Duration::from_secs(8 * 3600 - 60));
        assert_eq!(app.send(page_request("/console/dashboard", &session)).await.status, StatusCode::OK);
        clock.advance(std::time::Duration::from_secs(120));
        let ended = app.send(page_request("/console/dashboard", &session)).await;
        assert_eq!(ended.status, StatusCode::SEE_OTHER);
        assert_eq!(ended.headers["location"], "/console/sign-in?ended=1");
        // An unknown page under /console/ is a page, not JSON.
        let missing = app.send(page_request("/console/no-such-page", "")).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.text().contains("There is no such page."));
    }
}
