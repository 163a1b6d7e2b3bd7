//! Database pools for both backends, and the embedded migrations.
//!
//! `PUPMATCH_DATABASE_URL` picks the backend: `postgres://…` (PostGIS, scale-out) or `sqlite://…`
//! (embedded). Each domain's store holds a [`Db`] and writes its statements once for both
//! (see [`super::sql`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::error::StoreError;

/// Longest a PostgreSQL query waits for a pooled connection.
pub const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(800);

/// Longest startup waits for PostgreSQL to accept the first connection.
const PG_STARTUP_WAIT: Duration = Duration::from_secs(10);

/// A pooled PostgreSQL connection idle for this long is checked before it is handed out.
const PG_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// After a connection turned out closed by the server, every pooled connection is checked
/// before it is handed out for this long: a restarting server closed its siblings too.
const PG_DISTRUST_FOR: Duration = Duration::from_secs(5);

/// Until when (milliseconds since [`process_start`]) pooled connections are distrusted.
static DISTRUST_UNTIL_MS: AtomicU64 = AtomicU64::new(0);

fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn millis_since_start() -> u64 {
    u64::try_from(process_start().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Whether `err` says the server closed the connection the statement was sent on (it was
/// stopped or restarted: 57P01/57P02, or the socket broke): the statement did not run to
/// completion on that connection, and a fresh connection may well work.
pub fn closed_by_server(err: &sqlx::Error) -> bool {
    use std::io::ErrorKind;
    match err {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P01" | "57P02")),
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::BrokenPipe
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::NotConnected
        ),
        _ => false,
    }
}

/// A connection was found closed by the server: check every pooled one before use for a
/// while, so a retry gets a live (or a new) connection rather than the next dead one.
pub fn distrust_pooled_connections() {
    let until = millis_since_start()
        .saturating_add(u64::try_from(PG_DISTRUST_FOR.as_millis()).unwrap_or(u64::MAX));
    DISTRUST_UNTIL_MS.fetch_max(until, Ordering::Relaxed);
}

fn pooled_connections_distrusted() -> bool {
    millis_since_start() < DISTRUST_UNTIL_MS.load(Ordering::Relaxed)
}

/// sqlx's errors as a store reports them; a connection the server closed makes every pooled
/// connection suspect for a while (see [`distrust_pooled_connections`]).
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        // Everything that says "the connection to the database is not working", not "this
        // statement is wrong": no connection in time, a broken socket, a failed TLS handshake,
        // or a peer that answered with something that is not PostgreSQL (a proxy or load
        // balancer in front of a server that is down accepts, then closes at once — sqlx reports
        // that as a protocol error while connecting).
        // PostgreSQL restarting says so itself: it ends connections (57P01 admin shutdown,
        // 57P02 crash shutdown), refuses new ones while it starts or stops (57P03), or the
        // connection fails (class 08).
        let restarting = |err: &sqlx::Error| match err {
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
            _ => false,
        };
        let unreachable = restarting(&err)
            || matches!(
                err,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::WorkerCrashed
            );
        if closed_by_server(&err) {
            distrust_pooled_connections();
        }
        let err = anyhow::Error::new(err).context("database query failed");
        if unreachable {
            StoreError::Unavailable(err)
        } else {
            StoreError::Other(err)
        }
    }
}

/// A connection pool to one of the two supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Db {
    /// Sets `db_pool_connections{state="idle|used"}` from the pool as it is now.
    pub fn report_pool(&self) {
        let (size, idle) = match self {
            Db::Postgres(pool) => (pool.size(), pool.num_idle()),
            Db::Sqlite(pool) => (pool.size(), pool.num_idle()),
        };
        let idle = idle as f64;
        metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
        metrics::gauge!("db_pool_connections", "state" => "used")
            .set((f64::from(size) - idle).max(0.0));
    }

    /// Connects (creating the SQLite file and its folder when missing). `ca_file` is the CA
    /// PostgreSQL's certificate must chain to; given without an `sslmode` in the URL it means
    /// `verify-full`, and with `sslmode=require` the chain is verified (`verify-ca`).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<Db> {
        crate::infra::statements::set_db_system(if url.starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgresql"
        });
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("Failed to parse the SQLite URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // Checkpoints run in the background (below), never inside a writer's commit.
                .pragma("wal_autocheckpoint", "0")
                // Statement journals (a batch of likes writes many pages in one statement) and
                // sorts stay in memory instead of a temporary file made and deleted each time.
                .pragma("temp_store", "memory");
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("Failed to create {}", parent.display()))?;
            }
            // An SQLite connection is a file handle: it cannot go stale, so no ping before use.
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.clamp(1, 16))
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
                .await
                .context("Failed to open the SQLite database")?;
            // One connection for write transactions: writers queue for it in order instead of
            // polling SQLite's lock through its busy handler, which sleeps.
            let file = options.get_filename().to_path_buf();
            let shared = sqlite_writers()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&file)
                .is_some_and(|w| !w.is_closed());
            if !shared {
                let threads_before = sqlite_threads();
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options.clone())
                    .await
                    .context("Failed to open the SQLite database")?;
                run_ahead_of_requests(&threads_before);
                sqlite_writers()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(file, writer);
                tokio::spawn(checkpoint_wal(pool.clone()));
            }
            Ok(Db::Sqlite(pool))
        } else {
            let (options, target) = pg_connect_options(url, ca_file)?;
            // A request waits at most this long for a connection: with PostgreSQL gone it gets
            // 503 SERVICE_UNAVAILABLE within a second instead of hanging.
            let pool_options = pg_pool_options(max_connections, PG_ACQUIRE_TIMEOUT);
            let pool = connect_pg(pool_options, options).await.map_err(|e| {
                if is_tls_failure(&e) {
                    anyhow::anyhow!(
                        "Failed to open an encrypted connection to PostgreSQL at {target}: \
                             {e}. The server's certificate must chain to the CA \
                             (PUPMATCH_DATABASE_CA_FILE, else the system's) and, with \
                             sslmode=verify-full, name the host of PUPMATCH_DATABASE_URL"
                    )
                } else {
                    anyhow::Error::new(e)
                        .context(format!("Failed to connect to PostgreSQL at {target}"))
                }
            })?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Applies the embedded migrations of this backend (idempotent).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres")
                .run(pool)
                .await
                .context("Failed to migrate PostgreSQL")?,
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite")
                .run(pool)
                .await
                .context("Failed to migrate SQLite")?,
        }
        Ok(())
    }

    /// What the server should say about the database's own settings at start-up: PostgreSQL
    /// without autovacuum never refreshes its planner statistics, so a plan made while a table
    /// was small keeps reading it whole as it grows (the like and message functions are immune;
    /// the other statements are not).
    pub async fn setting_warnings(&self) -> anyhow::Result<Vec<String>> {
        let Db::Postgres(pool) = self else {
            return Ok(Vec::new());
        };
        let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
            .fetch_one(pool)
            .await?;
        Ok(if autovacuum == "on" {
            Vec::new()
        } else {
            vec![
                "PostgreSQL's autovacuum is off: the planner's statistics will not follow the \
                 tables as they grow, and queries planned while a table was small will keep \
                 reading it whole; turn autovacuum on, or run ANALYZE regularly"
                    .to_string(),
            ]
        })
    }

    /// A trivial round trip, for `/readyz`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Db::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Db::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Whether the pool was closed (the application stopped).
    pub fn is_closed(&self) -> bool {
        match self {
            Db::Postgres(pool) => pool.is_closed(),
            Db::Sqlite(pool) => pool.is_closed(),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite(pool) => {
                let writer = sqlite_writers()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(pool.connect_options().get_filename());
                if let Some(writer) = writer {
                    writer.close().await;
                }
                pool.close().await;
            }
        }
    }

    /// `"postgres"` or `"sqlite"`, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }
}

/// How to reach the PostgreSQL server at `url` (with the CA file and the `sslmode` as libpq
/// would read them), and `host:port (sslmode=…)` to name it in errors.
pub fn pg_connect_options(
    url: &str,
    ca_file: Option<&Path>,
) -> anyhow::Result<(PgConnectOptions, String)> {
    crate::infra::tls::install_crypto_provider();
    let mut options = PgConnectOptions::from_str(url)
        .context("Failed to parse the PostgreSQL URL")?
        // Parallel plans cost ~40 ms of worker start-up on small, index-driven queries.
        .options([("max_parallel_workers_per_gather", "0")]);
    if let Some(ca) = ca_file {
        options = options.ssl_root_cert(ca);
    }
    if let Some(mode) = crate::config::tls::effective_pg_ssl_mode(url, ca_file.is_some()) {
        options = options.ssl_mode(
            mode.parse::<PgSslMode>()
                .context("PUPMATCH_DATABASE_URL: unknown sslmode")?,
        );
    }
    let target = describe_pg(&options, ca_file);
    Ok((options, target))
}

/// A PostgreSQL pool of up to `max_connections` that opens them as needed and hands one out
/// within `acquire_timeout` or fails.
pub fn pg_pool_options(max_connections: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .test_before_acquire(false)
        // Every acquire reports its wait (`db_pool_wait_seconds`, see `infra::statements`).
        .acquire_time_level(log::LevelFilter::Debug)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                // A connection that has just been used is alive: checking it would be one more
                // round trip per statement. One idle for a while may have been dropped by the
                // server or a proxy; a failed check discards it and the pool hands out another.
                if meta.idle_for >= PG_PING_AFTER_IDLE || pooled_connections_distrusted() {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .acquire_timeout(acquire_timeout)
}

/// Whether connecting failed in the TLS handshake (sqlx reports a refused certificate as I/O).
fn is_tls_failure(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

/// Opens the pool with its first connection. A server that is slow to answer (starting up, or
/// busy) gets [`PG_STARTUP_WAIT`] rather than a request's [`PG_ACQUIRE_TIMEOUT`]; a refusal (bad
/// credentials, TLS, no such database) fails at once.
async fn connect_pg(
    pool_options: PgPoolOptions,
    options: PgConnectOptions,
) -> Result<PgPool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + PG_STARTUP_WAIT;
    loop {
        match pool_options.clone().connect_with(options.clone()).await {
            Err(e @ (sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)))
                if tokio::time::Instant::now() < deadline && !is_tls_failure(&e) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            result => return result,
        }
    }
}

/// `host:port (sslmode=…, CA file …)`, for startup errors: what was tried, without secrets.
fn describe_pg(options: &PgConnectOptions, ca_file: Option<&Path>) -> String {
    let mode = match options.get_ssl_mode() {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    };
    let ca = ca_file.map_or_else(String::new, |p| format!(", CA file {}", p.display()));
    format!(
        "{}:{} (sslmode={mode}{ca})",
        options.get_host(),
        options.get_port()
    )
}

/// Copies a SQLite database's write-ahead log back into the database file every half second,
/// until the pool closes. SQLite would otherwise do it inside whichever commit crosses 1000
/// pages, holding every queued writer up for the checkpoint's writes and fsyncs; a passive
/// checkpoint on a reader connection runs beside the writer instead.
async fn checkpoint_wal(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %err, "SQLite checkpoint failed");
        }
    }
}

/// Starts a SQLite write transaction holding the write lock from its first statement, so two
/// writers queue on `busy_timeout` instead of failing to upgrade a read lock.
pub async fn begin_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    sqlite_writer(pool).begin_with("BEGIN IMMEDIATE").await
}

/// The nice value of SQLite's writer thread, ahead of the request threads (0): every write in the
/// process queues for that one thread, so a writer preempted by request work holds them all up.
#[cfg(target_os = "linux")]
const SQLITE_WRITER_NICE: i32 = -10;

/// The ids of this process's threads that run SQLite connections (one each).
#[cfg(target_os = "linux")]
fn sqlite_threads() -> std::collections::HashSet<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Default::default();
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("sqlx-sqlite"))
        })
        .filter_map(|task| task.file_name().to_str()?.parse().ok())
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn sqlite_threads() -> std::collections::HashSet<i32> {
    Default::default()
}

/// Gives the SQLite threads started since `before` (the writer connection's) priority over the
/// request threads, where the process may (raising a priority needs `CAP_SYS_NICE`, or root).
#[cfg(target_os = "linux")]
fn run_ahead_of_requests(before: &std::collections::HashSet<i32>) {
    for thread in sqlite_threads().difference(before) {
        let Some(pid) = rustix::process::Pid::from_raw(*thread) else {
            continue;
        };
        match rustix::process::setpriority_process(Some(pid), SQLITE_WRITER_NICE) {
            Ok(()) => tracing::debug!(
                thread,
                nice = SQLITE_WRITER_NICE,
                "SQLite's writer runs ahead"
            ),
            Err(err) => tracing::debug!(
                thread,
                error = %err,
                "SQLite's writer keeps the default priority (raising it needs CAP_SYS_NICE)"
            ),
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn run_ahead_of_requests(_before: &std::collections::HashSet<i32>) {}

/// The SQLite databases' writer pools (one connection each), by file.
fn sqlite_writers() -> &'static std::sync::Mutex<HashMap<PathBuf, SqlitePool>> {
    static WRITERS: OnceLock<std::sync::Mutex<HashMap<PathBuf, SqlitePool>>> = OnceLock::new();
    WRITERS.get_or_init(Default::default)
}

/// The single-connection pool for writes to `pool`'s database (the pool itself if it has none).
/// Hot single-statement writes use it too, so they queue with the write transactions.
pub fn sqlite_writer(pool: &SqlitePool) -> SqlitePool {
    sqlite_writers()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(pool.connect_options().get_filename())
        .cloned()
        .unwrap_or_else(|| pool.clone())
}

/// Ids as one JSON array of hex strings (`["0193…", …]`): SQLite statements take a list of any
/// length as a single parameter with `IN (SELECT unhex(value) FROM json_each(?))`.
pub fn id_list(ids: &[uuid::Uuid]) -> String {
    let hex: Vec<String> = ids.iter().map(|id| id.simple().to_string()).collect();
    serde_json::to_string(&hex).unwrap_or_else(|_| "[]".into())
}
