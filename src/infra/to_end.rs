//! Work that must not stop halfway because whoever asked for it went away.
//!
//! A request's future is dropped when its client disconnects (and a socket's frame handling when
//! its socket is let go). For a read that saves work; for a write it can stop between two steps
//! that belong together — a message stored but its recipient never told, a like recorded but
//! the match never announced. Writes run through [`run_to_end`] instead: in a task of their
//! own, which the caller awaits but cannot cancel.

use std::future::Future;

use tracing::Instrument;

/// Runs `work` in its own task (inside the caller's span, so its logs keep the request's id)
/// and returns its output; if the caller is dropped first, `work` still runs to its end. A
/// panic in `work` resumes in the caller.
pub async fn run_to_end<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    match tokio::spawn(work.in_current_span()).await {
        Ok(output) => output,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels a task: nobody waits for this answer any more.
        Err(_) => std::future::pending().await,
    }
}
