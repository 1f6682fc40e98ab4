//! Sessions of the staff console: a cookie's hash, the admin token it borrows its role from, the
//! form token (CSRF) of the session, and its expiry. Looked up only together with an unrevoked
//! token, so that revoking a token ends its sessions on every replica at once.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sql::{query, Exec};
use super::{parse_stored, StoreError};
use crate::domain::admin_token::Role;

/// A live session, with the token it acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The admin token behind the session.
    pub admin_token_id: Uuid,
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: Role,
    /// The form token every state-changing request of the session carries.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// What to store for a new session.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// Hex SHA-256 of the cookie value.
    pub session_hash: &'a str,
    /// The token signed in with.
    pub admin_token_id: Uuid,
    /// The session's form token.
    pub csrf_token: &'a str,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// Stores a session.
pub async fn insert(ex: &mut impl Exec, session: &NewSession<'_>) -> Result<(), StoreError> {
    ex.execute(
        query(
            "insert into console_sessions (session_hash, admin_token_id, csrf_token, expires_at)
             values ($1, $2, $3, $4)",
        )
        .bind(session.session_hash)
        .bind(session.admin_token_id)
        .bind(session.csrf_token)
        .bind(session.expires_at),
    )
    .await?;
    Ok(())
}

/// The session with this hash, when it has not expired at `now` and its token is not revoked.
pub async fn live(
    ex: &mut impl Exec,
    session_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<ConsoleSession>, StoreError> {
    let row = ex
        .fetch_optional(
            query(
                "select s.admin_token_id, t.name, t.role, s.csrf_token, s.expires_at
                 from console_sessions s join admin_tokens t on t.admin_token_id = s.admin_token_id
                 where s.session_hash = $1 and s.expires_at > $2 and t.revoked_at is null",
            )
            .bind(session_hash)
            .bind(now),
        )
        .await?;
    row.map(|row| {
        Ok(ConsoleSession {
            admin_token_id: row.uuid("admin_token_id")?,
            name: row.text("name")?,
            role: parse_stored("admin_tokens.role", &row.text("role")?)?,
            csrf_token: row.text("csrf_token")?,
            expires_at: row.time("expires_at")?,
        })
    })
    .transpose()
}

/// Ends a session (sign-out).
pub async fn delete(ex: &mut impl Exec, session_hash: &str) -> Result<(), StoreError> {
    ex.execute(query("delete from console_sessions where session_hash = $1").bind(session_hash))
        .await?;
    Ok(())
}

/// Forgets sessions that ended before `now`; returns how many.
pub async fn purge_expired(ex: &mut impl Exec, now: DateTime<Utc>) -> Result<u64, StoreError> {
    ex.execute(query("delete from console_sessions where expires_at <= $1").bind(now))
        .await
}
