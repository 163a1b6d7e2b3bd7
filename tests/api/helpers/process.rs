//! `pupmatch serve` as a process of its own, on a fresh database.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Backend, TestDb, redis_url};

/// Starts `pupmatch serve` on a fresh `backend` database, with more environment variables,
/// and waits until it listens.
pub async fn serve_with(backend: Backend, env: &[(&str, &str)]) -> Served {
    serve_on(backend, TestDb::create(backend).await, env).await
}

/// [`serve_with`] on a database made already.
pub async fn serve_on(backend: Backend, db: TestDb, env: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().expect("dir");
    let log_path = dir.path().join("server.log");
    let process = server_command(backend, &db, dir.path(), &log_path)
        .envs(env.iter().copied())
        .spawn()
        .expect("the binary starts");
    let log = wait_for_log(&log_path, "PupMatch is listening").await;
    Served {
        process,
        log,
        _db: db,
        _dir: dir,
    }
}

/// A `pupmatch serve` process (see [`server_command`]) on a fresh database, listening.
pub struct Served {
    pub process: tokio::process::Child,
    /// Its log up to its "listening" line.
    pub log: String,
    /// Dropped with the process (a database is removed when dropped).
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// `pupmatch serve` on `db` (with Redis on PostgreSQL), logging JSON into `log`, media under
/// `dir`, no jobs, listening on a free port.
pub fn server_command(
    backend: Backend,
    db: &TestDb,
    dir: &std::path::Path,
    log: &std::path::Path,
) -> tokio::process::Command {
    let log = std::fs::File::create(log).expect("log file");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pupmatch"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PUPMATCH_LISTEN", "127.0.0.1:0")
        .env("PUPMATCH_DATABASE_URL", db.url())
        .env("PUPMATCH_MEDIA_DIR", dir.join("media"))
        .env("PUPMATCH_LOG_FORMAT", "json")
        .env("PUPMATCH_JOBS_IN_SERVE", "false")
        .stdout(Stdio::from(log.try_clone().expect("log file")))
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    if backend == Backend::Postgres {
        command.env("PUPMATCH_REDIS_URL", redis_url()).env(
            "PUPMATCH_REDIS_PREFIX",
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        );
    }
    command
}

/// The server's base URL, from its "listening" log line.
pub async fn wait_for_address(log: &std::path::Path) -> String {
    let text = wait_for_log(log, "PupMatch is listening").await;
    let line = text
        .lines()
        .find(|l| l.contains("PupMatch is listening"))
        .expect("line");
    let value: Value = serde_json::from_str(line).expect("a JSON log line");
    format!("http://{}", value["address"].as_str().expect("address"))
}

/// The log once it contains `needle` (waits up to 20 s).
pub async fn wait_for_log(log: &std::path::Path, needle: &str) -> String {
    for _ in 0..400 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{needle:?} never appeared in the log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Why a test must have its process to itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Alone {
    /// It measures the process: its memory, its metrics, its statements, its trace exports
    /// (each held process-wide, so other tests' servers would count too).
    Measures,
    /// It pauses, stops or reconfigures the one PostgreSQL pair with a streaming replica, so
    /// no other such test may run meanwhile.
    ReplicaPair,
}

/// Under plain `cargo test`, where every test shares one process, runs the calling test again
/// in a process of its own (the test binary, `--exact` on this test) and returns true once it
/// passed there: the caller then returns. Returns false where the test already has its process
/// (under cargo-nextest, which runs each test in its own and serialises the replica pair's
/// tests as `.config/nextest.toml` says, or in that child): the caller goes on and runs.
pub fn runs_alone_elsewhere(why: Alone) -> bool {
    const CHILD: &str = "PUPMATCH_TEST_ALONE";
    if std::env::var_os("NEXTEST_RUN_ID").is_some() || std::env::var_os(CHILD).is_some() {
        return false;
    }
    // libtest names each test's thread after the test (except with one test thread, where
    // tests run one after another on `main` and nothing else runs beside them).
    let Some(name) = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(str::to_string)
    else {
        return false;
    };
    static REPLICA_PAIR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn =
        (why == Alone::ReplicaPair).then(|| REPLICA_PAIR.lock().unwrap_or_else(|e| e.into_inner()));
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let said = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    assert!(
        output.status.success(),
        "{name}, run alone in a process of its own, failed:\n{}\n{}",
        said(&output.stdout),
        said(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{name} did not run in its own process:\n{}",
        said(&output.stdout)
    );
    true
}
