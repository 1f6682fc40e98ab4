//! Credentials on devices (spec/wallet-api.md §4.9–§4.12): `provisionCredential` delivers the
//! record's current version to a device, `provisionMobileSecurityObjects` certifies the device's
//! auth keys with MSOs, `getCredentialStatus` tells Google where a copy stands, and
//! `notifyCredentialDeleted` records that a wallet dropped its copy.
//!
//! Each call is safe to repeat (Google changes requestId on retries): state is keyed on the
//! credentialId and version, and every change to a copy is decided on the copy locked in its
//! transaction (`domain::wallet_credential` holds the rules). Everything that can refuse a call is
//! decided before anything is written.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::context::WalletContext;
use super::e2ee::{device_encryption_key, proof_refusal, seal_for_device};
use super::{cpu, decode_field, internal, refuse, registered_key, unavailable};
use crate::domain::credential::{CredentialRecord, CredentialStatus};
use crate::domain::mso_validity::{self, NoValidity};
use crate::domain::proofing::ProofingStatus;
use crate::domain::wallet_credential::{self as lifecycle, CopyStatus, Event, Record};
use crate::error::{WalletError, WalletErrorKind as K};
use crate::mdoc::android;
use crate::mdoc::doctype::{DocTypes, ElementValues};
use crate::mdoc::issue::{self, DocumentSigner, Validity};
use crate::mdoc::mso::cose_key;
use crate::mdoc::status_list::StatusReference;
use crate::protocol::ids::{DeviceReferenceId, ProofingId, WalletCredentialId};
use crate::protocol::wallet::{
    self as wire, AuthKey, Credential, DeviceEncryptionKey, MobileSecurityObject,
    ProofOfProvisioning, UserActionRequired,
};
use crate::service::status_lists::{self, AllocateError};
use crate::service::Services;
use crate::store::{copies, credentials, proofings, CopyChange, Exec, NewMsoIssuance, WalletCopy};

fn record_state(record: &CredentialRecord) -> Record {
    lifecycle_record(record.status, record.current_version_id)
}

fn lifecycle_record(status: CredentialStatus, current: Uuid) -> Record {
    Record {
        revoked: status == CredentialStatus::Revoked,
        current,
    }
}

/// The answer for a credentialId that is unknown or belongs to another device.
fn no_copy_on_device() -> WalletError {
    refuse(
        K::InvalidIdentifier,
        "no credential with this credentialId on this deviceReferenceId",
    )
}

fn illegal(error: lifecycle::Illegal) -> WalletError {
    refuse(K::InvalidState, error.to_string())
}

async fn record_of(
    ex: &mut impl Exec,
    credential_id: Uuid,
) -> Result<CredentialRecord, WalletError> {
    credentials::get(ex, credential_id).await?.ok_or_else(|| {
        internal(format!(
            "device copy refers to missing record {credential_id}"
        ))
    })
}

/// The copy `id` of `device`; `invalidIdentifier` when there is none.
async fn copy_of_device(
    s: &Services,
    device: &DeviceReferenceId,
    id: &WalletCredentialId,
) -> Result<WalletCopy, WalletError> {
    match copies::get(&mut s.store.db(), id).await? {
        Some(copy) if copy.device_reference_id == device.as_str() => Ok(copy),
        _ => Err(no_copy_on_device()),
    }
}

/// The record's current holder data as typed element values.
fn element_values(
    doc_types: &DocTypes,
    record: &CredentialRecord,
) -> Result<ElementValues, WalletError> {
    doc_types
        .validate(&record.doc_type, &record.holder_data)
        .map_err(|e| {
            internal(format!(
                "stored holder data of {} no longer validates: {e}",
                record.credential_id
            ))
        })
}

/// Applies `event` to the copy locked in `tx` and writes the result when it differs. Returns the
/// copy as written and the record it was decided against.
async fn change_copy(
    tx: &mut impl Exec,
    id: &WalletCredentialId,
    event: Event,
    pop_sha256: Option<&[u8]>,
) -> Result<(WalletCopy, CredentialRecord), WalletError> {
    let copy = copies::lock(tx, id)
        .await?
        .ok_or_else(|| internal("device copy vanished"))?;
    let record = record_of(tx, copy.credential_id).await?;
    let expected = copy.state();
    let next = lifecycle::apply(&expected, &record_state(&record), event).map_err(illegal)?;
    if next == expected {
        return Ok((copy, record));
    }
    let change = CopyChange {
        expected,
        next,
        status: lifecycle::status(&next, &record_state(&record)),
        pop_sha256,
    };
    if !copies::change(tx, id, &change).await? {
        return Err(internal("a locked device copy changed under its lock"));
    }
    let mut written = copy;
    written.provisioned_version_id = next.provisioned;
    written.proven_version_id = next.proven;
    Ok((written, record))
}

/// The device key to encrypt to (checked against the identity key), or `None` for a plaintext
/// answer where that is allowed. CPU work.
fn encryption_target(
    wallet: &WalletContext,
    identity: &VerifyingKey,
    doc_type: &str,
    key: Option<&DeviceEncryptionKey>,
) -> Result<Option<(Vec<u8>, String)>, WalletError> {
    match key {
        Some(key) => Ok(Some((
            device_encryption_key(wallet, identity, doc_type, key)?,
            key.key_id.clone(),
        ))),
        None if wallet.settings.allow_plaintext => Ok(None),
        None => Err(refuse(
            K::MissingRequiredField,
            "deviceEncryptionKey is required (plaintext answers are disabled)",
        )),
    }
}

/// `provisionCredential`: binds Google's credentialId to the record the accepted proofing names
/// and returns the record's current version, encrypted to the device.
pub async fn provision(
    s: &Services,
    device: &DeviceReferenceId,
    id: &WalletCredentialId,
    proofing_id: &ProofingId,
    key: Option<&DeviceEncryptionKey>,
) -> Result<(Credential, Uuid), WalletError> {
    let identity = registered_key(&s.store, device).await?;
    let proofing = proofings::get(&mut s.store.db(), proofing_id)
        .await?
        .filter(|p| p.device_reference_id == device.as_str());
    let record_id = match proofing {
        Some(p) if p.status == ProofingStatus::Accepted => p.credential_id,
        _ => None,
    }
    .ok_or_else(|| {
        refuse(
            K::InvalidIdentifier,
            "proofingId is not an accepted proofing of this deviceReferenceId",
        )
    })?;
    let record = record_of(&mut s.store.db(), record_id).await?;
    if record.status == CredentialStatus::Revoked {
        return Err(illegal(lifecycle::Illegal::Revoked));
    }
    let (wallet, doc_type, owned_key) = (s.wallet.clone(), record.doc_type.clone(), key.cloned());
    let target =
        cpu(move || encryption_target(&wallet, &identity, &doc_type, owned_key.as_ref())).await?;
    // Checked before the copy is bound: a device that can never get MSOs (an expired document,
    // no signer) is told now and nothing is written.
    signing_plan(s, &element_values(&s.doc_types, &record)?)?;
    // The record is locked first, so that an update either commits before (and is the version
    // served here) or waits and then finds this copy to announce itself to.
    let mut tx = s.store.begin().await?;
    credentials::lock(&mut tx, record_id).await?;
    copies::bind(&mut tx, id, record_id, device).await?;
    let bound = copies::lock(&mut tx, id)
        .await?
        .ok_or_else(|| internal("device copy vanished"))?;
    if bound.device_reference_id != device.as_str() || bound.credential_id != record_id {
        return Err(refuse(
            K::InvalidState,
            "this credentialId belongs to another device or credential",
        ));
    }
    let (_, record) = change_copy(&mut tx, id, Event::Provision, None).await?;
    // The answer is sealed and signed before the binding commits: a signer that fails (an HSM
    // away) rolls it back, so the retry Google makes finds nothing half done.
    let payload = android::credential_payload(&element_values(&s.doc_types, &record)?);
    let wallet = s.wallet.clone();
    let credential = cpu(move || {
        Ok(match target {
            Some((key, key_id)) => Credential {
                encrypted_data: Some(seal_for_device(
                    &wallet,
                    &key,
                    &key_id,
                    &wallet.settings.hpke.credential,
                    &payload,
                )?),
                unencrypted_value: None,
            },
            None => Credential {
                encrypted_data: None,
                unencrypted_value: Some(wire::encode(&payload)),
            },
        })
    })
    .await?;
    tx.commit().await?;
    Ok((credential, record.current_version_id))
}

/// What `provisionMobileSecurityObjects` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct MsoRequest<'a> {
    /// The device.
    pub device: &'a DeviceReferenceId,
    /// The copy.
    pub id: &'a WalletCredentialId,
    /// The version the device holds (an unparsable one is never current).
    pub credential_version_id: &'a str,
    /// The auth keys to certify.
    pub auth_keys: &'a [AuthKey],
    /// Only on the first call after (re)provisioning.
    pub proof_of_provisioning: Option<&'a ProofOfProvisioning>,
    /// The key to encrypt the MSOs to.
    pub device_encryption_key: Option<&'a DeviceEncryptionKey>,
}

/// Everything a PMSO call was checked for, ready to sign.
struct Checked {
    target: Option<(Vec<u8>, String)>,
    values: ElementValues,
    validity: Validity,
    pop_sha256: Vec<u8>,
    auth_keys: Vec<(Vec<u8>, VerifyingKey)>,
}

/// `provisionMobileSecurityObjects`: one MSO per auth key, encrypted to the device. The first
/// call after (re)provisioning carries the ProofOfProvisioning that makes the copy active.
pub async fn certify(
    s: &Services,
    request: MsoRequest<'_>,
) -> Result<Vec<MobileSecurityObject>, WalletError> {
    let identity = registered_key(&s.store, request.device).await?;
    let copy = copy_of_device(s, request.device, request.id).await?;
    let record = record_of(&mut s.store.db(), copy.credential_id).await?;
    let version = Uuid::parse_str(request.credential_version_id).unwrap_or(Uuid::nil());
    let with_proof = request.proof_of_provisioning.is_some();
    let event = Event::IssueMsos {
        version,
        with_proof,
    };
    lifecycle::apply(&copy.state(), &record_state(&record), event).map_err(illegal)?;
    let max = s.wallet.settings.max_auth_keys;
    if request.auth_keys.is_empty() || request.auth_keys.len() > max {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("authKeys must hold 1 to {max} certificates"),
        ));
    }
    let checked = {
        let (s, record) = (s.clone(), record.clone());
        let auth_keys = request.auth_keys.to_vec();
        let proof = request.proof_of_provisioning.cloned();
        let key = request.device_encryption_key.cloned();
        let stored_pop = copy.pop_sha256.clone();
        cpu(move || {
            check_msos(
                &s,
                &identity,
                &record,
                &auth_keys,
                proof.as_ref(),
                key.as_ref(),
                stored_pop,
            )
        })
        .await?
    };
    if with_proof {
        let mut tx = s.store.begin().await?;
        let (written, _) =
            change_copy(&mut tx, request.id, event, Some(&checked.pop_sha256)).await?;
        tx.commit().await?;
        if written.proven_version_id != Some(version) {
            return Err(illegal(lifecycle::Illegal::StaleVersion));
        }
    }
    issue_msos(s, request.device, &record, checked).await
}

/// The checks of a PMSO call that cost CPU, in the order the API's errors are reported: the
/// encryption key, the signer and validity, the proof, every auth key.
fn check_msos(
    s: &Services,
    identity: &VerifyingKey,
    record: &CredentialRecord,
    auth_keys: &[AuthKey],
    proof: Option<&ProofOfProvisioning>,
    key: Option<&DeviceEncryptionKey>,
    stored_pop: Option<Vec<u8>>,
) -> Result<Checked, WalletError> {
    let target = encryption_target(&s.wallet, identity, &record.doc_type, key)?;
    let values = element_values(&s.doc_types, record)?;
    let validity = signing_plan(s, &values)?;
    let pop_sha256: Vec<u8> = match proof {
        Some(proof) => {
            let bytes = decode_field("proofOfProvisioning.signature", &proof.signature)?;
            let provisioned = android::verify_provisioning(&bytes, identity, &values)
                .map_err(|e| proof_refusal("proofOfProvisioning", e))?;
            if provisioned.test_credential && !s.wallet.settings.accept_test_credentials {
                return Err(refuse(
                    K::InvalidFieldValue,
                    "proofOfProvisioning: test credentials are not accepted",
                ));
            }
            provisioned.sha256.to_vec()
        }
        None => stored_pop.ok_or_else(|| illegal(lifecycle::Illegal::NoProof))?,
    };
    let now = s.clock.system_time();
    let skew = s.wallet.settings.clock_skew;
    let mut keys = Vec::with_capacity(auth_keys.len());
    for (index, auth_key) in auth_keys.iter().enumerate() {
        let what = format!("authKeys[{index}].certificate");
        let der = decode_field(&what, &auth_key.certificate)?;
        let key =
            android::verify_auth_key_certificate(&der, identity, Some(&pop_sha256), now, skew)
                .map_err(|e| proof_refusal(&what, e))?;
        keys.push((der, key));
    }
    Ok(Checked {
        target,
        values,
        validity,
        pop_sha256,
        auth_keys: keys,
    })
}

/// Decides with which validity MSOs for `values` can be signed now. A document that expired is
/// `invalidState` (final for this version); a missing or expired DS certificate, or a missing
/// identity key, is the retryable 503: Google tries again once the operator has rotated.
fn signing_plan(s: &Services, values: &ElementValues) -> Result<Validity, WalletError> {
    let wallet = &s.wallet;
    let set = wallet.keys();
    let now = std::time::SystemTime::now();
    if set
        .keys
        .as_ref()
        .and_then(|k| k.active_identity(now))
        .is_none()
    {
        return Err(unavailable(
            "no Wallet identity key: run `brevet keys init`",
        ));
    }
    let ds = set
        .document_signer_for(&values.doc_type, now)
        .ok_or_else(|| unavailable("no document signer key: run `brevet keys init`"))?;
    let ds_validity = &ds.certificate.tbs_certificate.validity;
    let decided = mso_validity::decide(
        s.clock.now(),
        &wallet.settings.mso_policy(&values.doc_type),
        ds_validity.not_before.to_system_time().into(),
        ds_validity.not_after.to_system_time().into(),
        s.doc_types.expiry(values),
    );
    match decided {
        Ok(v) => Ok(Validity {
            signed: v.signed,
            valid_from: v.valid_from,
            valid_until: v.valid_until,
            expected_update: v.expected_update,
        }),
        Err(expired @ NoValidity::DocumentExpired(_)) => {
            Err(refuse(K::InvalidState, expired.to_string()))
        }
        Err(signer @ NoValidity::SignerNotValid(..)) => Err(unavailable(format!(
            "{signer}: rotate it with `brevet keys rotate-ds`"
        ))),
    }
}

/// MSOs built and sealed, waiting to be recorded.
struct Issued {
    objects: Vec<MobileSecurityObject>,
    auth_key_digests: Vec<[u8; 32]>,
    ds_key_id: String,
}

/// Signs and seals the MSOs (about 2 ms for 10 auth keys, on the blocking pool) and records them
/// before they are handed out: an MSO the log does not know is never issued.
async fn issue_msos(
    s: &Services,
    device: &DeviceReferenceId,
    record: &CredentialRecord,
    checked: Checked,
) -> Result<Vec<MobileSecurityObject>, WalletError> {
    let wallet: Arc<WalletContext> = s.wallet.clone();
    let validity = checked.validity;
    let entries = status_lists::allocate(s, &record.doc_type, checked.auth_keys.len())
        .await
        .map_err(|e| match e {
            AllocateError::NoSigner => unavailable(e.to_string()),
            AllocateError::Store(e) => e.into(),
        })?;
    let references: Vec<Option<StatusReference>> = match &entries {
        Some(entries) => entries.iter().map(|(_, r)| Some(r.clone())).collect(),
        None => vec![None; checked.auth_keys.len()],
    };
    let issued = cpu(move || build_msos(&wallet, &checked, references)).await?;
    let rows: Vec<NewMsoIssuance<'_>> = issued
        .auth_key_digests
        .iter()
        .enumerate()
        .map(|(i, digest)| NewMsoIssuance {
            credential_version_id: record.current_version_id,
            device_reference_id: device.as_str(),
            auth_key_sha256: *digest,
            ds_key_id: &issued.ds_key_id,
            valid_from: validity.valid_from,
            valid_until: validity.valid_until,
            status: entries.as_ref().map(|e| e[i].0),
        })
        .collect();
    if entries.is_none() {
        copies::insert_msos(&mut s.store.db(), &rows).await?;
        return Ok(issued.objects);
    }
    // With entries, the MSOs are recorded under the record's lock: a revocation that committed
    // first is seen here (and nothing is handed out); one that commits later finds these
    // entries and marks their lists.
    let mut tx = s.store.begin().await?;
    let (status, _) = credentials::lock(&mut tx, record.credential_id)
        .await?
        .ok_or_else(|| internal("the record vanished"))?;
    if status == CredentialStatus::Revoked {
        return Err(illegal(lifecycle::Illegal::Revoked));
    }
    copies::insert_msos(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(issued.objects)
}

fn build_msos(
    wallet: &WalletContext,
    checked: &Checked,
    references: Vec<Option<StatusReference>>,
) -> Result<Issued, WalletError> {
    let set = wallet.keys();
    let ds = set
        .document_signer_for(&checked.values.doc_type, std::time::SystemTime::now())
        .ok_or_else(|| unavailable("no document signer key: run `brevet keys init`"))?;
    let signer = DocumentSigner {
        signer: ds.signer.as_ref(),
        certificate: &ds.certificate,
    };
    let mut objects = Vec::with_capacity(checked.auth_keys.len());
    let mut auth_key_digests = Vec::with_capacity(checked.auth_keys.len());
    for ((der, key), status) in checked.auth_keys.iter().zip(references) {
        // A signer that fails (an HSM busy or unreachable) is a passing condition.
        let mso = issue::issue_referenced(&checked.values, key, checked.validity, status, &signer)
            .map_err(|e| unavailable(format!("MSO issuance: {e}")))?;
        let static_auth_data = crate::mdoc::cbor::to_vec(&mso.static_auth_data());
        auth_key_digests.push(Sha256::digest(crate::mdoc::cbor::to_vec(&cose_key(key))).into());
        let (encrypted_data, unencrypted_value) = match &checked.target {
            Some((recipient, key_id)) => (
                Some(seal_for_device(
                    wallet,
                    recipient,
                    key_id,
                    &wallet.settings.hpke.mobile_security_object,
                    &static_auth_data,
                )?),
                None,
            ),
            None => (None, Some(wire::encode(&static_auth_data))),
        };
        objects.push(MobileSecurityObject {
            auth_key_certificate: wire::encode(der),
            encrypted_data,
            unencrypted_value,
        });
    }
    // A DS of a doc type's own key directory is named with its doc type: numbers repeat
    // across directories.
    let doc_type = &checked.values.doc_type;
    let ds_key_id = if set.doc_type_signers.contains_key(doc_type) {
        format!("{doc_type}/{:04}", ds.number)
    } else {
        format!("{:04}", ds.number)
    };
    Ok(Issued {
        objects,
        auth_key_digests,
        ds_key_id,
    })
}

/// Where a copy stands, as `getCredentialStatus` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyReport {
    /// The wire status.
    pub status: CopyStatus,
    /// Set when the holder must act.
    pub user_action_required: Option<UserActionRequired>,
    /// The record's current version.
    pub current_version_id: Uuid,
    /// When staff asked for reverification, if the request is open.
    pub reverification_requested_at: Option<DateTime<Utc>>,
}

/// `getCredentialStatus`: one read, no holder data.
pub async fn status(
    s: &Services,
    device: &DeviceReferenceId,
    id: &WalletCredentialId,
) -> Result<CopyReport, WalletError> {
    let found = match copies::get_with_record(&mut s.store.db(), id).await? {
        Some(found) if found.copy.device_reference_id == device.as_str() => found,
        _ => return Err(no_copy_on_device()),
    };
    let record = lifecycle_record(found.record_status, found.current_version_id);
    let status = lifecycle::status(&found.copy.state(), &record);
    let user_action_required = match status {
        CopyStatus::Active | CopyStatus::ProvisionPending
            if found.reverification_requested_at.is_some() =>
        {
            Some(UserActionRequired::reverification())
        }
        _ => None,
    };
    Ok(CopyReport {
        status,
        user_action_required,
        current_version_id: found.current_version_id,
        reverification_requested_at: found.reverification_requested_at,
    })
}

/// `notifyCredentialDeleted`: records that the wallet dropped its copy (a repeat is accepted).
pub async fn delete(
    s: &Services,
    device: &DeviceReferenceId,
    id: &WalletCredentialId,
) -> Result<(), WalletError> {
    copy_of_device(s, device, id).await?;
    let mut tx = s.store.begin().await?;
    change_copy(&mut tx, id, Event::Delete, None).await?;
    tx.commit().await?;
    Ok(())
}
