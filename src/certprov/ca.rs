//! The certificate authorities a process's CA-connection reference can select: Brevet's built-in
//! CA (its key behind the same `Signer` trait as the mdoc keys) and smallstep step-ca's sign API.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use x509_cert::der::oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use super::pop::DeviceKey;
use super::profile::Rendered;
use crate::pki::certs::{self, CertTemplate, SubjectKey};
use crate::pki::signer::Signer;

/// What the CA is asked to certify.
pub struct IssueRequest<'a> {
    /// The process's name (CAs that deduplicate requests key them by it).
    pub process: &'a str,
    /// The device key.
    pub key: &'a DeviceKey,
    /// What the certificate says (from the profile).
    pub rendered: &'a Rendered,
    /// The device-signed PKCS#10 request (PEM) for CAs that take one.
    pub csr_pem: &'a str,
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The leaf alone, one PEM block (the client refuses chains, spec §1).
    pub pem: String,
    /// Serial number, hex.
    pub serial: String,
}

impl Issued {
    /// `certificate` as the adapter records it.
    pub fn from_certificate(certificate: &Certificate) -> Result<Self, CaError> {
        Ok(Self {
            pem: certs::to_pem(certificate).map_err(|e| CaError::Refused(e.to_string()))?,
            serial: certs::serial_hex(certificate),
        })
    }

    /// The one certificate in the PEM a CA answered with.
    pub fn from_pem(pem: &str) -> Result<Self, CaError> {
        let certificate = certs::from_pem(pem).map_err(|e| {
            CaError::Refused(format!(
                "The certificate authority returned no valid certificate: {e}"
            ))
        })?;
        Self::from_certificate(&certificate)
    }
}

/// Why the CA did not issue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    /// The CA refused; asking again will not help. The text is shown on the device.
    #[error("{0}")]
    Refused(String),
    /// The CA could not be reached or failed; worth retrying.
    #[error("{0}")]
    Unavailable(String),
}

/// A certificate authority.
#[async_trait]
pub trait CertificateAuthority: Send + Sync {
    /// Issues a certificate for `request.key`.
    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, CaError>;

    /// A CRL listing `revoked`, valid from `now` for [`CRL_VALIDITY`], for CAs whose revocations
    /// Brevet publishes (the built-in CA); `None` for CAs that publish their own.
    fn crl(
        &self,
        _revoked: &[certs::RevokedEntry],
        _now: SystemTime,
    ) -> Option<Result<Vec<u8>, String>> {
        None
    }
}

/// How long a CRL of the built-in CA is valid (its nextUpdate; [infer] a day). The worker signs a
/// new one within a minute of a revocation, and when half of this has passed.
pub const CRL_VALIDITY: Duration = Duration::from_secs(86_400);

/// Brevet's own CA.
pub struct BuiltinCa {
    certificate: Certificate,
    signer: Box<dyn Signer>,
    crl_url: Option<String>,
}

impl BuiltinCa {
    /// A CA with `certificate` whose key `signer` holds.
    pub fn new(certificate: Certificate, signer: Box<dyn Signer>) -> Self {
        Self {
            certificate,
            signer,
            crl_url: None,
        }
    }

    /// The same CA naming `url` as the CRL distribution point of every certificate it issues.
    pub fn with_crl_url(mut self, url: Option<String>) -> Self {
        self.crl_url = url;
        self
    }

    /// Creates a self-signed P-256 CA valid for `lifetime` and writes `ca.crt.pem` and
    /// `ca.key.pem` (mode 0600, never over an existing file) into `dir`; returns their paths.
    pub fn create_files(
        dir: &std::path::Path,
        common_name: &str,
        lifetime: Duration,
    ) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
        Self::create_files_with(dir, common_name, lifetime, None)
    }

    /// [`BuiltinCa::create_files`], the key generated inside `token` when given (the key file
    /// then holds its label: `ca.key.pkcs11`).
    pub fn create_files_with(
        dir: &std::path::Path,
        common_name: &str,
        lifetime: Duration,
        token: Option<&std::sync::Arc<crate::pki::pkcs11::Token>>,
    ) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
        use anyhow::Context;
        let cert_path = dir.join("ca.crt.pem");
        if cert_path.exists() {
            anyhow::bail!(
                "{} already holds a CA; choose another directory",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let (key, key_path): (Box<dyn Signer>, std::path::PathBuf) = match token {
            Some(token) => {
                let label = crate::pki::keystore::new_label("device-ca");
                let signer = token.generate_p256(&label)?;
                let path = dir.join("ca.key.pkcs11");
                crate::pki::keystore::write_new(&path, format!("{label}\n").as_bytes(), 0o644)?;
                (Box::new(signer), path)
            }
            None => {
                let key = crate::pki::signer::SoftwareSigner::generate();
                let path = dir.join("ca.key.pem");
                crate::pki::keystore::write_new(&path, key.to_pkcs8_pem()?.as_bytes(), 0o600)?;
                (Box::new(key), path)
            }
        };
        let certificate = certs::issue_certificate(
            &CertTemplate {
                subject: format!("CN={common_name}"),
                issuer: None,
                serial: None,
                not_before: SystemTime::now() - Duration::from_secs(60),
                lifetime,
                public_key: key.verifying_key().into(),
                ca: true,
                extensions: Vec::new(),
            },
            key.as_ref(),
        )?;
        crate::pki::keystore::write_new(
            &cert_path,
            certs::to_pem(&certificate)?.as_bytes(),
            0o644,
        )?;
        Ok((cert_path, key_path))
    }

    /// Reads the CA from PEM files.
    pub fn load(certificate: &std::path::Path, key: &std::path::Path) -> anyhow::Result<Self> {
        Self::load_with(certificate, key, None)
    }

    /// [`BuiltinCa::load`], with `token` for a key that lives in it: a `*.key.pkcs11` file names
    /// the key's label in the token (as `brevet keys init-device-ca` writes it with
    /// `[keys.pkcs11]` set).
    pub fn load_with(
        certificate: &std::path::Path,
        key: &std::path::Path,
        token: Option<&std::sync::Arc<crate::pki::pkcs11::Token>>,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let pem = std::fs::read_to_string(certificate)
            .with_context(|| format!("cannot read {}", certificate.display()))?;
        let certificate = certs::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", certificate.display()))?;
        if key.to_string_lossy().ends_with(".key.pkcs11") {
            let label = std::fs::read_to_string(key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let token = token.with_context(|| {
                format!(
                    "{}: the CA key is in a PKCS#11 token: configure keys.pkcs11",
                    key.display()
                )
            })?;
            let signer = token
                .signer(label.trim())
                .with_context(|| key.display().to_string())?;
            if signer.verifying_key() != certs::public_key(&certificate)? {
                anyhow::bail!(
                    "{} does not hold the key of the CA certificate",
                    key.display()
                );
            }
            return Ok(Self::new(certificate, Box::new(signer)));
        }
        let key_pem = zeroize::Zeroizing::new(
            std::fs::read_to_string(key)
                .with_context(|| format!("cannot read {}", key.display()))?,
        );
        let software = crate::pki::signer::SoftwareSigner::from_pkcs8_pem(&key_pem)
            .with_context(|| format!("{} is not a P-256 PKCS#8 key", key.display()))?;
        if software.verifying_key() != certs::public_key(&certificate)? {
            anyhow::bail!(
                "{} does not hold the key of {}",
                key.display(),
                "the CA certificate"
            );
        }
        Ok(Self::new(
            certificate,
            crate::pki::signer::fast_signer(&software)?,
        ))
    }

    fn issue_now(&self, request: &IssueRequest<'_>) -> Result<Issued, String> {
        let spki = SubjectPublicKeyInfoOwned::try_from(request.key.der.as_slice())
            .map_err(|e| format!("the device key cannot be certified: {e}"))?;
        let mut extensions = request.rendered.extensions.clone();
        if let Some(url) = &self.crl_url {
            extensions.push(certs::crl_distribution_point(url).map_err(|e| e.to_string())?);
        }
        if let Some(ski) =
            certs::raw_extension_value(&self.certificate, ID_CE_SUBJECT_KEY_IDENTIFIER)
        {
            use x509_cert::der::Decode;
            let id = x509_cert::der::asn1::OctetString::from_der(ski)
                .map_err(|e| format!("the CA certificate's key identifier is unreadable: {e}"))?;
            extensions.push(
                certs::extension(
                    &AuthorityKeyIdentifier {
                        key_identifier: Some(id),
                        authority_cert_issuer: None,
                        authority_cert_serial_number: None,
                    },
                    false,
                )
                .map_err(|e| e.to_string())?,
            );
        }
        // A minute of slack for devices whose clocks run a little behind.
        let not_before = SystemTime::now() - Duration::from_secs(60);
        // Never past the CA's own end.
        let ca_end = self
            .certificate
            .tbs_certificate
            .validity
            .not_after
            .to_system_time();
        let room = ca_end
            .duration_since(not_before)
            .map_err(|_| "the device CA has expired".to_owned())?;
        let lifetime = request.rendered.lifetime.min(room);
        let template = CertTemplate {
            subject: request.rendered.subject.to_string(),
            issuer: Some(self.certificate.tbs_certificate.subject.clone()),
            serial: None,
            not_before,
            lifetime,
            public_key: SubjectKey::Spki(spki),
            ca: false,
            extensions,
        };
        let certificate =
            certs::issue_certificate(&template, self.signer.as_ref()).map_err(|e| e.to_string())?;
        Issued::from_certificate(&certificate).map_err(|e| e.to_string())
    }
}

#[async_trait]
impl CertificateAuthority for BuiltinCa {
    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, CaError> {
        // Our own failures to build a certificate are not the device's fault, but retrying
        // the same inputs gives the same result: report them as a refusal.
        self.issue_now(request).map_err(CaError::Refused)
    }

    fn crl(
        &self,
        revoked: &[certs::RevokedEntry],
        now: SystemTime,
    ) -> Option<Result<Vec<u8>, String>> {
        // The CRL number grows with time, as RFC 5280 asks, without a counter to keep.
        let number = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Some(
            certs::issue_crl(
                &self.certificate,
                self.signer.as_ref(),
                revoked,
                now,
                now + CRL_VALIDITY,
                number,
            )
            .map_err(|e| e.to_string()),
        )
    }
}

/// A smallstep step-ca, through `POST /1.0/sign` with a JWK provisioner's one-time token.
pub struct StepCa {
    http: reqwest::Client,
    url: String,
    provisioner: String,
    key: jsonwebtoken::EncodingKey,
    key_id: String,
}

#[derive(Deserialize)]
struct SignResponse {
    crt: String,
}

impl StepCa {
    /// A connector; `root` is an extra CA trusted for the CA's TLS certificate.
    pub fn new(
        url: &str,
        provisioner: &str,
        key_id: &str,
        provisioner_key_pem: &[u8],
        root: Option<&[u8]>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let key = jsonwebtoken::EncodingKey::from_ec_pem(provisioner_key_pem).map_err(|e| {
            anyhow::anyhow!("the step-ca provisioner key is not a P-256 PEM key: {e}")
        })?;
        let mut builder = reqwest::Client::builder().timeout(timeout).use_rustls_tls();
        if let Some(root) = root {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(root)?);
        }
        Ok(Self {
            http: builder.build()?,
            url: url.trim_end_matches('/').to_owned(),
            provisioner: provisioner.to_owned(),
            key,
            key_id: key_id.to_owned(),
        })
    }

    /// The one-time token step-ca's JWK provisioner expects: ES256, `kid` the provisioner key,
    /// `aud` the sign endpoint, `sub` the common name, five minutes of life.
    fn token(&self, subject: &str, sans: Vec<String>) -> Result<String, CaError> {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": self.provisioner,
            "aud": format!("{}/1.0/sign", self.url),
            "sub": subject,
            "sans": sans,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| CaError::Refused(format!("cannot sign the step-ca token: {e}")))
    }
}

/// The DNS names, e-mail addresses and URIs of the request's SubjectAltName, as step-ca's
/// token `sans` lists them.
fn san_strings(rendered: &Rendered) -> Vec<String> {
    use x509_cert::der::oid::AssociatedOid;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let Some(extension) = rendered
        .extensions
        .iter()
        .find(|e| e.extn_id == SubjectAltName::OID)
    else {
        return Vec::new();
    };
    let Ok(names) =
        <SubjectAltName as x509_cert::der::Decode>::from_der(extension.extn_value.as_bytes())
    else {
        return Vec::new();
    };
    names
        .0
        .into_iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(n) => Some(n.to_string()),
            GeneralName::Rfc822Name(n) => Some(n.to_string()),
            GeneralName::UniformResourceIdentifier(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

/// The common name of `name`, or its whole text when it has none.
fn common_name(rendered: &Rendered) -> String {
    let text = rendered.subject.to_string();
    text.split(',')
        .find_map(|rdn| rdn.strip_prefix("CN="))
        .map(str::to_owned)
        .unwrap_or(text)
}

#[async_trait]
impl CertificateAuthority for StepCa {
    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, CaError> {
        // step-ca checks the request's common name against the token's subject and each kind of
        // SAN against the token's `sans`, and its default template issues exactly those SANs.
        let subject = common_name(request.rendered);
        let ott = self.token(&subject, san_strings(request.rendered))?;
        // Without these step-ca applies its provisioner's default lifetime (24 hours).
        let not_before = chrono::Utc::now() - chrono::Duration::seconds(60);
        let not_after = not_before
            + chrono::Duration::from_std(request.rendered.lifetime).map_err(|e| {
                CaError::Refused(format!("the profile's lifetime is too long: {e}"))
            })?;
        let rfc3339 =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let response = self
            .http
            .post(format!("{}/1.0/sign", self.url))
            .json(&serde_json::json!({
                "csr": request.csr_pem,
                "ott": ott,
                "notBefore": rfc3339(not_before),
                "notAfter": rfc3339(not_after),
            }))
            .send()
            .await
            .map_err(|e| CaError::Unavailable(format!("step-ca unreachable: {e}")))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(CaError::Unavailable(format!("step-ca answered {status}")));
        }
        if !status.is_success() {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let message = body
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("no reason given");
            return Err(CaError::Refused(format!(
                "The certificate authority refused the request: {message}"
            )));
        }
        let body: SignResponse = response
            .json()
            .await
            .map_err(|e| CaError::Unavailable(format!("step-ca answer unreadable: {e}")))?;
        Issued::from_pem(&body.crt)
    }
}
