//! Keys and certificates: the `Signer` seam (software keys now, an HSM later), the IACA root and
//! document-signer (DS) certificates of ISO 18013-5 Annex B, and the key files `brevet keys`
//! manages.

pub mod certs;
pub mod keystore;

pub mod signer;

pub use signer::{fast_signer, Signer, SignerError, SoftwareSigner};
