//! An Android device as Google Wallet drives it (spec/wallet-api.md §12), built from Android's
//! published definitions and nothing of Brevet's server: a P-256 CredentialKey attested by a
//! KeyMint-style chain (`keymint`), ephemeral encryption keys and the end-to-end encryption
//! (`e2ee`), the Identity Credential proofs and auth-key certificates (`identity_credential`), and
//! a relying party that verifies the MSOs it receives (`reader`).
//!
//! The boundary is checked by a test (tests/it/device_boundary.rs): code under this directory may
//! use the wire types and constants of `crate::protocol` and general crates, never the server's
//! `mdoc`, `pki` or `http` modules. docs/wallet-api.md tables each encoding with its source.

pub mod e2ee;
pub mod identity_credential;
pub mod keymint;
pub mod reader;
pub mod status;
pub mod x509;

use std::time::{Duration, SystemTime};

use p256::ecdsa::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::protocol::wallet::{self as wire, AuthKey, EncryptedData, ProofOfProvisioning};
pub use e2ee::{Contexts, EphemeralKey};
use identity_credential::Namespace;
pub use keymint::{AttestationClaims, AttestationRoot};

/// A device holding one credential (one deviceReferenceId).
pub struct Device {
    /// Google's id of this device and credential.
    pub device_reference_id: String,
    /// The doc type it holds.
    pub doc_type: String,
    credential_key: SigningKey,
    /// The data it personalised at the last provisioning, in the order received.
    pub stored: Option<Vec<Namespace>>,
    /// SHA-256 of its last ProofOfProvisioning.
    pub pop_sha256: Option<[u8; 32]>,
    /// Where the HPKE context strings go.
    pub contexts: Contexts,
}

impl Device {
    /// A new device with a fresh CredentialKey.
    pub fn new(device_reference_id: &str, doc_type: &str) -> Self {
        Self {
            device_reference_id: device_reference_id.to_owned(),
            doc_type: doc_type.to_owned(),
            credential_key: SigningKey::random(&mut rand::rngs::OsRng),
            stored: None,
            pop_sha256: None,
            contexts: Contexts::default(),
        }
    }

    /// The CredentialKey's public half (the identity key the issuer registers).
    pub fn identity_key(&self) -> VerifyingKey {
        *self.credential_key.verifying_key()
    }

    /// The CredentialKey itself (for tests that forge proofs).
    pub fn credential_key(&self) -> &SigningKey {
        &self.credential_key
    }

    /// The attestation chain (base64 DER, leaf first) for `challenge` under the simulator's root.
    pub fn attestation_chain(&self, challenge: &[u8], claims: &AttestationClaims) -> Vec<String> {
        self.chain_under(&AttestationRoot::simulator(), challenge, claims)
    }

    /// The same chain under another root.
    pub fn chain_under(
        &self,
        root: &AttestationRoot,
        challenge: &[u8],
        claims: &AttestationClaims,
    ) -> Vec<String> {
        root.chain(&self.credential_key, challenge, claims)
            .iter()
            .map(|der| wire::encode(der))
            .collect()
    }

    /// A fresh ephemeral encryption key with its ProofOfOwnership.
    pub fn encryption_key(&self) -> EphemeralKey {
        EphemeralKey::new(&self.credential_key, &self.doc_type)
    }

    /// Opens what the issuer encrypted to `ephemeral` in `context` (checking its signature).
    pub fn open(
        &self,
        ephemeral: &EphemeralKey,
        context: &str,
        data: &EncryptedData,
        identity_certificates: &[Certificate],
    ) -> Result<Vec<u8>, String> {
        ephemeral.open(&self.contexts, context, data, identity_certificates)
    }

    /// Encrypts evidence to the issuer's hybrid certificate, signed by the CredentialKey.
    pub fn encrypt_to_issuer(
        &self,
        hybrid: &Certificate,
        context: &str,
        plaintext: &[u8],
    ) -> EncryptedData {
        e2ee::seal_to_issuer(
            &self.credential_key,
            &self.doc_type,
            hybrid,
            &self.contexts,
            context,
            plaintext,
        )
        .expect("the issuer's hybrid certificate holds a P-256 key")
    }

    /// Personalises a delivered credential payload as `IWritableIdentityCredential` would and
    /// returns its ProofOfProvisioning (which also replaces every auth key: a new binding).
    pub fn store(&mut self, payload: &[u8]) -> Result<ProofOfProvisioning, String> {
        let (doc_type, data) = identity_credential::read_credential(payload)?;
        if doc_type != self.doc_type {
            return Err(format!(
                "the credential is a {doc_type}, not a {}",
                self.doc_type
            ));
        }
        let pop = identity_credential::proof_of_provisioning_payload(&doc_type, &data);
        self.pop_sha256 = Some(Sha256::digest(&pop).into());
        let signed = identity_credential::sign1(&self.credential_key, pop);
        self.stored = Some(data);
        Ok(ProofOfProvisioning {
            signature: wire::encode(&signed),
        })
    }

    /// `count` fresh auth keys with certificates signed by the CredentialKey, bound to the last
    /// ProofOfProvisioning.
    pub fn auth_keys(&self, count: usize) -> Vec<(SigningKey, AuthKey)> {
        (0..count)
            .map(|_| {
                let key = SigningKey::random(&mut rand::rngs::OsRng);
                let der = identity_credential::auth_key_certificate(
                    &self.credential_key,
                    key.verifying_key(),
                    self.pop_sha256.as_ref(),
                    SystemTime::now() - Duration::from_secs(1),
                );
                (
                    key,
                    AuthKey {
                        certificate: wire::encode(&der),
                    },
                )
            })
            .collect()
    }

    /// Verifies one MSO (static auth data) as a reader would after the device re-inserts its
    /// stored values, and that it covers every stored element.
    pub fn verify_mso(
        &self,
        static_auth_data: &[u8],
        auth_key: &VerifyingKey,
        iaca: &[Certificate],
    ) -> Result<reader::Reading, String> {
        let held = self.stored.as_ref().ok_or("no credential stored")?;
        let presented = identity_credential::issuer_signed(static_auth_data, held)?;
        let reading = reader::verify(&presented, &self.doc_type, auth_key, iaca)?;
        let stored: usize = held.iter().map(|(_, e)| e.len()).sum();
        if reading.items != stored {
            return Err(format!(
                "the MSO covers {} elements, the credential has {stored}",
                reading.items
            ));
        }
        Ok(reading)
    }
}
