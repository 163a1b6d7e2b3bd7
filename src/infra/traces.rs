//! OpenTelemetry traces, exported with OTLP over HTTP/protobuf, configured the way every
//! OpenTelemetry SDK is: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! plus `/v1/traces`), `OTEL_SERVICE_NAME` (default `pupmatch`), `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (default parent-based, ratio 1.0 in
//! development and 0.01 in production), `OTEL_SDK_DISABLED`. With no endpoint nothing is
//! exported and no span is made for export.
//!
//! A collector that is slow or gone never slows a request: finished spans go into a bounded
//! queue (dropped, and counted in `otel_spans_dropped_total`, when it is full), which a thread
//! of its own sends in batches.
//!
//! Trace context crosses process boundaries as W3C `traceparent`/`tracestate`: from a client
//! or proxy into a request ([`parent_from_headers`]), and from a request into the bus messages
//! it publishes ([`current_traceparent`], [`parent_from_traceparent`]), so a message sent
//! through one instance and delivered by another is one trace.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use crate::config::traces::{SamplerSetting, TraceSettings};

/// Spans waiting to be sent; beyond it new spans are dropped (and counted).
const QUEUE: usize = 4096;
/// Spans sent in one request to the collector.
const BATCH: usize = 512;
/// Longest a finished span waits for its batch to fill.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Longest one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracer provider sending to `settings.endpoint`. Keep it until exit; shutting it down
/// sends what is queued.
pub fn provider(settings: &TraceSettings) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    exporter.set_resource(&resource);
    Ok(SdkTracerProvider::builder()
        // Which traces are recorded is decided at each root span (see `sampling`): what
        // reaches the SDK is recorded.
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(resource)
        .with_span_processor(BoundedExport::start(exporter))
        .build())
}

/// This service's tracer from `provider`.
pub fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("pupmatch")
}

/// A span processor that never blocks the span's thread: finished spans go into a bounded
/// queue, which a thread of its own (with a runtime of its own, so a busy or stopped server
/// runtime does not hold exports up) sends in batches.
#[derive(Debug)]
struct BoundedExport {
    queue: std::sync::mpsc::SyncSender<Command>,
}

enum Command {
    Span(Box<SpanData>),
    Flush(std::sync::mpsc::SyncSender<()>),
}

impl BoundedExport {
    fn start<E: SpanExporter + 'static>(exporter: E) -> BoundedExport {
        let (queue, spans) = std::sync::mpsc::sync_channel::<Command>(QUEUE);
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        tracing::error!(error = %err, "traces are not exported");
                        return;
                    }
                };
                let mut batch = Vec::with_capacity(BATCH);
                // When the oldest span of the batch must be sent, however busy the queue is.
                let mut due = std::time::Instant::now();
                loop {
                    let command = if batch.is_empty() {
                        let command = spans.recv().ok();
                        due = std::time::Instant::now() + BATCH_DELAY;
                        command
                    } else {
                        let wait = due.saturating_duration_since(std::time::Instant::now());
                        match spans.recv_timeout(wait) {
                            Ok(command) => Some(command),
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                                runtime.block_on(send(&exporter, &mut batch));
                                return;
                            }
                        }
                    };
                    match command {
                        Some(Command::Span(span)) => {
                            batch.push(*span);
                            if batch.len() < BATCH && std::time::Instant::now() < due {
                                continue;
                            }
                        }
                        Some(Command::Flush(done)) => {
                            runtime.block_on(send(&exporter, &mut batch));
                            let _ = done.send(());
                            continue;
                        }
                        None if batch.is_empty() => return,
                        None => {}
                    }
                    runtime.block_on(send(&exporter, &mut batch));
                }
            })
            .expect("a thread for the span exporter");
        BoundedExport { queue }
    }
}

async fn send<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let count = spans.len() as u64;
    match exporter.export(spans).await {
        Ok(()) => metrics::counter!("otel_spans_exported_total").increment(count),
        Err(err) => {
            metrics::counter!("otel_spans_dropped_total", "reason" => "export_failed")
                .increment(count);
            tracing::debug!(error = %err, spans = count, "spans not exported");
        }
    }
}

impl SpanProcessor for BoundedExport {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(Command::Span(Box::new(span))).is_err() {
            metrics::counter!("otel_spans_dropped_total", "reason" => "queue_full").increment(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.queue.send(Command::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(EXPORT_TIMEOUT * 2);
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's trace context from a request's `traceparent` and `tracestate` (an empty
/// context when there is none, or it is malformed).
pub fn parent_from_headers(headers: &axum::http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

struct MapCarrier(HashMap<String, String>);

impl Injector for MapCarrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

impl Extractor for MapCarrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The `traceparent` of the current span, to send along with work done elsewhere (a bus
/// message, a queued job); None when the current span is not being traced.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = MapCarrier(HashMap::new());
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.0.remove("traceparent")
}

/// The context a `traceparent` sent along with some work names as its parent.
pub fn parent_from_traceparent(traceparent: &str) -> Context {
    let carrier = MapCarrier(HashMap::from([(
        "traceparent".to_string(),
        traceparent.to_string(),
    )]));
    TraceContextPropagator::new().extract(&carrier)
}

/// Renames `span`'s trace span (a span made before its name was known, like a request's
/// before routing). Nothing when the span is not traced.
pub fn rename(span: &tracing::Span, name: String) {
    use opentelemetry::trace::TraceContextExt;
    let cx = span.context();
    let traced = cx.span();
    if traced.span_context().is_valid() {
        traced.update_name(name);
    }
}

/// Makes `span` a child of `parent` (when `parent` has a span).
pub fn adopt(span: &tracing::Span, parent: Context) {
    use opentelemetry::trace::TraceContextExt;
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips() {
        let parent =
            parent_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        use opentelemetry::trace::TraceContextExt;
        let span = parent.span();
        let cx = span.span_context();
        assert_eq!(
            cx.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(cx.is_sampled());
        assert!(
            !parent_from_traceparent("garbage")
                .span()
                .span_context()
                .is_valid()
        );
    }
}
