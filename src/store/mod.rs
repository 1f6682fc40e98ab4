//! Persistence: Postgres in production, an embedded SQLite file by default, behind one [`Store`].
//!
//! Each table has a module of small operations ("primitives": insert a version, lock a record,
//! enqueue a job) that run on the pool or inside a transaction ([`sql::Exec`]); their SQL is
//! written once for both databases ([`sql`] binds the types and expands the few dialect tokens).
//! Use cases that change several rows — a record and its outbox jobs and audit entry — live in
//! `crate::service`, which opens the transaction and calls these primitives.

pub mod audit;
pub mod bulk_updates;
pub mod cert_processes;
pub mod codes;
pub mod connect;
pub mod console_sessions;
pub mod copies;
pub mod credentials;
pub mod devices;
pub mod key_activations;
pub mod outbox;
pub mod proofings;
pub mod revocations;
pub mod schema;
pub mod settings;
pub mod sql;
pub mod status_lists;
pub mod tokens;

use std::sync::Arc;

use crate::config::{Backend, DatabaseUrl};

pub use audit::{Actor, AuditEntry, NewAuditEntry, Provenance};
pub use cert_processes::{CertProcess, CertState, Hold};
pub use copies::{CopyChange, CopyWithRecord, MsoIssuance, NewMsoIssuance, WalletCopy};
pub use credentials::CredentialFilter;
pub use devices::Device;
pub use outbox::{Job, JobKind, JobState, OutboxJob};
pub use proofings::ProofingInsert;
pub use sql::{Exec, Pool, Tx};
pub use tokens::{AdminToken, NewAdminToken, BOOTSTRAP_TOKEN_NAME};

/// A store shared by every request and job of a process.
pub type SharedStore = Arc<Store>;

/// Failures of the store. Callers map `Conflict` and `Missing` to client errors; `Busy` is worth
/// retrying; the rest are faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; the string names the constraint.
    #[error("conflict with an existing row ({0})")]
    Conflict(String),
    /// A row refers to one that does not exist (a foreign-key violation); names the constraint.
    #[error("refers to a row that does not exist ({0})")]
    Missing(String),
    /// A value broke a check or not-null rule of the schema: a bug, never the caller's input.
    #[error("value refused by the schema ({0})")]
    Invalid(String),
    /// A row held a value this version of Brevet cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database is unreachable, overloaded or the write lost a race (serialization failure,
    /// deadlock, lock timeout, SQLite busy): the same request may well succeed in a moment.
    #[error("database busy or unreachable: {0}")]
    Busy(#[source] sqlx::Error),
    /// The database refused the statement for a reason retrying will not change (a bad query, a
    /// damaged store).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy(_))
    }
}

/// Postgres SQLSTATEs of conditions that pass: serialization failure, deadlock, lock not
/// available, query cancelled (statement timeout), and the connection and resource classes.
fn transient_sqlstate(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03"
    ) || code.starts_with("08")
        || code.starts_with("53")
}

/// SQLite result codes (primary code in the low byte of an extended one) of a busy or locked
/// database.
fn transient_sqlite_code(code: &str) -> bool {
    code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &error {
            sqlx::Error::Database(db) => {
                let constraint = || db.constraint().unwrap_or("unnamed").to_owned();
                match db.kind() {
                    ErrorKind::UniqueViolation => StoreError::Conflict(constraint()),
                    ErrorKind::ForeignKeyViolation => StoreError::Missing(constraint()),
                    ErrorKind::CheckViolation | ErrorKind::NotNullViolation => {
                        StoreError::Invalid(db.message().to_owned())
                    }
                    _ => {
                        let code = db.code().unwrap_or_default();
                        if transient_sqlstate(&code) || transient_sqlite_code(&code) {
                            StoreError::Busy(error)
                        } else {
                            StoreError::Database(error)
                        }
                    }
                }
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Busy(error),
            _ => StoreError::Database(error),
        }
    }
}

/// Reads a stored enum name, or says which column held what.
pub(crate) fn parse_stored<T: std::str::FromStr>(column: &str, raw: &str) -> Result<T, StoreError> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} holds unknown value {raw:?}")))
}

/// How many rows of `table` are in each `state` (for metrics).
async fn count_by_state(
    ex: &mut impl Exec,
    table: &'static str,
) -> Result<Vec<(String, i64)>, StoreError> {
    count_by(ex, table, "state").await
}

/// How many rows of `table` have each value of `column`.
async fn count_by(
    ex: &mut impl Exec,
    table: &'static str,
    column: &'static str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let text = format!(
        "select {column} as value, count(*) as n from {table} group by {column} order by {column}"
    );
    let rows = ex.fetch_all(sql::query(text)).await?;
    rows.iter()
        .map(|r| Ok((r.text("value")?, r.int64("n")?)))
        .collect()
}

/// The database behind every request: a pool of connections to Postgres or SQLite.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Connects to the store `url` names and applies its pending migrations.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<Self, StoreError> {
        Ok(Self {
            pool: connect::open(url, max_connections).await?,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// The pool, to run primitives on one at a time: `credentials::get(&mut store.db(), id)`.
    pub fn db(&self) -> &Pool {
        &self.pool
    }

    /// A write transaction (see [`Pool::begin`]).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        self.pool.begin().await
    }

    /// Succeeds when the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        (&mut self.db()).execute(sql::query("select 1")).await?;
        Ok(())
    }

    /// Closes every connection; later calls fail as an unreachable database does.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Takes one connection out of the pool until the returned guard is dropped (for tests of a
    /// starved pool).
    pub async fn hold_connection(&self) -> Result<sql::Held, StoreError> {
        self.pool.hold().await
    }
}

/// Connects to the store the URL names and applies its migrations.
pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<SharedStore, StoreError> {
    Ok(Arc::new(Store::connect(url, max_connections).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_database_conditions_are_told_apart_from_faults() {
        for code in [
            "40001", "40P01", "55P03", "57014", "08006", "53300", "57P01",
        ] {
            assert!(transient_sqlstate(code), "{code}");
        }
        for code in ["23503", "23514", "42P01", "22P02"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
        // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes, e.g. BUSY_SNAPSHOT (517).
        for code in ["5", "6", "517", "261", "262"] {
            assert!(transient_sqlite_code(code), "{code}");
        }
        for code in ["19", "787", "2067", "x"] {
            assert!(!transient_sqlite_code(code), "{code}");
        }
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_transient());
    }
}
