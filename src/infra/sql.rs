//! One SQL layer for both backends. A store holds a [`Db`](super::db::Db) and writes each
//! statement once: `$N` placeholders work on both drivers, and [`with_db!`] runs the same body
//! with whichever pool is configured (the body is compiled once per backend); [`fetch!`],
//! [`fetch_scalar!`], [`returning!`], [`returning_scalar!`] and [`execute!`] do that for a single
//! statement, and [`execute_in!`] runs one inside a transaction. The differences
//! that made two copies of most statements are hidden here:
//!
//! - timestamps: bind [`Ts`] — `timestamptz` on PostgreSQL, fixed-width UTC text on SQLite;
//! - lists of ids: bind [`Ids`] and write the test with [`in_ids!`] — `= ANY($n)` against a
//!   `uuid[]` on PostgreSQL, `IN (SELECT unhex(value) FROM json_each($n))` on SQLite;
//! - write transactions: [`Backend::begin_write`] — `BEGIN IMMEDIATE` on SQLite's single writer
//!   (its one write lock stands for PostgreSQL's row locks), a plain `BEGIN` on PostgreSQL;
//! - row locks: [`for_update!`] appends `FOR UPDATE …` on PostgreSQL only, and
//!   [`WriteTx::lock_key`] takes an advisory lock there.
//!
//! What truly differs (PostGIS, PL/pgSQL, the R*Tree index) is written per backend, side by side,
//! with [`Backend::pick`] or a `match` on the pool.

use std::borrow::Cow;
use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Encode, PgPool, Postgres, Sqlite, SqlitePool, Transaction, Type};
use uuid::Uuid;

use super::db::{begin_write, id_list, sqlite_writer};
use super::time::sqlite_ts;

/// Runs `$body` with `$pool` bound to the configured backend's pool; the body is compiled once
/// per backend, so every statement in it must suit both (see the module's documentation).
macro_rules! with_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::infra::db::Db::Postgres($pool) => $body,
            $crate::infra::db::Db::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use with_db;

/// Runs one statement with [`with_db!`]: `$query` (`query_as` or `query_scalar`) on `$sql` (a
/// `&'static str` both backends accept, or an [`Sql`]) with the binds, fetched `$how` from the
/// pool (`read`) or the writer (`write`). A read that failed because the server had closed its
/// connection (a restart) runs once more, on a connection checked first: reads are safe to
/// repeat. A write is not (it may have been committed before the connection broke).
macro_rules! one_statement {
    (read, $query:ident, $db:expr, $how:ident, $sql:expr $(, $bind:expr)*) => {
        $crate::infra::sql::with_db!($db, |pool| {
            let mut retried = false;
            loop {
                let result = sqlx::$query($crate::infra::sql::Backend::pick(pool, $sql))
                    $(.bind($bind))*
                    .$how(pool)
                    .await;
                match result {
                    Err(err) if !retried && $crate::infra::db::closed_by_server(&err) => {
                        $crate::infra::db::distrust_pooled_connections();
                        retried = true;
                    }
                    result => break result?,
                }
            }
        })
    };
    (write, $query:ident, $db:expr, $how:ident, $sql:expr $(, $bind:expr)*) => {
        $crate::infra::sql::with_db!($db, |pool| {
            sqlx::$query($crate::infra::sql::Backend::pick(pool, $sql))
                $(.bind($bind))*
                .$how(&*$crate::infra::sql::Backend::writer(pool))
                .await?
        })
    };
}
pub(crate) use one_statement;

/// `fetch!(db, fetch_all, SQL, binds…)`: one read, its rows as the caller's type (`query_as`);
/// `fetch_all`, `fetch_optional` or `fetch_one`.
macro_rules! fetch {
    ($db:expr, $how:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::infra::sql::one_statement!(read, query_as, $db, $how, $sql $(, $bind)*)
    };
}
pub(crate) use fetch;

/// [`fetch!`] of one column (`query_scalar`).
macro_rules! fetch_scalar {
    ($db:expr, $how:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::infra::sql::one_statement!(read, query_scalar, $db, $how, $sql $(, $bind)*)
    };
}
pub(crate) use fetch_scalar;

/// [`fetch!`] for a write that returns rows (`… RETURNING`), on the writer.
macro_rules! returning {
    ($db:expr, $how:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::infra::sql::one_statement!(write, query_as, $db, $how, $sql $(, $bind)*)
    };
}
pub(crate) use returning;

/// [`returning!`] of one column.
macro_rules! returning_scalar {
    ($db:expr, $how:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::infra::sql::one_statement!(write, query_scalar, $db, $how, $sql $(, $bind)*)
    };
}
pub(crate) use returning_scalar;

/// `execute!(db, SQL, binds…)`: one write on the writer; how many rows it changed.
macro_rules! execute {
    ($db:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::infra::sql::with_db!($db, |pool| {
            sqlx::query($crate::infra::sql::Backend::pick(pool, $sql))
                $(.bind($bind))*
                .execute(&*$crate::infra::sql::Backend::writer(pool))
                .await?
                .rows_affected()
        })
    };
}
pub(crate) use execute;

/// `execute_in!(tx, SQL, binds…)`: one statement inside the transaction `tx`; how many rows it
/// changed.
macro_rules! execute_in {
    ($tx:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        sqlx::query($sql)
            $(.bind($bind))*
            .execute(&mut *$tx)
            .await?
            .rows_affected()
    };
}
pub(crate) use execute_in;

/// How many rows to read for a page of `first`: one more, which says whether another page
/// follows (see [`page_of`]).
pub fn page_limit(first: usize) -> i64 {
    i64::try_from(first).map_or(i64::MAX, |n| n.saturating_add(1))
}

/// A page read with [`page_limit`]: its first `first` rows, and whether more follow.
pub fn page_of<T>(mut rows: Vec<T>, first: usize) -> (Vec<T>, bool) {
    let more = rows.len() > first;
    rows.truncate(first);
    (rows, more)
}

/// A statement in each backend's words, for the few places where they differ; a body run by
/// [`with_db!`] takes its backend's with [`Backend::pick`].
#[derive(Clone, Copy, Debug)]
pub struct Sql {
    pub postgres: &'static str,
    pub sqlite: &'static str,
}

/// A statement both backends accept as it is.
impl From<&'static str> for Sql {
    fn from(both: &'static str) -> Self {
        Sql {
            postgres: both,
            sqlite: both,
        }
    }
}

/// `in_ids!("SELECT … WHERE user_id", 1, " ORDER BY …")`: the statement testing a column against
/// the list of ids bound as parameter `$1` (an [`Ids`]).
macro_rules! in_ids {
    ($head:expr, $n:literal, $tail:expr) => {
        $crate::infra::sql::Sql {
            postgres: ::const_format::concatcp!($head, " = ANY($", stringify!($n), ")", $tail),
            sqlite: ::const_format::concatcp!(
                $head,
                " IN (SELECT unhex(value) FROM json_each($",
                stringify!($n),
                "))",
                $tail
            ),
        }
    };
}
pub(crate) use in_ids;

/// `for_update!("SELECT … WHERE id = $1", "OF t")`: the statement, locking the rows it reads on
/// PostgreSQL (`FOR UPDATE OF t`). SQLite runs it inside a write transaction, whose lock covers
/// the whole database.
macro_rules! for_update {
    ($sql:expr) => {
        $crate::infra::sql::Sql {
            postgres: ::const_format::concatcp!($sql, " FOR UPDATE"),
            sqlite: $sql,
        }
    };
    ($sql:expr, $of:literal) => {
        $crate::infra::sql::Sql {
            postgres: ::const_format::concatcp!($sql, " FOR UPDATE ", $of),
            sqlite: $sql,
        }
    };
}
pub(crate) use for_update;

/// What a store's body needs from its backend's pool.
pub trait Backend {
    type Database: Database;

    /// Starts a transaction that will write (on SQLite, holding the write lock from its first
    /// statement, on the single writer connection).
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Database>, sqlx::Error>> + Send;

    /// The pool single-statement writes go through (SQLite's single writer, so they queue with
    /// the write transactions; PostgreSQL's pool itself).
    fn writer(&self) -> Cow<'_, sqlx::Pool<Self::Database>>;

    /// This backend's text of `sql`.
    fn pick(&self, sql: impl Into<Sql>) -> &'static str;
}

impl Backend for PgPool {
    type Database = Postgres;

    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        self.begin()
    }

    fn writer(&self) -> Cow<'_, PgPool> {
        Cow::Borrowed(self)
    }

    fn pick(&self, sql: impl Into<Sql>) -> &'static str {
        sql.into().postgres
    }
}

impl Backend for SqlitePool {
    type Database = Sqlite;

    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        begin_write(self)
    }

    fn writer(&self) -> Cow<'_, SqlitePool> {
        Cow::Owned(sqlite_writer(self))
    }

    fn pick(&self, sql: impl Into<Sql>) -> &'static str {
        sql.into().sqlite
    }
}

/// `in_both_transactions!(impl Trait { async fn …(&mut self, …) { … } })`: implements a trait
/// for a write transaction of either backend with one body, as [`with_db!`] runs one body on
/// either pool. This is how a store offers what it writes to another store's transaction (a
/// moderator's action that also removes a photo runs the profile store's `remove_photo`); inside,
/// `let tx = &mut **self;` is the connection that [`execute_in!`] and `fetch_*(&mut *tx)` use.
macro_rules! in_both_transactions {
    (impl $trait:path { $($body:tt)* }) => {
        impl $trait for sqlx::Transaction<'_, sqlx::Postgres> {
            $($body)*
        }
        impl $trait for sqlx::Transaction<'_, sqlx::Sqlite> {
            $($body)*
        }
    };
}
pub(crate) use in_both_transactions;

/// What a store's body needs from its backend's write transaction.
pub trait WriteTx {
    /// Waits for, and holds until the end of the transaction, the lock on `key`, so that
    /// transactions about the same thing queue: a transaction-scoped advisory lock on
    /// PostgreSQL; nothing on SQLite, whose write transaction holds the one write lock already.
    fn lock_key(&mut self, key: i64) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Lets this transaction commit without waiting for the WAL flush (PostgreSQL's
    /// `synchronous_commit = off`, this transaction only): a crash may lose the last fraction
    /// of a second of such transactions — all of one or none of it — in exchange for not paying
    /// an fsync each. SQLite (WAL, `synchronous = NORMAL`) commits that way already.
    fn relax_durability(&mut self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl WriteTx for Transaction<'_, Postgres> {
    async fn lock_key(&mut self, key: i64) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut **self)
            .await?;
        Ok(())
    }

    async fn relax_durability(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut **self)
            .await?;
        Ok(())
    }
}

impl WriteTx for Transaction<'_, Sqlite> {
    async fn lock_key(&mut self, _key: i64) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn relax_durability(&mut self) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// A timestamp as each backend stores it: `timestamptz` on PostgreSQL; on SQLite the fixed-width
/// UTC text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) that sorts in time order. Both read back as
/// `DateTime<Utc>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ts(pub DateTime<Utc>);

impl Type<Postgres> for Ts {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <str as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'_, Sqlite>>::encode(sqlite_ts(self.0), buf)
    }
}

/// A list of ids bound as one parameter, whatever its length: a `uuid[]` on PostgreSQL, a JSON
/// array of hex strings on SQLite. Test against it with [`in_ids!`].
#[derive(Clone, Copy, Debug)]
pub struct Ids<'a>(pub &'a [Uuid]);

impl Type<Postgres> for Ids<'_> {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <Vec<Uuid> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Ids<'_> {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <&[Uuid] as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Type<Sqlite> for Ids<'_> {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <str as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for Ids<'_> {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'_, Sqlite>>::encode(id_list(self.0), buf)
    }
}
