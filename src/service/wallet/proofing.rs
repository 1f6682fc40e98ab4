//! Proofing from the Wallet's side (spec/wallet-api.md §4.6–§4.8): `proofUser` records evidence
//! for staff to review, `getProofingStatus` reports the decision, `cancelProofing` withdraws it.
//!
//! Evidence encrypted to Brevet's hybrid key is opened and its device signature checked before it
//! is stored; evidence of a kind Brevet does not know is stored as received (spec §4.6). A
//! `preAuthorizedCode` staff handed out accepts the proofing at once for the code's record.

use p256::ecdsa::VerifyingKey;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::context::WalletContext;
use super::e2ee::open_from_device;
use super::{cpu, refuse, registered_key};
use crate::domain::proofing::{self, ProofingRecord, ProofingStatus, Review};
use crate::error::{WalletError, WalletErrorKind as K};
use crate::protocol::ids::{DeviceReferenceId, ProofingId};
use crate::protocol::wallet::{self as wire, EncryptedData};
use crate::service::proofings::{review, ReviewError};
use crate::service::Services;
use crate::store::{codes, proofings, ProofingInsert, Provenance};

/// Most evidence items in one proofUser ([I]).
pub const MAX_EVIDENCE: usize = 16;

/// Records a proofing with its evidence (opened and checked); a repeat of the same proofingId
/// from the same device changes nothing.
pub async fn record(
    s: &Services,
    device: &DeviceReferenceId,
    id: &ProofingId,
    evidence: &[Value],
    reverification_context: Option<&Value>,
) -> Result<(), WalletError> {
    let identity = registered_key(&s.store, device).await?;
    if evidence.is_empty() || evidence.len() > MAX_EVIDENCE {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("evidence must hold 1 to {MAX_EVIDENCE} items"),
        ));
    }
    let (wallet, items) = (s.wallet.clone(), evidence.to_vec());
    let mut stored = cpu(move || {
        items
            .iter()
            .enumerate()
            .map(|(index, item)| open_evidence(&wallet, &identity, index, item))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    if let Some(context) = reverification_context {
        stored.push(serde_json::json!({ "reverificationContext": context }));
    }
    match proofings::insert(&mut s.store.db(), id, device, &Value::Array(stored)).await? {
        ProofingInsert::Created(_) | ProofingInsert::Existing(_) => {}
        ProofingInsert::OtherDevice => {
            return Err(refuse(
                K::InvalidState,
                "this proofingId belongs to another deviceReferenceId",
            ))
        }
    }
    redeem_code(s, id, evidence).await
}

/// A `preAuthorizedCode` accepts the proofing for the code's record (issuer-initiated
/// provisioning). An unknown, used or expired code, or one of a revoked record, leaves the
/// proofing pending for staff, who see the evidence; the code itself is never logged.
async fn redeem_code(s: &Services, id: &ProofingId, evidence: &[Value]) -> Result<(), WalletError> {
    let Some(code) = evidence
        .iter()
        .find_map(|item| item.get(wire::PRE_AUTHORIZED_CODE)?.as_str())
    else {
        return Ok(());
    };
    let hash: [u8; 32] = Sha256::digest(code.as_bytes()).into();
    let Some(record_id) = codes::redeem(&mut s.store.db(), &hash, id, s.clock.now()).await? else {
        tracing::info!(proofing_id = %id, "pre-authorized code not valid; the proofing waits for review");
        return Ok(());
    };
    match review(
        &s.store,
        &s.clock,
        id,
        &Review::Approve,
        Some(record_id),
        Provenance::SYSTEM,
    )
    .await
    {
        Ok(_) => {
            tracing::info!(proofing_id = %id, credential_id = %record_id, "proofing accepted with a pre-authorized code");
            Ok(())
        }
        Err(ReviewError::CredentialNotActive | ReviewError::NoSuchCredential) => {
            tracing::info!(proofing_id = %id, "pre-authorized code of a revoked credential; the proofing waits for review");
            Ok(())
        }
        // A retry of a proofUser that was already accepted.
        Err(ReviewError::Illegal(_)) => Ok(()),
        Err(ReviewError::NotFound) => Err(super::internal("the proofing just recorded is gone")),
        Err(ReviewError::Store(e)) => Err(e.into()),
    }
}

/// One evidence item as stored: encrypted members opened (plaintext in base64), a code as its
/// hash, others as sent.
fn open_evidence(
    wallet: &WalletContext,
    identity: &VerifyingKey,
    index: usize,
    item: &Value,
) -> Result<Value, WalletError> {
    let member = match item.as_object() {
        Some(map) if map.len() == 1 => map.iter().next(),
        _ => None,
    };
    let Some((name, value)) = member else {
        return Err(refuse(
            K::InvalidFieldValue,
            format!("evidence[{index}] must be an object with exactly one member"),
        ));
    };
    if name == wire::PRE_AUTHORIZED_CODE {
        let Some(code) = value.as_str() else {
            return Err(refuse(
                K::InvalidFieldValue,
                format!("evidence[{index}].preAuthorizedCode must be a string"),
            ));
        };
        // Stored as its hash: a code is a bearer secret until it is used.
        return Ok(
            serde_json::json!({ name: { "sha256": hex::encode(Sha256::digest(code.as_bytes())) } }),
        );
    }
    let Some(context) = wire::evidence_context(name) else {
        return Ok(item.clone());
    };
    let data: EncryptedData = serde_json::from_value(value.clone()).map_err(|e| {
        refuse(
            K::InvalidFieldValue,
            format!("evidence[{index}].{name} is not EncryptedData: {e}"),
        )
    })?;
    let plaintext = open_from_device(
        wallet,
        identity,
        &format!("evidence[{index}].{name}"),
        context,
        &data,
    )?;
    let mut opened = Map::new();
    opened.insert(
        name.clone(),
        serde_json::json!({ "decrypted": wire::encode(&plaintext), "recipientKeyId": data.recipient_key_id }),
    );
    Ok(Value::Object(opened))
}

/// The proofing `id` of `device`; `invalidIdentifier` when there is none.
pub async fn of_device(
    s: &Services,
    device: &DeviceReferenceId,
    id: &ProofingId,
) -> Result<ProofingRecord, WalletError> {
    match proofings::get(&mut s.store.db(), id).await? {
        Some(p) if p.device_reference_id == device.as_str() => Ok(p),
        _ => Err(refuse(
            K::InvalidIdentifier,
            "no proofing with this proofingId for this deviceReferenceId",
        )),
    }
}

/// Cancels the proofing (a repeat is accepted); a staff decision landing meanwhile is decided
/// on again.
pub async fn cancel(
    s: &Services,
    device: &DeviceReferenceId,
    id: &ProofingId,
) -> Result<(), WalletError> {
    for _ in 0..3 {
        let current = of_device(s, device, id).await?;
        let next =
            proofing::cancel(current.status).map_err(|e| refuse(K::InvalidState, e.to_string()))?;
        if current.status == next
            || proofings::set_status(
                &mut s.store.db(),
                id,
                current.status,
                ProofingStatus::Canceled,
            )
            .await?
        {
            return Ok(());
        }
    }
    Err(refuse(
        K::InvalidState,
        "the proofing is changing; try again",
    ))
}
