//! A real OTLP/HTTP trace receiver: accepts `POST /v1/traces` with a protobuf
//! `ExportTraceServiceRequest`, decodes it, and keeps every span for the test to look at.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

/// One span as the receiver decoded it.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    pub service: String,
    pub attributes: HashMap<String, String>,
    /// Unix nanoseconds.
    pub start_ns: u64,
    pub end_ns: u64,
}

type Spans = Arc<Mutex<Vec<ReceivedSpan>>>;

/// The receiver's state: what it got, and how many more requests it refuses.
#[derive(Clone, Default)]
struct Shared {
    spans: Spans,
    refuse: Arc<std::sync::atomic::AtomicUsize>,
}

pub struct Receiver {
    /// The traces URL to export to.
    pub url: String,
    spans: Spans,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

async fn receive(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    use std::sync::atomic::Ordering;
    if shared
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::BAD_REQUEST;
    }
    let spans = shared.spans;
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut received = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                    service: service.clone(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                            )
                        })
                        .collect(),
                });
            }
        }
    }
    spans.lock().expect("spans").extend(received);
    StatusCode::OK
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::refusing(0).await
    }

    /// A receiver that refuses its first `n` requests (as a collector that rejects a batch).
    pub async fn refusing(n: usize) -> Receiver {
        let shared = Shared::default();
        shared.refuse.store(n, std::sync::atomic::Ordering::SeqCst);
        let spans = shared.spans.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver port");
        let url = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/v1/traces", post(receive))
            .with_state(shared);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .ok();
        });
        Receiver {
            url,
            spans,
            _shutdown: shutdown,
        }
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans").clone()
    }

    /// When `PUPMATCH_TRACE_PICTURES` names a directory, saves the spans of `trace_id` there
    /// as `<name>.json`, for `scripts/trace-picture.py` to draw (the picture of a trace in
    /// `docs/operations.md` is made this way).
    pub async fn save_trace(&self, trace_id: &str, name: &str) {
        let Ok(dir) = std::env::var("PUPMATCH_TRACE_PICTURES") else {
            return;
        };
        // The last spans of the request (it ends after its answer) come in the next batch.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let spans: Vec<serde_json::Value> = self
            .spans()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .map(|s| {
                serde_json::json!({
                    "spanId": s.span_id,
                    "parentSpanId": s.parent_span_id,
                    "name": s.name,
                    "kind": s.kind,
                    "startNs": s.start_ns,
                    "endNs": s.end_ns,
                    "attributes": s.attributes,
                })
            })
            .collect();
        let path = std::path::Path::new(&dir).join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&spans).expect("json"))
            .expect("trace saved");
    }

    /// Waits (up to 15 s) until the spans received satisfy `done`; returns them.
    pub async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "never received {what}; got {:#?}",
                spans
                    .iter()
                    .map(|s| (&s.name, &s.trace_id, &s.parent_span_id))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
