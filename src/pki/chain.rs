//! Checking certificate chains that Brevet does not issue (Android key attestation chains): each
//! certificate signed by the next one's key, the last one a configured trust anchor. Real
//! attestation chains mix algorithms, so ECDSA P-256/SHA-256, ECDSA P-384/SHA-384 and RSA PKCS#1
//! v1.5 with SHA-256 are all accepted.

use std::time::SystemTime;

use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use x509_cert::der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, SHA_256_WITH_RSA_ENCRYPTION,
};
use x509_cert::der::Encode;
use x509_cert::Certificate;

use super::certs::check_validity;

/// Why a chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChainError(pub String);

fn fail(what: impl Into<String>) -> ChainError {
    ChainError(what.into())
}

/// Whether `cert` carries a valid signature by the key in `issuer`.
pub fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), ChainError> {
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| fail(format!("unencodable certificate: {e}")))?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or_else(|| fail("signature has unused bits"))?;
    let spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| fail(format!("unencodable issuer key: {e}")))?;
    let algorithm = cert.signature_algorithm.oid;
    let verified = if algorithm == ECDSA_WITH_SHA_256 {
        use p256::ecdsa::signature::Verifier;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
            .map_err(|_| fail("ecdsa-with-SHA256 signature but the issuer key is not P-256"))?;
        let signature = p256::ecdsa::Signature::from_der(signature)
            .map_err(|_| fail("malformed ECDSA signature"))?;
        key.verify(&tbs, &signature).is_ok()
    } else if algorithm == ECDSA_WITH_SHA_384 {
        use p384::ecdsa::signature::Verifier;
        let key = p384::ecdsa::VerifyingKey::from_public_key_der(&spki)
            .map_err(|_| fail("ecdsa-with-SHA384 signature but the issuer key is not P-384"))?;
        let signature = p384::ecdsa::Signature::from_der(signature)
            .map_err(|_| fail("malformed ECDSA signature"))?;
        key.verify(&tbs, &signature).is_ok()
    } else if algorithm == SHA_256_WITH_RSA_ENCRYPTION {
        use rsa::pkcs8::DecodePublicKey as _;
        let key = rsa::RsaPublicKey::from_public_key_der(&spki)
            .map_err(|_| fail("sha256WithRSAEncryption signature but the issuer key is not RSA"))?;
        key.verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&tbs),
            signature,
        )
        .is_ok()
    } else {
        return Err(fail(format!("unsupported signature algorithm {algorithm}")));
    };
    if verified {
        Ok(())
    } else {
        Err(fail("signature does not verify"))
    }
}

/// SHA-256 of a certificate's DER, the form in which trust anchors are compared.
pub fn fingerprint(cert: &Certificate) -> Result<[u8; 32], ChainError> {
    let der = cert
        .to_der()
        .map_err(|e| fail(format!("unencodable certificate: {e}")))?;
    Ok(Sha256::digest(der).into())
}

/// Checks `chain` (leaf first): every certificate valid at `at` and signed by the next, and the
/// last one a self-signed certificate whose fingerprint is among `anchors`. Returns the index of
/// the failing certificate with the reason.
pub fn verify_chain(
    chain: &[Certificate],
    anchors: &[[u8; 32]],
    at: SystemTime,
) -> Result<(), ChainError> {
    let root = chain.last().ok_or_else(|| fail("the chain is empty"))?;
    for (index, pair) in chain.windows(2).enumerate() {
        signed_by(&pair[0], &pair[1]).map_err(|e| fail(format!("certificate {index}: {e}")))?;
    }
    for (index, cert) in chain.iter().enumerate() {
        check_validity(cert, at).map_err(|e| fail(format!("certificate {index}: {e}")))?;
    }
    signed_by(root, root).map_err(|e| fail(format!("root: {e}")))?;
    if !anchors.contains(&fingerprint(root)?) {
        return Err(fail("the chain does not end in a trusted attestation root"));
    }
    Ok(())
}
