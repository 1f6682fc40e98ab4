//! What the migrations built, read back from the database's catalogue (for readiness checks and
//! the test that keeps the two stores' schemas alike). Catalogues differ, so each database has
//! its own query here.

use super::sql::{query, Exec};
use super::StoreError;
use crate::config::Backend;

/// A column as the catalogue describes it, its type mapped to the Rust type Brevet reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    /// Table.
    pub table: String,
    /// Column.
    pub name: String,
    /// One of `uuid`, `text`, `time`, `json`, `bytes`, `int`, `bool`, or the database's own
    /// name for anything else.
    pub kind: String,
    /// Whether it may hold null.
    pub nullable: bool,
}

/// Names of the tables the migrations created.
pub async fn table_names(ex: &mut impl Exec) -> Result<Vec<String>, StoreError> {
    let text = match ex.backend() {
        Backend::Postgres => {
            "select table_name::text as name from information_schema.tables
             where table_schema = current_schema() and table_name not like '\\_sqlx%'
             order by table_name"
        }
        Backend::Sqlite => {
            "select name from sqlite_master where type = 'table'
             and name not like '\\_sqlx%' escape '\\' and name not like 'sqlite\\_%' escape '\\'
             order by name"
        }
    };
    let rows = ex.fetch_all(query(text)).await?;
    rows.iter().map(|r| r.text("name")).collect()
}

/// Every column of every table, sorted by table and name.
pub async fn columns(ex: &mut impl Exec) -> Result<Vec<Column>, StoreError> {
    let backend = ex.backend();
    let text = match backend {
        Backend::Postgres => {
            "select table_name::text as table_name, column_name::text as name, data_type::text as kind,
                    (is_nullable = 'YES') as nullable
             from information_schema.columns
             where table_schema = current_schema() and table_name not like '\\_sqlx%'"
        }
        // `pk` columns of SQLite are nullable unless declared not null, except integer keys.
        Backend::Sqlite => {
            "select m.name as table_name, p.name as name, lower(p.type) as kind, (p.\"notnull\" = 0 and p.pk = 0) as nullable
             from sqlite_master m join pragma_table_info(m.name) p
             where m.type = 'table' and m.name not like '\\_sqlx%' escape '\\' and m.name not like 'sqlite\\_%' escape '\\'"
        }
    };
    let rows = ex.fetch_all(query(text)).await?;
    let mut columns = rows
        .iter()
        .map(|r| {
            let raw = r.text("kind")?;
            Ok(Column {
                table: r.text("table_name")?,
                name: r.text("name")?,
                kind: kind(backend, &raw).to_owned(),
                nullable: r.boolean("nullable")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    columns.sort();
    Ok(columns)
}

/// The Rust type a column's database type maps to (docs of [`super::sql`]).
fn kind(backend: Backend, raw: &str) -> &str {
    match (backend, raw) {
        (Backend::Postgres, "uuid") => "uuid",
        (Backend::Postgres, "text") => "text",
        (Backend::Postgres, "timestamp with time zone") => "time",
        (Backend::Postgres, "jsonb") => "json",
        (Backend::Postgres, "bytea") => "bytes",
        (Backend::Postgres, "integer" | "bigint") => "int",
        (Backend::Postgres, "boolean") => "bool",
        (Backend::Sqlite, "blob") => "bytes",
        (Backend::Sqlite, "integer") => "int",
        (Backend::Sqlite, "boolean") => "bool",
        // SQLite keeps uuids, times and JSON as text; which one a column is, its name and the
        // Postgres twin say: the parity test compares those as text.
        (Backend::Sqlite, "text") => "text",
        (_, other) => other,
    }
}

/// Versions of the migrations applied successfully, in order.
pub async fn applied_migrations(ex: &mut impl Exec) -> Result<Vec<i64>, StoreError> {
    let rows = ex
        .fetch_all(query(
            "select version from _sqlx_migrations where success order by version",
        ))
        .await?;
    rows.iter().map(|r| r.int64("version")).collect()
}
