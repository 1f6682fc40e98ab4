//! IssuerSigned and its IssuerAuth COSE_Sign1 as a relying party reads them (mdoc::verify).
#![no_main]

use brevet::mdoc::verify::{self, Trust};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = verify::verify_issuer_signed_bytes(data, Trust::Iaca(&[]), chrono::Utc::now(), None);
});
