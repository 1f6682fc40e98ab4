//! A fake of the Chrome Management certificate-provisioning API, of Pub/Sub and of the ChromeOS
//! client (spec/cert-provisioning.md §11), served over loopback HTTP. The client generates real
//! RSA-2048 and P-256 keys, signs what signData asks exactly once, and checks the uploaded
//! certificate as ChromeOS does (one certificate, its own key). It misbehaves on demand.

pub mod pubsub;
mod resource;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use p256::pkcs8::EncodePublicKey;
use rsa::pkcs8::EncodePrivateKey;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use pubsub::PubSub;
pub use resource::{Resource, Subject};

/// The topic and subscription the simulator creates at start.
pub const TOPIC: &str = "projects/brevet-sim/topics/cert-provisioning";
/// See [`TOPIC`].
pub const SUBSCRIPTION: &str = "projects/brevet-sim/subscriptions/brevet-worker";
/// The customer whose processes the simulator makes.
pub const CUSTOMER: &str = "C0sim01";
/// What Google records as the failure when the device's signature does not verify (spec §4.1).
pub const INVALID_SIGNATURE: &str = "The proof of possession signature is invalid.";

/// The device's key type (spec §7 `key_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA-2048.
    Rsa,
    /// ECDSA P-256.
    Ec,
}

/// How the simulated device behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Signs correctly (ECDSA as DER).
    #[default]
    Honest,
    /// Signs ECDSA as raw r‖s.
    RawEcdsa,
    /// Returns a signature with one bit flipped.
    BadSignature,
    /// Signs other bytes than it was asked to.
    SignsOtherData,
    /// Never signs (asleep or offline).
    NeverSigns,
    /// The signing operation ends with an error.
    SigningError,
    /// Another adapter instance claimed the process first.
    ClaimTaken,
}

/// What a new process looks like.
#[derive(Debug, Clone)]
pub struct NewProcess {
    /// Device key type.
    pub key: KeyType,
    /// A user certificate (with an affiliated device) instead of a device certificate.
    pub user: bool,
    /// `caConnectionAdapterConfigReference`.
    pub ca_reference: String,
    /// `profileAdapterConfigReference`.
    pub profile_reference: String,
    /// The device's behaviour.
    pub behaviour: Behaviour,
    /// Publish the notification as binary protobuf (else proto3 JSON).
    pub binary: bool,
    /// Deliver the notification this many times.
    pub copies: usize,
    /// How long the device takes to sign after signData (0: by the first look).
    pub sign_delay: std::time::Duration,
    /// Already claimed by this `callerInstanceId`, which has also asked the device to sign
    /// (bytes of its own): a process someone else is driving.
    pub driven_by: Option<String>,
    /// The customer (default [`CUSTOMER`]).
    pub customer: String,
    /// The topic its notification goes to (default [`TOPIC`]).
    pub topic: String,
}

impl Default for NewProcess {
    fn default() -> Self {
        Self {
            key: KeyType::Ec,
            user: false,
            ca_reference: "default_ca_config".into(),
            profile_reference: "device_profile".into(),
            behaviour: Behaviour::Honest,
            binary: false,
            copies: 1,
            sign_delay: std::time::Duration::ZERO,
            driven_by: None,
            customer: CUSTOMER.into(),
            topic: TOPIC.into(),
        }
    }
}

/// The device's private key.
enum DeviceKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ec(p256::ecdsa::SigningKey),
}

impl DeviceKey {
    fn generate(kind: KeyType) -> Self {
        match kind {
            KeyType::Rsa => Self::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                    .unwrap_or_else(|e| panic!("RSA key generation failed: {e}")),
            )),
            KeyType::Ec => Self::Ec(p256::ecdsa::SigningKey::random(&mut rand::thread_rng())),
        }
    }

    fn spki(&self) -> Vec<u8> {
        let der = match self {
            Self::Rsa(key) => key.to_public_key().to_public_key_der(),
            Self::Ec(key) => key.verifying_key().to_public_key_der(),
        };
        der.map(|d| d.as_bytes().to_vec()).unwrap_or_default()
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Self::Rsa(_) => resource::RSA_PKCS1_V1_5_SHA256,
            Self::Ec(_) => resource::ECDSA_SHA256,
        }
    }

    /// Google's check of the device's proof of possession, done by the simulator with its own
    /// code (never the adapter's): RSASSA-PKCS1-v1_5/SHA-256, or ECDSA P-256/SHA-256 as DER or
    /// raw r‖s.
    fn verifies(&self, data: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier;
        match self {
            Self::Rsa(key) => {
                let verifier =
                    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.to_public_key());
                rsa::pkcs1v15::Signature::try_from(signature)
                    .is_ok_and(|s| verifier.verify(data, &s).is_ok())
            }
            Self::Ec(key) => {
                let verifier = key.verifying_key();
                p256::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(signature))
                    .is_ok_and(|s| verifier.verify(data, &s).is_ok())
            }
        }
    }

    fn sign(&self, data: &[u8], raw_ecdsa: bool) -> Vec<u8> {
        use rsa::signature::{SignatureEncoding, Signer};
        match self {
            Self::Rsa(key) => {
                let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**key).clone());
                signer.sign(data).to_vec()
            }
            Self::Ec(key) => {
                let signature: p256::ecdsa::Signature = key.sign(data);
                if raw_ecdsa {
                    signature.to_bytes().to_vec()
                } else {
                    signature.to_der().as_bytes().to_vec()
                }
            }
        }
    }
}

/// How the simulated client judged the process's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not finished.
    Pending,
    /// The certificate was imported (one certificate, for the device's key).
    Imported,
    /// The process failed with this `failureMessage`.
    Failed(String),
    /// The client refused the uploaded certificate, for this reason.
    Rejected(String),
}

struct SimProcess {
    resource: Resource,
    key: DeviceKey,
    behaviour: Behaviour,
    claimed_by: Option<String>,
    sign_requests: u32,
    operation: Option<String>,
    /// When signData was accepted (the operation's `startTime`).
    sign_started: Option<String>,
    /// When the device may answer signData.
    signs_at: Option<std::time::Instant>,
    sign_delay: std::time::Duration,
    verdict: Verdict,
}

/// A route whose next answers are forced errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET` a process.
    Get,
    /// `:claim`.
    Claim,
    /// `:signData`.
    SignData,
    /// `operations.get`.
    Operation,
    /// `:uploadCertificate`.
    Upload,
    /// `:setFailure`.
    SetFailure,
    /// Pub/Sub `:pull`.
    Pull,
}

#[derive(Default)]
struct State {
    processes: HashMap<String, SimProcess>,
    pubsub: PubSub,
    /// route → (HTTP status, how many more times)
    faults: HashMap<Route, (u16, u32)>,
    /// route → (how long requests wait in the network before they arrive, how many more)
    delays: HashMap<Route, (std::time::Duration, u32)>,
    /// route → how many more requests take effect but lose their answer (the caller sees 503)
    lost_answers: HashMap<Route, u32>,
    /// Delayed requests in the network now, and the most there ever were at once.
    in_network: (usize, usize),
    tokens: Vec<String>,
    /// Tokens granted in all (revoked ones included).
    granted: usize,
    /// (route, process) of every Chrome call that reached the fake.
    calls: Vec<(Route, String)>,
    next: u64,
}

/// The simulator, serving on a loopback port until dropped.
pub struct ChromeSim {
    state: Arc<Mutex<State>>,
    address: SocketAddr,
    service_account: rsa::RsaPublicKey,
    oidc_key: Arc<rsa::RsaPrivateKey>,
    stop: Option<oneshot::Sender<()>>,
}

/// The key id of the simulator's OIDC signing key in its JWKS.
pub const OIDC_KEY_ID: &str = "sim-oidc-1";
/// The service account the simulated push subscription authenticates as.
pub const PUSH_SERVICE_ACCOUNT: &str = "pubsub-push@brevet-sim.iam.gserviceaccount.com";

/// A service-account key file in Google's JSON format, and its public half.
pub fn service_account_key(token_uri: &str) -> (String, rsa::RsaPublicKey) {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .unwrap_or_else(|e| panic!("RSA key generation failed: {e}"));
    let pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap_or_else(|e| panic!("PKCS#8 encoding failed: {e}"));
    let file = serde_json::json!({
        "type": "service_account",
        "client_email": "brevet-adapter@brevet-sim.iam.gserviceaccount.com",
        "private_key_id": "sim-key-1",
        "private_key": pem.as_str(),
        "token_uri": token_uri,
    });
    (file.to_string(), key.to_public_key())
}

impl ChromeSim {
    /// Starts on `address` (port 0 for any), trusting `service_account` for token grants.
    pub async fn start(
        address: SocketAddr,
        service_account: rsa::RsaPublicKey,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        {
            let mut s = lock(&state);
            s.pubsub.create_topic(TOPIC);
            let _ = s.pubsub.create_subscription(SUBSCRIPTION, TOPIC, 10);
        }
        let oidc_key = Arc::new(
            rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                .map_err(|e| std::io::Error::other(e.to_string()))?,
        );
        let app = routes::router(routes::Shared {
            state: state.clone(),
            service_account: service_account.clone(),
            token_url: format!("http://{address}/token"),
            oidc_public: oidc_key.to_public_key(),
        });
        let stop = crate::sim::serve_until_stopped(listener, app);
        Ok(Self {
            state,
            address,
            service_account,
            oidc_key,
            stop: Some(stop),
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Base URL (`http://127.0.0.1:PORT/`): Chrome Management, Pub/Sub and the token endpoint.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.address)
    }

    /// Google's OIDC signing keys (JWKS), as `https://www.googleapis.com/oauth2/v3/certs`.
    pub fn jwks_url(&self) -> String {
        format!("http://{}/oauth2/v3/certs", self.address)
    }

    /// An OIDC token as Pub/Sub push attaches it: RS256 by the JWKS key, issuer
    /// accounts.google.com, `aud` and `email` as given, valid for `lifetime_secs` (negative:
    /// already expired).
    pub fn push_token(&self, audience: &str, email: &str, lifetime_secs: i64) -> String {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": "https://accounts.google.com", "aud": audience, "email": email,
            "email_verified": true, "sub": "1234567890", "iat": now - 10, "exp": now + lifetime_secs,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(OIDC_KEY_ID.into());
        let der = self
            .oidc_key
            .to_pkcs1_der()
            .unwrap_or_else(|e| panic!("PKCS#1 encoding failed: {e}"));
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
        )
        .unwrap_or_else(|e| panic!("JWT signing failed: {e}"))
    }

    /// The trusted service-account key.
    pub fn service_account(&self) -> &rsa::RsaPublicKey {
        &self.service_account
    }

    /// Creates a process (with a fresh device key) and publishes its notification. Returns the
    /// process's resource name.
    pub fn create_process(&self, new: &NewProcess) -> String {
        let key = DeviceKey::generate(new.key);
        let mut state = lock(&self.state);
        state.next += 1;
        let id = format!(
            "proc-{}-{}",
            state.next,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let name = format!(
            "customers/{}/certificateProvisioningProcesses/{id}",
            new.customer
        );
        let device = (format!("dir-{id}"), format!("SN{:06}", state.next));
        let subject = if new.user {
            Subject::User {
                directory_id: format!("user-{id}"),
                email: format!("user{}@example.com", state.next),
                device,
            }
        } else {
            Subject::Device {
                directory_id: device.0,
                serial: device.1,
            }
        };
        let mut resource = Resource {
            name: name.clone(),
            provisioning_profile_id: uuid::Uuid::new_v4().to_string(),
            subject_public_key_info: key.spki(),
            start_time: now(),
            sign_data: None,
            signature_algorithm: None,
            signature: None,
            issued_certificate: None,
            failure_message: None,
            ca_reference: new.ca_reference.clone(),
            profile_reference: new.profile_reference.clone(),
            subject,
        };
        let mut claimed_by =
            (new.behaviour == Behaviour::ClaimTaken).then(|| "another-adapter".to_owned());
        let mut sign_requests = 0;
        if let Some(other) = &new.driven_by {
            claimed_by = Some(other.clone());
            sign_requests = 1;
            resource.sign_data = Some(b"what another adapter asked for".to_vec());
            resource.signature_algorithm = Some(key.algorithm());
        }
        state.processes.insert(
            name.clone(),
            SimProcess {
                resource,
                key,
                behaviour: new.behaviour,
                claimed_by,
                sign_requests,
                sign_started: None,
                signs_at: None,
                sign_delay: new.sign_delay,
                operation: None,
                verdict: Verdict::Pending,
            },
        );
        // Encoded here, from the spec (§6.1), not with the adapter's own encoder.
        let data = if new.binary {
            notification_protobuf(&id, &new.customer)
        } else {
            serde_json::json!({
                "certificateProvisioningProcessId": id,
                "customerId": new.customer,
            })
            .to_string()
            .into_bytes()
        };
        let _ = state.pubsub.publish(&new.topic, &data, new.copies);
        name
    }

    /// Publishes raw bytes on the topic (a malformed notification).
    pub fn publish_raw(&self, data: &[u8]) {
        let _ = lock(&self.state).pubsub.publish(TOPIC, data, 1);
    }

    /// The client's verdict on `name`.
    pub fn verdict(&self, name: &str) -> Verdict {
        lock(&self.state)
            .processes
            .get(name)
            .map_or(Verdict::Pending, |p| p.verdict.clone())
    }

    /// The process resource as `get` shows it.
    pub fn resource(&self, name: &str) -> Option<Resource> {
        lock(&self.state)
            .processes
            .get(name)
            .map(|p| p.resource.clone())
    }

    /// How many signData requests reached `name`.
    pub fn sign_requests(&self, name: &str) -> u32 {
        lock(&self.state)
            .processes
            .get(name)
            .map_or(0, |p| p.sign_requests)
    }

    /// Who claimed `name`.
    pub fn claimed_by(&self, name: &str) -> Option<String> {
        lock(&self.state)
            .processes
            .get(name)
            .and_then(|p| p.claimed_by.clone())
    }

    /// Calls of `route` that reached the fake for `name`.
    pub fn calls(&self, route: Route, name: &str) -> usize {
        lock(&self.state)
            .calls
            .iter()
            .filter(|(r, n)| *r == route && n == name)
            .count()
    }

    /// The next `count` calls of `route` answer `status` (404, 429, 500, 503, …).
    pub fn fail_next(&self, route: Route, status: u16, count: u32) {
        lock(&self.state).faults.insert(route, (status, count));
    }

    /// The next `count` calls of `route` spend `delay` in the network before they arrive.
    pub fn delay_next(&self, route: Route, delay: std::time::Duration, count: u32) {
        lock(&self.state).delays.insert(route, (delay, count));
    }

    /// The next `count` calls of `route` take effect, but their answers are lost on the way back
    /// (the caller sees 503).
    pub fn lose_answers(&self, route: Route, count: u32) {
        lock(&self.state).lost_answers.insert(route, count);
    }

    /// The most delayed requests that were in the network at once (how many calls a worker
    /// had in flight together).
    pub fn peak_in_network(&self) -> usize {
        lock(&self.state).in_network.1
    }

    /// Revokes every access token granted so far (the next call with one answers 401).
    pub fn revoke_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    /// Changes how the device of `name` behaves from now on.
    pub fn set_behaviour(&self, name: &str, behaviour: Behaviour) {
        if let Some(p) = lock(&self.state).processes.get_mut(name) {
            p.behaviour = behaviour;
        }
    }

    /// Access tokens the token endpoint granted.
    pub fn tokens_granted(&self) -> usize {
        lock(&self.state).granted
    }

    /// Ack-deadline extensions (modifyAckDeadline, per ack id) received.
    pub fn ack_deadline_extensions(&self) -> usize {
        lock(&self.state).pubsub.extensions
    }

    /// Messages on the worker's subscription not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        lock(&self.state).pubsub.unacknowledged(SUBSCRIPTION)
    }

    /// Creates `topic` and a `subscription` of it (a customer's own notifications).
    pub fn add_subscription(&self, topic: &str, subscription: &str) {
        let mut state = lock(&self.state);
        state.pubsub.create_topic(topic);
        let _ = state.pubsub.create_subscription(subscription, topic, 10);
    }

    /// Messages on `subscription` not yet acknowledged.
    pub fn unacknowledged_on(&self, subscription: &str) -> usize {
        lock(&self.state).pubsub.unacknowledged(subscription)
    }

    /// Makes outstanding deliveries deliverable again now (their holder "crashed").
    pub fn expire_ack_deadlines(&self) {
        lock(&self.state).pubsub.expire_deadlines(SUBSCRIPTION);
    }
}

impl Drop for ChromeSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `CertificateProvisioningProcessCreatedEvent` as protobuf: field 1 (process id) and field 2
/// (customer id), both length-delimited strings.
fn notification_protobuf(process_id: &str, customer_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (field, value) in [(1u8, process_id), (2u8, customer_id)] {
        out.push((field << 3) | 2);
        let mut length = value.len();
        while length >= 0x80 {
            out.push((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        out.push(length as u8);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
