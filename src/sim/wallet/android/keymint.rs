//! Key attestation as a phone's KeyMint produces it: a `KeyDescription` (the schema on
//! source.android.com, "Key and ID attestation", attestation version 200) in the leaf certificate
//! of a chain that ends in the (simulated) hardware attestation root. Like Android 12 and later,
//! the chain can carry an attest key between the leaf and the batch CA.
//!
//! The record is encoded here with yasna, member by member in tag order as DER requires; the
//! server's parser is a separate piece of code and pyasn1 reads both in the cross-checks.

use std::time::{Duration, SystemTime};

use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::Certificate;
use yasna::{DERWriter, Tag};

use super::x509::{self, Role, Template};
use crate::protocol::android::{self as ids, tag};

/// What the device's attestation claims; each field can be falsified to test refusals.
#[derive(Debug, Clone)]
pub struct AttestationClaims {
    /// Bootloader locked.
    pub device_locked: bool,
    /// `VerifiedBootState`: 0 verified.
    pub verified_boot_state: i64,
    /// Attested application.
    pub package_name: String,
    /// Whether the key carries the identity-credential tag.
    pub identity_credential_key: bool,
    /// Where the key lives: 1 TEE, 2 StrongBox (0, software, is refused by issuers).
    pub security_level: i64,
    /// Whether the leaf is signed by an attest key (Android 12+) rather than the batch CA.
    pub via_attest_key: bool,
}

impl Default for AttestationClaims {
    fn default() -> Self {
        Self {
            device_locked: true,
            verified_boot_state: ids::VERIFIED_BOOT_VERIFIED,
            package_name: ids::GOOGLE_PACKAGES[0].into(),
            identity_credential_key: true,
            security_level: ids::SECURITY_LEVEL_TEE,
            via_attest_key: false,
        }
    }
}

/// Values of the `AuthorizationList`s this simulator writes: KeyMint's `KeyPurpose`,
/// `Algorithm.EC` (3), `Digest.SHA_256` (4), `EcCurve.P_256` (1), `KeyOrigin.GENERATED` (0).
const ALGORITHM_EC: i64 = 3;
const DIGEST_SHA_256: i64 = 4;
const EC_CURVE_P_256: i64 = 1;
const ORIGIN_GENERATED: i64 = 0;
/// Attestation and KeyMint version 200 (KeyMint 2, Android 13).
const ATTESTATION_VERSION: i64 = 200;

fn explicit(seq: &mut yasna::DERWriterSeq<'_>, number: u64, write: impl FnOnce(DERWriter<'_>)) {
    seq.next().write_tagged(Tag::context(number), write);
}

fn set_of_ints(writer: DERWriter<'_>, values: &[i64]) {
    writer.write_set_of(|set| {
        for value in values {
            set.next().write_i64(*value);
        }
    });
}

/// `AttestationApplicationId ::= SEQUENCE { package_infos SET OF AttestationPackageInfo,
/// signature_digests SET OF OCTET_STRING }`.
fn application_id(package: &str) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|s| {
            s.next().write_set_of(|set| {
                set.next().write_sequence(|info| {
                    info.next().write_bytes(package.as_bytes());
                    info.next().write_i64(1);
                });
            });
            s.next()
                .write_set_of(|set| set.next().write_bytes(&[0x5c; 32]));
        })
    })
}

/// The DER of a `KeyDescription` for a P-256 key with `purpose`, attested for `challenge`.
pub fn key_description(challenge: &[u8], purpose: i64, claims: &AttestationClaims) -> Vec<u8> {
    let created_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    yasna::construct_der(|w| {
        w.write_sequence(|seq| {
            seq.next().write_i64(ATTESTATION_VERSION);
            seq.next().write_enum(claims.security_level);
            seq.next().write_i64(ATTESTATION_VERSION);
            seq.next().write_enum(claims.security_level);
            seq.next().write_bytes(challenge);
            seq.next().write_bytes(&[]); // uniqueId
                                         // softwareEnforced
            seq.next().write_sequence(|list| {
                explicit(list, tag::CREATION_DATE_TIME, |w| w.write_i64(created_ms));
                explicit(list, tag::ATTESTATION_APPLICATION_ID, |w| {
                    w.write_bytes(&application_id(&claims.package_name))
                });
            });
            // hardwareEnforced
            seq.next().write_sequence(|list| {
                explicit(list, tag::PURPOSE, |w| set_of_ints(w, &[purpose]));
                explicit(list, tag::ALGORITHM, |w| w.write_i64(ALGORITHM_EC));
                explicit(list, tag::KEY_SIZE, |w| w.write_i64(256));
                explicit(list, tag::DIGEST, |w| set_of_ints(w, &[DIGEST_SHA_256]));
                explicit(list, tag::EC_CURVE, |w| w.write_i64(EC_CURVE_P_256));
                explicit(list, tag::NO_AUTH_REQUIRED, |w| w.write_null());
                explicit(list, tag::ORIGIN, |w| w.write_i64(ORIGIN_GENERATED));
                explicit(list, tag::ROOT_OF_TRUST, |w| {
                    w.write_sequence(|root| {
                        root.next().write_bytes(&[0xb0; 32]); // verifiedBootKey
                        root.next().write_bool(claims.device_locked);
                        root.next().write_enum(claims.verified_boot_state);
                        root.next().write_bytes(&[0xb1; 32]); // verifiedBootHash
                    })
                });
                explicit(list, tag::OS_VERSION, |w| w.write_i64(140_000));
                explicit(list, tag::OS_PATCH_LEVEL, |w| w.write_i64(202_611));
                explicit(list, tag::VENDOR_PATCH_LEVEL, |w| w.write_i64(20_261_101));
                explicit(list, tag::BOOT_PATCH_LEVEL, |w| w.write_i64(20_261_101));
                if claims.identity_credential_key && purpose != ids::PURPOSE_ATTEST_KEY {
                    explicit(list, tag::IDENTITY_CREDENTIAL_KEY, |w| w.write_null());
                }
            });
        })
    })
}

/// The simulated hardware attestation root: a fixed key (checked in, for tests and demos only)
/// and a certificate made from it deterministically (RFC 6979 signatures, fixed serial and
/// validity), so that a server in development mode can trust it by fingerprint.
pub struct AttestationRoot {
    key: SigningKey,
    /// Its self-signed certificate.
    pub certificate: Certificate,
}

impl AttestationRoot {
    /// The simulator's root.
    pub fn simulator() -> Self {
        let key = SigningKey::from_pkcs8_pem(include_str!("attestation_root.key.pem"))
            .expect("the simulator's root key is a valid P-256 key");
        Self::with_key(key)
    }

    /// A root with another key (to test untrusted roots).
    pub fn random() -> Self {
        Self::with_key(SigningKey::random(&mut rand::rngs::OsRng))
    }

    fn with_key(key: SigningKey) -> Self {
        let certificate = x509::issue(
            &Template {
                subject: "CN=Brevet simulator attestation root - NOT GOOGLE,O=Brevet",
                issuer: None,
                serial: &[0x01],
                not_before: SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600), // 2025-01-01
                lifetime: Duration::from_secs(20 * 365 * 86_400),
                key: key.verifying_key(),
                role: Role::Ca(None),
                extensions: Vec::new(),
            },
            &key,
        );
        Self { key, certificate }
    }

    /// DER of the root certificate.
    pub fn der(&self) -> Vec<u8> {
        x509::der(&self.certificate)
    }

    /// A chain for `identity` attested for `challenge`, leaf first, as DER: leaf ← [attest key]
    /// ← batch CA ("TEE") ← intermediate ← this root, as a phone with remotely provisioned keys
    /// returns it.
    pub fn chain(
        &self,
        identity: &SigningKey,
        challenge: &[u8],
        claims: &AttestationClaims,
    ) -> Vec<Vec<u8>> {
        let now = SystemTime::now() - Duration::from_secs(60);
        let oid = ObjectIdentifier::new_unwrap(ids::KEY_ATTESTATION_OID);
        let year = Duration::from_secs(365 * 86_400);
        let intermediate_key = SigningKey::random(&mut rand::rngs::OsRng);
        let intermediate = x509::issue(
            &Template {
                subject: "CN=Brevet simulator attestation CA,O=Brevet",
                issuer: Some(&self.certificate.tbs_certificate.subject),
                serial: &[0x02],
                not_before: now,
                lifetime: 5 * year,
                key: intermediate_key.verifying_key(),
                role: Role::Ca(Some(1)),
                extensions: Vec::new(),
            },
            &self.key,
        );
        let batch_key = SigningKey::random(&mut rand::rngs::OsRng);
        let batch = x509::issue(
            &Template {
                subject: "CN=5e1f0b7a9c3d4e21,O=TEE",
                issuer: Some(&intermediate.tbs_certificate.subject),
                serial: &[0x03],
                not_before: now,
                lifetime: year,
                key: batch_key.verifying_key(),
                role: Role::Ca(None),
                extensions: Vec::new(),
            },
            &intermediate_key,
        );
        let mut above_leaf = vec![batch, intermediate, self.certificate.clone()];
        let (mut signer_key, mut signer_name) =
            (batch_key, above_leaf[0].tbs_certificate.subject.clone());
        if claims.via_attest_key {
            let attest_key = SigningKey::random(&mut rand::rngs::OsRng);
            let attest = x509::issue(
                &Template {
                    subject: "CN=Android Keystore Key",
                    issuer: Some(&signer_name),
                    serial: &[0x01],
                    not_before: now,
                    lifetime: year,
                    key: attest_key.verifying_key(),
                    role: Role::Signing,
                    extensions: vec![(
                        oid,
                        false,
                        key_description(b"attest key", ids::PURPOSE_ATTEST_KEY, claims),
                    )],
                },
                &signer_key,
            );
            signer_name = attest.tbs_certificate.subject.clone();
            signer_key = attest_key;
            above_leaf.insert(0, attest);
        }
        let leaf = x509::issue(
            &Template {
                subject: &format!("CN={}", ids::AUTH_KEY_ISSUER_CN),
                issuer: Some(&signer_name),
                serial: &[0x01],
                not_before: now,
                lifetime: year,
                key: identity.verifying_key(),
                role: Role::Signing,
                extensions: vec![(
                    oid,
                    false,
                    key_description(challenge, ids::PURPOSE_SIGN, claims),
                )],
            },
            &signer_key,
        );
        std::iter::once(leaf)
            .chain(above_leaf)
            .map(|c| x509::der(&c))
            .collect()
    }
}
