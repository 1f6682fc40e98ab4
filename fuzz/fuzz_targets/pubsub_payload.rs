//! The Pub/Sub message payload naming a certificate-provisioning process (proto3 JSON or binary
//! protobuf), the push envelope, and Google's attestation status list.
#![no_main]

use brevet::certprov::wire::{decode_base64, ProcessCreated, PushEnvelope};
use brevet::pki::attestation_status::StatusList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ProcessCreated::decode(data);
    let _ = serde_json::from_slice::<PushEnvelope>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_base64(text);
    }
    let _ = StatusList::default().load(data);
});
