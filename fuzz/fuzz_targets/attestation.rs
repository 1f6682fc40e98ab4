//! Android key attestation: certificates, KeyDescription records and path validation of a
//! chain cut from the input (registerDevice's parsers).
#![no_main]

use std::time::SystemTime;

use brevet::pki::attestation::{self, KeyDescription};
use brevet::pki::certs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = KeyDescription::from_der(data);
    // The input as up to four DER certificates, split at 0xff bytes.
    let chain: Vec<_> = data
        .split(|b| *b == 0xff)
        .take(4)
        .filter_map(|der| certs::from_der(der).ok())
        .collect();
    if !chain.is_empty() {
        let _ = attestation::verify_path(&chain, &[[0; 32]], SystemTime::now());
        for cert in &chain {
            if let Some(record) = certs::raw_extension_value(cert, attestation::KEY_ATTESTATION_OID) {
                let _ = KeyDescription::from_der(record);
            }
        }
    }
});
