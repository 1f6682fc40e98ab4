//! The simulator's HTTP surface: the token endpoint, the Chrome Management routes (spec §3, with
//! the errors §3 and §11 give) and the Pub/Sub REST subset (§6.2).

#![expect(
    clippy::result_large_err,
    reason = "a refusal is the Google error response itself; the simulator is not a hot path"
)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes as Body;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{lock, now, Behaviour, Route, SimProcess, State, Verdict, CUSTOMER, INVALID_SIGNATURE};

/// The OAuth scopes the fake grants (spec §8, §6.2; Cloud CA Service's), written out here
/// rather than taken from the adapter.
const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/chrome.management.certprov.provisioningprocess",
    "https://www.googleapis.com/auth/pubsub",
    "https://www.googleapis.com/auth/cloud-platform",
];
use super::resource::{self, fields};

#[derive(Clone)]
pub(super) struct Shared {
    pub state: Arc<Mutex<State>>,
    pub service_account: rsa::RsaPublicKey,
    pub token_url: String,
    pub oidc_public: rsa::RsaPublicKey,
}

pub(super) fn router(shared: Shared) -> Router {
    let processes = "/v1/customers/{customer}/certificateProvisioningProcesses/{id}";
    Router::new()
        .route("/token", post(grant_token))
        .route("/oauth2/v3/certs", get(google_certs))
        .route(processes, get(get_process).post(process_verb))
        .route(
            &format!("{processes}/operations/{{operation}}"),
            get(get_operation),
        )
        .route(
            "/v1/projects/{project}/topics/{topic}",
            put(create_topic).post(topic_verb),
        )
        .route(
            "/v1/projects/{project}/subscriptions/{subscription}",
            put(create_subscription).post(subscription_verb),
        )
        .with_state(shared)
}

/// Google's error body with the HTTP status of `code`.
fn error(http: u16, status: &str, message: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({ "error": { "code": http, "message": message.into(), "status": status } });
    (code, Json(body)).into_response()
}

fn fault(state: &mut State, route: Route) -> Option<Response> {
    let (status, left) = state.faults.get_mut(&route)?;
    if *left == 0 {
        return None;
    }
    *left -= 1;
    let name = match *status {
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    Some(error(*status, name, "injected fault"))
}

/// Time in the network before a request arrives, when one was asked for `route`.
async fn arrive(shared: &Shared, route: Route) {
    let delay = {
        let mut state = lock(&shared.state);
        match state.delays.get_mut(&route) {
            Some((delay, left)) if *left > 0 => {
                *left -= 1;
                let delay = *delay;
                let (now, peak) = &mut state.in_network;
                *now += 1;
                *peak = (*peak).max(*now);
                Some(delay)
            }
            _ => None,
        }
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
        lock(&shared.state).in_network.0 -= 1;
    }
}

/// The answer, or a 503 in its place when `route`'s answers are being lost (the effect stays).
fn deliver(state: &mut State, route: Route, answer: Response) -> Response {
    match state.lost_answers.get_mut(&route) {
        Some(left) if *left > 0 => {
            *left -= 1;
            error(503, "UNAVAILABLE", "The service is currently unavailable.")
        }
        _ => answer,
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            400,
            "INVALID_ARGUMENT",
            format!("Invalid JSON payload received. {e}"),
        )
    })
}

/// The `N` string fields of a request body (empty when absent), or Google's 400.
fn request_fields<'a, const N: usize>(
    body: &'a Value,
    required: &[&str; N],
    optional: &[&str],
) -> Result<[&'a str; N], Response> {
    let values = fields(body, required, optional)
        .map_err(|message| error(400, "INVALID_ARGUMENT", message))?;
    values
        .try_into()
        .map_err(|_| error(500, "INTERNAL", "field count"))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn authorised(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    match bearer(headers) {
        Some(token) if state.tokens.iter().any(|t| t == token) => Ok(()),
        Some(_) => Err(error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        )),
        None => Err(error(
            401,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential.",
        )),
    }
}

#[derive(Deserialize)]
struct GrantForm {
    grant_type: String,
    assertion: String,
}

/// The JWT bearer grant: the assertion must be signed by the trusted service-account key, name
/// this endpoint as audience and ask for a scope the fake serves.
async fn grant_token(
    AxumState(shared): AxumState<Shared>,
    Form(form): Form<GrantForm>,
) -> Response {
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": why })),
        )
            .into_response()
    };
    if form.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response();
    }
    use rsa::pkcs1::EncodeRsaPublicKey;
    let Ok(der) = shared.service_account.to_pkcs1_der() else {
        return refuse("no key");
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_der(der.as_bytes());
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[shared.token_url.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let claims = match jsonwebtoken::decode::<Value>(&form.assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => return refuse(&format!("Invalid JWT: {e}")),
    };
    let scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !scope.split(' ').any(|s| SCOPES.contains(&s)) {
        return refuse("Invalid scope");
    }
    let token = format!("ya29.sim-{}", uuid::Uuid::new_v4().simple());
    let mut state = lock(&shared.state);
    state.tokens.push(token.clone());
    state.granted += 1;
    drop(state);
    Json(json!({ "access_token": token, "expires_in": 3600, "token_type": "Bearer" }))
        .into_response()
}

/// Google's OIDC signing keys as a JWKS document.
async fn google_certs(AxumState(shared): AxumState<Shared>) -> Response {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rsa::traits::PublicKeyParts;
    let key = &shared.oidc_public;
    Json(json!({ "keys": [{
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": super::OIDC_KEY_ID,
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    }] }))
    .into_response()
}

fn process_name(customer: &str, id: &str) -> String {
    let customer = if customer == "my_customer" {
        CUSTOMER
    } else {
        customer
    };
    format!("customers/{customer}/certificateProvisioningProcesses/{id}")
}

/// The device notices a signData request the first time anyone looks, and answers it; Google
/// checks the signature and fails the process itself when it is invalid.
fn observe(p: &mut SimProcess) {
    if p.resource.signature.is_some()
        || p.operation.is_none()
        || p.resource.failure_message.is_some()
    {
        return;
    }
    if p.signs_at.is_some_and(|at| std::time::Instant::now() < at) {
        return;
    }
    let Some(asked) = p.resource.sign_data.clone() else {
        return;
    };
    let signature = match p.behaviour {
        Behaviour::NeverSigns | Behaviour::SigningError => return,
        Behaviour::Honest | Behaviour::ClaimTaken => p.key.sign(&asked, false),
        Behaviour::RawEcdsa => p.key.sign(&asked, true),
        Behaviour::SignsOtherData => p.key.sign(b"something else entirely", false),
        Behaviour::BadSignature => {
            let mut signature = p.key.sign(&asked, false);
            let last = signature.len() - 1;
            signature[last] ^= 0x01;
            signature
        }
    };
    if !p.key.verifies(&asked, &signature) {
        p.resource.failure_message = Some(INVALID_SIGNATURE.to_owned());
        p.verdict = Verdict::Failed(INVALID_SIGNATURE.to_owned());
        return;
    }
    p.resource.signature = Some(signature);
}

async fn get_process(
    AxumState(shared): AxumState<Shared>,
    Path((customer, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    arrive(&shared, Route::Get).await;
    let mut state = lock(&shared.state);
    if let Err(denied) = authorised(&state, &headers) {
        return denied;
    }
    let name = process_name(&customer, &id);
    state.calls.push((Route::Get, name.clone()));
    if let Some(answer) = fault(&mut state, Route::Get) {
        return answer;
    }
    match state.processes.get_mut(&name) {
        Some(p) => {
            observe(p);
            Json(p.resource.to_json()).into_response()
        }
        None => error(
            404,
            "NOT_FOUND",
            format!("Requested entity was not found: {name}"),
        ),
    }
}

async fn process_verb(
    AxumState(shared): AxumState<Shared>,
    Path((customer, id_verb)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some((id, verb)) = id_verb.split_once(':') else {
        return error(404, "NOT_FOUND", "no such method");
    };
    let route = match verb {
        "claim" => Route::Claim,
        "signData" => Route::SignData,
        "uploadCertificate" => Route::Upload,
        "setFailure" => Route::SetFailure,
        _ => return error(404, "NOT_FOUND", format!("no method {verb}")),
    };
    arrive(&shared, route).await;
    let mut state = lock(&shared.state);
    if let Err(denied) = authorised(&state, &headers) {
        return denied;
    }
    let name = process_name(&customer, id);
    state.calls.push((route, name.clone()));
    if let Some(answer) = fault(&mut state, route) {
        return answer;
    }
    let Some(p) = state.processes.get_mut(&name) else {
        return error(
            404,
            "NOT_FOUND",
            format!("Requested entity was not found: {name}"),
        );
    };
    let finished = p.resource.failure_message.is_some() || p.resource.issued_certificate.is_some();
    let answer = match route {
        Route::Claim => claim(p, &body, finished),
        Route::SignData => sign_data(p, &body, finished),
        Route::Upload => upload(p, &body, finished),
        _ => set_failure(p, &body, finished),
    };
    deliver(&mut state, route, answer.unwrap_or_else(|refusal| refusal))
}

fn claim(p: &mut SimProcess, body: &[u8], finished: bool) -> Result<Response, Response> {
    let request: Value = parse(body)?;
    let [caller] = request_fields(&request, &["callerInstanceId"], &[])?;
    let caller = caller.to_owned();
    if caller.is_empty() {
        return Err(error(
            400,
            "INVALID_ARGUMENT",
            "callerInstanceId is required",
        ));
    }
    if finished {
        return Err(error(
            400,
            "FAILED_PRECONDITION",
            "The process is already finished.",
        ));
    }
    match &p.claimed_by {
        Some(owner) if *owner != caller => Err(error(
            400,
            "FAILED_PRECONDITION",
            "The process was claimed by another instance.",
        )),
        _ => {
            p.claimed_by = Some(caller);
            Ok(Json(json!({})).into_response())
        }
    }
}

/// signData and setFailure need a claimed process that has not ended.
fn claimed_and_open(p: &SimProcess, finished: bool) -> Result<(), Response> {
    if p.claimed_by.is_none() {
        return Err(error(
            400,
            "FAILED_PRECONDITION",
            "The process has not been claimed.",
        ));
    }
    if finished {
        return Err(error(
            400,
            "FAILED_PRECONDITION",
            "The process is already finished.",
        ));
    }
    Ok(())
}

fn sign_data(p: &mut SimProcess, body: &[u8], finished: bool) -> Result<Response, Response> {
    let request: Value = parse(body)?;
    let [data, algorithm] = request_fields(&request, &["signData", "signatureAlgorithm"], &[])?;
    let data = resource::bytes(data).ok_or_else(|| {
        error(
            400,
            "INVALID_ARGUMENT",
            "Invalid value at 'sign_data' (TYPE_BYTES)",
        )
    })?;
    claimed_and_open(p, finished)?;
    if algorithm != p.key.algorithm() {
        return Err(error(
            400,
            "INVALID_ARGUMENT",
            "signatureAlgorithm does not match the key.",
        ));
    }
    if data.is_empty() {
        return Err(error(400, "INVALID_ARGUMENT", "signData is required"));
    }
    p.sign_requests += 1;
    if p.sign_requests > 1 {
        // What ChromeOS does when asked twice (spec §1).
        let reason = "Proof of possession requested >1 times".to_owned();
        p.resource.failure_message = Some(reason.clone());
        p.verdict = Verdict::Failed(reason);
        return Err(error(
            400,
            "FAILED_PRECONDITION",
            "signData was already called.",
        ));
    }
    p.resource.sign_data = Some(data);
    p.sign_started = Some(now());
    p.signs_at = Some(std::time::Instant::now() + p.sign_delay);
    p.resource.signature_algorithm = Some(p.key.algorithm());
    let operation = format!(
        "{}/operations/op-{}",
        p.resource.name,
        uuid::Uuid::new_v4().simple()
    );
    p.operation = Some(operation.clone());
    Ok(Json(json!({
        "name": operation,
        "metadata": {
            "@type": "type.googleapis.com/google.chrome.management.versions.v1.SignDataMetadata",
            "startTime": p.sign_started,
        },
        "done": false,
    }))
    .into_response())
}

fn upload(p: &mut SimProcess, body: &[u8], finished: bool) -> Result<Response, Response> {
    let request: Value = parse(body)?;
    let [pem] = request_fields(&request, &["certificatePem"], &[])?;
    let pem = pem.to_owned();
    if p.claimed_by.is_none() || p.resource.signature.is_none() || finished {
        return Err(error(
            400,
            "FAILED_PRECONDITION",
            "The process is not awaiting a certificate.",
        ));
    }
    // The ChromeOS client's import checks (spec §1).
    let pem = &pem;
    let reason = if pem.matches("-----BEGIN CERTIFICATE-----").count() != 1 {
        Some("Failed to parse a certificate")
    } else {
        match crate::pki::certs::from_pem(pem) {
            Err(_) => Some("Failed to parse a certificate"),
            Ok(cert) => {
                use x509_cert::der::Encode;
                let spki = cert
                    .tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .unwrap_or_default();
                (spki != p.resource.subject_public_key_info)
                    .then_some("Downloaded certificate does not match the expected key pair")
            }
        }
    };
    if let Some(reason) = reason {
        p.verdict = Verdict::Rejected(reason.to_owned());
        return Err(error(400, "INVALID_ARGUMENT", reason));
    }
    p.resource.issued_certificate = Some(pem.clone());
    p.verdict = Verdict::Imported;
    Ok(Json(json!({})).into_response())
}

fn set_failure(p: &mut SimProcess, body: &[u8], finished: bool) -> Result<Response, Response> {
    let request: Value = parse(body)?;
    let [message] = request_fields(&request, &["errorMessage"], &[])?;
    let message = message.to_owned();
    if message.trim().is_empty() {
        return Err(error(400, "INVALID_ARGUMENT", "errorMessage is required"));
    }
    claimed_and_open(p, finished)?;
    p.resource.failure_message = Some(message.clone());
    p.verdict = Verdict::Failed(message);
    Ok(Json(json!({})).into_response())
}

async fn get_operation(
    AxumState(shared): AxumState<Shared>,
    Path((customer, id, operation)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    arrive(&shared, Route::Operation).await;
    let mut state = lock(&shared.state);
    if let Err(denied) = authorised(&state, &headers) {
        return denied;
    }
    let name = process_name(&customer, &id);
    state.calls.push((Route::Operation, name.clone()));
    if let Some(answer) = fault(&mut state, Route::Operation) {
        return answer;
    }
    let full = format!("{name}/operations/{operation}");
    let Some(p) = state
        .processes
        .get_mut(&name)
        .filter(|p| p.operation.as_deref() == Some(full.as_str()))
    else {
        return error(404, "NOT_FOUND", format!("Operation not found: {full}"));
    };
    observe(p);
    // The operation started with signData, not with the process.
    let metadata = json!({
        "@type": "type.googleapis.com/google.chrome.management.versions.v1.SignDataMetadata",
        "startTime": p.sign_started,
    });
    let body = if p.resource.failure_message.as_deref() == Some(INVALID_SIGNATURE) {
        let (customer, process) = (CUSTOMER, id.as_str());
        let message = format!(
            "The requested SignData LRO failed because the corresponding certificate provisioning \
             process is in failure state CERTIFICATE_PROVISIONING_RESULT_ERROR_INVALID_SIGNATURE \
             with the following error message: {INVALID_SIGNATURE} \
             [operationId={operation}, cppId={process}, customerId={customer}]"
        );
        json!({ "name": full, "metadata": metadata, "done": true,
                "error": { "code": 3, "message": message } })
    } else if p.behaviour == Behaviour::SigningError {
        json!({ "name": full, "metadata": metadata, "done": true,
                "error": { "code": 13, "message": "The client failed to sign the data." } })
    } else if p.resource.signature.is_some() {
        json!({ "name": full, "metadata": metadata, "done": true, "response": {
            "@type": "type.googleapis.com/google.chrome.management.versions.v1.SignDataResponse",
            "certificateProvisioningProcess": p.resource.to_json(),
        } })
    } else {
        json!({ "name": full, "metadata": metadata, "done": false })
    };
    Json(body).into_response()
}

fn pubsub_auth(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    // The emulator takes requests without credentials; a token, when sent, must be valid.
    match bearer(headers) {
        None => Ok(()),
        Some(_) => authorised(state, headers),
    }
}

async fn create_topic(
    AxumState(shared): AxumState<Shared>,
    Path((project, topic)): Path<(String, String)>,
) -> Response {
    let name = format!("projects/{project}/topics/{topic}");
    lock(&shared.state).pubsub.create_topic(&name);
    Json(json!({ "name": name })).into_response()
}

async fn topic_verb(
    AxumState(shared): AxumState<Shared>,
    Path((project, topic_verb)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut state = lock(&shared.state);
    if let Err(denied) = pubsub_auth(&state, &headers) {
        return denied;
    }
    let Some((topic, "publish")) = topic_verb.split_once(':') else {
        return error(404, "NOT_FOUND", "no such method");
    };
    let request: Value = match parse(&body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let name = format!("projects/{project}/topics/{topic}");
    let mut ids = Vec::new();
    for message in request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let data = message
            .get("data")
            .and_then(Value::as_str)
            .and_then(resource::bytes)
            .unwrap_or_default();
        match state.pubsub.publish(&name, &data, 1) {
            Ok(id) => ids.push(id),
            Err((status, message)) => return error(status, "NOT_FOUND", message),
        }
    }
    Json(json!({ "messageIds": ids })).into_response()
}

async fn create_subscription(
    AxumState(shared): AxumState<Shared>,
    Path((project, subscription)): Path<(String, String)>,
    body: Body,
) -> Response {
    let request: Value = match parse(&body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let name = format!("projects/{project}/subscriptions/{subscription}");
    let topic = request
        .get("topic")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let deadline = request
        .get("ackDeadlineSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(10);
    match lock(&shared.state)
        .pubsub
        .create_subscription(&name, topic, deadline)
    {
        Ok(()) => Json(json!({ "name": name, "topic": topic, "ackDeadlineSeconds": deadline }))
            .into_response(),
        Err((status, message)) => error(status, "INVALID_ARGUMENT", message),
    }
}

async fn subscription_verb(
    AxumState(shared): AxumState<Shared>,
    Path((project, subscription_verb)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut state = lock(&shared.state);
    if let Err(denied) = pubsub_auth(&state, &headers) {
        return denied;
    }
    let Some((subscription, verb)) = subscription_verb.split_once(':') else {
        return error(404, "NOT_FOUND", "no such method");
    };
    let name = format!("projects/{project}/subscriptions/{subscription}");
    let request: Value = match parse(&body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let ack_ids: Vec<String> = request
        .get("ackIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let result = match verb {
        "pull" => {
            if let Some(answer) = fault(&mut state, Route::Pull) {
                return answer;
            }
            let max = request
                .get("maxMessages")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            state
                .pubsub
                .pull(&name, usize::try_from(max).unwrap_or(usize::MAX))
                .map(|messages| json!({ "receivedMessages": messages }))
        }
        "acknowledge" => state
            .pubsub
            .acknowledge(&name, &ack_ids)
            .map(|()| json!({})),
        "modifyAckDeadline" => {
            let seconds = request
                .get("ackDeadlineSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            state
                .pubsub
                .modify_ack_deadline(&name, &ack_ids, seconds)
                .map(|()| json!({}))
        }
        _ => return error(404, "NOT_FOUND", format!("no method {verb}")),
    };
    match result {
        Ok(body) => Json(body).into_response(),
        Err((status, message)) => error(
            status,
            if status == 404 {
                "NOT_FOUND"
            } else {
                "INVALID_ARGUMENT"
            },
            message,
        ),
    }
}
