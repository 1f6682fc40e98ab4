//! HPKE as the Wallet API uses it (spec/wallet-api.md §8.2): RFC 9180 base mode with
//! DHKEM(P-256, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM. Public keys travel as 65-byte
//! uncompressed points, as does the encapsulated key.

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};

type Kem = DhP256HkdfSha256;

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpkeError {
    /// The recipient public key is not an uncompressed P-256 point.
    #[error("not an uncompressed P-256 public key")]
    BadPublicKey,
    /// The encapsulated key is not an uncompressed P-256 point.
    #[error("the encapsulated key is not an uncompressed P-256 point")]
    BadEncapsulatedKey,
    /// Authentication failed: wrong key, wrong context or tampered ciphertext.
    #[error("decryption failed")]
    Open,
    /// The library refused to seal.
    #[error("encryption failed")]
    Seal,
}

/// The context a payload is bound to: HPKE `info` and AEAD `aad` ([I], see docs/wallet-api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpkeContext<'a> {
    /// HPKE info.
    pub info: &'a [u8],
    /// AEAD additional data.
    pub aad: &'a [u8],
}

/// An HPKE result: the encapsulated key and the ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// `enc`, 65 bytes.
    pub encapsulated_key: Vec<u8>,
    /// Ciphertext ‖ tag.
    pub ciphertext: Vec<u8>,
}

/// Encrypts `plaintext` to the P-256 public key `recipient` (65-byte uncompressed point).
pub fn seal(
    recipient: &[u8],
    context: HpkeContext<'_>,
    plaintext: &[u8],
) -> Result<Sealed, HpkeError> {
    if recipient.len() != 65 || recipient[0] != 0x04 {
        return Err(HpkeError::BadPublicKey);
    }
    let public = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient)
        .map_err(|_| HpkeError::BadPublicKey)?;
    let (enc, ciphertext) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &public,
        context.info,
        plaintext,
        context.aad,
        &mut rand::rngs::OsRng,
    )
    .map_err(|_| HpkeError::Seal)?;
    Ok(Sealed {
        encapsulated_key: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

/// A P-256 HPKE private key.
#[derive(Clone)]
pub struct HpkePrivateKey {
    secret: p256::SecretKey,
}

impl std::fmt::Debug for HpkePrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HpkePrivateKey(..)")
    }
}

impl HpkePrivateKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            secret: p256::SecretKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// From a P-256 secret key.
    pub fn from_secret(secret: p256::SecretKey) -> Self {
        Self { secret }
    }

    /// The P-256 secret key.
    pub fn secret(&self) -> &p256::SecretKey {
        &self.secret
    }

    /// The public key as a 65-byte uncompressed point.
    pub fn public_bytes(&self) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// Decrypts what [`seal`] made for this key.
    pub fn open(
        &self,
        context: HpkeContext<'_>,
        encapsulated_key: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, HpkeError> {
        let private = <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.secret.to_bytes())
            .map_err(|_| HpkeError::Open)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapsulated_key)
            .map_err(|_| HpkeError::BadEncapsulatedKey)?;
        hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &private,
            &enc,
            context.info,
            ciphertext,
            context.aad,
        )
        .map_err(|_| HpkeError::Open)
    }
}

/// Checks that the library agrees with our key encoding (used by tests).
pub fn kem_id() -> u16 {
    Kem::KEM_ID
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: HpkeContext<'static> = HpkeContext {
        info: b"Credential",
        aad: b"",
    };

    #[test]
    fn round_trip_and_tamper() {
        let key = HpkePrivateKey::generate();
        let sealed = seal(&key.public_bytes(), CTX, b"hello wallet").unwrap();
        assert_eq!(sealed.encapsulated_key.len(), 65);
        assert_eq!(sealed.ciphertext.len(), 12 + 16);
        assert_eq!(
            key.open(CTX, &sealed.encapsulated_key, &sealed.ciphertext)
                .unwrap(),
            b"hello wallet"
        );
        let mut tampered = sealed.ciphertext.clone();
        tampered[0] ^= 1;
        assert_eq!(
            key.open(CTX, &sealed.encapsulated_key, &tampered),
            Err(HpkeError::Open)
        );
        let other = HpkeContext {
            info: b"MobileSecurityObject",
            aad: b"",
        };
        assert_eq!(
            key.open(other, &sealed.encapsulated_key, &sealed.ciphertext),
            Err(HpkeError::Open)
        );
        assert_eq!(
            HpkePrivateKey::generate().open(CTX, &sealed.encapsulated_key, &sealed.ciphertext),
            Err(HpkeError::Open)
        );
        assert_eq!(seal(&[4; 33], CTX, b"x"), Err(HpkeError::BadPublicKey));
        assert_eq!(kem_id(), 0x0010);
    }
}
