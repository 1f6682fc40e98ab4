//! Wallet devices: registration nonces and identity keys.

use chrono::{DateTime, Utc};

use super::sql::{query, Exec};
use super::StoreError;
use crate::domain::device::DeviceStatus;
use crate::protocol::ids::DeviceReferenceId;

/// A Wallet device (one per deviceReferenceId) as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Google's deviceReferenceId.
    pub device_reference_id: String,
    /// Where its registration stands.
    pub status: DeviceStatus,
    /// The outstanding registration nonce, if any.
    pub registration_nonce: Option<Vec<u8>>,
    /// When it stops being usable.
    pub nonce_expires_at: Option<DateTime<Utc>>,
    /// DER SubjectPublicKeyInfo of the registered identity key.
    pub identity_public_key: Option<Vec<u8>>,
}

/// Stores `nonce` as the device's outstanding registration nonce, replacing any earlier one;
/// creates the device on first contact.
pub async fn issue_nonce(
    ex: &mut impl Exec,
    device: &DeviceReferenceId,
    nonce: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    ex.execute(
        query(
            "insert into devices (device_reference_id, status, registration_nonce, nonce_expires_at)
             values ($1, $2, $3, $4)
             on conflict (device_reference_id) do update
             set registration_nonce = excluded.registration_nonce, nonce_expires_at = excluded.nonce_expires_at, updated_at = %now%",
        )
        .bind(device.as_str())
        .bind(DeviceStatus::NonceIssued.as_str())
        .bind(nonce)
        .bind(expires_at),
    )
    .await?;
    Ok(())
}

/// One device.
pub async fn get(
    ex: &mut impl Exec,
    device: &DeviceReferenceId,
) -> Result<Option<Device>, StoreError> {
    let row = ex
        .fetch_optional(
            query(
                "select device_reference_id, status, registration_nonce, nonce_expires_at, identity_public_key
                 from devices where device_reference_id = $1",
            )
            .bind(device.as_str()),
        )
        .await?;
    row.map(|r| {
        let status = r.text("status")?;
        Ok(Device {
            device_reference_id: r.text("device_reference_id")?,
            status: DeviceStatus::parse(&status).ok_or_else(|| {
                StoreError::Corrupt(format!("devices.status holds unknown value {status:?}"))
            })?,
            registration_nonce: r.opt_bytes("registration_nonce")?,
            nonce_expires_at: r.opt_time("nonce_expires_at")?,
            identity_public_key: r.opt_bytes("identity_public_key")?,
        })
    })
    .transpose()
}

/// Registers the identity key of a device whose outstanding nonce is `nonce`, consuming the
/// nonce. False when that nonce is no longer outstanding (used or replaced meanwhile).
pub async fn register(
    ex: &mut impl Exec,
    device: &DeviceReferenceId,
    nonce: &[u8],
    identity_public_key: &[u8],
    attestation_chain: &serde_json::Value,
) -> Result<bool, StoreError> {
    let done = ex
        .execute(
            query(
                "update devices
                 set status = $5, identity_public_key = $1, attestation_chain = $2, registered_at = %now%,
                     registration_nonce = null, nonce_expires_at = null, updated_at = %now%
                 where device_reference_id = $3 and registration_nonce = $4 and identity_public_key is null",
            )
            .bind(identity_public_key)
            .bind(attestation_chain)
            .bind(device.as_str())
            .bind(nonce)
            .bind(DeviceStatus::Registered.as_str()),
        )
        .await?;
    Ok(done == 1)
}
