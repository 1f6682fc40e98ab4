//! CBOR items as Brevet reads them: any value, tag-24 wrapped items, tdates and COSE_Keys.
#![no_main]

use brevet::mdoc::{cbor, mso};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = cbor::from_slice(data, "fuzz") {
        let _ = cbor::Tag24::from_value(&value, "fuzz");
        let _ = cbor::read_tdate(&value, "fuzz");
        let _ = mso::p256_from_cose_key(&value, "fuzz");
        let _ = mso::MobileSecurityObject::from_value(&value);
        // What was read writes back.
        let _ = cbor::to_vec(&value);
    }
});
