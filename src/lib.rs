//! Brevet: an issuer back end for ISO/IEC 18013-5 mdoc credentials in Google Wallet, and a Chrome
//! Enterprise certificate-provisioning adapter. See docs/ARCHITECTURE.md for the map.

pub mod certprov;
pub mod challenge_expiry;
pub mod clock;
pub mod commands;
pub mod config;
pub mod domain;
pub mod error;
pub mod google;
pub mod http;
pub mod mdoc;
pub mod outbox;
pub mod pki;
pub mod progress;
pub mod protocol;
pub mod readiness;
pub mod service;
pub mod sim;
pub mod store;
pub mod telemetry;
