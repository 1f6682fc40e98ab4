//! PEM and DER inputs: certificates (configuration files, x5chain, Wallet certificates) and the
//! SubjectPublicKeyInfo of a ChromeOS device key.
#![no_main]

use brevet::certprov::pop::DeviceKey;
use brevet::pki::certs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certs::from_der(data);
    let _ = DeviceKey::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = certs::from_pem(text);
    }
});
