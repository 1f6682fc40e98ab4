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
    /// The key's holder (a PKCS#11 token) could not compute the key agreement: Brevet's fault,
    /// not the sender's.
    #[error("the hybrid key is unavailable: {0}")]
    Unavailable(String),
}

/// The private half of a hybrid-encryption key: in this process's memory ([`HpkePrivateKey`])
/// or in a PKCS#11 token.
pub trait HpkeRecipient: Send + Sync {
    /// The public key as a 65-byte uncompressed point.
    fn public_bytes(&self) -> Vec<u8>;

    /// Decrypts what [`seal`] made for this key.
    fn open(
        &self,
        context: HpkeContext<'_>,
        encapsulated_key: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, HpkeError>;
}

/// Base-mode opening given the DH shared secret (the x coordinate of skR·pkE) computed elsewhere
/// (a token's `CKM_ECDH1_DERIVE`): the RFC 9180 KEM and key schedule as [`seal`] composes them.
#[cfg(feature = "ring")]
pub fn open_with_dh(
    dh: &[u8],
    recipient: &[u8],
    context: HpkeContext<'_>,
    encapsulated_key: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, HpkeError> {
    ring_seal::open_with_dh(dh, recipient, context, encapsulated_key, ciphertext)
}

/// Without ring there is no composed schedule: a token-held hybrid key cannot decrypt.
#[cfg(not(feature = "ring"))]
pub fn open_with_dh(
    _dh: &[u8],
    _recipient: &[u8],
    _context: HpkeContext<'_>,
    _encapsulated_key: &[u8],
    _ciphertext: &[u8],
) -> Result<Vec<u8>, HpkeError> {
    Err(HpkeError::Unavailable(
        "token-held hybrid keys need the default `ring` feature".into(),
    ))
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
///
/// Every MSO is sealed to the device, so this is the hottest cryptography in Brevet. With the
/// `ring` feature the KEM's two P-256 operations run on ring (the `hpke` crate's pure-Rust curve
/// made sealing 80% of an MSO's cost, docs/PERFORMANCE.md), composed per RFC 9180 in
/// [`ring_seal`]; the output is checked against the `hpke` crate and pyhpke by the tests.
pub fn seal(
    recipient: &[u8],
    context: HpkeContext<'_>,
    plaintext: &[u8],
) -> Result<Sealed, HpkeError> {
    #[cfg(feature = "ring")]
    {
        ring_seal::seal(recipient, context, plaintext)
    }
    #[cfg(not(feature = "ring"))]
    {
        reference_seal(recipient, context, plaintext)
    }
}

/// [`seal`] by the `hpke` crate alone (the reference the fast path is tested against).
pub fn reference_seal(
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

/// RFC 9180 base-mode sealing with ring's P-256 and AES-256-GCM and RustCrypto's HKDF.
#[cfg(feature = "ring")]
mod ring_seal {
    use hkdf::Hkdf;
    use ring::{aead, agreement, rand::SystemRandom};
    use sha2::Sha256;

    use super::{HpkeContext, HpkeError, Sealed};

    /// "KEM" ‖ I2OSP(0x0010, 2): DHKEM(P-256, HKDF-SHA256).
    const KEM_SUITE: &[u8] = b"KEM\x00\x10";
    /// "HPKE" ‖ KEM 0x0010 ‖ KDF 0x0001 (HKDF-SHA256) ‖ AEAD 0x0002 (AES-256-GCM).
    const HPKE_SUITE: &[u8] = b"HPKE\x00\x10\x00\x01\x00\x02";

    fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> [u8; 32] {
        let labeled = [b"HPKE-v1".as_slice(), suite, label, ikm].concat();
        let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &labeled);
        prk.into()
    }

    fn labeled_expand(
        suite: &[u8],
        prk: &[u8; 32],
        label: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), HpkeError> {
        let length = u16::try_from(out.len()).map_err(|_| HpkeError::Seal)?;
        let labeled = [
            &length.to_be_bytes(),
            b"HPKE-v1".as_slice(),
            suite,
            label,
            info,
        ]
        .concat();
        Hkdf::<Sha256>::from_prk(prk)
            .map_err(|_| HpkeError::Seal)?
            .expand(&labeled, out)
            .map_err(|_| HpkeError::Seal)
    }

    /// DHKEM's shared secret from `dh`, then the base-mode key schedule: the AEAD key and nonce.
    fn schedule(
        dh: &[u8],
        enc: &[u8],
        recipient: &[u8],
        info: &[u8],
    ) -> Result<([u8; 32], [u8; 12]), HpkeError> {
        let kem_context = [enc, recipient].concat();
        let eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", dh);
        let mut shared_secret = [0u8; 32];
        labeled_expand(
            KEM_SUITE,
            &eae_prk,
            b"shared_secret",
            &kem_context,
            &mut shared_secret,
        )?;
        // Key schedule, base mode (no PSK).
        let psk_id_hash = labeled_extract(HPKE_SUITE, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(HPKE_SUITE, b"", b"info_hash", info);
        let context = [[0u8].as_slice(), &psk_id_hash, &info_hash].concat();
        let secret = labeled_extract(HPKE_SUITE, &shared_secret, b"secret", b"");
        let mut key = [0u8; 32];
        let mut base_nonce = [0u8; 12];
        labeled_expand(HPKE_SUITE, &secret, b"key", &context, &mut key)?;
        labeled_expand(
            HPKE_SUITE,
            &secret,
            b"base_nonce",
            &context,
            &mut base_nonce,
        )?;
        Ok((key, base_nonce))
    }

    pub(super) fn open_with_dh(
        dh: &[u8],
        recipient: &[u8],
        context: HpkeContext<'_>,
        enc: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, HpkeError> {
        if enc.len() != 65 || enc[0] != 0x04 {
            return Err(HpkeError::BadEncapsulatedKey);
        }
        let (key, base_nonce) = schedule(dh, enc, recipient, context.info)?;
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, &key).map_err(|_| HpkeError::Open)?,
        );
        let mut buffer = ciphertext.to_vec();
        let plaintext = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(base_nonce),
                aead::Aad::from(context.aad),
                &mut buffer,
            )
            .map_err(|_| HpkeError::Open)?;
        Ok(plaintext.to_vec())
    }

    pub(super) fn seal(
        recipient: &[u8],
        context: HpkeContext<'_>,
        plaintext: &[u8],
    ) -> Result<Sealed, HpkeError> {
        if recipient.len() != 65 || recipient[0] != 0x04 {
            return Err(HpkeError::BadPublicKey);
        }
        // Encap: an ephemeral key pair, DH with the recipient, and the KEM's shared secret.
        let rng = SystemRandom::new();
        let ephemeral = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
            .map_err(|_| HpkeError::Seal)?;
        let enc = ephemeral
            .compute_public_key()
            .map_err(|_| HpkeError::Seal)?
            .as_ref()
            .to_vec();
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, recipient);
        let dh: Vec<u8> = agreement::agree_ephemeral(ephemeral, &peer, |x| x.to_vec())
            .map_err(|_| HpkeError::BadPublicKey)?;
        let (key, base_nonce) = schedule(&dh, &enc, recipient, context.info)?;

        // The first (and only) message: sequence number 0, so the nonce is the base nonce.
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, &key).map_err(|_| HpkeError::Seal)?,
        );
        let mut ciphertext = plaintext.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(base_nonce),
            aead::Aad::from(context.aad),
            &mut ciphertext,
        )
        .map_err(|_| HpkeError::Seal)?;
        Ok(Sealed {
            encapsulated_key: enc,
            ciphertext,
        })
    }
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

impl HpkeRecipient for HpkePrivateKey {
    fn public_bytes(&self) -> Vec<u8> {
        HpkePrivateKey::public_bytes(self)
    }

    fn open(
        &self,
        context: HpkeContext<'_>,
        encapsulated_key: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, HpkeError> {
        HpkePrivateKey::open(self, context, encapsulated_key, ciphertext)
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

    /// The opening a token-held key uses (DH from outside, schedule composed here) against the
    /// `hpke` crate's sealing: the same bytes decrypt, a wrong DH does not.
    #[cfg(feature = "ring")]
    #[test]
    fn opening_with_an_outside_dh_agrees_with_the_hpke_crate() {
        use p256::elliptic_curve::sec1::FromEncodedPoint;
        let key = HpkePrivateKey::generate();
        let aad = HpkeContext {
            info: b"MobileSecurityObject",
            aad: b"bound",
        };
        let sealed = reference_seal(&key.public_bytes(), aad, b"evidence").unwrap();
        let point = p256::EncodedPoint::from_bytes(&sealed.encapsulated_key).unwrap();
        let ephemeral = p256::PublicKey::from_encoded_point(&point).unwrap();
        let dh =
            p256::ecdh::diffie_hellman(key.secret().to_nonzero_scalar(), ephemeral.as_affine());
        let opened = open_with_dh(
            dh.raw_secret_bytes(),
            &key.public_bytes(),
            aad,
            &sealed.encapsulated_key,
            &sealed.ciphertext,
        )
        .unwrap();
        assert_eq!(opened, b"evidence");
        assert_eq!(
            open_with_dh(
                &[7; 32],
                &key.public_bytes(),
                aad,
                &sealed.encapsulated_key,
                &sealed.ciphertext
            ),
            Err(HpkeError::Open)
        );
    }

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

    #[test]
    fn the_fast_path_interoperates_with_the_hpke_crate() {
        // What `seal` makes, the hpke crate's open reads, for every context placement and size;
        // and a point not on the curve is refused.
        for (info, aad) in [
            (&b""[..], &b""[..]),
            (b"Credential", b""),
            (b"", b"Barcode"),
            (b"x", b"y"),
        ] {
            for size in [0usize, 1, 15, 16, 17, 4096] {
                let key = HpkePrivateKey::generate();
                let plaintext: Vec<u8> = (0..size).map(|i| i as u8).collect();
                let context = HpkeContext { info, aad };
                let sealed = seal(&key.public_bytes(), context, &plaintext).unwrap();
                assert_eq!(
                    key.open(context, &sealed.encapsulated_key, &sealed.ciphertext)
                        .unwrap(),
                    plaintext
                );
                let reference = reference_seal(&key.public_bytes(), context, &plaintext).unwrap();
                assert_eq!(reference.ciphertext.len(), sealed.ciphertext.len());
            }
        }
        let mut off_curve = HpkePrivateKey::generate().public_bytes();
        off_curve[64] ^= 1;
        assert_eq!(seal(&off_curve, CTX, b"x"), Err(HpkeError::BadPublicKey));
    }
}
