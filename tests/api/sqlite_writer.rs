//! SQLite has one writer: every write in the process queues for the thread of its one write
//! connection, so the server gives that thread priority over the request threads where the
//! operating system lets it.

use crate::helpers::Backend;
use crate::helpers::process::serve_with;

/// The name and nice value of each thread of process `pid`.
fn threads(pid: u32) -> Vec<(String, i32)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the server's threads")
        .flatten()
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // "tid (name) state ppid …": the nice value is the 19th field, the 17th after the
            // name (which may hold spaces).
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_string();
            let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
            Some((name, nice))
        })
        .collect()
}

/// Whether this process holds `CAP_SYS_NICE` (raising a priority needs it), and so the server
/// it starts.
fn may_raise_priorities() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 23) != 0)
}

#[tokio::test]
async fn the_writer_thread_runs_ahead_of_the_request_threads_sqlite() {
    let mut server = serve_with(
        Backend::Sqlite,
        &[("PUPMATCH_LOG", "info,pupmatch::infra::db=debug")],
    )
    .await;
    let threads = threads(server.process.id().expect("running"));
    let _ = server.process.kill().await;
    // The server tried, and says how it went: a server that never looked for its writer thread
    // says neither.
    let raised = server.log.contains("SQLite's writer runs ahead");
    let kept = server
        .log
        .contains("SQLite's writer keeps the default priority");
    assert!(
        raised || kept,
        "no word of the writer's priority:\n{}",
        server.log
    );

    let sqlite: Vec<i32> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("sqlx-sqlite"))
        .map(|(_, nice)| *nice)
        .collect();
    assert!(
        !sqlite.is_empty(),
        "SQLite's connections run on threads of their own: {threads:?}"
    );
    let ahead = sqlite.iter().filter(|nice| **nice < 0).count();
    assert_eq!(raised, may_raise_priorities(), "{}", server.log);
    if may_raise_priorities() {
        assert_eq!(ahead, 1, "only the writer runs ahead: {threads:?}");
        assert!(sqlite.contains(&-10), "{threads:?}");
    } else {
        assert_eq!(ahead, 0, "{threads:?}");
    }
    assert!(
        threads
            .iter()
            .filter(|(name, _)| !name.starts_with("sqlx-sqlite"))
            .all(|(_, nice)| *nice == 0),
        "the request threads keep the default priority: {threads:?}"
    );
}
