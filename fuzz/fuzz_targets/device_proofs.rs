//! The device's proofs: COSE_Sign1 ProofOfOwnership and ProofOfProvisioning, and auth-key
//! certificates with their ProofOfBinding extension, as provisionCredential and PMSO read them.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use brevet::mdoc::android;
use brevet::mdoc::doctype::ElementValues;
use ciborium::Value;
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::{SigningKey, VerifyingKey};

fn key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| *SigningKey::from_slice(&[7; 32]).unwrap().verifying_key())
}

fuzz_target!(|data: &[u8]| {
    let values = ElementValues {
        doc_type: "org.iso.18013.5.1.mDL".into(),
        namespaces: vec![(
            "org.iso.18013.5.1".into(),
            vec![("family_name".into(), Value::Text("Doe".into()))],
        )],
    };
    let _ = android::verify_ownership(data, key(), &[0; 32]);
    let _ = android::verify_provisioning(data, key(), &values);
    let _ = android::open_sign1(data, key());
    let _ = android::verify_auth_key_certificate(
        data,
        key(),
        Some(&[1; 32]),
        SystemTime::now(),
        Duration::from_secs(300),
    );
});
