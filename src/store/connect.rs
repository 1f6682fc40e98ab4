//! Opening a store: the one place where the two databases need different code, since their
//! connection options and migration sets differ.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::Pool;
use super::StoreError;
use crate::config::{Backend, DatabaseUrl};

static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Versions of the migrations this binary carries for `backend`.
pub fn expected_migrations(backend: Backend) -> Vec<i64> {
    let migrator = match backend {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    };
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect()
}

/// Connects and applies pending migrations.
pub async fn open(url: &DatabaseUrl, max_connections: u32) -> Result<Pool, StoreError> {
    match url.backend() {
        Backend::Postgres => {
            let options = PgConnectOptions::from_str(url.expose())?.application_name("brevet");
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            POSTGRES.run(&pool).await?;
            Ok(Pool::Pg(pool))
        }
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(url.expose())?
                // WAL lets readers run beside the single writer. FULL syncs the WAL at every
                // commit, so a committed change (and its outbox row) survives a power loss.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            // The first connection switches the file to WAL and the migrations run, while this
            // process holds the file's start-up lock: processes starting together on one file
            // (`serve` and `worker`, say) then never contend for its first write lock.
            let lock = start_lock(&options).await?;
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.clone())
                .await?;
            let migrated = SQLITE.run(&pool).await;
            drop(lock);
            migrated?;
            Ok(Pool::Sqlite(pool))
        }
    }
}

/// An exclusive lock on `<database>.migrate.lock`, held while a process opens the file and
/// applies its migrations (sqlx's SQLite migrator takes no lock of its own, so two processes
/// starting together on a new file would both try to create the tables); `None` for an
/// in-memory database, which belongs to this process alone.
async fn start_lock(options: &SqliteConnectOptions) -> Result<Option<std::fs::File>, StoreError> {
    let database = options.get_filename();
    let name = database.to_string_lossy();
    // `sqlite::memory:` is named `:memory:` or, by sqlx, `file:sqlx-in-memory-N` (shared cache).
    if name.is_empty() || name.starts_with(':') || name.starts_with("file:sqlx-in-memory") {
        return Ok(None);
    }
    let mut lock_path = database.as_os_str().to_owned();
    lock_path.push(".migrate.lock");
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("migration lock task failed: {e}")))?
    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    Ok(Some(lock))
}
