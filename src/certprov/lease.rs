//! A worker's hold on the one process it is driving. The lease in the store is renewed in the
//! background while a step runs (a step may make several slow calls), and confirmed with the
//! store immediately before every call that changes something outside: claim, signData, the
//! CA's issue, upload and setFailure. A worker that cannot confirm its lease makes no such call
//! and leaves the process to whoever holds it now.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::store::{cert_processes, SharedStore};

/// The lease on one process, renewed until dropped.
pub struct Lease {
    store: SharedStore,
    process: Uuid,
    worker: String,
    length: Duration,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Starts renewing `worker`'s lease on `process` every third of `length`.
    pub fn hold(store: SharedStore, process: Uuid, worker: String, length: Duration) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat(
            store.clone(),
            process,
            worker.clone(),
            length,
            lost.clone(),
        ));
        Self {
            store,
            process,
            worker,
            length,
            lost,
            heartbeat,
        }
    }

    /// Whether the lease is still this worker's, extended to a full length from now. False when
    /// it was lost or cannot be confirmed (the store is unreachable): no side effect then.
    pub async fn confirm(&self) -> bool {
        if self.lost.load(Ordering::SeqCst) {
            return false;
        }
        match cert_processes::renew(
            &mut self.store.db(),
            self.process,
            &self.worker,
            self.length,
        )
        .await
        {
            Ok(true) => true,
            Ok(false) => {
                self.lost.store(true, Ordering::SeqCst);
                false
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot confirm a certificate provisioning lease");
                false
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn heartbeat(
    store: SharedStore,
    process: Uuid,
    worker: String,
    length: Duration,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(length / 3).await;
        match cert_processes::renew(&mut store.db(), process, &worker, length).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(worker = %worker, "certificate provisioning lease lost mid-step");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // The next renewal or the confirmation before a side effect decides.
            Err(error) => {
                tracing::warn!(error = %error, "cannot renew a certificate provisioning lease")
            }
        }
    }
}
