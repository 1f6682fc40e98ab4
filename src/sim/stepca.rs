//! A fake smallstep step-ca sign API (spec §10): `POST /1.0/sign {csr, ott, notBefore,
//! notAfter}` → 201 `{crt, ca, certChain}`. Like the real one (smallstep/certificates, JWK
//! provisioner) it checks the provisioner's one-time token (ES256, its `kid`, audience, expiry,
//! single use), the CSR's self-signature, that the CSR's common name is the token's `sub` and
//! that each kind of SAN in the CSR matches the token's `sans` (the token's subject standing in
//! when it has none), and the requested lifetime against the provisioner's maximum (24 hours by
//! default). What it issues follows the provisioner's template: step-ca's default leaf template
//! (subject: the token's common name only; SANs: the token's; KeyUsage digitalSignature, plus
//! keyEncipherment for RSA; ExtendedKeyUsage serverAuth and clientAuth), or a template that copies
//! the request, as docs/cert-provisioning.md tells operators to install. It can be told to refuse
//! or to fail.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::fake_ca::{requested_extensions, FakeCa};
use crate::certprov::pop::verify_csr_pem;
use crate::pki::certs;
use crate::pki::signer::{Signer, SoftwareSigner};

/// The provisioner key id the fake expects.
pub const KEY_ID: &str = "sim-provisioner-key";
/// The provisioner name.
pub const PROVISIONER: &str = "brevet-adapter";

/// The provisioner's x509 template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// step-ca's built-in leaf template.
    Default,
    /// A template taking subject, SANs, KeyUsage and ExtendedKeyUsage from the request.
    FromRequest,
}

/// How the fake's provisioner is set up.
#[derive(Debug, Clone, Copy)]
pub struct Provisioner {
    /// Its x509 template.
    pub template: Template,
    /// `maxTLSCertDuration`.
    pub max_duration: Duration,
}

impl Default for Provisioner {
    /// As `step ca init` makes it: the default template, 24 hours at most.
    fn default() -> Self {
        Self {
            template: Template::Default,
            max_duration: Duration::from_secs(86_400),
        }
    }
}

#[derive(Default)]
struct Shared {
    used_tokens: HashSet<String>,
    /// Answer the next requests with this status.
    fail_next: Option<(u16, u32)>,
    issued: usize,
}

/// The fake CA, serving on loopback until dropped.
pub struct FakeStepCa {
    address: SocketAddr,
    provisioner: SoftwareSigner,
    ca_certificate: x509_cert::Certificate,
    shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
}

#[derive(Clone)]
struct Ctx {
    url: String,
    provisioner_point: Vec<u8>,
    ca: FakeCa,
    shared: Arc<Mutex<Shared>>,
    provisioner: Provisioner,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequest {
    csr: String,
    ott: String,
    #[serde(default, rename = "notBefore")]
    not_before: Option<String>,
    #[serde(default, rename = "notAfter")]
    not_after: Option<String>,
}

impl FakeStepCa {
    /// Starts a CA with fresh keys on a loopback port, its provisioner as `step ca init` makes it.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Provisioner::default()).await
    }

    /// Starts a CA whose provisioner is set up as `provisioner` says.
    pub async fn start_with(provisioner_setup: Provisioner) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let provisioner = SoftwareSigner::generate();
        let ca = FakeCa::new("CN=Simulated step-ca Intermediate")?;
        let ca_certificate = ca.certificate().clone();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let ctx = Ctx {
            url: format!("http://{address}"),
            // jsonwebtoken's EC keys are the bare SEC1 point
            provisioner_point: provisioner
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            ca,
            shared: shared.clone(),
            provisioner: provisioner_setup,
        };
        let app = Router::new().route("/1.0/sign", post(sign)).with_state(ctx);
        let stop = crate::sim::serve_until_stopped(listener, app);
        Ok(Self {
            address,
            provisioner,
            ca_certificate,
            shared,
            stop: Some(stop),
        })
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The provisioner's private key (PKCS#8 PEM), for the adapter's configuration.
    pub fn provisioner_key_pem(&self) -> String {
        self.provisioner
            .to_pkcs8_pem()
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    /// The issuing CA's certificate.
    pub fn ca_certificate(&self) -> &x509_cert::Certificate {
        &self.ca_certificate
    }

    /// The next `count` requests answer `status`.
    pub fn fail_next(&self, status: u16, count: u32) {
        self.lock().fail_next = Some((status, count));
    }

    /// Certificates issued so far.
    pub fn issued(&self) -> usize {
        self.lock().issued
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeStepCa {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "status": status.as_u16(), "message": message })),
    )
        .into_response()
}

async fn sign(State(ctx): State<Ctx>, body: axum::body::Bytes) -> Response {
    {
        let mut shared = ctx.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((status, left)) = shared.fail_next.as_mut() {
            if *left > 0 {
                *left -= 1;
                let code =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return refuse(code, "injected fault");
            }
        }
    }
    let Ok(request) = serde_json::from_slice::<SignRequest>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid request body");
    };
    let key = jsonwebtoken::DecodingKey::from_ec_der(&ctx.provisioner_point);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[format!("{}/1.0/sign", ctx.url)]);
    validation.set_issuer(&[PROVISIONER]);
    let header = match jsonwebtoken::decode_header(&request.ott) {
        Ok(header) => header,
        Err(_) => return refuse(StatusCode::UNAUTHORIZED, "invalid token"),
    };
    if header.kid.as_deref() != Some(KEY_ID) {
        return refuse(StatusCode::UNAUTHORIZED, "unknown provisioner key");
    }
    let claims = match jsonwebtoken::decode::<serde_json::Value>(&request.ott, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &format!("invalid token: {e}")),
    };
    let jti = claims
        .get("jti")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    {
        let mut shared = ctx.shared.lock().unwrap_or_else(|p| p.into_inner());
        if jti.is_empty() || !shared.used_tokens.insert(jti) {
            return refuse(StatusCode::UNAUTHORIZED, "token already used");
        }
    }
    let csr = match verify_csr_pem(&request.csr) {
        Ok(csr) => csr,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("invalid CSR: {e}")),
    };
    let subject = claims
        .get("sub")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let mut sans: Vec<String> = claims
        .get("sans")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if sans.is_empty() {
        sans.push(subject.clone());
    }
    let requested = requested_names(&csr);
    let common_name = common_name_of(&csr.info.subject);
    if common_name.as_deref() != Some(subject.as_str()) {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "certificate request does not contain the valid common name - got {}, want {subject}",
                common_name.unwrap_or_default()
            ),
        );
    }
    for (kind, got) in &requested.by_kind {
        let want: HashSet<&String> = sans.iter().filter(|s| san_kind(s) == *kind).collect();
        let got_set: HashSet<&String> = got.iter().collect();
        if !got.is_empty() && want != got_set {
            return refuse(
                StatusCode::FORBIDDEN,
                &format!("certificate request does not contain the valid {kind} - got {got:?}, want {want:?}"),
            );
        }
    }
    let now = SystemTime::now();
    let not_before = request
        .not_before
        .as_deref()
        .map(parse_time)
        .unwrap_or(Ok(now));
    let not_after = request
        .not_after
        .as_deref()
        .map(parse_time)
        .unwrap_or(Ok(now + Duration::from_secs(86_400)));
    let (Ok(not_before), Ok(not_after)) = (not_before, not_after) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid notBefore or notAfter");
    };
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    if lifetime > ctx.provisioner.max_duration {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "requested duration of {}h is more than the authorized maximum certificate duration of {}h",
                lifetime.as_secs() / 3600,
                ctx.provisioner.max_duration.as_secs() / 3600
            ),
        );
    }
    let (subject, extensions) = match ctx.provisioner.template {
        Template::FromRequest => (csr.info.subject.to_string(), requested.extensions.clone()),
        Template::Default => match default_leaf(&subject, &sans, &csr) {
            Ok(issued) => issued,
            Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
    };
    let issued = match ctx.ca.issue(
        subject,
        csr.info.public_key.clone(),
        not_before,
        lifetime,
        extensions,
    ) {
        Ok(cert) => cert,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (Ok(crt), Ok(ca)) = (certs::to_pem(&issued), certs::to_pem(ctx.ca.certificate())) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed");
    };
    ctx.shared.lock().unwrap_or_else(|p| p.into_inner()).issued += 1;
    (
        StatusCode::CREATED,
        Json(json!({ "crt": crt, "ca": ca, "certChain": [crt, ca] })),
    )
        .into_response()
}

/// What a CSR asks for: its extensionRequest, and its SANs by step-ca's kinds.
struct Requested {
    extensions: Vec<x509_cert::ext::Extension>,
    by_kind: Vec<(&'static str, Vec<String>)>,
}

fn requested_names(csr: &x509_cert::request::CertReq) -> Requested {
    use x509_cert::der::oid::AssociatedOid;
    use x509_cert::ext::pkix::name::GeneralName;
    let extensions = requested_extensions(csr);
    let (mut dns, mut emails, mut uris) = (Vec::new(), Vec::new(), Vec::new());
    for extension in &extensions {
        if extension.extn_id != x509_cert::ext::pkix::SubjectAltName::OID {
            continue;
        }
        let Ok(names) = <x509_cert::ext::pkix::SubjectAltName as x509_cert::der::Decode>::from_der(
            extension.extn_value.as_bytes(),
        ) else {
            continue;
        };
        for name in names.0 {
            match name {
                GeneralName::DnsName(n) => dns.push(n.to_string()),
                GeneralName::Rfc822Name(n) => emails.push(n.to_string()),
                GeneralName::UniformResourceIdentifier(n) => uris.push(n.to_string()),
                _ => {}
            }
        }
    }
    Requested {
        extensions,
        by_kind: vec![
            ("DNS names", dns),
            ("email addresses", emails),
            ("URIs", uris),
        ],
    }
}

/// How step-ca sorts a SAN string of a token: an email when it has an @, a URI when it has a
/// scheme, else a DNS name.
fn san_kind(san: &str) -> &'static str {
    if san.contains('@') {
        "email addresses"
    } else if san.contains("://") {
        "URIs"
    } else {
        "DNS names"
    }
}

fn common_name_of(name: &x509_cert::name::Name) -> Option<String> {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).find_map(|atv| {
        (atv.oid == x509_cert::der::oid::db::rfc4519::CN).then(|| {
            atv.value
                .decode_as::<x509_cert::der::asn1::Utf8StringRef<'_>>()
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    atv.value
                        .decode_as::<x509_cert::der::asn1::PrintableStringRef<'_>>()
                        .map(|s| s.as_str().to_owned())
                })
                .unwrap_or_default()
        })
    })
}

fn parse_time(text: &str) -> Result<SystemTime, ()> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
        .map_err(|_| ())
}

/// step-ca's default leaf template: `{"subject": {"commonName": sub}, "sans": token sans,
/// "keyUsage": ["digitalSignature"] (+ "keyEncipherment" for RSA), "extKeyUsage": ["serverAuth",
/// "clientAuth"]}`.
fn default_leaf(
    subject: &str,
    sans: &[String],
    csr: &x509_cert::request::CertReq,
) -> Result<(String, Vec<x509_cert::ext::Extension>), String> {
    use x509_cert::der::asn1::Ia5String;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};
    let rsa = csr.info.public_key.algorithm.oid == x509_cert::der::oid::db::rfc5912::RSA_ENCRYPTION;
    let mut usage = x509_cert::der::flagset::FlagSet::from(KeyUsages::DigitalSignature);
    if rsa {
        usage |= KeyUsages::KeyEncipherment;
    }
    let mut names = Vec::new();
    for san in sans {
        let text = Ia5String::new(san).map_err(|e| e.to_string())?;
        names.push(match san_kind(san) {
            "email addresses" => GeneralName::Rfc822Name(text),
            "URIs" => GeneralName::UniformResourceIdentifier(text),
            _ => GeneralName::DnsName(text),
        });
    }
    let extensions = vec![
        certs::extension(&KeyUsage(usage), true).map_err(|e| e.to_string())?,
        certs::extension(
            &ExtendedKeyUsage(vec![
                x509_cert::der::oid::db::rfc5280::ID_KP_SERVER_AUTH,
                x509_cert::der::oid::db::rfc5280::ID_KP_CLIENT_AUTH,
            ]),
            false,
        )
        .map_err(|e| e.to_string())?,
        certs::extension(&SubjectAltName(names), false).map_err(|e| e.to_string())?,
    ];
    Ok((format!("CN={subject}"), extensions))
}
