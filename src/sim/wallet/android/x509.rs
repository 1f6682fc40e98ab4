//! The certificates an Android device makes or carries: the attestation chain KeyMint hands out
//! and the auth-key certificates the Identity Credential HAL signs with the CredentialKey.
//! Written on the `x509-cert` and `p256` crates alone (RFC 5280 structures, ECDSA with SHA-256),
//! without Brevet's certificate code, so that what the server accepts is checked against an
//! encoding it did not make.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::EncodePublicKey;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::der::asn1::{BitString, ObjectIdentifier, OctetString};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

/// ecdsa-with-SHA256 (RFC 5758).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// What a certificate may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A CA: basicConstraints cA (with an optional path length) and keyCertSign.
    Ca(Option<u8>),
    /// An end entity signing key: keyUsage digitalSignature only (KeyMint's attestation leaves).
    Signing,
    /// No basicConstraints and no keyUsage at all (Identity Credential's auth-key certificates).
    Bare,
}

/// One certificate to make.
pub struct Template<'a> {
    /// Subject, RFC 4514 (`CN=…,O=…`).
    pub subject: &'a str,
    /// Issuer name; `None` for a self-signed certificate.
    pub issuer: Option<&'a Name>,
    /// Serial number bytes.
    pub serial: &'a [u8],
    /// Start of validity.
    pub not_before: SystemTime,
    /// Lifetime.
    pub lifetime: Duration,
    /// The certified key.
    pub key: &'a VerifyingKey,
    /// Its role.
    pub role: Role,
    /// Further extensions as (OID, critical, DER value of `extnValue`'s content).
    pub extensions: Vec<(ObjectIdentifier, bool, Vec<u8>)>,
}

/// A name from its RFC 4514 form.
pub fn name(rfc4514: &str) -> Name {
    Name::from_str(rfc4514).expect("the simulator's names are valid RFC 4514 strings")
}

fn std_extension(value: &impl AsExtension, subject: &Name) -> Extension {
    value
        .to_extension(subject, &[])
        .expect("standard extensions encode")
}

/// Makes and signs `template` with `signer`.
pub fn issue(template: &Template<'_>, signer: &SigningKey) -> Certificate {
    let subject = name(template.subject);
    let spki_der = template
        .key
        .to_public_key_der()
        .expect("a P-256 key encodes");
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes()).expect("SPKI reads back");
    let mut extensions = Vec::new();
    match template.role {
        Role::Ca(path_len) => {
            extensions.push(std_extension(
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: path_len,
                },
                &subject,
            ));
            extensions.push(std_extension(
                &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
                &subject,
            ));
        }
        Role::Signing => extensions.push(std_extension(
            &KeyUsage(KeyUsages::DigitalSignature.into()),
            &subject,
        )),
        Role::Bare => {}
    }
    for (oid, critical, value) in &template.extensions {
        extensions.push(Extension {
            extn_id: *oid,
            critical: *critical,
            extn_value: OctetString::new(value.clone()).expect("extension value"),
        });
    }
    let algorithm = AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(template.serial).expect("serial number"),
        signature: algorithm.clone(),
        issuer: template.issuer.cloned().unwrap_or_else(|| subject.clone()),
        validity: Validity {
            not_before: Time::try_from(template.not_before).expect("representable time"),
            not_after: Time::try_from(template.not_before + template.lifetime)
                .expect("representable time"),
        },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let tbs_der = tbs.to_der().expect("TBSCertificate encodes");
    let signature: Signature = signer.sign(&tbs_der);
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(signature.to_der().as_bytes()).expect("bit string"),
    }
}

/// DER of a certificate.
pub fn der(cert: &Certificate) -> Vec<u8> {
    cert.to_der().expect("a certificate encodes")
}

/// The P-256 key a certificate certifies.
pub fn p256_key(cert: &Certificate) -> Result<VerifyingKey, String> {
    use p256::pkcs8::DecodePublicKey;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    VerifyingKey::from_public_key_der(&spki).map_err(|_| "not a P-256 key".to_owned())
}

/// Whether `cert` carries a valid ECDSA P-256/SHA-256 signature by `key`.
pub fn signed_by(cert: &Certificate, key: &VerifyingKey) -> bool {
    use p256::ecdsa::signature::Verifier;
    if cert.signature_algorithm.oid != ECDSA_WITH_SHA256 {
        return false;
    }
    let (Ok(tbs), Some(raw)) = (cert.tbs_certificate.to_der(), cert.signature.as_bytes()) else {
        return false;
    };
    Signature::from_der(raw).is_ok_and(|signature| key.verify(&tbs, &signature).is_ok())
}

/// The content of extension `oid`'s `extnValue`, if the certificate has it.
pub fn extension_value<'a>(cert: &'a Certificate, oid: &ObjectIdentifier) -> Option<&'a [u8]> {
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| &e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

/// Whether `at` lies within the certificate's validity.
pub fn valid_at(cert: &Certificate, at: SystemTime) -> bool {
    let validity = &cert.tbs_certificate.validity;
    validity.not_before.to_system_time() <= at && at <= validity.not_after.to_system_time()
}
