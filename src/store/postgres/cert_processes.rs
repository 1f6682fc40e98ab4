//! Certificate-provisioning processes on Postgres: claimed with `for update skip locked` under a
//! lease, like outbox jobs.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use uuid::Uuid;

use super::outbox::interval;
use super::PgStore;
use crate::store::cert_processes::{CertProcess, CertProcessStore, CertState, Hold, COLUMNS};
use crate::store::StoreError;

#[derive(FromRow)]
struct Row {
    cert_process_id: Uuid,
    name: String,
    customer_id: String,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    process: Option<Json<serde_json::Value>>,
    sign_data: Option<Vec<u8>>,
    sign_requested_at: Option<DateTime<Utc>>,
    operation_name: Option<String>,
    signature: Option<Vec<u8>>,
    certificate_pem: Option<String>,
    certificate_serial: Option<String>,
    failure_message: Option<String>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for CertProcess {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(CertProcess {
            cert_process_id: r.cert_process_id,
            name: r.name,
            customer_id: r.customer_id,
            state: CertState::parse(&r.state)?,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            process: r.process.map(|p| p.0),
            sign_data: r.sign_data,
            sign_requested_at: r.sign_requested_at,
            operation_name: r.operation_name,
            signature: r.signature,
            certificate_pem: r.certificate_pem,
            certificate_serial: r.certificate_serial,
            failure_message: r.failure_message,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[async_trait]
impl CertProcessStore for PgStore {
    async fn receive_cert_process(
        &self,
        name: &str,
        customer_id: &str,
    ) -> Result<CertProcess, StoreError> {
        sqlx::query(
            "insert into cert_processes (cert_process_id, name, customer_id, state) values ($1, $2, $3, 'received')
             on conflict (name) do nothing",
        )
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(customer_id)
        .execute(self.pool())
        .await?;
        self.get_cert_process(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("cert process {name} vanished")))
    }

    async fn claim_cert_process(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<CertProcess>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "update cert_processes set lease_owner = $1, lease_expires_at = now() + $2, updated_at = now()
             where cert_process_id = (
                 select cert_process_id from cert_processes
                 where state not in ('done', 'failed', 'skipped') and next_attempt_at <= now()
                   and (lease_expires_at is null or lease_expires_at < now())
                 order by next_attempt_at, cert_process_id
                 for update skip locked
                 limit 1)
             returning {COLUMNS}"
        ))
        .bind(worker)
        .bind(interval(lease))
        .fetch_optional(self.pool())
        .await?;
        row.map(CertProcess::try_from).transpose()
    }

    async fn save_cert_process(
        &self,
        p: &CertProcess,
        worker: &str,
        hold: Hold,
    ) -> Result<bool, StoreError> {
        let (owner, lease) = match hold {
            Hold::Keep(lease) => (Some(worker), Some(interval(lease))),
            Hold::Release => (None, None),
        };
        let saved = sqlx::query(
            "update cert_processes set state = $3, next_attempt_at = $4, process = $5, sign_data = $6,
                 sign_requested_at = $7, operation_name = $8, signature = $9, certificate_pem = $10,
                 certificate_serial = $11, failure_message = $12, last_error = $13, attempts = $16,
                 lease_owner = $14, lease_expires_at = now() + $15, updated_at = now()
             where cert_process_id = $1 and lease_owner = $2 and lease_expires_at > now()",
        )
        .bind(p.cert_process_id)
        .bind(worker)
        .bind(p.state.as_str())
        .bind(p.next_attempt_at)
        .bind(p.process.as_ref().map(Json))
        .bind(p.sign_data.as_deref())
        .bind(p.sign_requested_at)
        .bind(p.operation_name.as_deref())
        .bind(p.signature.as_deref())
        .bind(p.certificate_pem.as_deref())
        .bind(p.certificate_serial.as_deref())
        .bind(p.failure_message.as_deref())
        .bind(p.last_error.as_deref())
        .bind(owner)
        .bind(lease)
        .bind(p.attempts)
        .execute(self.pool())
        .await?;
        Ok(saved.rows_affected() == 1)
    }

    async fn count_cert_processes_by_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "select state, count(*) from cert_processes group by state order by state",
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn get_cert_process(&self, name: &str) -> Result<Option<CertProcess>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "select {COLUMNS} from cert_processes where name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(CertProcess::try_from).transpose()
    }

    async fn list_cert_processes(
        &self,
        state: Option<CertState>,
        limit: u32,
    ) -> Result<Vec<CertProcess>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "select {COLUMNS} from cert_processes where ($1::text is null or state = $1) order by cert_process_id desc limit $2"
        ))
        .bind(state.map(CertState::as_str))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(CertProcess::try_from).collect()
    }
}
