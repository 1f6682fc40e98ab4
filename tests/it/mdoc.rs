//! The mdoc core against the published ISO 18013-5 Annex D vector, against itself (issue, then
//! verify, then tamper), and against bad input.

use std::time::{Duration, SystemTime};

use brevet::mdoc::cbor::{self, Tag24};
use brevet::mdoc::doctype::{DocTypes, ElementValues, MDL_DOC_TYPE, MDL_NAMESPACE};
use brevet::mdoc::issue::{self, DocumentSigner, IssuedMso, Validity};
use brevet::mdoc::mso::MobileSecurityObject;
use brevet::mdoc::verify::{self, Trust, VerifyError};
use brevet::pki::certs::{self, Authority};
use brevet::pki::{Signer, SoftwareSigner};
use chrono::{DateTime, Utc};
use ciborium::Value;
use serde_json::json;
use x509_cert::der::Decode;
use x509_cert::Certificate;

fn annex_d() -> Vec<u8> {
    hex::decode(include_str!("../fixtures/iso18013-5-annex-d-device-response.hex").trim()).unwrap()
}

/// DeviceResponse.documents[0].issuerSigned, read with ciborium alone.
fn annex_d_issuer_signed(response: &Value) -> &Value {
    let documents = cbor::map_get(cbor::as_map(response, "r").unwrap(), "documents").unwrap();
    let Value::Array(documents) = documents else {
        panic!("documents")
    };
    cbor::map_get(cbor::as_map(&documents[0], "d").unwrap(), "issuerSigned").unwrap()
}

fn annex_d_ds_certificate(issuer_signed: &Value) -> Certificate {
    let auth = cbor::map_get(cbor::as_map(issuer_signed, "s").unwrap(), "issuerAuth").unwrap();
    let Value::Array(parts) = auth else {
        panic!("COSE_Sign1 is an array")
    };
    let unprotected = cbor::as_map(&parts[1], "u").unwrap();
    let der = unprotected
        .iter()
        .find(|(k, _)| *k == Value::Integer(33.into()))
        .map(|(_, v)| v)
        .unwrap();
    Certificate::from_der(cbor::as_bytes(der, "x5chain").unwrap()).unwrap()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn annex_d_issuer_signed_verifies_and_round_trips_byte_for_byte() {
    let bytes = annex_d();
    let response = cbor::from_slice(&bytes, "DeviceResponse").unwrap();
    assert_eq!(
        cbor::to_vec(&response),
        bytes,
        "the whole response re-encodes to the same bytes"
    );
    let issuer_signed = annex_d_issuer_signed(&response);
    let ds = annex_d_ds_certificate(issuer_signed);
    // RFC 4514 order: the vector lists CN before C in DER, so C prints first.
    assert_eq!(ds.tbs_certificate.subject.to_string(), "C=US,CN=utopia ds");

    let verified = verify::verify_issuer_signed(
        issuer_signed,
        Trust::PinnedDs(&ds),
        at("2020-10-15T00:00:00Z"),
        Some(MDL_DOC_TYPE),
    )
    .unwrap();
    assert_eq!(verified.mso.doc_type, MDL_DOC_TYPE);
    assert_eq!(verified.mso.validity.signed, at("2020-10-01T13:30:02Z"));
    assert_eq!(
        verified.mso.validity.valid_until,
        at("2021-10-01T13:30:02Z")
    );
    let (ns, items) = &verified.items[0];
    assert_eq!(ns, MDL_NAMESPACE);
    let summary: Vec<(u64, &str)> = items
        .iter()
        .map(|i| (i.digest_id, i.element_identifier.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (0, "family_name"),
            (3, "issue_date"),
            (4, "expiry_date"),
            (7, "document_number"),
            (8, "portrait"),
            (9, "driving_privileges")
        ]
    );
    assert_eq!(items[0].element_value, Value::Text("Doe".into()));
    assert_eq!(items[3].element_value, Value::Text("123456789".into()));
    assert_eq!(
        hex::encode(verified.mso.digest(MDL_NAMESPACE, 0).unwrap()),
        "75167333b47b6c2bfb86eccc1f438cf57af055371ac55e1e359e20f254adcebf"
    );
    assert_eq!(
        verified
            .mso
            .value_digests
            .iter()
            .map(|(ns, d)| (ns.as_str(), d.len()))
            .collect::<Vec<_>>(),
        [(MDL_NAMESPACE, 13), ("org.iso.18013.5.1.US", 4)]
    );

    // Our structures re-encode to the vector's bytes: items, MSO and IssuerAuth.
    let sign1 = brevet::mdoc::cose::parse(
        cbor::map_get(cbor::as_map(issuer_signed, "s").unwrap(), "issuerAuth").unwrap(),
    )
    .unwrap();
    let rebuilt = Value::Map(vec![
        (
            Value::Text("nameSpaces".into()),
            Value::Map(vec![(
                Value::Text(ns.clone()),
                Value::Array(items.iter().map(|i| i.to_value()).collect()),
            )]),
        ),
        (
            Value::Text("issuerAuth".into()),
            brevet::mdoc::cose::to_value(&sign1),
        ),
    ]);
    assert_eq!(cbor::to_vec(&rebuilt), cbor::to_vec(issuer_signed));
    let payload = cbor::from_slice(sign1.payload.as_deref().unwrap(), "payload").unwrap();
    let mso_bytes = Tag24::from_value(&payload, "payload").unwrap();
    let mso = MobileSecurityObject::from_value(mso_bytes.value()).unwrap();
    assert_eq!(
        cbor::to_vec(&mso.to_value()),
        mso_bytes.inner_bytes(),
        "our MSO encoder writes the vector's bytes"
    );

    // Outside the MSO's validity, and for another doc type, it fails.
    let late = verify::verify_issuer_signed(
        issuer_signed,
        Trust::PinnedDs(&ds),
        at("2021-10-01T13:30:03Z"),
        None,
    );
    assert!(
        matches!(
            late,
            Err(VerifyError::Certificate(_)) | Err(VerifyError::Validity { .. })
        ),
        "{late:?}"
    );
    let other = verify::verify_issuer_signed(
        issuer_signed,
        Trust::PinnedDs(&ds),
        at("2020-10-15T00:00:00Z"),
        Some("org.example.id"),
    );
    assert!(
        matches!(other, Err(VerifyError::DocType { .. })),
        "{other:?}"
    );
}

/// An IACA, a DS certificate and their keys, valid from now for a year.
pub struct TestIssuer {
    pub iaca: Certificate,
    pub iaca_key: SoftwareSigner,
    pub ds: Certificate,
    pub ds_key: SoftwareSigner,
}

impl TestIssuer {
    pub fn new() -> Self {
        let authority = Authority {
            country: "US".into(),
            state: None,
            iaca_common_name: "Brevet Test IACA".into(),
            contact: "https://issuer.example/contact".into(),
            crl_url: None,
        };
        let now = SystemTime::now() - Duration::from_secs(60);
        let iaca_key = SoftwareSigner::generate();
        let iaca = certs::issue_iaca(
            &iaca_key,
            &authority,
            now,
            Duration::from_secs(3650 * 86_400),
        )
        .unwrap();
        let ds_key = SoftwareSigner::generate();
        let ds = certs::issue_ds(
            &iaca_key,
            &iaca,
            &authority,
            "Brevet Test DS",
            &ds_key.verifying_key(),
            now,
            Duration::from_secs(365 * 86_400),
        )
        .unwrap();
        Self {
            iaca,
            iaca_key,
            ds,
            ds_key,
        }
    }

    pub fn issue(&self, values: &ElementValues, device_key: &SoftwareSigner) -> IssuedMso {
        let now = Utc::now();
        let validity = Validity {
            signed: now,
            valid_from: now,
            valid_until: now + chrono::Duration::days(30),
            expected_update: None,
        };
        let ds = DocumentSigner {
            signer: &self.ds_key,
            certificate: &self.ds,
        };
        issue::issue(values, &device_key.verifying_key(), validity, &ds).unwrap()
    }
}

pub fn sample_mdl() -> serde_json::Value {
    json!({ "org.iso.18013.5.1": {
        "family_name": "Doe", "given_name": "Jane", "birth_date": "1990-05-17",
        "issue_date": "2024-01-02", "expiry_date": "2029-01-02", "issuing_country": "US",
        "issuing_authority": "Utopia DMV", "document_number": "D1234567",
        "portrait": "/9j/4AAQSkZJRg==", "un_distinguishing_sign": "USA",
        "driving_privileges": [{ "vehicle_category_code": "B", "issue_date": "2024-01-02" }],
        "sex": 2, "height": 170, "weight": 65, "eye_colour": "brown", "hair_colour": "black",
        "birth_place": "Utopia City", "resident_address": "1 Main St", "age_in_years": 35,
        "age_birth_year": 1990, "age_over_18": true, "age_over_21": true,
    }})
}

#[test]
fn issued_msos_verify_against_the_iaca_with_every_digest() {
    let issuer = TestIssuer::new();
    let values = DocTypes::builtin()
        .validate(MDL_DOC_TYPE, &sample_mdl())
        .unwrap();
    assert_eq!(values.len(), 22);
    let device = SoftwareSigner::generate();
    let issued = issuer.issue(&values, &device);
    let bytes = issued.issuer_signed_bytes();
    let roots = [issuer.iaca.clone()];
    let verified = verify::verify_issuer_signed_bytes(
        &bytes,
        Trust::Iaca(&roots),
        Utc::now(),
        Some(MDL_DOC_TYPE),
    )
    .unwrap();
    assert_eq!(
        verified.mso.device_key_p256().unwrap(),
        device.verifying_key()
    );
    assert_eq!(verified.ds_certificate, issuer.ds);
    let (ns, items) = &verified.items[0];
    assert_eq!(ns, MDL_NAMESPACE);
    let received: Vec<(&str, &Value)> = items
        .iter()
        .map(|i| (i.element_identifier.as_str(), &i.element_value))
        .collect();
    let sent: Vec<(&str, &Value)> = values.namespaces[0]
        .1
        .iter()
        .map(|(id, v)| (id.as_str(), v))
        .collect();
    assert_eq!(
        received, sent,
        "every element arrives with its value, in order"
    );
    let mut ids: Vec<u64> = items.iter().map(|i| i.digest_id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..22).collect::<Vec<u64>>(),
        "digest IDs are a permutation"
    );

    // Another IACA does not vouch for this DS.
    let stranger = TestIssuer::new();
    let err =
        verify::verify_issuer_signed_bytes(&bytes, Trust::Iaca(&[stranger.iaca]), Utc::now(), None)
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "DS certificate: DS: signature does not verify"
    );

    // Static auth data carries the same IssuerAuth and the items without their values.
    let static_auth = issued.static_auth_data();
    let mapping = cbor::map_get(
        cbor::as_map(&static_auth, "sad").unwrap(),
        "digestIdMapping",
    )
    .unwrap();
    let Value::Map(mapping) = mapping else {
        panic!()
    };
    let Value::Array(metadata) = &mapping[0].1 else {
        panic!()
    };
    let first = Tag24::from_value(&metadata[0], "m").unwrap();
    assert_eq!(
        cbor::map_get(cbor::as_map(first.value(), "m").unwrap(), "elementValue"),
        Some(&Value::Null)
    );
}

#[test]
fn two_msos_of_one_credential_share_no_digest() {
    let issuer = TestIssuer::new();
    let values = DocTypes::builtin()
        .validate(MDL_DOC_TYPE, &sample_mdl())
        .unwrap();
    let device = SoftwareSigner::generate();
    let (a, b) = (
        issuer.issue(&values, &device),
        issuer.issue(&values, &device),
    );
    let digests = |m: &IssuedMso| {
        m.mso.value_digests[0]
            .1
            .iter()
            .map(|(_, d)| d.clone())
            .collect::<Vec<_>>()
    };
    assert!(digests(&a).iter().all(|d| !digests(&b).contains(d)));
}

#[test]
fn issuance_refuses_validity_beyond_the_ds_certificate() {
    let issuer = TestIssuer::new();
    let values = DocTypes::builtin()
        .validate(MDL_DOC_TYPE, &sample_mdl())
        .unwrap();
    let device = SoftwareSigner::generate();
    let now = Utc::now();
    let ds = DocumentSigner {
        signer: &issuer.ds_key,
        certificate: &issuer.ds,
    };
    let too_long = Validity {
        signed: now,
        valid_from: now,
        valid_until: now + chrono::Duration::days(400),
        expected_update: None,
    };
    let err = issue::issue(&values, &device.verifying_key(), too_long, &ds).unwrap_err();
    assert!(
        err.to_string().contains("after the DS certificate expires"),
        "{err}"
    );
    let backwards = Validity {
        signed: now,
        valid_from: now,
        valid_until: now - chrono::Duration::days(1),
        expected_update: None,
    };
    assert!(issue::issue(&values, &device.verifying_key(), backwards, &ds).is_err());
    // The prepared MSO can be signed elsewhere (an HSM) and completed.
    let valid = Validity {
        signed: now,
        valid_from: now,
        valid_until: now + chrono::Duration::days(1),
        expected_update: None,
    };
    let prepared = issue::prepare(&values, &device.verifying_key(), valid, &issuer.ds).unwrap();
    let signature = issuer.ds_key.sign(&prepared.to_be_signed()).unwrap();
    let issued = prepared.complete(&signature);
    verify::verify_issuer_signed(
        &issued.issuer_signed(),
        Trust::Iaca(std::slice::from_ref(&issuer.iaca)),
        now,
        None,
    )
    .unwrap();
    // Signed by a key that is not the DS certificate's: verification fails.
    let prepared = issue::prepare(&values, &device.verifying_key(), valid, &issuer.ds).unwrap();
    let forged = prepared.sign(&issuer.iaca_key).unwrap();
    let err = verify::verify_issuer_signed(
        &forged.issuer_signed(),
        Trust::Iaca(std::slice::from_ref(&issuer.iaca)),
        now,
        None,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Signature), "{err:?}");
}

#[test]
fn bad_inputs_get_typed_errors() {
    let issuer = TestIssuer::new();
    let values = DocTypes::builtin()
        .validate(MDL_DOC_TYPE, &sample_mdl())
        .unwrap();
    let issued = issuer.issue(&values, &SoftwareSigner::generate());
    let bytes = issued.issuer_signed_bytes();
    let roots = [issuer.iaca.clone()];
    let check = |bytes: &[u8]| {
        verify::verify_issuer_signed_bytes(bytes, Trust::Iaca(&roots), Utc::now(), None)
    };

    for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(check(&bytes[..cut]), Err(VerifyError::Malformed(_))),
            "truncated at {cut}"
        );
    }
    // An item that is not tag 24: replace the first item with its inner map.
    let mut value = issued.issuer_signed();
    if let Value::Map(entries) = &mut value {
        if let Value::Map(namespaces) = &mut entries[0].1 {
            if let Value::Array(items) = &mut namespaces[0].1 {
                let inner = Tag24::from_value(&items[0], "i").unwrap().value().clone();
                items[0] = inner;
            }
        }
    }
    let err = check(&cbor::to_vec(&value)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed: IssuerSigned.nameSpaces.org.iso.18013.5.1[0]: expected embedded CBOR (tag 24)"
    );

    // ES384 in the protected header.
    let mut sign1 = issued.issuer_auth.clone();
    sign1.protected = coset::ProtectedHeader {
        original_data: None,
        header: coset::HeaderBuilder::new()
            .algorithm(coset::iana::Algorithm::ES384)
            .build(),
    };
    let wrong_alg = Value::Map(vec![(
        Value::Text("issuerAuth".into()),
        brevet::mdoc::cose::to_value(&sign1),
    )]);
    assert!(matches!(
        check(&cbor::to_vec(&wrong_alg)),
        Err(VerifyError::Algorithm(_))
    ));

    // A device key on another curve is refused at issuance-verification time.
    let mut mso = issued.mso.clone();
    if let Value::Map(key) = &mut mso.device_key {
        key[1].1 = Value::Integer(2.into());
    }
    let prepared_value = Tag24::encode(mso.to_value()).tagged_bytes();
    let unsigned = brevet::mdoc::cose::unsigned_issuer_auth(
        prepared_value,
        x509_cert::der::Encode::to_der(&issuer.ds).unwrap(),
    );
    let signature = issuer
        .ds_key
        .sign(&brevet::mdoc::cose::to_be_signed(&unsigned))
        .unwrap();
    let signed = brevet::mdoc::cose::attach_signature(unsigned, &signature);
    let err =
        verify::verify_issuer_auth(&signed, Trust::Iaca(&roots), Utc::now(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed: MSO.deviceKeyInfo.deviceKey: COSE_Key curve must be 1 (P-256)"
    );

    // An expired DS certificate.
    let later = Utc::now() + chrono::Duration::days(400);
    let err =
        verify::verify_issuer_signed_bytes(&bytes, Trust::Iaca(&roots), later, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DS certificate: DS: certificate has expired"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn holder() -> impl Strategy<Value = serde_json::Value> {
        (
            "[A-Za-z][A-Za-z' -]{0,39}",
            "[A-Za-z][A-Za-z -]{0,39}",
            (1900i32..2020, 1u32..13, 1u32..29),
            proptest::collection::vec(any::<u8>(), 1..64),
            proptest::option::of(1u64..300),
            proptest::bool::ANY,
        )
            .prop_map(|(family, given, (y, m, d), portrait, height, over_18)| {
                let mut record = sample_mdl();
                let ns = record["org.iso.18013.5.1"].as_object_mut().unwrap();
                ns.insert("family_name".into(), json!(family));
                ns.insert("given_name".into(), json!(given));
                ns.insert("birth_date".into(), json!(format!("{y:04}-{m:02}-{d:02}")));
                use base64::Engine;
                ns.insert(
                    "portrait".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(portrait)),
                );
                match height {
                    Some(h) => ns.insert("height".into(), json!(h)),
                    None => ns.remove("height"),
                };
                ns.insert("age_over_18".into(), json!(over_18));
                record
            })
    }

    fn issuer() -> &'static TestIssuer {
        static ISSUER: std::sync::OnceLock<TestIssuer> = std::sync::OnceLock::new();
        ISSUER.get_or_init(TestIssuer::new)
    }

    /// Where a region's bytes sit inside the whole encoding.
    fn find(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("region present")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn digests_match_every_item_and_any_flipped_byte_fails(record in holder(), region in 0usize..3, offset in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let values = DocTypes::builtin().validate(MDL_DOC_TYPE, &record).unwrap();
            let issued = issuer().issue(&values, &SoftwareSigner::generate());
            for (ns, items) in &issued.items {
                for item in items {
                    let digest = item.digest();
                    prop_assert_eq!(issued.mso.digest(ns, item.digest_id), Some(digest.as_slice()));
                }
            }
            let bytes = issued.issuer_signed_bytes();
            let roots = [issuer().iaca.clone()];
            prop_assert!(verify::verify_issuer_signed_bytes(&bytes, Trust::Iaca(&roots), Utc::now(), Some(MDL_DOC_TYPE)).is_ok());

            // Pick one byte inside an item, the MSO or the signature, and change it.
            let (start, len) = match region {
                0 => {
                    let item = &issued.items[0].1[offset.index(issued.items[0].1.len())];
                    let encoded = cbor::to_vec(&item.to_value());
                    (find(&bytes, &encoded), encoded.len())
                }
                1 => {
                    let payload = issued.issuer_auth.payload.clone().unwrap();
                    (find(&bytes, &payload), payload.len())
                }
                _ => (find(&bytes, &issued.issuer_auth.signature), issued.issuer_auth.signature.len()),
            };
            let mut tampered = bytes.clone();
            tampered[start + offset.index(len)] ^= flip;
            prop_assert!(verify::verify_issuer_signed_bytes(&tampered, Trust::Iaca(&roots), Utc::now(), Some(MDL_DOC_TYPE)).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let roots = [issuer().iaca.clone()];
            let _ = verify::verify_issuer_signed_bytes(&bytes, Trust::Iaca(&roots), Utc::now(), None);
        }
    }
}
