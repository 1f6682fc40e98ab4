//! What Brevet and its outside counterparts must agree on byte for byte, and nothing else: the
//! Wallet API's JSON objects ([`wallet`]) and the names and numbers Android's Identity Credential
//! and key attestation formats use ([`android`]). The server and the simulators both import these;
//! each side writes its own encoders and parsers, so that a simulator cannot agree with the
//! server merely by sharing its code (docs/wallet-api.md, "Device-side encodings").

pub mod android;
pub mod ids;
pub mod wallet;
