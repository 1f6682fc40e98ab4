//! IACA root and document-signer (DS) certificates after the profiles of ISO/IEC 18013-5 Annex B,
//! and the checks a verifier makes of a DS certificate against its IACA.
//!
//! Profile facts used here: v3; positive serial of at most 20 octets with at least 63 random bits;
//! ecdsa-with-SHA256; subject with countryName and commonName (the DS shares the IACA's country);
//! IACA: BasicConstraints CA with pathLen 0 and KeyUsage keyCertSign + cRLSign, both critical;
//! DS: KeyUsage digitalSignature and ExtendedKeyUsage 1.0.18013.5.1.2, both critical, validity at
//! most 457 days; both carry an IssuerAlternativeName and key identifiers, and optionally a CRL
//! distribution point. Certificates are built from x509-cert's types and signed through
//! [`Signer`], so that the IACA key can live in an HSM.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::{BitString, Ia5String, OctetString};
use x509_cert::der::oid::db::rfc5912::ECDSA_WITH_SHA_256;
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, ExtendedKeyUsage,
    IssuerAltName, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::signer::{verify_es256, SignatureEncoding, Signer, SignerError};

/// Extended key usage of an mdoc document signer (ISO/IEC 18013-5 Annex B).
pub const MDOC_DS_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.0.18013.5.1.2");

/// Longest DS validity Annex B allows.
pub const DS_MAX_VALIDITY: Duration = Duration::from_secs(457 * 24 * 3600);

/// Failures to build or check a certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A profile value is unusable (e.g. a country that is not two letters).
    #[error("invalid certificate profile: {0}")]
    Profile(String),
    /// Encoding or decoding failed.
    #[error("certificate encoding: {0}")]
    Encoding(String),
    /// The signer failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The certificate does not meet the profile or does not chain; the message says which and why.
    #[error("{0}")]
    Invalid(String),
}

fn encoding(error: impl std::fmt::Display) -> CertError {
    CertError::Encoding(error.to_string())
}

/// The subject and naming of an issuing authority, shared by its IACA and DS certificates.
#[derive(Debug, Clone)]
pub struct Authority {
    /// ISO 3166-1 alpha-2 country of the issuing authority, e.g. `US`.
    pub country: String,
    /// Optional ISO 3166-2 subdivision name, e.g. `Utopia`.
    pub state: Option<String>,
    /// Common name of the IACA, e.g. `Utopia DMV IACA`.
    pub iaca_common_name: String,
    /// Contact of the issuing authority for IssuerAlternativeName: an email address or an https URL.
    pub contact: String,
    /// CRL distribution point URL, if the authority publishes one.
    pub crl_url: Option<String>,
}

impl Authority {
    fn validate(&self) -> Result<(), CertError> {
        if self.country.len() != 2 || !self.country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(CertError::Profile(format!(
                "country {:?} is not an ISO 3166-1 alpha-2 code such as US",
                self.country
            )));
        }
        for (what, value) in [
            ("common name", &self.iaca_common_name),
            ("contact", &self.contact),
        ] {
            if value.trim().is_empty() || value.contains([',', '+', '=', '"', '\\', '<', '>', ';'])
            {
                return Err(CertError::Profile(format!(
                    "{what} {value:?} is empty or has reserved characters"
                )));
            }
        }
        Ok(())
    }

    fn name(&self, common_name: &str) -> Result<Name, CertError> {
        let mut rdns = vec![format!("CN={common_name}")];
        if let Some(state) = &self.state {
            rdns.push(format!("ST={state}"));
        }
        rdns.push(format!("C={}", self.country));
        // RFC 4514 strings list the most specific RDN first.
        Name::from_str(&rdns.join(","))
            .map_err(|e| CertError::Profile(format!("subject name: {e}")))
    }

    fn alt_name(&self) -> Result<GeneralName, CertError> {
        let value = Ia5String::new(&self.contact).map_err(encoding)?;
        Ok(
            if self.contact.contains('@') && !self.contact.contains("://") {
                GeneralName::Rfc822Name(value)
            } else {
                GeneralName::UniformResourceIdentifier(value)
            },
        )
    }
}

/// Serial number: 20 octets from the OS's CSPRNG with the top bit cleared (positive, at most 20
/// octets, well over the 63 random bits Annex B asks for).
fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes).map_err(encoding)
}

/// Key identifier: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits (RFC 7093 §2).
fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Result<OctetString, CertError> {
    let digest = Sha256::digest(spki.subject_public_key.raw_bytes());
    OctetString::new(&digest[..20]).map_err(encoding)
}

/// An extension holding `value`, DER-encoded under its own OID.
pub fn extension<T: AssociatedOid + Encode>(
    value: &T,
    critical: bool,
) -> Result<Extension, CertError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(encoding)?).map_err(encoding)?,
    })
}

fn validity(not_before: SystemTime, lifetime: Duration) -> Result<Validity, CertError> {
    Ok(Validity {
        not_before: Time::try_from(not_before).map_err(encoding)?,
        not_after: Time::try_from(not_before + lifetime).map_err(encoding)?,
    })
}

fn spki_of(key: &VerifyingKey) -> Result<SubjectPublicKeyInfoOwned, CertError> {
    let der = key.to_public_key_der().map_err(encoding)?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(encoding)
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA_256,
        parameters: None,
    }
}

/// Signs `tbs` with `signer`: the certificate is complete only once the signature is in.
fn sign(tbs: TbsCertificate, signer: &dyn Signer) -> Result<Certificate, CertError> {
    let message = tbs.to_der().map_err(encoding)?;
    let signature: DerSignature = signer.sign(&message)?.to_der();
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(signature.as_bytes()).map_err(encoding)?,
    })
}

/// Issues a self-signed IACA root certificate for `signer`'s key.
pub fn issue_iaca(
    signer: &dyn Signer,
    authority: &Authority,
    not_before: SystemTime,
    lifetime: Duration,
) -> Result<Certificate, CertError> {
    authority.validate()?;
    let name = authority.name(&authority.iaca_common_name)?;
    let spki = spki_of(&signer.verifying_key())?;
    let key_id = key_identifier(&spki)?;
    let extensions = vec![
        extension(&SubjectKeyIdentifier(key_id), false)?,
        extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
            true,
        )?,
        extension(&IssuerAltName(vec![authority.alt_name()?]), false)?,
    ]
    .into_iter()
    .chain(crl_extension(authority)?)
    .collect();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial()?,
        signature: ecdsa_sha256(),
        issuer: name.clone(),
        validity: validity(not_before, lifetime)?,
        subject: name,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign(tbs, signer)
}

fn crl_extension(authority: &Authority) -> Result<Option<Extension>, CertError> {
    authority
        .crl_url
        .as_deref()
        .map(crl_distribution_point)
        .transpose()
}

/// A CRLDistributionPoints extension naming `url`.
pub fn crl_distribution_point(url: &str) -> Result<Extension, CertError> {
    let point = DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(Ia5String::new(url).map_err(encoding)?),
        ])),
        reasons: None,
        crl_issuer: None,
    };
    extension(&CrlDistributionPoints(vec![point]), false)
}

/// One entry of a CRL.
#[derive(Debug, Clone)]
pub struct RevokedEntry {
    /// Serial number bytes.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: SystemTime,
    /// Why.
    pub reason: x509_cert::ext::pkix::CrlReason,
}

/// A version 2 CRL (RFC 5280 §5) by the CA `issuer`, whose key `signer` holds, listing
/// `revoked`; its CRLNumber is `number`, and it carries the CA's key identifier.
pub fn issue_crl(
    issuer: &Certificate,
    signer: &dyn Signer,
    revoked: &[RevokedEntry],
    this_update: SystemTime,
    next_update: SystemTime,
    number: u64,
) -> Result<Vec<u8>, CertError> {
    use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
    use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
    let mut entries = Vec::new();
    for entry in revoked {
        entries.push(RevokedCert {
            serial_number: SerialNumber::new(&entry.serial).map_err(encoding)?,
            revocation_date: Time::try_from(entry.revoked_at).map_err(encoding)?,
            crl_entry_extensions: Some(vec![extension(&entry.reason, false)?]),
        });
    }
    let key_id = key_identifier(&issuer.tbs_certificate.subject_public_key_info)?;
    let extensions = vec![
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(key_id),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?,
        extension(
            &CrlNumber(x509_cert::der::asn1::Uint::new(&number.to_be_bytes()).map_err(encoding)?),
            false,
        )?,
    ];
    let tbs = TbsCertList {
        version: Version::V2,
        signature: ecdsa_sha256(),
        issuer: issuer.tbs_certificate.subject.clone(),
        this_update: Time::try_from(this_update).map_err(encoding)?,
        next_update: Some(Time::try_from(next_update).map_err(encoding)?),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(extensions),
    };
    let message = tbs.to_der().map_err(encoding)?;
    let signature: DerSignature = signer.sign(&message)?.to_der();
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(signature.as_bytes()).map_err(encoding)?,
    };
    list.to_der().map_err(encoding)
}

/// Issues a DS certificate for `ds_key`, signed by the IACA (`iaca_signer` holds its key).
pub fn issue_ds(
    iaca_signer: &dyn Signer,
    iaca: &Certificate,
    authority: &Authority,
    ds_common_name: &str,
    ds_key: &VerifyingKey,
    not_before: SystemTime,
    lifetime: Duration,
) -> Result<Certificate, CertError> {
    authority.validate()?;
    if lifetime > DS_MAX_VALIDITY {
        return Err(CertError::Profile(format!(
            "a DS certificate may be valid for at most 457 days, not {} days",
            lifetime.as_secs() / 86_400
        )));
    }
    if iaca.tbs_certificate.subject_public_key_info != spki_of(&iaca_signer.verifying_key())? {
        return Err(CertError::Profile(
            "the IACA key does not match the IACA certificate".into(),
        ));
    }
    let spki = spki_of(ds_key)?;
    let iaca_key_id = key_identifier(&iaca.tbs_certificate.subject_public_key_info)?;
    let extensions = vec![
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(iaca_key_id),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?,
        extension(&SubjectKeyIdentifier(key_identifier(&spki)?), false)?,
        extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
        extension(&ExtendedKeyUsage(vec![MDOC_DS_EKU]), true)?,
        extension(&IssuerAltName(vec![authority.alt_name()?]), false)?,
    ]
    .into_iter()
    .chain(crl_extension(authority)?)
    .collect();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial()?,
        signature: ecdsa_sha256(),
        issuer: iaca.tbs_certificate.subject.clone(),
        validity: validity(not_before, lifetime)?,
        subject: authority.name(ds_common_name)?,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign(tbs, iaca_signer)
}

/// A certificate to issue that follows no Annex B profile: the Wallet API's identity and
/// hybrid-encryption certificates, and the device-side certificates the simulators mint.
#[derive(Debug, Clone)]
pub struct CertTemplate {
    /// Subject, as an RFC 4514 string such as `CN=Example`.
    pub subject: String,
    /// Issuer name; `None` for a self-signed certificate (issuer = subject).
    pub issuer: Option<Name>,
    /// Serial number bytes (positive); `None` for 20 random octets.
    pub serial: Option<Vec<u8>>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// Lifetime.
    pub lifetime: Duration,
    /// The certified key.
    pub public_key: SubjectKey,
    /// Whether it is a CA certificate (BasicConstraints, keyCertSign).
    pub ca: bool,
    /// Further extensions, e.g. an Android attestation record.
    pub extensions: Vec<Extension>,
}

/// The key a certificate certifies.
#[derive(Debug, Clone)]
pub enum SubjectKey {
    /// A P-256 key (Brevet's own keys and the simulators').
    P256(VerifyingKey),
    /// Any key, as its SubjectPublicKeyInfo, kept byte for byte (ChromeOS device keys).
    Spki(SubjectPublicKeyInfoOwned),
}

impl From<VerifyingKey> for SubjectKey {
    fn from(key: VerifyingKey) -> Self {
        Self::P256(key)
    }
}

/// An extension with a raw DER value, for OIDs x509-cert has no type for.
pub fn raw_extension(
    oid: ObjectIdentifier,
    critical: bool,
    der: &[u8],
) -> Result<Extension, CertError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(der).map_err(encoding)?,
    })
}

/// The raw DER value of the extension `oid`, if the certificate has it.
pub fn raw_extension_value(cert: &Certificate, oid: ObjectIdentifier) -> Option<&[u8]> {
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|ext| ext.extn_id == oid)
        .map(|ext| ext.extn_value.as_bytes())
}

/// Issues `template`, signed (ES256) by `signer`.
pub fn issue_certificate(
    template: &CertTemplate,
    signer: &dyn Signer,
) -> Result<Certificate, CertError> {
    let subject = Name::from_str(&template.subject)
        .map_err(|e| CertError::Profile(format!("subject name: {e}")))?;
    let spki = match &template.public_key {
        SubjectKey::P256(key) => spki_of(key)?,
        SubjectKey::Spki(spki) => spki.clone(),
    };
    let mut extensions = vec![extension(
        &SubjectKeyIdentifier(key_identifier(&spki)?),
        false,
    )?];
    if template.ca {
        extensions.push(extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
            true,
        )?);
        extensions.push(extension(
            &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            true,
        )?);
    }
    extensions.extend(template.extensions.iter().cloned());
    let serial_number = match &template.serial {
        Some(bytes) => SerialNumber::new(bytes).map_err(encoding)?,
        None => random_serial()?,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number,
        signature: ecdsa_sha256(),
        issuer: template.issuer.clone().unwrap_or_else(|| subject.clone()),
        validity: validity(template.not_before, template.lifetime)?,
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    sign(tbs, signer)
}

/// The serial number in upper-case hex: the Wallet API's `recipientKeyId` of an issuer key.
pub fn serial_hex(cert: &Certificate) -> String {
    hex::encode_upper(cert.tbs_certificate.serial_number.as_bytes())
}

/// DER of a certificate.
pub fn to_der(cert: &Certificate) -> Result<Vec<u8>, CertError> {
    cert.to_der().map_err(encoding)
}

/// Reads a DER certificate.
pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
    Certificate::from_der(der)
        .map_err(|e| CertError::Encoding(format!("not a DER certificate: {e}")))
}

/// The P-256 public key of a certificate.
pub fn public_key(cert: &Certificate) -> Result<VerifyingKey, CertError> {
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(encoding)?;
    p256::PublicKey::from_public_key_der(&spki)
        .map(VerifyingKey::from)
        .map_err(|e| CertError::Invalid(format!("not a P-256 public key: {e}")))
}

/// Whether `cert` is signed (ES256) by `issuer_key`.
pub fn check_signature(cert: &Certificate, issuer_key: &VerifyingKey) -> Result<(), CertError> {
    if cert.signature_algorithm.oid != ECDSA_WITH_SHA_256 {
        return Err(CertError::Invalid(format!(
            "signature algorithm {} is not ecdsa-with-SHA256",
            cert.signature_algorithm.oid
        )));
    }
    let tbs = cert.tbs_certificate.to_der().map_err(encoding)?;
    let signature_bytes = cert
        .signature
        .as_bytes()
        .ok_or_else(|| CertError::Invalid("signature has unused bits".into()))?;
    if verify_es256(issuer_key, &tbs, signature_bytes, SignatureEncoding::Der) {
        Ok(())
    } else {
        Err(CertError::Invalid("signature does not verify".into()))
    }
}

/// Whether `at` falls within the certificate's validity.
pub fn check_validity(cert: &Certificate, at: SystemTime) -> Result<(), CertError> {
    check_validity_with_skew(cert, at, Duration::ZERO)
}

/// Whether `at` falls within the certificate's validity widened by `skew` at both ends (for
/// certificates made by devices whose clocks drift).
pub fn check_validity_with_skew(
    cert: &Certificate,
    at: SystemTime,
    skew: Duration,
) -> Result<(), CertError> {
    let validity = &cert.tbs_certificate.validity;
    if at + skew < validity.not_before.to_system_time() {
        return Err(CertError::Invalid("certificate is not yet valid".into()));
    }
    if at > validity.not_after.to_system_time() + skew {
        return Err(CertError::Invalid("certificate has expired".into()));
    }
    Ok(())
}

fn find_extension<T: AssociatedOid + for<'a> Decode<'a>>(
    cert: &Certificate,
) -> Result<Option<(bool, T)>, CertError> {
    let Some(extensions) = &cert.tbs_certificate.extensions else {
        return Ok(None);
    };
    extensions
        .iter()
        .find(|ext| ext.extn_id == T::OID)
        .map(|ext| {
            T::from_der(ext.extn_value.as_bytes())
                .map(|v| (ext.critical, v))
                .map_err(encoding)
        })
        .transpose()
}

/// Checks that `ds` is a document-signer certificate issued by `iaca` and valid at `at`: IACA
/// self-signed and a CA, DS signed by it with the DS extended key usage, both within validity.
pub fn verify_ds_chain(
    ds: &Certificate,
    iaca: &Certificate,
    at: SystemTime,
) -> Result<(), CertError> {
    let iaca_key = public_key(iaca)?;
    check_signature(iaca, &iaca_key).map_err(|e| CertError::Invalid(format!("IACA: {e}")))?;
    match find_extension::<BasicConstraints>(iaca)? {
        Some((_, constraints)) if constraints.ca => {}
        _ => return Err(CertError::Invalid("IACA: not a CA certificate".into())),
    }
    check_validity(iaca, at).map_err(|e| CertError::Invalid(format!("IACA: {e}")))?;
    if ds.tbs_certificate.issuer != iaca.tbs_certificate.subject {
        return Err(CertError::Invalid(
            "DS: issuer is not the IACA's subject".into(),
        ));
    }
    check_signature(ds, &iaca_key).map_err(|e| CertError::Invalid(format!("DS: {e}")))?;
    match find_extension::<ExtendedKeyUsage>(ds)? {
        Some((_, eku)) if eku.0.contains(&MDOC_DS_EKU) => {}
        _ => {
            return Err(CertError::Invalid(
                "DS: lacks the mdoc DS extended key usage 1.0.18013.5.1.2".into(),
            ))
        }
    }
    check_validity(ds, at).map_err(|e| CertError::Invalid(format!("DS: {e}")))
}

/// Reads a PEM certificate.
pub fn from_pem(pem: &str) -> Result<Certificate, CertError> {
    use x509_cert::der::DecodePem;
    Certificate::from_pem(pem)
        .map_err(|e| CertError::Encoding(format!("not a PEM certificate: {e}")))
}

/// Writes a certificate as PEM.
pub fn to_pem(cert: &Certificate) -> Result<String, CertError> {
    use x509_cert::der::EncodePem;
    cert.to_pem(x509_cert::der::pem::LineEnding::LF)
        .map_err(encoding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::SoftwareSigner;

    fn authority() -> Authority {
        Authority {
            country: "US".into(),
            state: Some("Utopia".into()),
            iaca_common_name: "Utopia DMV IACA".into(),
            contact: "mdl@dmv.example".into(),
            crl_url: Some("https://dmv.example/iaca.crl".into()),
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn iaca_and_ds_follow_the_annex_b_profiles_and_chain() {
        let now = SystemTime::now();
        let iaca_key = SoftwareSigner::generate();
        let iaca = issue_iaca(&iaca_key, &authority(), now, 3650 * DAY).unwrap();
        let ds_key = SoftwareSigner::generate();
        let ds = issue_ds(
            &iaca_key,
            &iaca,
            &authority(),
            "Utopia DMV DS 1",
            &ds_key.verifying_key(),
            now,
            365 * DAY,
        )
        .unwrap();
        verify_ds_chain(&ds, &iaca, now + DAY).unwrap();

        assert_eq!(iaca.tbs_certificate.version, Version::V3);
        assert_eq!(
            iaca.tbs_certificate.subject.to_string(),
            "CN=Utopia DMV IACA,ST=Utopia,C=US"
        );
        assert_eq!(
            ds.tbs_certificate.subject.to_string(),
            "CN=Utopia DMV DS 1,ST=Utopia,C=US"
        );
        let serial = iaca.tbs_certificate.serial_number.as_bytes();
        assert!(serial.len() <= 20 && serial[0] & 0x80 == 0);

        let (critical, usage) = find_extension::<KeyUsage>(&iaca).unwrap().unwrap();
        assert!(
            critical && usage.key_cert_sign() && usage.crl_sign() && !usage.digital_signature()
        );
        let (critical, constraints) = find_extension::<BasicConstraints>(&iaca).unwrap().unwrap();
        assert!(critical && constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));

        let (critical, usage) = find_extension::<KeyUsage>(&ds).unwrap().unwrap();
        assert!(critical && usage.digital_signature() && !usage.key_cert_sign());
        let (critical, eku) = find_extension::<ExtendedKeyUsage>(&ds).unwrap().unwrap();
        assert!(critical);
        assert_eq!(eku.0, vec![MDOC_DS_EKU]);
        let (_, alt) = find_extension::<IssuerAltName>(&ds).unwrap().unwrap();
        assert_eq!(
            alt.0,
            vec![GeneralName::Rfc822Name(
                Ia5String::new("mdl@dmv.example").unwrap()
            )]
        );
        let (_, aki) = find_extension::<AuthorityKeyIdentifier>(&ds)
            .unwrap()
            .unwrap();
        let (_, ski) = find_extension::<SubjectKeyIdentifier>(&iaca)
            .unwrap()
            .unwrap();
        assert_eq!(aki.key_identifier, Some(ski.0));
        assert!(find_extension::<CrlDistributionPoints>(&ds)
            .unwrap()
            .is_some());

        // PEM round trip keeps every byte.
        let pem = to_pem(&ds).unwrap();
        assert_eq!(from_pem(&pem).unwrap(), ds);
    }

    #[test]
    fn chain_checks_fail_as_they_should() {
        let now = SystemTime::now();
        let iaca_key = SoftwareSigner::generate();
        let iaca = issue_iaca(&iaca_key, &authority(), now, 3650 * DAY).unwrap();
        let ds_key = SoftwareSigner::generate();
        let ds = issue_ds(
            &iaca_key,
            &iaca,
            &authority(),
            "DS",
            &ds_key.verifying_key(),
            now,
            30 * DAY,
        )
        .unwrap();

        let expired = verify_ds_chain(&ds, &iaca, now + 31 * DAY).unwrap_err();
        assert!(
            expired.to_string().contains("DS: certificate has expired"),
            "{expired}"
        );

        let other_iaca =
            issue_iaca(&SoftwareSigner::generate(), &authority(), now, 3650 * DAY).unwrap();
        let wrong = verify_ds_chain(&ds, &other_iaca, now).unwrap_err();
        assert!(
            wrong.to_string().contains("DS: signature does not verify"),
            "{wrong}"
        );

        // A DS certificate is not a CA: using it as the root fails.
        assert!(verify_ds_chain(&ds, &ds, now).is_err());

        let too_long = issue_ds(
            &iaca_key,
            &iaca,
            &authority(),
            "DS",
            &ds_key.verifying_key(),
            now,
            458 * DAY,
        );
        assert!(matches!(too_long, Err(CertError::Profile(_))));
        let wrong_key = issue_ds(
            &ds_key,
            &iaca,
            &authority(),
            "DS",
            &ds_key.verifying_key(),
            now,
            DAY,
        );
        assert!(matches!(wrong_key, Err(CertError::Profile(_))));
        let bad_country = Authority {
            country: "USA".into(),
            ..authority()
        };
        assert!(matches!(
            issue_iaca(&iaca_key, &bad_country, now, DAY),
            Err(CertError::Profile(_))
        ));
    }
}
