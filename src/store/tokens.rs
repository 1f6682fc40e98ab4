//! Admin tokens (only their hashes) and their use.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sql::{query, Exec, Row};
use super::{parse_stored, StoreError};
use crate::config::Backend;
use crate::domain::admin_token::{Role, TokenHash};

/// Name of the token created on first start.
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";

/// An admin token as stored (never its clear value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Stable id, referenced by the audit log.
    pub admin_token_id: Uuid,
    /// Unique human label.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// When the token was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was; revoked tokens authenticate nobody.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewAdminToken {
    /// Unique human label.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Hash of the clear token.
    pub token_hash: TokenHash,
}

const COLUMNS: &str = "admin_token_id, name, role, created_at, revoked_at";

fn read(row: &Row) -> Result<AdminToken, StoreError> {
    Ok(AdminToken {
        admin_token_id: row.uuid("admin_token_id")?,
        name: row.text("name")?,
        role: parse_stored("admin_tokens.role", &row.text("role")?)?,
        created_at: row.time("created_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

/// Serialises writers of the token table until the transaction ends, so that "is this the first
/// token" and "is this the last admin" are decided on a table nobody else is changing. On SQLite
/// the IMMEDIATE transaction already holds the database's write lock.
pub async fn lock_table(tx: &mut impl Exec) -> Result<(), StoreError> {
    if tx.backend() == Backend::Postgres {
        tx.execute(query("lock table admin_tokens in share row exclusive mode"))
            .await?;
    }
    Ok(())
}

/// Whether any token exists.
pub async fn any(ex: &mut impl Exec) -> Result<bool, StoreError> {
    let row = ex
        .fetch_one(query("select count(*) as n from admin_tokens"))
        .await?;
    Ok(row.int64("n")? > 0)
}

/// Stores a token.
pub async fn insert(ex: &mut impl Exec, token: &NewAdminToken) -> Result<AdminToken, StoreError> {
    let row = ex
        .fetch_one(
            query(format!(
                "insert into admin_tokens (admin_token_id, name, role, token_hash)
                 values ($1, $2, $3, $4) returning {COLUMNS}"
            ))
            .bind(Uuid::new_v4())
            .bind(&token.name)
            .bind(token.role.as_str())
            .bind(token.token_hash.as_str()),
        )
        .await?;
    read(&row)
}

/// The unrevoked token with this hash, if any, recording that it was used.
pub async fn authenticate(
    ex: &mut impl Exec,
    hash: &TokenHash,
) -> Result<Option<AdminToken>, StoreError> {
    let row = ex
        .fetch_optional(
            query(format!(
                "update admin_tokens set last_used_at = %now%, updated_at = %now%
                 where token_hash = $1 and revoked_at is null returning {COLUMNS}"
            ))
            .bind(hash.as_str()),
        )
        .await?;
    row.as_ref().map(read).transpose()
}

/// All tokens, oldest first.
pub async fn list(ex: &mut impl Exec) -> Result<Vec<AdminToken>, StoreError> {
    let rows = ex
        .fetch_all(query(format!(
            "select {COLUMNS} from admin_tokens order by created_at, name"
        )))
        .await?;
    rows.iter().map(read).collect()
}

/// The role of an unrevoked token.
pub async fn unrevoked_role(ex: &mut impl Exec, id: Uuid) -> Result<Option<Role>, StoreError> {
    let row = ex
        .fetch_optional(
            query("select role from admin_tokens where admin_token_id = $1 and revoked_at is null")
                .bind(id),
        )
        .await?;
    row.map(|r| parse_stored("admin_tokens.role", &r.text("role")?))
        .transpose()
}

/// How many unrevoked tokens have the admin role.
pub async fn count_admins(ex: &mut impl Exec) -> Result<i64, StoreError> {
    let row = ex
        .fetch_one(query(
            "select count(*) as n from admin_tokens where role = 'admin' and revoked_at is null",
        ))
        .await?;
    row.int64("n")
}

/// Revokes a token.
pub async fn revoke(ex: &mut impl Exec, id: Uuid) -> Result<(), StoreError> {
    ex.execute(
        query("update admin_tokens set revoked_at = %now%, updated_at = %now% where admin_token_id = $1")
            .bind(id),
    )
    .await?;
    Ok(())
}
