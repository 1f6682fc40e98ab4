//! Proof of possession (spec §5). The bytes the device signs are the DER of a PKCS#10
//! `CertificationRequestInfo` for its own key ([infer], our design): its signature then completes
//! a valid CSR, so verifying the CSR is the proof of possession and any CSR-based CA can issue.

use p256::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use sha2::Sha256;
use x509_cert::attr::Attribute;
use x509_cert::der::asn1::{BitString, SetOfVec};
use x509_cert::der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SHA_256_WITH_RSA_ENCRYPTION,
};
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::{Decode, Encode, EncodePem};
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::profile::Rendered;
use super::wire::SignatureAlgorithm;
use crate::pki::signer::{verify_es256, SignatureEncoding};

/// The kinds of device key ChromeOS makes (spec §1): RSA-2048 and ECDSA P-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA (the client makes 2048-bit keys; at least 2048 bits are accepted).
    Rsa,
    /// ECDSA on P-256.
    P256,
}

impl KeyKind {
    /// The signatureAlgorithm to ask for.
    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::Rsa => SignatureAlgorithm::RsaPkcs1V15Sha256,
            Self::P256 => SignatureAlgorithm::EcdsaSha256,
        }
    }

    fn csr_algorithm(self) -> ObjectIdentifier {
        match self {
            Self::Rsa => SHA_256_WITH_RSA_ENCRYPTION,
            Self::P256 => ECDSA_WITH_SHA_256,
        }
    }
}

/// A device key, read from the process's `subjectPublicKeyInfo`.
#[derive(Debug, Clone)]
pub struct DeviceKey {
    /// Its kind.
    pub kind: KeyKind,
    /// The exact DER the process carried (the certificate must hold these bytes).
    pub der: Vec<u8>,
    spki: SubjectPublicKeyInfoOwned,
}

impl DeviceKey {
    /// Reads `der`; the error says why the key is unusable (shown on the device).
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der)
            .map_err(|_| "the device key is not a valid SubjectPublicKeyInfo".to_owned())?;
        let kind = match spki.algorithm.oid {
            RSA_ENCRYPTION => {
                let key = rsa::RsaPublicKey::from_public_key_der(der)
                    .map_err(|_| "the device's RSA key cannot be read".to_owned())?;
                if key.size() * 8 < 2048 {
                    return Err(format!(
                        "the device's RSA key has {} bits; at least 2048 are required",
                        key.size() * 8
                    ));
                }
                KeyKind::Rsa
            }
            ID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                if curve != Some(SECP_256_R_1) {
                    return Err("the device's EC key is not on P-256".to_owned());
                }
                p256::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map_err(|_| "the device's P-256 key cannot be read".to_owned())?;
                KeyKind::P256
            }
            other => return Err(format!("the device key type {other} is not supported")),
        };
        Ok(Self {
            kind,
            der: der.to_vec(),
            spki,
        })
    }

    /// DER of the `CertificationRequestInfo` the device is asked to sign: the rendered subject,
    /// this key, and the profile's extensions as an extensionRequest attribute.
    pub fn request_info(&self, rendered: &Rendered) -> Result<Vec<u8>, String> {
        let info = self.info(rendered)?;
        info.to_der()
            .map_err(|e| format!("cannot encode the certificate request: {e}"))
    }

    fn info(&self, rendered: &Rendered) -> Result<CertReqInfo, String> {
        let encode =
            |e: x509_cert::der::Error| format!("cannot encode the certificate request: {e}");
        let mut attributes = SetOfVec::new();
        if !rendered.extensions.is_empty() {
            let request =
                Attribute::try_from(ExtensionReq(rendered.extensions.clone())).map_err(encode)?;
            attributes.insert(request).map_err(encode)?;
        }
        Ok(CertReqInfo {
            version: Version::V1,
            subject: rendered.subject.clone(),
            public_key: self.spki.clone(),
            attributes,
        })
    }

    /// Checks the device's `signature` over `signed` (RSASSA-PKCS1-v1_5/SHA-256, or ECDSA
    /// P-256/SHA-256 as DER or, as a fallback, raw r‖s) and returns it in the encoding a CSR
    /// carries (DER for ECDSA).
    pub fn verify(&self, signed: &[u8], signature: &[u8]) -> Result<Vec<u8>, PopError> {
        match self.kind {
            KeyKind::Rsa => {
                use rsa::signature::Verifier;
                let key = rsa::RsaPublicKey::from_public_key_der(&self.der)
                    .map_err(|_| PopError::BadSignature)?;
                let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
                let parsed = rsa::pkcs1v15::Signature::try_from(signature)
                    .map_err(|_| PopError::BadSignature)?;
                verifier
                    .verify(signed, &parsed)
                    .map_err(|_| PopError::BadSignature)?;
                Ok(signature.to_vec())
            }
            KeyKind::P256 => {
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(&self.der)
                    .map_err(|_| PopError::BadSignature)?;
                if verify_es256(&key, signed, signature, SignatureEncoding::Der) {
                    return Ok(signature.to_vec());
                }
                if signature.len() == 64
                    && verify_es256(&key, signed, signature, SignatureEncoding::Fixed)
                {
                    let fixed = p256::ecdsa::Signature::from_slice(signature)
                        .map_err(|_| PopError::BadSignature)?;
                    return Ok(fixed.to_der().as_bytes().to_vec());
                }
                Err(PopError::BadSignature)
            }
        }
    }

    fn csr_signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.kind.csr_algorithm(),
            parameters: match self.kind {
                // sha256WithRSAEncryption carries an explicit NULL (RFC 4055)
                KeyKind::Rsa => Some(x509_cert::der::asn1::Null.into()),
                KeyKind::P256 => None,
            },
        }
    }
}

/// The request the device signed, read back from the recorded signData bytes: what the
/// certificate must say, whatever the profile says now.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The key it certifies.
    pub key: DeviceKey,
    /// Its subject.
    pub subject: x509_cert::name::Name,
    /// Its requested extensions (SAN, KeyUsage, ExtendedKeyUsage).
    pub extensions: Vec<x509_cert::ext::Extension>,
    /// The complete PKCS#10 request, PEM.
    pub csr_pem: String,
}

/// Reads the recorded `info` (DER CertificationRequestInfo) and completes it with the device's
/// verified `signature`.
pub fn signed_request(info: &[u8], signature: &[u8]) -> Result<SignedRequest, String> {
    let unreadable = |e: x509_cert::der::Error| format!("the recorded request cannot be read: {e}");
    let parsed = CertReqInfo::from_der(info).map_err(unreadable)?;
    // Re-encoding must give the signed bytes back, or the CSR would carry another request.
    if parsed.to_der().map_err(unreadable)? != info {
        return Err("the recorded request is not in canonical DER".into());
    }
    let key = DeviceKey::parse(&parsed.public_key.to_der().map_err(unreadable)?)?;
    let mut extensions = Vec::new();
    for attribute in parsed.attributes.iter() {
        if attribute.oid != ExtensionReq::OID {
            continue;
        }
        for value in attribute.values.iter() {
            let request: ExtensionReq = value.decode_as().map_err(unreadable)?;
            extensions.extend(request.0);
        }
    }
    let request = CertReq {
        info: parsed.clone(),
        algorithm: key.csr_signature_algorithm(),
        signature: BitString::from_bytes(signature)
            .map_err(|e| format!("cannot encode the signature: {e}"))?,
    };
    let csr_pem = request
        .to_pem(x509_cert::der::pem::LineEnding::LF)
        .map_err(|e| format!("cannot encode the certificate request: {e}"))?;
    Ok(SignedRequest {
        key,
        subject: parsed.subject,
        extensions,
        csr_pem,
    })
}

/// Why a proof of possession failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// The signature does not verify with the process's key over what we asked it to sign.
    #[error("Signature verification failed: the device's signature does not match its key")]
    BadSignature,
}

/// Reads a PEM PKCS#10 request and checks its self-signature; returns the request. For CAs (the
/// simulated step-ca) that, like real ones, insist on a valid CSR.
pub fn verify_csr_pem(pem: &str) -> Result<CertReq, String> {
    use x509_cert::der::DecodePem;
    let request = CertReq::from_pem(pem).map_err(|e| format!("not a PEM CSR: {e}"))?;
    let spki_der = request
        .info
        .public_key
        .to_der()
        .map_err(|e| format!("bad key: {e}"))?;
    let key = DeviceKey::parse(&spki_der)?;
    let info = request
        .info
        .to_der()
        .map_err(|e| format!("bad request info: {e}"))?;
    if request.algorithm.oid != key.kind.csr_algorithm() {
        return Err("the CSR's signature algorithm does not match its key".into());
    }
    let signature = request
        .signature
        .as_bytes()
        .ok_or("the CSR's signature has unused bits")?;
    key.verify(&info, signature).map_err(|e| e.to_string())?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;

    use super::*;

    #[test]
    fn accepts_raw_ecdsa_and_returns_der() {
        let key = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
        let spki = key.verifying_key().to_public_key_der().unwrap();
        let device = DeviceKey::parse(spki.as_bytes()).unwrap();
        assert_eq!(device.kind, KeyKind::P256);
        let signature: p256::ecdsa::Signature = key.sign(b"data");
        let der = signature.to_der().as_bytes().to_vec();
        assert_eq!(device.verify(b"data", &signature.to_bytes()).unwrap(), der);
        assert_eq!(device.verify(b"data", &der).unwrap(), der);
        assert_eq!(device.verify(b"other", &der), Err(PopError::BadSignature));
        assert_eq!(
            device.verify(b"data", b"garbage"),
            Err(PopError::BadSignature)
        );
    }

    #[test]
    fn refuses_keys_chromeos_does_not_make() {
        let small = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
        let der = rsa::pkcs8::EncodePublicKey::to_public_key_der(&small.to_public_key()).unwrap();
        assert_eq!(
            DeviceKey::parse(der.as_bytes()).unwrap_err(),
            "the device's RSA key has 1024 bits; at least 2048 are required"
        );
        let p384 = p384::ecdsa::SigningKey::random(&mut rand::thread_rng());
        let der = p384.verifying_key().to_public_key_der().unwrap();
        assert_eq!(
            DeviceKey::parse(der.as_bytes()).unwrap_err(),
            "the device's EC key is not on P-256"
        );
        assert!(DeviceKey::parse(b"\x30\x03\x02\x01\x00").is_err());
    }
}
