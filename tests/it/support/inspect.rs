//! Reads of the store's rows for assertions, by the names tests use, over the store's primitives
//! (each one query on the pool). Writes go through `brevet::service` or the primitives directly,
//! so that a test shows which use case it exercises.

use brevet::domain::credential::{CredentialRecord, CredentialVersion};
use brevet::domain::proofing::{ProofingRecord, ProofingStatus};
use brevet::protocol::ids::{DeviceReferenceId, ProofingId, WalletCredentialId};
use brevet::store::{
    audit, cert_processes, copies, credentials, devices, outbox, proofings, schema, tokens,
    AdminToken, AuditEntry, CertProcess, CertState, CredentialFilter, Device, Exec, MsoIssuance,
    OutboxJob, Store, StoreError, WalletCopy,
};
use uuid::Uuid;

/// Row reads for assertions.
#[allow(async_fn_in_trait)]
pub trait Inspect {
    /// Outbox jobs, newest first, optionally in one state (`pending`, `done`, `dead`).
    async fn list_outbox(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxJob>, StoreError>;
    /// Audit entries, newest first.
    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    /// Admin tokens, oldest first.
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError>;
    /// One device.
    async fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError>;
    /// One device copy.
    async fn get_wallet_credential(&self, id: &str) -> Result<Option<WalletCopy>, StoreError>;
    /// A record's device copies.
    async fn list_wallet_credentials(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<WalletCopy>, StoreError>;
    /// One proofing.
    async fn get_proofing(&self, id: &str) -> Result<Option<ProofingRecord>, StoreError>;
    /// Proofings, oldest first.
    async fn list_proofings(
        &self,
        status: Option<ProofingStatus>,
        limit: u32,
    ) -> Result<Vec<ProofingRecord>, StoreError>;
    /// One record.
    async fn get_credential(&self, id: Uuid) -> Result<Option<CredentialRecord>, StoreError>;
    /// Records, filtered.
    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
    ) -> Result<Vec<CredentialRecord>, StoreError>;
    /// A record's versions, oldest first.
    async fn list_versions(&self, id: Uuid) -> Result<Vec<CredentialVersion>, StoreError>;
    /// MSOs issued for a record, newest first.
    async fn list_mso_issuances(
        &self,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<MsoIssuance>, StoreError>;
    /// One certificate-provisioning process.
    async fn get_cert_process(&self, name: &str) -> Result<Option<CertProcess>, StoreError>;
    /// Certificate-provisioning processes, newest first.
    async fn list_cert_processes(
        &self,
        state: Option<CertState>,
        limit: u32,
    ) -> Result<Vec<CertProcess>, StoreError>;
    /// The tables the migrations created.
    async fn table_names(&self) -> Result<Vec<String>, StoreError>;
    /// Rows of `table` whose text `column` is `value` (for values no typed id accepts).
    async fn count_where(&self, table: &str, column: &str, value: &str) -> i64;
}

fn device(id: &str) -> DeviceReferenceId {
    DeviceReferenceId::parse(id).expect("a valid deviceReferenceId")
}

fn copy(id: &str) -> WalletCredentialId {
    WalletCredentialId::parse(id).expect("a valid credentialId")
}

fn proofing(id: &str) -> ProofingId {
    ProofingId::parse(id).expect("a valid proofingId")
}

impl Inspect for Store {
    async fn list_outbox(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxJob>, StoreError> {
        let state = state.map(|s| s.parse().expect("an outbox state"));
        outbox::list(&mut self.db(), state, limit).await
    }
    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        audit::list(&mut self.db(), limit).await
    }
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        tokens::list(&mut self.db()).await
    }
    async fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        devices::get(&mut self.db(), &device(id)).await
    }
    async fn get_wallet_credential(&self, id: &str) -> Result<Option<WalletCopy>, StoreError> {
        copies::get(&mut self.db(), &copy(id)).await
    }
    async fn list_wallet_credentials(
        &self,
        credential_id: Uuid,
    ) -> Result<Vec<WalletCopy>, StoreError> {
        copies::list(&mut self.db(), credential_id).await
    }
    async fn get_proofing(&self, id: &str) -> Result<Option<ProofingRecord>, StoreError> {
        proofings::get(&mut self.db(), &proofing(id)).await
    }
    async fn list_proofings(
        &self,
        status: Option<ProofingStatus>,
        limit: u32,
    ) -> Result<Vec<ProofingRecord>, StoreError> {
        proofings::list(&mut self.db(), status, limit).await
    }
    async fn get_credential(&self, id: Uuid) -> Result<Option<CredentialRecord>, StoreError> {
        credentials::get(&mut self.db(), id).await
    }
    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        credentials::list(&mut self.db(), filter).await
    }
    async fn list_versions(&self, id: Uuid) -> Result<Vec<CredentialVersion>, StoreError> {
        credentials::list_versions(&mut self.db(), id).await
    }
    async fn list_mso_issuances(
        &self,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<MsoIssuance>, StoreError> {
        copies::list_msos(&mut self.db(), id, limit).await
    }
    async fn get_cert_process(&self, name: &str) -> Result<Option<CertProcess>, StoreError> {
        cert_processes::get(&mut self.db(), name).await
    }
    async fn list_cert_processes(
        &self,
        state: Option<CertState>,
        limit: u32,
    ) -> Result<Vec<CertProcess>, StoreError> {
        cert_processes::list(&mut self.db(), state, limit).await
    }
    async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        schema::table_names(&mut self.db()).await
    }
    async fn count_where(&self, table: &str, column: &str, value: &str) -> i64 {
        let text = format!("select count(*) as n from {table} where {column} = $1");
        let row = self
            .db()
            .fetch_one(brevet::store::sql::query(text).bind(value))
            .await
            .unwrap();
        row.int64("n").unwrap()
    }
}

/// Binds a device copy (what provisionCredential writes first), for tests that need copies
/// without a device.
pub async fn bind_copy(store: &Store, copy_id: &str, credential_id: Uuid, device_id: &str) {
    copies::bind(
        &mut store.db(),
        &copy(copy_id),
        credential_id,
        &device(device_id),
    )
    .await
    .expect("bind a device copy");
}

/// Records a pending proofing (what proofUser writes), for tests that need one without a device.
pub async fn insert_proofing(
    store: &Store,
    id: &str,
    device_id: &str,
    evidence: &serde_json::Value,
) {
    proofings::insert(&mut store.db(), &proofing(id), &device(device_id), evidence)
        .await
        .expect("record a proofing");
}
