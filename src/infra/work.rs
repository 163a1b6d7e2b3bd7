//! Bounded CPU- and memory-heavy work (image decoding, password hashing).
//!
//! Each kind of work passes a [`WorkGate`]: at most `slots` jobs run at once (sized from the
//! cores), and each job first reserves the memory it will need from a shared budget. A job that
//! would wait longer than the gate's limit is refused with 503 `SERVICE_UNAVAILABLE` and a
//! `Retry-After`, instead of queueing without end while the process grows: forty 40-megapixel
//! uploads at once used to take a server to 11.6 GiB.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::error::ApiError;

const MIB: u64 = 1024 * 1024;

/// A bounded pool for one kind of blocking work.
#[derive(Clone)]
pub struct WorkGate {
    name: &'static str,
    slots: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    memory_mib: u32,
    max_wait: Duration,
}

impl WorkGate {
    /// `slots` jobs at once within `memory_mib` MiB; a job waits at most `max_wait`.
    pub fn new(name: &'static str, slots: usize, memory_mib: u32, max_wait: Duration) -> Self {
        WorkGate {
            name,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            memory: Arc::new(Semaphore::new(memory_mib.max(1) as usize)),
            memory_mib: memory_mib.max(1),
            max_wait,
        }
    }

    /// Runs `work` on the blocking pool once a slot and `memory_bytes` of the budget are free
    /// (a job larger than the whole budget takes all of it); SERVICE_UNAVAILABLE when that
    /// would take longer than the gate's limit. The reservation lasts until `work` returns,
    /// even if the caller has gone.
    pub async fn run<T, F>(&self, memory_bytes: u64, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // One span for the wait and the work: image processing or password hashing.
        let span = tracing::info_span!(
            "work",
            otel.name = %format_args!("work {}", self.name),
            work.kind = self.name,
            work.memory_bytes = memory_bytes,
        );
        self.run_within(memory_bytes, work).instrument(span).await
    }

    async fn run_within<T, F>(&self, memory_bytes: u64, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let mib = u32::try_from(memory_bytes.div_ceil(MIB))
            .unwrap_or(u32::MAX)
            .clamp(1, self.memory_mib);
        let reserve = async {
            let memory = self.memory.clone().acquire_many_owned(mib).await;
            let slot = self.slots.clone().acquire_owned().await;
            (memory, slot)
        };
        let (memory, slot) = match tokio::time::timeout(self.max_wait, reserve).await {
            Ok((Ok(memory), Ok(slot))) => (memory, slot),
            Ok(_) => {
                return Err(ApiError::Internal(anyhow::anyhow!(
                    "the {} gate is closed",
                    self.name
                )));
            }
            Err(_) => {
                metrics::counter!("work_refused_total", "kind" => self.name).increment(1);
                return Err(ApiError::ServiceUnavailable(
                    self.max_wait.max(Duration::from_secs(1)),
                ));
            }
        };
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop((memory, slot));
            out
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{} task failed: {e}", self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_waits_for_memory_and_is_refused_past_the_limit() {
        let gate = WorkGate::new("test", 4, 10, Duration::from_millis(100));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let big = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.run(10 * MIB, move || {
                    started_tx.send(()).expect("send");
                    release_rx.recv().expect("release");
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().expect("started"))
            .await
            .expect("join");
        // The whole budget is taken: a small job cannot get in within the limit.
        let refused = gate.run(MIB, || ()).await.expect_err("refused");
        assert!(matches!(refused, ApiError::ServiceUnavailable(_)));
        release_tx.send(()).expect("release");
        big.await.expect("join").expect("ran");
        gate.run(MIB, || ()).await.expect("room again");
    }

    #[tokio::test]
    async fn at_most_slots_jobs_run_at_once() {
        let gate = WorkGate::new("test", 2, 1000, Duration::from_secs(10));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    gate.run(MIB, move || {
                        let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for job in jobs {
            job.await.expect("join").expect("ran");
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
