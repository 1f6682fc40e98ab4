//! An Android device as Google Wallet drives it (spec/wallet-api.md §12): a P-256 CredentialKey
//! attested by a chain from the simulator's root, ephemeral encryption keys with ProofOfOwnership,
//! decryption and issuer-signature checks of what Brevet sends, a ProofOfProvisioning of the data
//! it stored, auth-key certificates bound to it, and MSO verification against the IACA.

use std::time::{Duration, SystemTime};

use chrono::Utc;
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::config::HpkeContextSlot;
use crate::http::wallet::hpke_context;
use crate::http::wallet::wire::{
    self, AuthKey, DeviceEncryptionKey, EncryptedData, ProofOfProvisioning,
};
use crate::mdoc::android;
use crate::mdoc::doctype::ElementValues;
use crate::mdoc::verify::{self, Trust, Verified};
use crate::pki::attestation::{
    AuthorizationList, KeyDescription, RootOfTrust, KEY_ATTESTATION_OID,
};
use crate::pki::certs::{self, CertTemplate};
use crate::pki::hpke::{self, HpkePrivateKey};
use crate::pki::{Signer, SoftwareSigner};

/// What the device's attestation claims; each field can be falsified to test refusals.
#[derive(Debug, Clone)]
pub struct AttestationClaims {
    /// Bootloader locked.
    pub device_locked: bool,
    /// 0 = verified boot.
    pub verified_boot_state: i64,
    /// Attested application.
    pub package_name: String,
    /// Whether the key carries the identity-credential tag.
    pub identity_credential_key: bool,
}

impl Default for AttestationClaims {
    fn default() -> Self {
        Self {
            device_locked: true,
            verified_boot_state: 0,
            package_name: "com.google.android.gms".into(),
            identity_credential_key: true,
        }
    }
}

/// A device holding one credential (one deviceReferenceId).
pub struct Device {
    /// Google's id of this device and credential.
    pub device_reference_id: String,
    /// The doc type it holds.
    pub doc_type: String,
    identity: SoftwareSigner,
    /// The values it stored at the last provisioning.
    pub stored: Option<ElementValues>,
    /// SHA-256 of its last ProofOfProvisioning.
    pub pop_sha256: Option<[u8; 32]>,
    /// HPKE context slot the issuer uses.
    pub context_slot: HpkeContextSlot,
}

/// A device's ephemeral encryption key for one request.
pub struct EphemeralKey {
    key: HpkePrivateKey,
    /// As sent to the issuer.
    pub wire: DeviceEncryptionKey,
}

impl Device {
    /// A new device with a fresh identity key.
    pub fn new(device_reference_id: &str, doc_type: &str) -> Self {
        Self {
            device_reference_id: device_reference_id.to_owned(),
            doc_type: doc_type.to_owned(),
            identity: SoftwareSigner::generate(),
            stored: None,
            pop_sha256: None,
            context_slot: HpkeContextSlot::Info,
        }
    }

    /// The identity (CredentialKey) public key.
    pub fn identity_key(&self) -> VerifyingKey {
        self.identity.verifying_key()
    }

    /// Signs with the identity key (for tests that forge proofs).
    pub fn identity_signer(&self) -> &dyn Signer {
        &self.identity
    }

    /// The attestation chain (base64 DER, leaf first) for `nonce`: root → intermediate → leaf.
    pub fn attestation_chain(&self, nonce: &[u8], claims: &AttestationClaims) -> Vec<String> {
        let (root_key, root) = super::attestation_root();
        self.chain_under(&root_key, &root, nonce, claims)
    }

    /// The same chain under another root (to test untrusted roots).
    pub fn chain_under(
        &self,
        root_key: &SoftwareSigner,
        root: &Certificate,
        nonce: &[u8],
        claims: &AttestationClaims,
    ) -> Vec<String> {
        let now = SystemTime::now() - Duration::from_secs(60);
        let intermediate_key = SoftwareSigner::generate();
        let intermediate = certs::issue_certificate(
            &CertTemplate {
                subject: "CN=Brevet simulator attestation intermediate".into(),
                issuer: Some(root.tbs_certificate.subject.clone()),
                serial: None,
                not_before: now,
                lifetime: Duration::from_secs(10 * 365 * 86_400),
                public_key: intermediate_key.verifying_key().into(),
                ca: true,
                extensions: Vec::new(),
            },
            root_key,
        )
        .expect("intermediate certificate");
        let record = KeyDescription {
            attestation_version: 200,
            attestation_security_level: 1,
            attestation_challenge: nonce.to_vec(),
            software_enforced: AuthorizationList {
                package_names: Some(vec![claims.package_name.clone()]),
                ..AuthorizationList::default()
            },
            hardware_enforced: AuthorizationList {
                root_of_trust: Some(RootOfTrust {
                    verified_boot_key: vec![0x5a; 32],
                    device_locked: claims.device_locked,
                    verified_boot_state: claims.verified_boot_state,
                }),
                package_names: None,
                identity_credential_key: claims.identity_credential_key,
            },
        };
        let leaf = certs::issue_certificate(
            &CertTemplate {
                subject: "CN=Android Identity Credential Key".into(),
                issuer: Some(intermediate.tbs_certificate.subject.clone()),
                serial: Some(vec![0x01]),
                not_before: now,
                lifetime: Duration::from_secs(365 * 86_400),
                public_key: self.identity.verifying_key().into(),
                ca: false,
                extensions: vec![certs::raw_extension(
                    KEY_ATTESTATION_OID,
                    false,
                    &record.to_der(),
                )
                .expect("attestation extension")],
            },
            &intermediate_key,
        )
        .expect("leaf certificate");
        [&leaf, &intermediate, root]
            .iter()
            .map(|c| wire::encode(&certs::to_der(c).expect("DER")))
            .collect()
    }

    /// A fresh ephemeral encryption key with its ProofOfOwnership.
    pub fn encryption_key(&self) -> EphemeralKey {
        let key = HpkePrivateKey::generate();
        let public = key.public_bytes();
        let proof = android::sign1(
            android::proof_of_ownership(&self.doc_type, &Sha256::digest(&public), false),
            &self.identity,
        )
        .expect("software signing");
        let key_id = hex::encode_upper(&Sha256::digest(&public)[..8]);
        EphemeralKey {
            key,
            wire: DeviceEncryptionKey {
                public_key: wire::encode(&public),
                signature: wire::encode(&proof),
                key_id,
            },
        }
    }

    /// Opens what the issuer encrypted to `ephemeral`, checking recipientKeyId and the issuer's
    /// signature over SHA-256(plaintext ‖ our public key) against the identity certificates.
    pub fn open(
        &self,
        ephemeral: &EphemeralKey,
        context: &str,
        data: &EncryptedData,
        identity_certificates: &[Certificate],
    ) -> Result<Vec<u8>, String> {
        if data.recipient_key_id != ephemeral.wire.key_id {
            return Err("recipientKeyId is not the keyId of our encryption key".into());
        }
        let b64 = |name: &str, raw: &str| wire::decode(raw).ok_or(format!("{name} is not base64"));
        let ciphertext = b64("encryptedValue", &data.encrypted_value)?;
        let enc = b64("encapsulatedKey", &data.encapsulated_key)?;
        let plaintext = ephemeral
            .key
            .open(hpke_context(self.context_slot, context), &enc, &ciphertext)
            .map_err(|e| format!("cannot decrypt: {e}"))?;
        let signature = b64("signature", &data.signature)?;
        let expected = android::sha256_concat(&plaintext, &ephemeral.key.public_bytes());
        let signed_by_issuer = identity_certificates.iter().any(|cert| {
            certs::public_key(cert)
                .ok()
                .and_then(|key| android::open_sign1(&signature, &key).ok())
                .is_some_and(|payload| payload == expected)
        });
        if !signed_by_issuer {
            return Err(
                "the issuer's signature does not verify with any identity certificate".into(),
            );
        }
        Ok(plaintext)
    }

    /// Encrypts evidence to the issuer's hybrid certificate, signed with our identity key.
    pub fn encrypt_to_issuer(
        &self,
        hybrid: &Certificate,
        context: &str,
        plaintext: &[u8],
    ) -> EncryptedData {
        let public = certs::public_key(hybrid).expect("P-256 hybrid certificate");
        let point = public.to_encoded_point(false).as_bytes().to_vec();
        let sealed = hpke::seal(&point, hpke_context(self.context_slot, context), plaintext)
            .expect("HPKE seal");
        let proof = android::sign1(
            android::proof_of_ownership(
                &self.doc_type,
                &android::sha256_concat(plaintext, &point),
                false,
            ),
            &self.identity,
        )
        .expect("software signing");
        EncryptedData {
            encrypted_value: wire::encode(&sealed.ciphertext),
            encapsulated_key: wire::encode(&sealed.encapsulated_key),
            signature: wire::encode(&proof),
            recipient_key_id: certs::serial_hex(hybrid),
        }
    }

    /// Stores a credential payload as Android's personalize() would, returning the
    /// ProofOfProvisioning to send.
    pub fn store(&mut self, payload: &[u8]) -> Result<ProofOfProvisioning, String> {
        let values = android::parse_credential_payload(payload).map_err(|e| e.to_string())?;
        if values.doc_type != self.doc_type {
            return Err(format!(
                "the credential is a {}, not a {}",
                values.doc_type, self.doc_type
            ));
        }
        let pop = android::proof_of_provisioning(&values, false);
        self.pop_sha256 = Some(Sha256::digest(&pop).into());
        let signed = android::sign1(pop, &self.identity).expect("software signing");
        self.stored = Some(values);
        Ok(ProofOfProvisioning {
            signature: wire::encode(&signed),
        })
    }

    /// `count` fresh auth keys, with certificates signed by the identity key and bound to the
    /// last ProofOfProvisioning.
    pub fn auth_keys(&self, count: usize) -> Vec<(SoftwareSigner, AuthKey)> {
        (0..count)
            .map(|_| {
                let key = SoftwareSigner::generate();
                let mut extensions = Vec::new();
                if let Some(pop) = &self.pop_sha256 {
                    let value = android::proof_of_binding_extension(pop).expect("ProofOfBinding");
                    extensions.push(
                        certs::raw_extension(android::PROOF_OF_BINDING_OID, false, &value)
                            .expect("extension"),
                    );
                }
                let cert = certs::issue_certificate(
                    &CertTemplate {
                        subject: "CN=Android Identity Credential Authentication Key".into(),
                        issuer: Some("CN=Android Identity Credential Key".parse().expect("name")),
                        serial: Some(vec![0x01]),
                        not_before: SystemTime::now() - Duration::from_secs(60),
                        lifetime: Duration::from_secs(365 * 86_400),
                        public_key: key.verifying_key().into(),
                        ca: false,
                        extensions,
                    },
                    &self.identity,
                )
                .expect("auth key certificate");
                let der = certs::to_der(&cert).expect("DER");
                (
                    key,
                    AuthKey {
                        certificate: wire::encode(&der),
                    },
                )
            })
            .collect()
    }

    /// Verifies one MSO (static auth data) the way a reader would after the device re-inserts
    /// its stored values: IssuerAuth by a DS chaining to `iaca`, the doc type, validity now,
    /// deviceKey = `auth_key`, and every digest.
    pub fn verify_mso(
        &self,
        static_auth_data: &[u8],
        auth_key: &VerifyingKey,
        iaca: &[Certificate],
    ) -> Result<Verified, String> {
        let values = self.stored.as_ref().ok_or("no credential stored")?;
        let issuer_signed = android::issuer_signed_from_static_auth_data(static_auth_data, values)
            .map_err(|e| e.to_string())?;
        let verified = verify::verify_issuer_signed(
            &issuer_signed,
            Trust::Iaca(iaca),
            Utc::now(),
            Some(&self.doc_type),
        )
        .map_err(|e| e.to_string())?;
        if verified.mso.device_key_p256().map_err(|e| e.to_string())? != *auth_key {
            return Err("the MSO certifies another device key".into());
        }
        let disclosed: usize = verified.items.iter().map(|(_, items)| items.len()).sum();
        if disclosed != values.len() {
            return Err(format!(
                "the MSO covers {disclosed} elements, the credential has {}",
                values.len()
            ));
        }
        Ok(verified)
    }
}
