//! Keys and certificates: the `Signer` seam (software keys now, an HSM later), the IACA root and
//! document-signer (DS) certificates of ISO 18013-5 Annex B, the key files `brevet keys`
//! manages, the Wallet API's identity and hybrid-encryption keys, HPKE, and Android key
//! attestation chains.

pub mod attestation;
pub mod attestation_status;
pub mod certs;
pub mod chain;
pub mod expiry;
pub mod hpke;
pub mod keystore;
pub mod pkcs11;
pub mod signer;
pub mod status_list_keys;
pub mod wallet_keys;

pub use signer::{fast_signer, Signer, SignerError, SoftwareSigner};
