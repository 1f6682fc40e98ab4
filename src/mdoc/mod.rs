//! ISO/IEC 18013-5 on the issuer side: data elements and their CBOR types, IssuerSignedItems and
//! their digests, the MobileSecurityObject, its COSE_Sign1 (IssuerAuth), and verification of all
//! of it. The wire formats are in the spec (wallet-api.md §8.8–§8.10).
//!
//! Encoded bytes are kept wherever a signature or digest covers them ([`cbor::Tag24`]), so that a
//! verifier recomputes exactly what the issuer hashed and signed.

pub mod android;
pub mod cbor;
pub mod cose;
pub mod doctype;
pub mod issue;
pub mod item;
pub mod mso;
pub mod status_list;
pub mod verify;
