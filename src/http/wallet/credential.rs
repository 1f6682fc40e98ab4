//! Credentials on devices (spec/wallet-api.md §4.9–§4.12): `provisionCredential` delivers the
//! record's current version to a device, `provisionMobileSecurityObjects` certifies the device's
//! auth keys with MSOs, `getCredentialStatus` tells Google where a copy stands, and
//! `notifyCredentialDeleted` records that a wallet dropped its copy.
//!
//! Each call is safe to repeat (Google changes requestId on retries): state is keyed on the
//! credentialId and version, and every write is a compare-and-set on what was read
//! (domain::wallet_credential holds the rules).

use std::time::SystemTime;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use p256::ecdsa::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::crypto::{
    answer, decode_field, device_encryption_key, identity_key, internal, proof_refusal, refuse,
    seal_for_device, unavailable,
};
use super::device::check_device_reference_id;
use super::request::{HasMetadata, RequestMetadata, ResponseMetadata, WalletRequest};
use crate::domain::credential::{CredentialRecord, CredentialStatus};
use crate::domain::mso_validity::{self, NoValidity};
use crate::domain::proofing::ProofingStatus;
use crate::domain::wallet_credential::{self as lifecycle, CopyStatus, Event, Record};
use crate::error::{ErrorResponse, WalletError, WalletErrorKind as K};
use crate::http::AppState;
use crate::mdoc::android;
use crate::mdoc::doctype::ElementValues;
use crate::mdoc::issue::{self, DocumentSigner, Validity};
use crate::mdoc::mso::cose_key;
use crate::protocol::wallet::{
    self as wire, AuthKey, Credential, DeviceEncryptionKey, MobileSecurityObject,
    ProofOfProvisioning, UserActionRequired,
};
use crate::store::{CopyChange, NewMsoIssuance, WalletCopy};

/// Longest credentialId accepted ([I]; Google's are UUIDs).
const MAX_CREDENTIAL_ID: usize = 256;

/// Request of `provisionCredential`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionCredentialRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    credential_id: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    proofing_id: String,
    /// Absent only in Google's sandbox onboarding (plaintext answer, if allowed).
    #[serde(default)]
    device_encryption_key: Option<DeviceEncryptionKey>,
}

/// Response of `provisionCredential`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionCredentialResponse {
    response_metadata: ResponseMetadata,
    credential: Credential,
    credential_version_id: String,
}

/// Request of `provisionMobileSecurityObjects`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionMsosRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    credential_id: String,
    /// 1 to `wallet.max_auth_keys` (default 64) certificates.
    #[schema(min_items = 1, max_items = 64)]
    auth_keys: Vec<AuthKey>,
    /// Only on the first call after (re)provisioning; absent on refreshes.
    #[serde(default)]
    proof_of_provisioning: Option<ProofOfProvisioning>,
    #[serde(default)]
    device_encryption_key: Option<DeviceEncryptionKey>,
    credential_version_id: String,
}

/// Response of `provisionMobileSecurityObjects`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionMsosResponse {
    response_metadata: ResponseMetadata,
    mobile_security_objects: Vec<MobileSecurityObject>,
}

/// Request of `getCredentialStatus` and `notifyCredentialDeleted`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialRequest {
    request_metadata: RequestMetadata,
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    device_reference_id: String,
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    credential_id: String,
}

/// `CredentialStatus`: one status member, and `userActionRequired` when the holder must act.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialStatusBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_action_required: Option<UserActionRequired>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    status: serde_json::Map<String, serde_json::Value>,
}

/// Response of `getCredentialStatus`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetCredentialStatusResponse {
    response_metadata: ResponseMetadata,
    credential_status: CredentialStatusBody,
    credential_version_id: String,
}

/// Response of `notifyCredentialDeleted`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyCredentialDeletedResponse {
    response_metadata: ResponseMetadata,
}

macro_rules! has_metadata {
    ($($t:ty),*) => {$(
        impl HasMetadata for $t {
            fn metadata(&self) -> &RequestMetadata {
                &self.request_metadata
            }
        }
    )*};
}
has_metadata!(
    ProvisionCredentialRequest,
    ProvisionMsosRequest,
    CredentialRequest
);

fn check_credential_id(id: &str) -> Result<(), WalletError> {
    if id.trim().is_empty() || id.len() > MAX_CREDENTIAL_ID || id.chars().any(char::is_control) {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("credentialId must be 1 to {MAX_CREDENTIAL_ID} printable characters"),
        ));
    }
    Ok(())
}

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

async fn record_of(state: &AppState, credential_id: Uuid) -> Result<CredentialRecord, WalletError> {
    state
        .store
        .get_credential(credential_id)
        .await?
        .ok_or_else(|| {
            internal(format!(
                "device copy refers to missing record {credential_id}"
            ))
        })
}

/// The copy `credential_id` of `device`; `invalidIdentifier` when there is none.
async fn copy_of_device(
    state: &AppState,
    device: &str,
    credential_id: &str,
) -> Result<WalletCopy, WalletError> {
    check_credential_id(credential_id)?;
    match state.store.get_wallet_credential(credential_id).await? {
        Some(copy) if copy.device_reference_id == device => Ok(copy),
        _ => Err(no_copy_on_device()),
    }
}

/// The record's current holder data as typed element values.
fn element_values(
    state: &AppState,
    record: &CredentialRecord,
) -> Result<ElementValues, WalletError> {
    state
        .doc_types
        .validate(&record.doc_type, &record.holder_data)
        .map_err(|e| {
            internal(format!(
                "stored holder data of {} no longer validates: {e}",
                record.credential_id
            ))
        })
}

/// Writes `event`'s effect on the copy, re-reading and deciding again if the copy changed
/// between read and write. Returns the copy as written and the record it was decided against.
async fn change_copy(
    state: &AppState,
    wallet_credential_id: &str,
    event: Event,
    pop_sha256: Option<&[u8]>,
) -> Result<(WalletCopy, CredentialRecord), WalletError> {
    for _ in 0..3 {
        let copy = state
            .store
            .get_wallet_credential(wallet_credential_id)
            .await?
            .ok_or_else(|| internal("device copy vanished"))?;
        let record = record_of(state, copy.credential_id).await?;
        let expected = copy.state();
        let next = lifecycle::apply(&expected, &record_state(&record), event).map_err(illegal)?;
        if next == expected {
            return Ok((copy, record));
        }
        let status = lifecycle::status(&next, &record_state(&record)).as_str();
        let change = CopyChange {
            expected,
            next,
            status,
            pop_sha256,
        };
        if state
            .store
            .change_wallet_credential(wallet_credential_id, &change)
            .await?
        {
            let mut written = copy;
            written.provisioned_version_id = next.provisioned;
            written.proven_version_id = next.proven;
            return Ok((written, record));
        }
    }
    // Three lost races in a row: the copy is busy, which is no fault of the caller's.
    Err(WalletError::unavailable(
        format!("device copy {wallet_credential_id} changed under three attempts"),
        "the credential is changing; retry the request",
    ))
}

/// The device key to encrypt to, or `None` for a plaintext answer where that is allowed.
fn encryption_target(
    state: &AppState,
    identity: &VerifyingKey,
    doc_type: &str,
    key: Option<&DeviceEncryptionKey>,
) -> Result<Option<(Vec<u8>, String)>, WalletError> {
    match key {
        Some(key) => Ok(Some((
            device_encryption_key(&state.wallet, identity, doc_type, key)?,
            key.key_id.clone(),
        ))),
        None if state.wallet.settings.allow_plaintext => Ok(None),
        None => Err(refuse(
            K::MissingRequiredField,
            "deviceEncryptionKey is required (plaintext answers are disabled)",
        )),
    }
}

/// `POST /v1/vdc/provisionCredential`
#[utoipa::path(
    post,
    path = "/provisionCredential",
    tag = "wallet",
    request_body = ProvisionCredentialRequest,
    responses(
        (status = 200, description = "The credential's current version, encrypted to the device (the same credentialId again returns the current version)", body = ProvisionCredentialResponse),
        (status = 400, description = "Malformed request", body = ErrorResponse),
        (status = 401, description = "deviceEncryptionKey not signed by the device's identity key (invalidPayloadSignature)", body = ErrorResponse),
        (status = 404, description = "Unregistered device, or a proofing that is unknown, of another device or not accepted (invalidIdentifier)", body = ErrorResponse),
        (status = 409, description = "The credential is revoked or deleted, or the credentialId is bound elsewhere (invalidState)", body = ErrorResponse),
    )
)]
pub async fn provision_credential(
    State(state): State<AppState>,
    request: WalletRequest<ProvisionCredentialRequest>,
) -> Result<Json<ProvisionCredentialResponse>, WalletError> {
    let request_id = request.request_id().to_owned();
    check_device_reference_id(&request, &request.body.device_reference_id)?;
    let (credential, version) = answer(&request_id, provision(&state, &request.body).await)?;
    Ok(Json(ProvisionCredentialResponse {
        response_metadata: ResponseMetadata::answering(&request_id),
        credential,
        credential_version_id: version.to_string(),
    }))
}

async fn provision(
    state: &AppState,
    body: &ProvisionCredentialRequest,
) -> Result<(Credential, Uuid), WalletError> {
    check_credential_id(&body.credential_id)?;
    let device = state.store.get_device(&body.device_reference_id).await?;
    let identity = identity_key(device.as_ref())?;
    let proofing = state
        .store
        .get_proofing(&body.proofing_id)
        .await?
        .filter(|p| p.device_reference_id == body.device_reference_id);
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
    let record = record_of(state, record_id).await?;
    if record.status == CredentialStatus::Revoked {
        return Err(illegal(lifecycle::Illegal::Revoked));
    }
    let target = encryption_target(
        state,
        &identity,
        &record.doc_type,
        body.device_encryption_key.as_ref(),
    )?;
    // Checked before the copy is bound: a device that can never get MSOs (an expired
    // document, no signer) is told now and nothing is written.
    signing_plan(state, &element_values(state, &record)?)?;
    // Bound before the record is read again below, so that an update committed from here on
    // finds this copy and announces itself to Google.
    state
        .store
        .bind_wallet_credential(&body.credential_id, record_id, &body.device_reference_id)
        .await?;
    let copy = state
        .store
        .get_wallet_credential(&body.credential_id)
        .await?
        .ok_or_else(|| internal("device copy vanished"))?;
    if copy.device_reference_id != body.device_reference_id || copy.credential_id != record_id {
        return Err(refuse(
            K::InvalidState,
            "this credentialId belongs to another device or credential",
        ));
    }
    let (_, record) = change_copy(state, &body.credential_id, Event::Provision, None).await?;
    let payload = android::credential_payload(&element_values(state, &record)?);
    let credential = match target {
        Some((key, key_id)) => Credential {
            encrypted_data: Some(seal_for_device(
                &state.wallet,
                &key,
                &key_id,
                &state.wallet.settings.hpke.credential,
                &payload,
            )?),
            unencrypted_value: None,
        },
        None => Credential {
            encrypted_data: None,
            unencrypted_value: Some(wire::encode(&payload)),
        },
    };
    Ok((credential, record.current_version_id))
}

/// `POST /v1/vdc/provisionMobileSecurityObjects`
#[utoipa::path(
    post,
    path = "/provisionMobileSecurityObjects",
    tag = "wallet",
    request_body = ProvisionMsosRequest,
    responses(
        (status = 200, description = "One MSO (Android static auth data) per auth key, each encrypted to the device", body = ProvisionMsosResponse),
        (status = 400, description = "Malformed request, auth keys or proofs (invalidFieldValue)", body = ErrorResponse),
        (status = 401, description = "A proof or auth key not signed by the device's identity key (invalidPayloadSignature)", body = ErrorResponse),
        (status = 404, description = "Unregistered device, or no such credential on it (invalidIdentifier)", body = ErrorResponse),
        (status = 409, description = "Stale credentialVersionId, revoked or deleted credential, refresh before any proof of provisioning (invalidState)", body = ErrorResponse),
    )
)]
pub async fn provision_mobile_security_objects(
    State(state): State<AppState>,
    request: WalletRequest<ProvisionMsosRequest>,
) -> Result<Json<ProvisionMsosResponse>, WalletError> {
    let request_id = request.request_id().to_owned();
    check_device_reference_id(&request, &request.body.device_reference_id)?;
    let mobile_security_objects = answer(&request_id, certify(&state, &request.body).await)?;
    Ok(Json(ProvisionMsosResponse {
        response_metadata: ResponseMetadata::answering(&request_id),
        mobile_security_objects,
    }))
}

async fn certify(
    state: &AppState,
    body: &ProvisionMsosRequest,
) -> Result<Vec<MobileSecurityObject>, WalletError> {
    let device = state.store.get_device(&body.device_reference_id).await?;
    let identity = identity_key(device.as_ref())?;
    let copy = copy_of_device(state, &body.device_reference_id, &body.credential_id).await?;
    let record = record_of(state, copy.credential_id).await?;
    // An unparsable version id cannot be the current one.
    let version = Uuid::parse_str(&body.credential_version_id).unwrap_or(Uuid::nil());
    let with_proof = body.proof_of_provisioning.is_some();
    let event = Event::IssueMsos {
        version,
        with_proof,
    };
    lifecycle::apply(&copy.state(), &record_state(&record), event).map_err(illegal)?;
    let max = state.wallet.settings.max_auth_keys;
    if body.auth_keys.is_empty() || body.auth_keys.len() > max {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("authKeys must hold 1 to {max} certificates"),
        ));
    }
    let target = encryption_target(
        state,
        &identity,
        &record.doc_type,
        body.device_encryption_key.as_ref(),
    )?;
    let values = element_values(state, &record)?;
    // Everything that can refuse the call is decided before anything is written: the signer and
    // validity, the proof, every auth key.
    let signing = signing_plan(state, &values)?;
    let pop_sha256: Vec<u8> = match &body.proof_of_provisioning {
        Some(proof) => {
            let bytes = decode_field("proofOfProvisioning.signature", &proof.signature)?;
            let provisioned = android::verify_provisioning(&bytes, &identity, &values)
                .map_err(|e| proof_refusal("proofOfProvisioning", e))?;
            if provisioned.test_credential && !state.wallet.settings.accept_test_credentials {
                return Err(refuse(
                    K::InvalidFieldValue,
                    "proofOfProvisioning: test credentials are not accepted",
                ));
            }
            provisioned.sha256.to_vec()
        }
        None => copy
            .pop_sha256
            .clone()
            .ok_or_else(|| illegal(lifecycle::Illegal::NoProof))?,
    };
    let now = SystemTime::now();
    let skew = state.wallet.settings.clock_skew;
    let mut auth_keys = Vec::with_capacity(body.auth_keys.len());
    for (index, auth_key) in body.auth_keys.iter().enumerate() {
        let what = format!("authKeys[{index}].certificate");
        let der = decode_field(&what, &auth_key.certificate)?;
        let key =
            android::verify_auth_key_certificate(&der, &identity, Some(&pop_sha256), now, skew)
                .map_err(|e| proof_refusal(&what, e))?;
        auth_keys.push((der, key));
    }
    if with_proof {
        let (written, _) =
            change_copy(state, &body.credential_id, event, Some(&pop_sha256)).await?;
        if written.proven_version_id != Some(version) {
            return Err(illegal(lifecycle::Illegal::StaleVersion));
        }
    }
    issue_msos(
        state,
        &body.device_reference_id,
        &record,
        values,
        auth_keys,
        target,
        signing,
    )
    .await
}

/// The document signer and validity of the MSOs about to be issued.
struct SigningPlan {
    validity: Validity,
}

/// Decides with which validity MSOs for `values` can be signed now. A document that expired is
/// `invalidState` (final for this version); a missing or expired DS certificate, or a missing
/// identity key, is the retryable 503: Google tries again once the operator has rotated.
fn signing_plan(state: &AppState, values: &ElementValues) -> Result<SigningPlan, WalletError> {
    let wallet = &state.wallet;
    if wallet
        .keys
        .as_ref()
        .and_then(|k| k.active_identity())
        .is_none()
    {
        return Err(unavailable(
            "no Wallet identity key: run `brevet keys init`",
        ));
    }
    let ds = wallet
        .document_signer
        .as_ref()
        .ok_or_else(|| unavailable("no document signer key: run `brevet keys init`"))?;
    let ds_validity = &ds.certificate.tbs_certificate.validity;
    let decided = mso_validity::decide(
        Utc::now(),
        &wallet.settings.mso_policy(&values.doc_type),
        ds_validity.not_before.to_system_time().into(),
        ds_validity.not_after.to_system_time().into(),
        state.doc_types.expiry(values),
    );
    match decided {
        Ok(v) => Ok(SigningPlan {
            validity: Validity {
                signed: v.signed,
                valid_from: v.valid_from,
                valid_until: v.valid_until,
                expected_update: v.expected_update,
            },
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

async fn issue_msos(
    state: &AppState,
    device: &str,
    record: &CredentialRecord,
    values: ElementValues,
    auth_keys: Vec<(Vec<u8>, VerifyingKey)>,
    target: Option<(Vec<u8>, String)>,
    plan: SigningPlan,
) -> Result<Vec<MobileSecurityObject>, WalletError> {
    let wallet = state.wallet.clone();
    let validity = plan.validity;
    // A call's signing and sealing (about 2 ms for 10 auth keys) runs on the blocking pool, so
    // that cheap requests are not queued behind it on the async workers.
    let issued = tokio::task::spawn_blocking(move || {
        build_msos(&wallet, &values, &auth_keys, target.as_ref(), validity)
    })
    .await
    .map_err(|e| internal(format!("MSO issuance task: {e}")))??;
    let rows: Vec<NewMsoIssuance<'_>> = issued
        .auth_key_digests
        .iter()
        .map(|digest| NewMsoIssuance {
            credential_version_id: record.current_version_id,
            device_reference_id: device,
            auth_key_sha256: *digest,
            ds_key_id: &issued.ds_key_id,
            valid_from: validity.valid_from,
            valid_until: validity.valid_until,
        })
        .collect();
    // Recorded before they are handed out: an MSO the log does not know is never issued.
    state.store.record_mso_issuances(&rows).await?;
    Ok(issued.objects)
}

fn build_msos(
    wallet: &super::WalletContext,
    values: &ElementValues,
    auth_keys: &[(Vec<u8>, VerifyingKey)],
    target: Option<&(Vec<u8>, String)>,
    validity: Validity,
) -> Result<Issued, WalletError> {
    let ds = wallet
        .document_signer
        .as_ref()
        .ok_or_else(|| unavailable("no document signer key: run `brevet keys init`"))?;
    let signer = DocumentSigner {
        signer: ds.signer.as_ref(),
        certificate: &ds.certificate,
    };
    let mut objects = Vec::with_capacity(auth_keys.len());
    let mut auth_key_digests = Vec::with_capacity(auth_keys.len());
    for (der, key) in auth_keys {
        // A signer that fails (an HSM busy or unreachable) is a passing condition.
        let mso = issue::issue(values, key, validity, &signer)
            .map_err(|e| unavailable(format!("MSO issuance: {e}")))?;
        let static_auth_data = crate::mdoc::cbor::to_vec(&mso.static_auth_data());
        auth_key_digests.push(Sha256::digest(crate::mdoc::cbor::to_vec(&cose_key(key))).into());
        let (encrypted_data, unencrypted_value) = match target {
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
    Ok(Issued {
        objects,
        auth_key_digests,
        ds_key_id: format!("{:04}", ds.number),
    })
}

/// `POST /v1/vdc/getCredentialStatus`
#[utoipa::path(
    post,
    path = "/getCredentialStatus",
    tag = "wallet",
    request_body = CredentialRequest,
    responses(
        (status = 200, description = "The copy's status and the credential's current version", body = GetCredentialStatusResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
        (status = 404, description = "No such credential on this device (invalidIdentifier)", body = ErrorResponse),
    )
)]
pub async fn get_credential_status(
    State(state): State<AppState>,
    request: WalletRequest<CredentialRequest>,
) -> Result<Json<GetCredentialStatusResponse>, WalletError> {
    let request_id = request.request_id().to_owned();
    check_device_reference_id(&request, &request.body.device_reference_id)?;
    let body = &request.body;
    let found = answer(
        &request_id,
        async {
            check_credential_id(&body.credential_id)?;
            match state
                .store
                .get_wallet_credential_status(&body.credential_id)
                .await?
            {
                Some(found) if found.copy.device_reference_id == body.device_reference_id => {
                    Ok(found)
                }
                _ => Err(no_copy_on_device()),
            }
        }
        .await,
    )?;
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
    let mut member = serde_json::Map::new();
    member.insert(status.as_str().to_owned(), serde_json::json!({}));
    Ok(Json(GetCredentialStatusResponse {
        response_metadata: ResponseMetadata::answering(&request_id),
        credential_status: CredentialStatusBody {
            user_action_required,
            status: member,
        },
        credential_version_id: found.current_version_id.to_string(),
    }))
}

/// `POST /v1/vdc/notifyCredentialDeleted`
#[utoipa::path(
    post,
    path = "/notifyCredentialDeleted",
    tag = "wallet",
    request_body = CredentialRequest,
    responses(
        (status = 200, description = "The deletion is recorded (also when it already was)", body = NotifyCredentialDeletedResponse),
        (status = 400, description = "Malformed request or unsupported API version", body = ErrorResponse),
        (status = 404, description = "No such credential on this device (invalidIdentifier)", body = ErrorResponse),
    )
)]
pub async fn notify_credential_deleted(
    State(state): State<AppState>,
    request: WalletRequest<CredentialRequest>,
) -> Result<Json<NotifyCredentialDeletedResponse>, WalletError> {
    let request_id = request.request_id().to_owned();
    check_device_reference_id(&request, &request.body.device_reference_id)?;
    let body = &request.body;
    answer(
        &request_id,
        async {
            copy_of_device(&state, &body.device_reference_id, &body.credential_id).await?;
            change_copy(&state, &body.credential_id, Event::Delete, None).await?;
            Ok(())
        }
        .await,
    )?;
    Ok(Json(NotifyCredentialDeletedResponse {
        response_metadata: ResponseMetadata::answering(&request_id),
    }))
}
