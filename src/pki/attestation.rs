//! Android key attestation, as registerDevice checks it (spec/wallet-api.md §4.5): the chain is a
//! valid path to a trusted attestation root (`chain::verify_path`: names, signatures, validity,
//! and above the leaf only attest keys and CAs), no certificate is revoked, and the leaf's
//! attestation record (extension 1.3.6.1.4.1.11129.2.1.17, `KeyDescription`) carries our nonce as
//! its challenge, secure hardware, a locked bootloader with verified boot, the identity-credential
//! tag and a Google package id.
//!
//! The record's ASN.1 uses context tags above 30 (e.g. `[704] rootOfTrust`), which the `der`
//! crate cannot express; yasna reads them. The simulator's device writes its own records
//! (`sim::wallet::android::keymint`); pyasn1 reads both in the cross-checks.

use std::time::SystemTime;

use p256::ecdsa::VerifyingKey;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::Certificate;
use yasna::{ASN1Error, BERReader};

use super::certs::{self, raw_extension_value};
use super::chain::{self, AttestationProbe, ChainError};
use crate::protocol::android::{self as ids, tag};

/// OID of the Android key attestation extension.
pub const KEY_ATTESTATION_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap(ids::KEY_ATTESTATION_OID);

/// `VerifiedBootState.Verified`.
pub const VERIFIED_BOOT_VERIFIED: i64 = ids::VERIFIED_BOOT_VERIFIED;

/// `RootOfTrust`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootOfTrust {
    /// Hash of the key that verified the boot image.
    pub verified_boot_key: Vec<u8>,
    /// Whether the bootloader is locked.
    pub device_locked: bool,
    /// 0 Verified, 1 SelfSigned, 2 Unverified, 3 Failed.
    pub verified_boot_state: i64,
}

/// The fields of an `AuthorizationList` that registration looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationList {
    /// `[1] purpose`: what the key may do (2 sign, 7 attest key, …).
    pub purposes: Option<Vec<i64>>,
    /// `[704] rootOfTrust`.
    pub root_of_trust: Option<RootOfTrust>,
    /// `[709] attestationApplicationId`: package names.
    pub package_names: Option<Vec<String>>,
    /// `[721] identityCredentialKey`.
    pub identity_credential_key: bool,
}

/// `KeyDescription`, the attestation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    /// Attestation format version.
    pub attestation_version: i64,
    /// 0 Software, 1 TrustedEnvironment, 2 StrongBox.
    pub attestation_security_level: i64,
    /// The challenge given to the key store: our registration nonce.
    pub attestation_challenge: Vec<u8>,
    /// Enforced by the Android system.
    pub software_enforced: AuthorizationList,
    /// Enforced by secure hardware (TEE or StrongBox).
    pub hardware_enforced: AuthorizationList,
}

fn read_authorization_list(reader: BERReader<'_, '_>) -> Result<AuthorizationList, ASN1Error> {
    let mut list = AuthorizationList::default();
    reader.read_sequence(|seq| {
        // Every member is an optional explicitly tagged field; unknown ones are skipped.
        while let Some(element) = seq.read_optional(|r| r.read_der())? {
            yasna::parse_der(&element, |r| {
                let tag = r.lookahead_tag()?;
                r.read_tagged(tag, |inner| {
                    match tag.tag_number {
                        tag::PURPOSE => {
                            let mut purposes = Vec::new();
                            inner.read_set_of(|p| {
                                purposes.push(p.read_i64()?);
                                Ok(())
                            })?;
                            purposes.sort_unstable();
                            list.purposes = Some(purposes);
                        }
                        tag::ROOT_OF_TRUST => {
                            list.root_of_trust = Some(inner.read_sequence(|s| {
                                let verified_boot_key = s.next().read_bytes()?;
                                let device_locked = s.next().read_bool()?;
                                let verified_boot_state = s.next().read_enum()?;
                                // verifiedBootHash (version 3 and later) is not needed.
                                let _ = s.read_optional(|r| r.read_bytes())?;
                                Ok(RootOfTrust {
                                    verified_boot_key,
                                    device_locked,
                                    verified_boot_state,
                                })
                            })?)
                        }
                        tag::ATTESTATION_APPLICATION_ID => {
                            let der = inner.read_bytes()?;
                            list.package_names = Some(parse_application_id(&der)?);
                        }
                        tag::IDENTITY_CREDENTIAL_KEY => {
                            inner.read_null()?;
                            list.identity_credential_key = true;
                        }
                        _ => {
                            inner.read_der()?;
                        }
                    }
                    Ok(())
                })
            })?;
        }
        Ok(())
    })?;
    Ok(list)
}

fn parse_application_id(der: &[u8]) -> Result<Vec<String>, ASN1Error> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|seq| {
            let mut names = Vec::new();
            seq.next().read_set_of(|info| {
                info.read_sequence(|p| {
                    let name = p.next().read_bytes()?;
                    let _version = p.next().read_i64()?;
                    names.push(String::from_utf8_lossy(&name).into_owned());
                    Ok(())
                })
            })?;
            // signature_digests
            seq.next().read_der()?;
            Ok(names)
        })
    })
}

impl KeyDescription {
    /// Reads the record from the extension's DER value.
    pub fn from_der(der: &[u8]) -> Result<Self, MalformedRecord> {
        yasna::parse_der(der, |r| {
            r.read_sequence(|seq| {
                let attestation_version = seq.next().read_i64()?;
                let attestation_security_level = seq.next().read_enum()?;
                let _keymaster_version = seq.next().read_i64()?;
                let _keymaster_security_level = seq.next().read_enum()?;
                let attestation_challenge = seq.next().read_bytes()?;
                let _unique_id = seq.next().read_bytes()?;
                let software_enforced = read_authorization_list(seq.next())?;
                let hardware_enforced = read_authorization_list(seq.next())?;
                Ok(KeyDescription {
                    attestation_version,
                    attestation_security_level,
                    attestation_challenge,
                    software_enforced,
                    hardware_enforced,
                })
            })
        })
        .map_err(MalformedRecord)
    }
}

/// A KeyDescription that is not DER of the ASN.1 Android defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed key attestation record: {0}")]
pub struct MalformedRecord(yasna::ASN1Error);

/// What registerDevice requires of an attestation ([I] where the spec leaves it open: every
/// setting is in `wallet.attestation`, see docs/wallet-api.md).
#[derive(Debug, Clone)]
pub struct AttestationPolicy {
    /// SHA-256 fingerprints of the trusted root certificates.
    pub anchors: Vec<[u8; 32]>,
    /// Serial numbers (upper-case hex) of revoked attestation certificates.
    pub revoked_serials: Vec<String>,
    /// Google's attestation status list (revoked and suspended keys), kept fresh by the server.
    pub status_list: std::sync::Arc<super::attestation_status::StatusList>,
    /// Package names one of which the attested application must have.
    pub package_names: Vec<String>,
}

/// Why an attestation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AttestationError(pub String);

impl From<ChainError> for AttestationError {
    fn from(error: ChainError) -> Self {
        AttestationError(error.to_string())
    }
}

/// Tells the path validator which certificates above the leaf are Android attest keys.
struct Probe;

impl AttestationProbe for Probe {
    fn attest_key(&self, cert: &Certificate) -> Option<Result<(), String>> {
        let record = raw_extension_value(cert, KEY_ATTESTATION_OID)?;
        Some(match KeyDescription::from_der(record) {
            Err(e) => Err(e.to_string()),
            // As Google's verifier: exactly one hardware-enforced purpose, ATTEST_KEY.
            Ok(record) => match record.hardware_enforced.purposes.as_deref() {
                Some([ids::PURPOSE_ATTEST_KEY]) => Ok(()),
                Some(other) => Err(format!("hardware-enforced purposes {other:?}")),
                None => Err("no hardware-enforced purpose".into()),
            },
        })
    }
}

/// Validates the path of an attestation chain (leaf first) at `at` against `anchors`, with the
/// rules of [`chain::verify_path`].
pub fn verify_path(
    chain: &[Certificate],
    anchors: &[[u8; 32]],
    at: SystemTime,
) -> Result<Vec<chain::Link>, ChainError> {
    chain::verify_path(chain, anchors, at, &Probe)
}

/// Checks an attestation chain (leaf first) whose challenge must be one of `challenges`; returns
/// the attested P-256 identity key.
pub fn verify(
    chain: &[Certificate],
    challenges: &[Vec<u8>],
    policy: &AttestationPolicy,
    at: SystemTime,
) -> Result<VerifyingKey, AttestationError> {
    let fail = |what: &str| AttestationError(what.to_owned());
    verify_path(chain, &policy.anchors, at)?;
    for (index, cert) in chain.iter().enumerate() {
        let serial = certs::serial_hex(cert);
        if policy.revoked_serials.contains(&serial) {
            return Err(AttestationError(format!(
                "certificate {index} of the chain is revoked"
            )));
        }
        if policy.status_list.is_listed(&serial) {
            return Err(AttestationError(format!(
                "certificate {index} of the chain is revoked or suspended in Google's attestation status list"
            )));
        }
    }
    // The leaf's record is the one that speaks for the key (the freshest attestation).
    let leaf = &chain[0];
    let record = raw_extension_value(leaf, KEY_ATTESTATION_OID)
        .ok_or_else(|| fail("the leaf certificate has no key attestation extension"))?;
    let record = KeyDescription::from_der(record).map_err(|e| AttestationError(e.to_string()))?;
    if !challenges.contains(&record.attestation_challenge) {
        return Err(fail(
            "the attestation challenge is not the registration nonce",
        ));
    }
    if record.attestation_security_level == ids::SECURITY_LEVEL_SOFTWARE {
        return Err(fail("the key is not held in secure hardware"));
    }
    let hardware = &record.hardware_enforced;
    let root = hardware
        .root_of_trust
        .as_ref()
        .ok_or_else(|| fail("the attestation has no hardware-enforced root of trust"))?;
    if !root.device_locked {
        return Err(fail("the device's bootloader is unlocked"));
    }
    if root.verified_boot_state != VERIFIED_BOOT_VERIFIED {
        return Err(fail("the device did not boot a verified image"));
    }
    if !hardware.identity_credential_key {
        return Err(fail("the key is not an identity credential key"));
    }
    let packages = record
        .software_enforced
        .package_names
        .as_ref()
        .or(hardware.package_names.as_ref())
        .ok_or_else(|| fail("the attestation names no application"))?;
    if !packages
        .iter()
        .any(|name| policy.package_names.contains(name))
    {
        return Err(fail(
            "the attested application is not one of the allowed Google packages",
        ));
    }
    certs::public_key(leaf).map_err(|_| fail("the attested identity key is not a P-256 key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::wallet::android::keymint::{key_description, AttestationClaims};
    use yasna::Tag;

    #[test]
    fn reads_the_devices_records() {
        let claims = AttestationClaims::default();
        let record =
            KeyDescription::from_der(&key_description(b"nonce", ids::PURPOSE_SIGN, &claims))
                .unwrap();
        assert_eq!(record.attestation_version, 200);
        assert_eq!(record.attestation_security_level, ids::SECURITY_LEVEL_TEE);
        assert_eq!(record.attestation_challenge, b"nonce");
        assert_eq!(
            record.hardware_enforced.purposes,
            Some(vec![ids::PURPOSE_SIGN])
        );
        assert_eq!(
            record
                .hardware_enforced
                .root_of_trust
                .as_ref()
                .map(|r| (r.device_locked, r.verified_boot_state)),
            Some((true, 0))
        );
        assert!(record.hardware_enforced.identity_credential_key);
        assert_eq!(
            record.software_enforced.package_names,
            Some(vec!["com.google.android.gms".to_owned()])
        );
        let attest =
            KeyDescription::from_der(&key_description(b"x", ids::PURPOSE_ATTEST_KEY, &claims))
                .unwrap();
        assert_eq!(
            attest.hardware_enforced.purposes,
            Some(vec![ids::PURPOSE_ATTEST_KEY])
        );
        assert!(KeyDescription::from_der(&[0x30, 0x03, 0x02, 0x01]).is_err());
    }

    #[test]
    fn unknown_tags_are_skipped() {
        // softwareEnforced with [701] creationDateTime before [709].
        let der = yasna::construct_der(|w| {
            w.write_sequence(|seq| {
                seq.next().write_i64(3);
                seq.next().write_enum(1);
                seq.next().write_i64(4);
                seq.next().write_enum(1);
                seq.next().write_bytes(b"challenge");
                seq.next().write_bytes(&[]);
                seq.next().write_sequence(|s| {
                    s.next()
                        .write_tagged(Tag::context(701), |w| w.write_i64(1_700_000_000_000));
                });
                seq.next().write_sequence(|s| {
                    s.next()
                        .write_tagged(Tag::context(tag::IDENTITY_CREDENTIAL_KEY), |w| {
                            w.write_null()
                        });
                });
            })
        });
        let parsed = KeyDescription::from_der(&der).unwrap();
        assert_eq!(parsed.attestation_challenge, b"challenge");
        assert!(parsed.hardware_enforced.identity_credential_key);
        assert_eq!(parsed.software_enforced, AuthorizationList::default());
    }
}
