//! Logging (`tracing`), traces (OpenTelemetry, see [`super::traces`]), statement timings (see
//! [`super::statements`]) and metrics (Prometheus text at `/metrics`).
//!
//! Logging policy: dotted field names, a request id on every request span, and never an email,
//! password, token, message text, coordinate or photo byte in a log line. Spans follow the same
//! policy: ids, names and sizes, never what people wrote or where they are.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::sampling::Sampled;
use super::statements::Statements;
use super::traces;
use crate::config::{Config, LogFormat};

/// Keeps the trace exporter until the process ends; dropping it sends what is queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber: logs as configured, every SQL statement timed (and traced),
/// and spans exported when `config.traces` says where. Call once per process; a process that
/// has one already (tests that start several servers) keeps it.
pub fn init(config: &Config) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
    };
    let provider = config.traces.as_ref().map(traces::provider).transpose()?;
    let tracer = provider.as_ref().map(traces::tracer);
    // Only this server's own spans become trace spans (not every library's).
    // Each trace is decided at its root; the spans of traces not recorded never reach it.
    let spans = tracer
        .clone()
        .zip(config.traces.as_ref())
        .map(|(tracer, settings)| {
            let otel = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_tracked_inactivity(false)
                .with_threads(false);
            otel.with_filter(
                Targets::new()
                    .with_target("pupmatch", Level::INFO)
                    .and(Sampled::new(settings.sampler)),
            )
        });
    // sqlx reports every statement at DEBUG (a slow one at WARN).
    // It sees this server's spans too: a statement's span is a child of the one it ran in.
    let statements = Statements::new(tracer).with_filter(
        Targets::new()
            .with_target("sqlx::query", Level::DEBUG)
            .with_target("sqlx::pool::acquire", Level::DEBUG)
            .with_target("pupmatch", Level::INFO),
    );
    let installed = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(statements)
        .with(spans)
        .try_init();
    if installed.is_err() {
        // A subscriber is already installed (tests): keep it.
    }
    Ok(Telemetry { provider })
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. Every application instance in
/// one process (tests start several) reports into it.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let latency_buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            // Moderation's time from the first report to a decision: minutes to days.
            let decision_buckets = [
                60.0, 300.0, 900.0, 3600.0, 14_400.0, 43_200.0, 86_400.0, 259_200.0, 604_800.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&latency_buckets)
                .expect("the bucket list is not empty")
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "moderation_first_action_seconds".into(),
                    ),
                    &decision_buckets,
                )
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// Metric labels chosen by clients (GraphQL operation names), kept to a bounded set: the first
/// [`LabelSet::CAPACITY`] distinct plain names get a label of their own, anything after them or
/// not a plain name is `other`, and a request without a name is `anonymous`. A client sending
/// random names cannot grow the metrics without end.
#[derive(Default)]
pub struct LabelSet {
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl LabelSet {
    pub const CAPACITY: usize = 100;

    pub fn label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".into();
        };
        let plain = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain {
            return "other".into();
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(name) {
            return name.to_string();
        }
        if seen.len() < Self::CAPACITY {
            seen.insert(name.to_string());
            return name.to_string();
        }
        "other".into()
    }
}

#[cfg(test)]
mod tests {
    use super::LabelSet;

    #[test]
    fn operation_labels_are_bounded() {
        let labels = LabelSet::default();
        assert_eq!(labels.label(None), "anonymous");
        assert_eq!(labels.label(Some("Me")), "Me");
        assert_eq!(labels.label(Some("bad name!")), "other");
        for i in 0..500 {
            labels.label(Some(&format!("Op{i}")));
        }
        assert_eq!(
            labels.label(Some("Me")),
            "Me",
            "a known name keeps its label"
        );
        assert_eq!(labels.label(Some("Op499")), "other");
        assert_eq!(labels.label(Some("Op98")), "Op98");
    }
}
