//! One body of SQL for both stores. A [`Query`] is SQL text with `$N` placeholders (which sqlx
//! accepts on SQLite too) and typed parameters; each backend binds a parameter the way its
//! schema stores it, and a [`Row`] reads a column back into the same Rust type:
//!
//! | Rust | Postgres | SQLite |
//! |---|---|---|
//! | `Uuid` | `uuid` | hyphenated text |
//! | `DateTime<Utc>` | `timestamptz` | RFC 3339 text, UTC, milliseconds, `Z` (so text order is time order) |
//! | `serde_json::Value` | `jsonb` | JSON text |
//! | `Vec<u8>` | `bytea` | `blob` |
//! | `String`, `i32`, `i64`, `bool` | `text`, `integer`, `bigint`, `boolean` | `text`, `integer` |
//!
//! The few places where the dialects differ in SQL are written as tokens the executor expands:
//!
//! | token | Postgres | SQLite |
//! |---|---|---|
//! | `%now%` | `now()` | `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` |
//! | `%now+$N%` | `(now() + $N)` | `strftime('%Y-%m-%dT%H:%M:%fZ', 'now', $N)` |
//! | `%for_update%` | ` for update` | nothing: the IMMEDIATE transaction holds the write lock |
//! | `%skip_locked%` | ` skip locked` | nothing |
//!
//! `$N` in `%now+$N%` is a [`Param::Interval`], bound as an `interval` on Postgres and as a
//! `+S.mmm seconds` modifier on SQLite. The database's clock (`%now%`) stamps rows and times
//! leases; rules the process evaluates (expiry, backoff) pass the application clock as a
//! parameter. Why this rather than sqlx's `Any` driver (no uuid or timestamp types) or functions
//! generic over `sqlx::Database` (every function restating a dozen trait bounds) is in
//! docs/ARCHITECTURE.md.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Postgres, Row as _, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::StoreError;
use crate::config::Backend;

/// The type of a parameter, also when it is null (Postgres types every parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A UUID.
    Uuid,
    /// Text.
    Text,
    /// Bytes.
    Bytes,
    /// A 32-bit integer.
    Int32,
    /// A 64-bit integer.
    Int64,
    /// A boolean.
    Bool,
    /// An instant.
    Time,
    /// A JSON document.
    Json,
    /// A length of time added to the database clock.
    Interval,
}

/// A parameter of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A UUID.
    Uuid(Uuid),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A 32-bit integer.
    Int32(i32),
    /// A 64-bit integer.
    Int64(i64),
    /// A boolean.
    Bool(bool),
    /// An instant.
    Time(DateTime<Utc>),
    /// A JSON document.
    Json(serde_json::Value),
    /// A length of time (only in `%now+$N%`).
    Interval(std::time::Duration),
    /// Null of a type.
    Null(Kind),
}

/// A value that can be a query parameter.
pub trait IntoParam {
    /// Its type, for nulls.
    const KIND: Kind;
    /// The parameter.
    fn into_param(self) -> Param;
}

macro_rules! into_param {
    ($($t:ty => $kind:ident, $variant:ident, |$v:ident| $e:expr;)*) => {$(
        impl IntoParam for $t {
            const KIND: Kind = Kind::$kind;
            fn into_param(self) -> Param {
                let $v = self;
                Param::$variant($e)
            }
        }
    )*};
}

into_param! {
    Uuid => Uuid, Uuid, |v| v;
    String => Text, Text, |v| v;
    &str => Text, Text, |v| v.to_owned();
    &String => Text, Text, |v| v.clone();
    Vec<u8> => Bytes, Bytes, |v| v;
    &[u8] => Bytes, Bytes, |v| v.to_vec();
    i32 => Int32, Int32, |v| v;
    i64 => Int64, Int64, |v| v;
    bool => Bool, Bool, |v| v;
    DateTime<Utc> => Time, Time, |v| v;
    serde_json::Value => Json, Json, |v| v;
    &serde_json::Value => Json, Json, |v| v.clone();
    std::time::Duration => Interval, Interval, |v| v;
}

impl<T: IntoParam> IntoParam for Option<T> {
    const KIND: Kind = T::KIND;
    fn into_param(self) -> Param {
        match self {
            Some(value) => value.into_param(),
            None => Param::Null(T::KIND),
        }
    }
}

/// SQL text and its parameters.
#[derive(Debug, Clone)]
pub struct Query {
    text: Cow<'static, str>,
    params: Vec<Param>,
}

/// A query with `text`.
pub fn query(text: impl Into<Cow<'static, str>>) -> Query {
    Query {
        text: text.into(),
        params: Vec::new(),
    }
}

impl Query {
    /// The query with one more parameter (`$1`, `$2`, … in order).
    pub fn bind(mut self, value: impl IntoParam) -> Self {
        self.params.push(value.into_param());
        self
    }

    /// Adds a parameter and returns its placeholder, for queries whose text is built up.
    pub fn push_param(&mut self, value: impl IntoParam) -> String {
        self.params.push(value.into_param());
        format!("${}", self.params.len())
    }

    /// Appends SQL text.
    pub fn push_sql(&mut self, sql: &str) {
        self.text.to_mut().push_str(sql);
    }

    /// Adds one parameter per value and appends their placeholders as `($1, $2, …)`, for
    /// `in` lists. The caller keeps lists short (both databases cap parameters per statement)
    /// and never empty (`in ()` is not SQL).
    pub fn push_list<T: IntoParam>(&mut self, values: impl IntoIterator<Item = T>) {
        let placeholders: Vec<String> = values.into_iter().map(|v| self.push_param(v)).collect();
        self.push_sql(&format!("({})", placeholders.join(", ")));
    }

    fn text_for(&self, backend: Backend) -> Cow<'_, str> {
        if !self.text.contains('%') {
            return Cow::Borrowed(&self.text);
        }
        Cow::Owned(expand(&self.text, backend))
    }
}

/// SQLite's text form of "now", the format of every timestamp column.
const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// `text` with the dialect tokens of [`Query`] replaced for `backend`.
fn expand(text: &str, backend: Backend) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let token = tail[1..].find('%').map(|end| &tail[..end + 2]);
        let expanded = token.and_then(|token| expand_token(token, backend));
        match (token, expanded) {
            (Some(token), Some(expanded)) => {
                out.push_str(&expanded);
                rest = &tail[token.len()..];
            }
            _ => {
                // Not a token (a `like` pattern, say): kept as written.
                out.push('%');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn expand_token(token: &str, backend: Backend) -> Option<String> {
    let pg = backend == Backend::Postgres;
    Some(match token {
        "%now%" if pg => "now()".to_owned(),
        "%now%" => SQLITE_NOW.to_owned(),
        "%for_update%" if pg => " for update".to_owned(),
        "%skip_locked%" if pg => " skip locked".to_owned(),
        "%for_update%" | "%skip_locked%" => String::new(),
        _ => {
            let placeholder = token.strip_prefix("%now+")?.strip_suffix('%')?;
            let digits = placeholder.strip_prefix('$')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            if pg {
                format!("(now() + {placeholder})")
            } else {
                format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', {placeholder})")
            }
        }
    })
}

/// A duration as a Postgres interval.
fn pg_interval(d: std::time::Duration) -> sqlx::postgres::types::PgInterval {
    sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
    }
}

/// A duration as an SQLite date modifier.
fn sqlite_modifier(d: std::time::Duration) -> String {
    format!("+{}.{:03} seconds", d.as_secs(), d.subsec_millis())
}

/// A time in the text format every SQLite timestamp column uses (RFC 3339, UTC, milliseconds), so
/// that text comparisons order times correctly.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

macro_rules! bind_all {
    ($query:expr, $params:expr, pg) => {{
        let mut q = $query;
        for param in $params {
            q = match param {
                Param::Uuid(v) => q.bind(*v),
                Param::Text(v) => q.bind(v.as_str()),
                Param::Bytes(v) => q.bind(v.as_slice()),
                Param::Int32(v) => q.bind(*v),
                Param::Int64(v) => q.bind(*v),
                Param::Bool(v) => q.bind(*v),
                Param::Time(v) => q.bind(*v),
                Param::Json(v) => q.bind(sqlx::types::Json(v)),
                Param::Interval(v) => q.bind(pg_interval(*v)),
                Param::Null(Kind::Interval) => q.bind(None::<sqlx::postgres::types::PgInterval>),
                Param::Null(Kind::Uuid) => q.bind(None::<Uuid>),
                Param::Null(Kind::Text) => q.bind(None::<String>),
                Param::Null(Kind::Bytes) => q.bind(None::<Vec<u8>>),
                Param::Null(Kind::Int32) => q.bind(None::<i32>),
                Param::Null(Kind::Int64) => q.bind(None::<i64>),
                Param::Null(Kind::Bool) => q.bind(None::<bool>),
                Param::Null(Kind::Time) => q.bind(None::<DateTime<Utc>>),
                Param::Null(Kind::Json) => q.bind(None::<sqlx::types::Json<serde_json::Value>>),
            };
        }
        q
    }};
    ($query:expr, $params:expr, sqlite) => {{
        let mut q = $query;
        for param in $params {
            q = match param {
                Param::Uuid(v) => q.bind(v.hyphenated().to_string()),
                Param::Text(v) => q.bind(v.as_str()),
                Param::Bytes(v) => q.bind(v.as_slice()),
                Param::Int32(v) => q.bind(*v),
                Param::Int64(v) => q.bind(*v),
                Param::Bool(v) => q.bind(*v),
                Param::Time(v) => q.bind(stamp(*v)),
                Param::Json(v) => q.bind(v.to_string()),
                Param::Interval(v) => q.bind(sqlite_modifier(*v)),
                Param::Null(Kind::Bytes) => q.bind(None::<Vec<u8>>),
                Param::Null(Kind::Int32 | Kind::Int64 | Kind::Bool) => q.bind(None::<i64>),
                Param::Null(_) => q.bind(None::<String>),
            };
        }
        q
    }};
}

/// One row of a result, read column by column into Rust types.
pub enum Row {
    /// From Postgres.
    Pg(PgRow),
    /// From SQLite.
    Sqlite(SqliteRow),
}

fn corrupt(column: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {error}"))
}

fn parse_uuid(column: &str, raw: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(raw).map_err(|e| corrupt(column, e))
}

fn parse_json(column: &str, raw: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt(column, e))
}

impl Row {
    fn pg<T>(row: &PgRow, column: &str) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
    {
        row.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn lite<T>(row: &SqliteRow, column: &str) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
    {
        row.try_get(column).map_err(|e| corrupt(column, e))
    }
}

/// Accessors of the types both databases decode alike.
macro_rules! same_on_both {
    ($($(#[$doc:meta])* $name:ident -> $t:ty;)*) => {
        impl Row {$(
            $(#[$doc])*
            pub fn $name(&self, column: &str) -> Result<$t, StoreError> {
                match self {
                    Row::Pg(r) => Self::pg(r, column),
                    Row::Sqlite(r) => Self::lite(r, column),
                }
            }
        )*}
    };
}

same_on_both! {
    /// Non-null text.
    text -> String;
    /// Text or null.
    opt_text -> Option<String>;
    /// Non-null bytes.
    bytes -> Vec<u8>;
    /// Bytes or null.
    opt_bytes -> Option<Vec<u8>>;
    /// A 32-bit integer.
    int32 -> i32;
    /// A 64-bit integer (counts).
    int64 -> i64;
    /// A boolean.
    boolean -> bool;
    /// A non-null instant (text in the stamp format on SQLite, which sqlx reads as RFC 3339).
    time -> DateTime<Utc>;
    /// An instant or null.
    opt_time -> Option<DateTime<Utc>>;
}

/// Uuids and JSON, kept as text on SQLite.
impl Row {
    /// A non-null UUID.
    pub fn uuid(&self, column: &str) -> Result<Uuid, StoreError> {
        match self {
            Row::Pg(r) => Self::pg(r, column),
            Row::Sqlite(r) => parse_uuid(column, &Self::lite::<String>(r, column)?),
        }
    }

    /// A UUID or null.
    pub fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError> {
        match self {
            Row::Pg(r) => Self::pg(r, column),
            Row::Sqlite(r) => Self::lite::<Option<String>>(r, column)?
                .map(|raw| parse_uuid(column, &raw))
                .transpose(),
        }
    }

    /// A non-null JSON document.
    pub fn json(&self, column: &str) -> Result<serde_json::Value, StoreError> {
        match self {
            Row::Pg(r) => Ok(Self::pg::<sqlx::types::Json<serde_json::Value>>(r, column)?.0),
            Row::Sqlite(r) => parse_json(column, &Self::lite::<String>(r, column)?),
        }
    }

    /// A JSON document or null.
    pub fn opt_json(&self, column: &str) -> Result<Option<serde_json::Value>, StoreError> {
        match self {
            Row::Pg(r) => Ok(
                Self::pg::<Option<sqlx::types::Json<serde_json::Value>>>(r, column)?.map(|j| j.0),
            ),
            Row::Sqlite(r) => Self::lite::<Option<String>>(r, column)?
                .map(|raw| parse_json(column, &raw))
                .transpose(),
        }
    }
}

/// Runs `head` (an `insert into … values ` prefix) with one row per item, the placeholders of
/// each row made by `row`: one statement however many rows, none when there are none. The
/// caller keeps `items` short (both databases cap parameters per statement).
pub async fn insert_rows<T>(
    ex: &mut impl Exec,
    head: &'static str,
    items: &[T],
    mut row: impl FnMut(&mut Query, &T) -> Vec<String>,
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let mut q = query(head);
    for (i, item) in items.iter().enumerate() {
        let placeholders = row(&mut q, item);
        let separator = if i == 0 { "" } else { ", " };
        q.push_sql(&format!("{separator}({})", placeholders.join(", ")));
    }
    ex.execute(q).await?;
    Ok(())
}

/// Something queries run on: the pool (each query on its own) or a transaction.
pub trait Exec: Send {
    /// Which store this is.
    fn backend(&self) -> Backend;

    /// Runs a statement; returns the rows it affected.
    fn execute(
        &mut self,
        query: Query,
    ) -> impl std::future::Future<Output = Result<u64, StoreError>> + Send;

    /// Runs a query; returns every row.
    fn fetch_all(
        &mut self,
        query: Query,
    ) -> impl std::future::Future<Output = Result<Vec<Row>, StoreError>> + Send;

    /// Runs a query; returns its first row, if any.
    fn fetch_optional(
        &mut self,
        query: Query,
    ) -> impl std::future::Future<Output = Result<Option<Row>, StoreError>> + Send;

    /// Runs a query that must return a row.
    fn fetch_one(
        &mut self,
        query: Query,
    ) -> impl std::future::Future<Output = Result<Row, StoreError>> + Send {
        async move {
            self.fetch_optional(query)
                .await?
                .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
        }
    }
}

/// A connection pool of one of the two stores.
#[derive(Debug, Clone)]
pub enum Pool {
    /// Postgres.
    Pg(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// An open transaction. Dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    /// Postgres.
    Pg(Transaction<'static, Postgres>),
    /// SQLite.
    Sqlite(Transaction<'static, Sqlite>),
}

impl Pool {
    /// Which store this is.
    pub fn backend(&self) -> Backend {
        match self {
            Pool::Pg(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// A transaction that will write: on SQLite it takes the write lock at once (BEGIN
    /// IMMEDIATE), so that a read-then-write is never overtaken by another writer — the role
    /// `select … for update` plays on Postgres.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Pg(pool) => Tx::Pg(pool.begin().await?),
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Pool::Pg(pool) => pool.close().await,
            Pool::Sqlite(pool) => pool.close().await,
        }
    }

    /// Takes a connection out of the pool until the guard is dropped.
    pub async fn hold(&self) -> Result<Held, StoreError> {
        Ok(match self {
            Pool::Pg(pool) => Held::Pg(pool.acquire().await?),
            Pool::Sqlite(pool) => Held::Sqlite(pool.acquire().await?),
        })
    }
}

/// A connection taken out of the pool; it goes back when dropped.
#[derive(Debug)]
pub enum Held {
    /// Postgres.
    Pg(sqlx::pool::PoolConnection<Postgres>),
    /// SQLite.
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
}

impl Tx {
    /// Makes the transaction's writes durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Pg(tx) => tx.commit().await?,
            Tx::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// One connection of either database, for the duration of one query.
enum Conn<'c> {
    Pg(&'c mut sqlx::PgConnection),
    Sqlite(&'c mut sqlx::SqliteConnection),
}

impl Query {
    async fn execute_on(self, conn: Conn<'_>) -> Result<u64, StoreError> {
        Ok(match conn {
            Conn::Pg(c) => {
                let text = self.text_for(Backend::Postgres);
                bind_all!(sqlx::query(&text), &self.params, pg)
                    .execute(c)
                    .await?
                    .rows_affected()
            }
            Conn::Sqlite(c) => {
                let text = self.text_for(Backend::Sqlite);
                bind_all!(sqlx::query(&text), &self.params, sqlite)
                    .execute(c)
                    .await?
                    .rows_affected()
            }
        })
    }

    async fn fetch_all_on(self, conn: Conn<'_>) -> Result<Vec<Row>, StoreError> {
        Ok(match conn {
            Conn::Pg(c) => {
                let text = self.text_for(Backend::Postgres);
                let rows = bind_all!(sqlx::query(&text), &self.params, pg)
                    .fetch_all(c)
                    .await?;
                rows.into_iter().map(Row::Pg).collect()
            }
            Conn::Sqlite(c) => {
                let text = self.text_for(Backend::Sqlite);
                let rows = bind_all!(sqlx::query(&text), &self.params, sqlite)
                    .fetch_all(c)
                    .await?;
                rows.into_iter().map(Row::Sqlite).collect()
            }
        })
    }

    async fn fetch_optional_on(self, conn: Conn<'_>) -> Result<Option<Row>, StoreError> {
        Ok(match conn {
            Conn::Pg(c) => {
                let text = self.text_for(Backend::Postgres);
                let row = bind_all!(sqlx::query(&text), &self.params, pg)
                    .fetch_optional(c)
                    .await?;
                row.map(Row::Pg)
            }
            Conn::Sqlite(c) => {
                let text = self.text_for(Backend::Sqlite);
                let row = bind_all!(sqlx::query(&text), &self.params, sqlite)
                    .fetch_optional(c)
                    .await?;
                row.map(Row::Sqlite)
            }
        })
    }
}

/// Runs `$run` (a method of [`Query`] taking a [`Conn`]) on a connection taken from the pool
/// for this one query.
macro_rules! pooled {
    ($pool:expr, $query:ident.$run:ident) => {
        match $pool {
            Pool::Pg(pool) => $query.$run(Conn::Pg(&mut *pool.acquire().await?)).await,
            Pool::Sqlite(pool) => $query.$run(Conn::Sqlite(&mut *pool.acquire().await?)).await,
        }
    };
}

/// Runs `$run` on the transaction's connection.
macro_rules! in_tx {
    ($tx:expr, $query:ident.$run:ident) => {
        match $tx {
            Tx::Pg(tx) => $query.$run(Conn::Pg(&mut **tx)).await,
            Tx::Sqlite(tx) => $query.$run(Conn::Sqlite(&mut **tx)).await,
        }
    };
}

impl Exec for &Pool {
    fn backend(&self) -> Backend {
        Pool::backend(self)
    }

    async fn execute(&mut self, query: Query) -> Result<u64, StoreError> {
        pooled!(self, query.execute_on)
    }

    async fn fetch_all(&mut self, query: Query) -> Result<Vec<Row>, StoreError> {
        pooled!(self, query.fetch_all_on)
    }

    async fn fetch_optional(&mut self, query: Query) -> Result<Option<Row>, StoreError> {
        pooled!(self, query.fetch_optional_on)
    }
}

impl Exec for Tx {
    fn backend(&self) -> Backend {
        match self {
            Tx::Pg(_) => Backend::Postgres,
            Tx::Sqlite(_) => Backend::Sqlite,
        }
    }

    async fn execute(&mut self, query: Query) -> Result<u64, StoreError> {
        in_tx!(self, query.execute_on)
    }

    async fn fetch_all(&mut self, query: Query) -> Result<Vec<Row>, StoreError> {
        in_tx!(self, query.fetch_all_on)
    }

    async fn fetch_optional(&mut self, query: Query) -> Result<Option<Row>, StoreError> {
        in_tx!(self, query.fetch_optional_on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_tokens_expand_per_backend_and_leave_other_percent_signs() {
        let text = "update t set a = %now%, b = %now+$2% where c like 'x%' and d = $1%for_update%%skip_locked%";
        assert_eq!(
            expand(text, Backend::Postgres),
            "update t set a = now(), b = (now() + $2) where c like 'x%' and d = $1 for update skip locked"
        );
        assert_eq!(
            expand(text, Backend::Sqlite),
            "update t set a = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), b = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', $2) where c like 'x%' and d = $1"
        );
        assert_eq!(
            expand("50% off %now+x%", Backend::Postgres),
            "50% off %now+x%"
        );
    }

    #[test]
    fn intervals_bind_as_each_database_adds_them() {
        let lease = std::time::Duration::from_millis(2_500);
        assert_eq!(sqlite_modifier(lease), "+2.500 seconds");
        assert_eq!(pg_interval(lease).microseconds, 2_500_000);
        let at = DateTime::parse_from_rfc3339("2026-11-30T15:04:05.123456Z")
            .unwrap()
            .to_utc();
        assert_eq!(stamp(at), "2026-11-30T15:04:05.123Z");
    }
}
