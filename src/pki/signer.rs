//! The `Signer` trait: everything that signs with an issuer key goes through it, so that a key can
//! move into an HSM (PKCS#11) without touching the mdoc or certificate code.

use std::fmt;

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use zeroize::Zeroizing;

/// Why a signature could not be made or a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The key material is not a P-256 private key in PKCS#8 (PEM or DER).
    #[error("not a P-256 PKCS#8 private key: {0}")]
    BadKey(String),
    /// The signing device failed.
    #[error("signing failed: {0}")]
    Failed(String),
}

/// An ES256 (ECDSA P-256 with SHA-256) signing key, wherever it lives.
pub trait Signer: Send + Sync {
    /// The public half.
    fn verifying_key(&self) -> VerifyingKey;

    /// Signs `message` (hashing it with SHA-256 first), returning the fixed-size r‖s signature.
    fn sign(&self, message: &[u8]) -> Result<Signature, SignerError>;
}

/// A P-256 key held in this process's memory.
#[derive(Clone)]
pub struct SoftwareSigner {
    key: SigningKey,
}

impl SoftwareSigner {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// Reads a PKCS#8 PEM private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, SignerError> {
        let key =
            SigningKey::from_pkcs8_pem(pem).map_err(|e| SignerError::BadKey(e.to_string()))?;
        Ok(Self { key })
    }

    /// The key as PKCS#8 PEM, for writing to a 0600 file. The buffer is wiped when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, SignerError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| SignerError::BadKey(e.to_string()))
    }
}

impl Signer for SoftwareSigner {
    fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, SignerError> {
        Ok(self.key.sign(message))
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key; the public key identifies it well enough.
        let point = self.key.verifying_key().to_encoded_point(true);
        write!(f, "SoftwareSigner({})", hex::encode(point.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Verifier;

    use super::*;

    #[test]
    fn signs_verifiably_and_round_trips_through_pem() {
        let signer = SoftwareSigner::generate();
        let signature = signer.sign(b"brevet").unwrap();
        signer
            .verifying_key()
            .verify(b"brevet", &signature)
            .unwrap();
        assert!(signer
            .verifying_key()
            .verify(b"brevet!", &signature)
            .is_err());

        let pem = signer.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SoftwareSigner::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(again.verifying_key(), signer.verifying_key());
        assert!(!format!("{signer:?}").contains(pem.as_str()));
    }

    #[test]
    fn rejects_non_keys() {
        assert!(matches!(
            SoftwareSigner::from_pkcs8_pem("hello"),
            Err(SignerError::BadKey(_))
        ));
    }
}

/// A P-256 key signed with ring's assembly-optimised ECDSA (feature `ring`, on by default).
/// Same key files, same signatures on the wire; only faster.
#[cfg(feature = "ring")]
pub struct RingSigner {
    key: ring::signature::EcdsaKeyPair,
    verifying_key: VerifyingKey,
    rng: ring::rand::SystemRandom,
}

#[cfg(feature = "ring")]
impl RingSigner {
    /// The same key as `software`, signing through ring.
    pub fn from_software(software: &SoftwareSigner) -> Result<Self, SignerError> {
        let der = software
            .key
            .to_pkcs8_der()
            .map_err(|e| SignerError::BadKey(e.to_string()))?;
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.as_bytes(),
            &rng,
        )
        .map_err(|e| SignerError::BadKey(e.to_string()))?;
        Ok(Self {
            key,
            verifying_key: software.verifying_key(),
            rng,
        })
    }
}

#[cfg(feature = "ring")]
impl Signer for RingSigner {
    fn verifying_key(&self) -> VerifyingKey {
        self.verifying_key
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, SignerError> {
        let signature = self
            .key
            .sign(&self.rng, message)
            .map_err(|e| SignerError::Failed(e.to_string()))?;
        Signature::from_slice(signature.as_ref()).map_err(|e| SignerError::Failed(e.to_string()))
    }
}

#[cfg(feature = "ring")]
impl fmt::Debug for RingSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let point = self.verifying_key.to_encoded_point(true);
        write!(f, "RingSigner({})", hex::encode(point.as_bytes()))
    }
}

/// The fastest signer this build has for `key`: ring when the `ring` feature is on.
pub fn fast_signer(key: &SoftwareSigner) -> Result<Box<dyn Signer>, SignerError> {
    #[cfg(feature = "ring")]
    {
        Ok(Box::new(RingSigner::from_software(key)?))
    }
    #[cfg(not(feature = "ring"))]
    {
        Ok(Box::new(key.clone()))
    }
}

#[cfg(all(test, feature = "ring"))]
mod ring_tests {
    use p256::ecdsa::signature::Verifier;

    use super::*;

    #[test]
    fn ring_signatures_verify_under_the_same_key() {
        let software = SoftwareSigner::generate();
        let ring = RingSigner::from_software(&software).unwrap();
        assert_eq!(ring.verifying_key(), software.verifying_key());
        let signature = ring.sign(b"mso").unwrap();
        software.verifying_key().verify(b"mso", &signature).unwrap();
        assert!(software.verifying_key().verify(b"msO", &signature).is_err());
    }
}

/// How an ECDSA signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// ASN.1 DER (X.509 certificates).
    Der,
    /// Fixed-size r‖s (COSE).
    Fixed,
}

/// Whether `signature` over `message` verifies (ES256) with `key`: with ring when the `ring`
/// feature is on (several times faster than the pure-Rust verifier, which matters for the many
/// device signatures each MSO request carries), else with the p256 crate.
pub fn verify_es256(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
    encoding: SignatureEncoding,
) -> bool {
    #[cfg(feature = "ring")]
    {
        let algorithm = match encoding {
            SignatureEncoding::Der => &ring::signature::ECDSA_P256_SHA256_ASN1,
            SignatureEncoding::Fixed => &ring::signature::ECDSA_P256_SHA256_FIXED,
        };
        let point = key.to_encoded_point(false);
        ring::signature::UnparsedPublicKey::new(algorithm, point.as_bytes())
            .verify(message, signature)
            .is_ok()
    }
    #[cfg(not(feature = "ring"))]
    {
        use p256::ecdsa::signature::Verifier;
        let parsed = match encoding {
            SignatureEncoding::Der => Signature::from_der(signature),
            SignatureEncoding::Fixed => Signature::from_slice(signature),
        };
        parsed.is_ok_and(|s| key.verify(message, &s).is_ok())
    }
}
