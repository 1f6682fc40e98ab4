//! Use cases: one function per thing Brevet does for a caller (staff create a record, Google
//! provisions a copy, a worker expires challenges). Each opens the transaction, applies the
//! domain rules (`crate::domain`), asks for cryptography, writes the rows, the audit entry and
//! the outbox jobs through the store's primitives (`crate::store`), and commits. HTTP handlers
//! parse a request, call one of these and render the result; workers call them in a loop.
//!
//! CPU-heavy cryptography (attestation chains, HPKE, signatures, MSOs) runs through [`cpu`], on
//! tokio's blocking pool, so that one expensive call never stalls the requests sharing its
//! runtime thread.

pub mod bulk_updates;
pub mod credentials;
pub mod device_certs;
pub mod keys;
pub mod outbox;
pub mod proofings;
pub mod status_lists;
pub mod tokens;
pub mod wallet;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::mdoc::doctype::DocTypes;
use crate::store::SharedStore;
pub use wallet::WalletContext;

/// What the use cases need: the store, the clock, the doc types and the Wallet's keys and
/// settings. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The store.
    pub store: SharedStore,
    /// The application clock.
    pub clock: Clock,
    /// The doc types holder data is validated against.
    pub doc_types: Arc<DocTypes>,
    /// Keys, attestation policy and settings of the Wallet API.
    pub wallet: Arc<WalletContext>,
    /// How long a device registration nonce stays usable.
    pub nonce_ttl: Duration,
    /// Told when staff start a bulk update here, so that this replica's bulk-update worker starts
    /// on it at once rather than at its next look.
    pub bulk_update_started: Arc<tokio::sync::Notify>,
    /// The pace of a bulk update whose request names none (records per second; 0: no limit).
    pub bulk_records_per_sec: u32,
}

/// A blocking task that did not finish (it panicked or the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("CPU task failed: {0}")]
pub struct TaskFailed(String);

/// Runs CPU-heavy `work` on the blocking pool and waits for it.
pub async fn cpu<T, F>(work: F) -> Result<T, TaskFailed>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TaskFailed(e.to_string()))
}
