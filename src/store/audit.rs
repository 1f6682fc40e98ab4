//! The audit log: who did what to which record. Never holder data.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sql::{insert_rows, query, Exec, Row};
use super::StoreError;

/// Who did something, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Brevet itself (bootstrap, workers).
    System,
    /// A holder of an admin token.
    Token {
        /// The token's id.
        admin_token_id: Uuid,
        /// The token's name at the time.
        name: String,
    },
}

impl Actor {
    /// The admin token behind the action, when a person acted.
    pub fn token_id(&self) -> Option<Uuid> {
        match self {
            Actor::System => None,
            Actor::Token { admin_token_id, .. } => Some(*admin_token_id),
        }
    }

    /// "system" or the token's name, as the audit log names the actor.
    pub fn label(&self) -> &str {
        match self {
            Actor::System => "system",
            Actor::Token { name, .. } => name,
        }
    }
}

/// Who asked for a change, for its audit entry.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    /// Who.
    pub actor: &'a Actor,
    /// The request, when there was one.
    pub request_id: Option<&'a str>,
}

impl Provenance<'static> {
    /// Brevet itself, outside any request.
    pub const SYSTEM: Provenance<'static> = Provenance {
        actor: &Actor::System,
        request_id: None,
    };
}

impl<'a> Provenance<'a> {
    /// The audit entry of `action` on the record `target_kind`/`target_id`.
    pub fn entry(
        self,
        action: &'a str,
        target_kind: &'a str,
        target_id: impl ToString,
    ) -> NewAuditEntry<'a> {
        NewAuditEntry {
            actor: self.actor,
            action,
            target_kind,
            target_id: target_id.to_string(),
            request_id: self.request_id,
        }
    }
}

/// An audit record: who did what to which record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id (UUIDv7: ordered by time), the cursor of the listing.
    pub audit_id: Uuid,
    /// Token of the actor, when a person acted.
    pub admin_token_id: Option<Uuid>,
    /// "system" or the token's name.
    pub actor: String,
    /// What was done, e.g. `admin_token.create`.
    pub action: String,
    /// Kind of record acted on, e.g. `admin_token`.
    pub target_kind: String,
    /// Id of the record acted on.
    pub target_id: String,
    /// The request that did it, when there was one.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What to write to the audit log (the database stamps the time).
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// Who.
    pub actor: &'a Actor,
    /// What, e.g. `admin_token.create`.
    pub action: &'a str,
    /// Kind of record.
    pub target_kind: &'a str,
    /// Id of the record.
    pub target_id: String,
    /// The request that did it.
    pub request_id: Option<&'a str>,
}

/// Appends an entry. Ids are UUIDv7, so that ordering by id is ordering by time, even within
/// one millisecond.
pub async fn insert(ex: &mut impl Exec, entry: &NewAuditEntry<'_>) -> Result<(), StoreError> {
    insert_all(ex, std::slice::from_ref(entry)).await
}

/// Appends entries in one statement, in their order.
pub async fn insert_all(
    ex: &mut impl Exec,
    entries: &[NewAuditEntry<'_>],
) -> Result<(), StoreError> {
    insert_rows(
        ex,
        "insert into audit_log (audit_id, admin_token_id, actor, action, target_kind, target_id, request_id) values ",
        entries,
        |q, entry| {
            vec![
                q.push_param(Uuid::now_v7()),
                q.push_param(entry.actor.token_id()),
                q.push_param(entry.actor.label()),
                q.push_param(entry.action),
                q.push_param(entry.target_kind),
                q.push_param(&entry.target_id),
                q.push_param(entry.request_id),
            ]
        },
    )
    .await
}

/// The newest entries, newest first.
pub async fn list(ex: &mut impl Exec, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
    search(ex, &AuditFilter::default(), limit).await
}

/// Which audit entries a listing wants; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The actor's name ("system" or a token's name), exactly.
    pub actor: Option<String>,
    /// The action, exactly (e.g. `credential.revoke`).
    pub action: Option<String>,
    /// The record acted on, by id.
    pub target_id: Option<String>,
    /// Entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this one (the cursor: the last id of the previous page).
    pub before: Option<Uuid>,
}

/// The newest entries that match `filter`, newest first.
pub async fn search(
    ex: &mut impl Exec,
    filter: &AuditFilter,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut q = query(
        "select audit_id, admin_token_id, actor, action, target_kind, target_id, request_id, created_at
         from audit_log where 1 = 1",
    );
    for (column, value) in [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("target_id", &filter.target_id),
    ] {
        if let Some(value) = value {
            let p = q.push_param(value.as_str());
            q.push_sql(&format!(" and {column} = {p}"));
        }
    }
    if let Some(since) = filter.since {
        let p = q.push_param(since);
        q.push_sql(&format!(" and created_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = q.push_param(until);
        q.push_sql(&format!(" and created_at < {p}"));
    }
    if let Some(before) = filter.before {
        let p = q.push_param(before);
        q.push_sql(&format!(" and audit_id < {p}"));
    }
    let p = q.push_param(i64::from(limit));
    q.push_sql(&format!(" order by audit_id desc limit {p}"));
    let rows = ex.fetch_all(q).await?;
    rows.iter().map(read).collect()
}

fn read(row: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        audit_id: row.uuid("audit_id")?,
        admin_token_id: row.opt_uuid("admin_token_id")?,
        actor: row.text("actor")?,
        action: row.text("action")?,
        target_kind: row.text("target_kind")?,
        target_id: row.text("target_id")?,
        request_id: row.opt_text("request_id")?,
        created_at: row.time("created_at")?,
    })
}
