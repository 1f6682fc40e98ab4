//! Token Status Lists: handing out entries (one per MSO, never reused), marking the lists whose
//! entries a revocation turned invalid, and the published tokens with the lease that lets one
//! replica at a time build each.

use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

use super::sql::{query, Exec, Row};
use super::StoreError;
use crate::domain::status_index::IndexPermutation;

/// An entry: the list and the index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The list's number.
    pub list_id: i64,
    /// The index.
    pub index: i64,
}

/// Hands out `count` entries of one list of `scope` (the next `count` of its counter, through
/// the list's index permutation), taking a new list of `size` entries when none has room. One
/// short statement per attempt, outside any other transaction, so that an allocation never waits
/// on an MSO being signed.
pub async fn allocate(
    ex: &mut impl Exec,
    scope: &str,
    count: u32,
    size: u64,
) -> Result<Vec<Entry>, StoreError> {
    let count = i64::from(count.max(1));
    let size = i64::try_from(size).unwrap_or(i64::MAX).max(count);
    // A new list appears at most once per attempt; a handful of attempts covers any race.
    for _ in 0..8 {
        // The re-check in the outer WHERE is what a concurrent allocator that filled the list
        // first makes fail (Postgres re-evaluates it on the row it waited for).
        let row = ex
            .fetch_optional(
                query(
                    "update status_lists set allocated = allocated + $2
                     where list_id = (select list_id from status_lists
                                      where scope = $1 and allocated + $2 <= size
                                      order by list_id limit 1)
                       and allocated + $2 <= size
                     returning list_id, allocated - $2 as first, size, index_key",
                )
                .bind(scope)
                .bind(count),
            )
            .await?;
        if let Some(row) = row {
            let (list_id, first) = (row.int64("list_id")?, row.int64("first")?);
            let size = u64::try_from(row.int64("size")?).unwrap_or(1);
            let permutation = IndexPermutation::new(&row.bytes("index_key")?, size);
            return Ok((first..first + count)
                .map(|counter| Entry {
                    list_id,
                    index: permutation.index(counter as u64) as i64,
                })
                .collect());
        }
        // No room: a new list, numbered after every other (a concurrent creator wins the
        // number and this attempt takes room in its list on the next round).
        ex.execute(
            query(
                "insert into status_lists (list_id, scope, size, index_key)
                 select coalesce(max(list_id), 0) + 1, $1, $2, $3 from status_lists where true
                 on conflict (list_id) do nothing",
            )
            .bind(scope)
            .bind(size)
            .bind(rand::random::<[u8; 32]>().to_vec()),
        )
        .await?;
    }
    Err(StoreError::Conflict(
        "status lists: no room after 8 attempts (lists are being created concurrently)".into(),
    ))
}

/// Marks every list that holds an entry of an MSO of `credential_id` as changed (in the
/// transaction that revokes it).
pub async fn mark_credential_changed(
    ex: &mut impl Exec,
    credential_id: Uuid,
) -> Result<u64, StoreError> {
    ex.execute(
        query(
            "update status_lists set generation = generation + 1
             where list_id in (select m.status_list_id from mso_issuances m
                               join credential_versions v on v.credential_version_id = m.credential_version_id
                               where v.credential_id = $1 and m.status_list_id is not null)",
        )
        .bind(credential_id),
    )
    .await
}

/// A list whose token must be (re)built.
#[derive(Debug, Clone, PartialEq)]
pub struct DueList {
    /// Its number.
    pub list_id: i64,
    /// Whose signer signs it.
    pub scope: String,
    /// Entries.
    pub size: i64,
    /// The generation the token will show.
    pub generation: i64,
}

/// The lists with no token, a token older than their entries, or one that expires before
/// `refresh_before` (oldest first).
pub async fn due(
    ex: &mut impl Exec,
    refresh_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    let rows = ex
        .fetch_all(
            query(
                "select list_id from status_lists
                 where token is null or token_generation < generation or token_expires_at < $1
                 order by list_id limit $2",
            )
            .bind(refresh_before)
            .bind(limit),
        )
        .await?;
    rows.iter().map(|r| r.int64("list_id")).collect()
}

/// Takes the list for `lease` unless another replica holds it or has meanwhile published it (due
/// as [`due`] says, against `refresh_before`); returns what to build.
pub async fn claim(
    ex: &mut impl Exec,
    list_id: i64,
    owner: &str,
    lease: Duration,
    refresh_before: DateTime<Utc>,
) -> Result<Option<DueList>, StoreError> {
    let row = ex
        .fetch_optional(
            query(
                "update status_lists set lease_owner = $2, lease_until = %now+$3%
                 where list_id = $1 and (lease_until is null or lease_until < %now% or lease_owner = $2)
                   and (token is null or token_generation < generation or token_expires_at < $4)
                 returning list_id, scope, size, generation",
            )
            .bind(list_id)
            .bind(owner)
            .bind(lease)
            .bind(refresh_before),
        )
        .await?;
    row.map(|r| {
        Ok(DueList {
            list_id: r.int64("list_id")?,
            scope: r.text("scope")?,
            size: r.int64("size")?,
            generation: r.int64("generation")?,
        })
    })
    .transpose()
}

/// The indexes of `list_id` whose MSOs' records are revoked.
pub async fn invalid_indexes(ex: &mut impl Exec, list_id: i64) -> Result<Vec<i64>, StoreError> {
    let rows = ex
        .fetch_all(
            query(
                "select m.status_index from mso_issuances m
                 join credential_versions v on v.credential_version_id = m.credential_version_id
                 join credentials c on c.credential_id = v.credential_id
                 where m.status_list_id = $1 and c.status = 'revoked'",
            )
            .bind(list_id),
        )
        .await?;
    rows.iter().map(|r| r.int64("status_index")).collect()
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// The encoded token.
    pub token: &'a [u8],
    /// Its entity tag.
    pub etag: &'a str,
    /// The generation it shows.
    pub generation: i64,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
}

/// Stores the token `owner` built and gives the lease back; false when the lease was lost.
pub async fn publish(
    ex: &mut impl Exec,
    list_id: i64,
    owner: &str,
    token: &NewToken<'_>,
) -> Result<bool, StoreError> {
    let updated = ex
        .execute(
            query(
                "update status_lists set token = $3, token_etag = $4, token_generation = $5,
                    token_issued_at = $6, token_expires_at = $7, lease_owner = null, lease_until = null
                 where list_id = $1 and lease_owner = $2",
            )
            .bind(list_id)
            .bind(owner)
            .bind(token.token)
            .bind(token.etag)
            .bind(token.generation)
            .bind(token.issued_at)
            .bind(token.expires_at),
        )
        .await?;
    Ok(updated == 1)
}

/// A published token.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The encoded token.
    pub token: Vec<u8>,
    /// Its entity tag.
    pub etag: String,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
}

/// What a list publishes: `None` for no such list, `Some(None)` for a list without a token yet.
pub async fn token(
    ex: &mut impl Exec,
    list_id: i64,
) -> Result<Option<Option<Published>>, StoreError> {
    let row = ex
        .fetch_optional(
            query(
                "select token, token_etag, token_issued_at, token_expires_at
                 from status_lists where list_id = $1",
            )
            .bind(list_id),
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(published(&row)?))
}

fn published(row: &Row) -> Result<Option<Published>, StoreError> {
    let Some(token) = row.opt_bytes("token")? else {
        return Ok(None);
    };
    Ok(Some(Published {
        token,
        etag: row.opt_text("token_etag")?.unwrap_or_default(),
        issued_at: row.time("token_issued_at")?,
        expires_at: row.time("token_expires_at")?,
    }))
}

/// A list as the dashboard and the tests see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSummary {
    /// Its number.
    pub list_id: i64,
    /// Whose signer signs it.
    pub scope: String,
    /// Entries.
    pub size: i64,
    /// Entries handed out.
    pub allocated: i64,
    /// Whether the published token shows the entries as they are.
    pub current: bool,
    /// When the published token expires, if there is one.
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// Every list, in order.
pub async fn list(ex: &mut impl Exec) -> Result<Vec<ListSummary>, StoreError> {
    let rows = ex
        .fetch_all(query(
            "select list_id, scope, size, allocated, token is not null and token_generation >= generation as current,
                    token_expires_at
             from status_lists order by list_id",
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ListSummary {
                list_id: r.int64("list_id")?,
                scope: r.text("scope")?,
                size: r.int64("size")?,
                allocated: r.int64("allocated")?,
                current: r.boolean("current")?,
                token_expires_at: r.opt_time("token_expires_at")?,
            })
        })
        .collect()
}
