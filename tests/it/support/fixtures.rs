//! Published test data in tests/fixtures/.

use base64::Engine;

/// The certificates (DER) of a PEM file in tests/fixtures/attestation, in file order. The
/// published files wrap their base64 at 76 columns, which strict PEM readers refuse, so the
/// blocks are read here.
pub fn pem_chain(file: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/attestation")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let body: String = block
                .split("-----END CERTIFICATE-----")
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        })
        .collect()
}
