//! What an operator loads into their monitoring works against the real server: every metric
//! the Grafana dashboard (`deploy/grafana/pupmatch.json`) and the alerts
//! (`deploy/prometheus/alerts.yml`) name is exported by a server doing ordinary work, and a
//! real Prometheus (Debian's, installed by scripts/test.sh) scrapes two instances.
//!
//! The server here has everything a metric can come from: PostgreSQL with its streaming
//! replica (so this runs in the replica pair's group, `.config/nextest.toml`), Redis, traces
//! sent to a collector (that refuses one batch), and push through the FCM stand-in.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::chat::matched_pair;
use crate::helpers::fcm::FcmStandIn;
use crate::helpers::inbox::register_device;
use crate::helpers::otlp::Receiver;
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::{Backend, primary_db_with_replica, spawn_app, spawn_app_on};
use pupmatch::infra::traces::{SamplerSetting, TraceSettings};

/// PromQL's own words, which are not metric names.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "rate",
    "increase",
    "histogram_quantile",
    "topk",
    "max",
    "min",
    "avg",
    "count",
    "time",
    "and",
    "or",
    "unless",
    "by",
    "on",
    "without",
    "ignoring",
    "offset",
    "bool",
    "abs",
];

/// The metric names a PromQL expression reads (a histogram's `_bucket` series as the
/// histogram's name).
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Label matchers, ranges and quoted text hold no metric names.
    let mut plain = String::new();
    let (mut depth, mut quoted) = (0, false);
    for c in expr.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            _ if quoted || depth > 0 => {}
            '(' | ')' => plain.push_str(&format!(" {c} ")),
            _ => plain.push(c),
        }
    }
    let tokens: Vec<&str> = plain
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_:()".contains(c)))
        .filter(|t| !t.is_empty())
        .collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        let next = tokens.get(i + 1).copied();
        if matches!(token, "by" | "on" | "without" | "ignoring") && next == Some("(") {
            // A list of labels.
            while i < tokens.len() && tokens[i] != ")" {
                i += 1;
            }
        } else if token.starts_with(|c: char| c.is_ascii_alphabetic())
            && next != Some("(")
            && !PROMQL_WORDS.contains(&token)
        {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| token.strip_suffix(suffix))
                .unwrap_or(token);
            names.insert(base.to_string());
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (instance, le) (rate(db_pool_wait_seconds_bucket{x="a b"}[5m]))) > 0.05 and on (instance) sum(db_pool_connections{state="used"})"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["db_pool_connections".into(), "db_pool_wait_seconds".into()])
    );
    assert_eq!(
        metric_names("time() - max by (job) (jobs_last_success_timestamp_seconds) > 900"),
        BTreeSet::from(["jobs_last_success_timestamp_seconds".into()])
    );
}

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect(path)
}

/// Every PromQL expression of the dashboard and of the alerts.
fn expressions() -> Vec<(String, String)> {
    let dashboard: Value =
        serde_json::from_str(&repo("deploy/grafana/pupmatch.json")).expect("json");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            out.push((
                format!("dashboard: {}", panel["title"].as_str().unwrap_or("?")),
                target["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    // The alerts' `expr:` values (one line, or a block of indented lines after `expr: |`).
    let alerts = repo("deploy/prometheus/alerts.yml");
    let mut lines = alerts.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let mut expr = rest.trim().to_string();
        if expr == "|" {
            expr.clear();
            while let Some(next) = lines.peek() {
                if next.trim().is_empty() || next.len() - next.trim_start().len() <= indent {
                    break;
                }
                expr.push_str(next.trim());
                expr.push(' ');
                lines.next();
            }
        }
        out.push(("alerts".into(), expr));
    }
    out
}

/// The metric families a `/metrics` text declares.
fn exported(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_name_is_exported() {
    if runs_alone_elsewhere(Alone::ReplicaPair) {
        return;
    }
    let receiver = Receiver::refusing(1).await;
    let fcm = FcmStandIn::start().await;
    let (db, replica) = primary_db_with_replica().await;
    let traces = TraceSettings {
        endpoint: receiver.url.clone(),
        service_name: "pupmatch-test".into(),
        sampler: SamplerSetting {
            parent_based: true,
            ratio: 1.0,
        },
    };
    let app = spawn_app_on(db, |c| {
        c.database_replica_urls = vec![replica.clone()];
        c.traces = Some(traces.clone());
        fcm.configure(c);
    })
    .await;
    let _telemetry = pupmatch::infra::telemetry::init(&app.config).expect("telemetry");

    // Ordinary work: people match, one is offline (push: one device works, one is gone), then
    // online (live delivery); a request fails; discovery reads the replica; a job runs.
    let (alice, bob, conversation) = matched_pair(&app).await;
    register_device(&app, &bob, "phone-1").await;
    register_device(&app, &bob, "gone-1").await;
    app.send_message(&alice, &conversation, "are you up?")
        .await
        .data("sendMessage");
    let mut socket = app.ws(&bob).await;
    app.send_message(&alice, &conversation, "the park at 5?")
        .await
        .data("sendMessage");
    socket.recv().await;
    app.gql(None, "{ me { id } }", json!({})).await;
    app.gql(
        alice.token(),
        "{ recommendations(first: 5) { edges { node { profile { name } } } } }",
        json!({}),
    )
    .await;
    app.worker()
        .await
        .run(pupmatch::jobs::Job::Cleanup, 1)
        .await;

    let expected: BTreeSet<(String, String)> = expressions()
        .into_iter()
        .flat_map(|(source, expr)| {
            metric_names(&expr)
                .into_iter()
                .map(move |m| (m, source.clone()))
        })
        .collect();
    assert!(expected.len() > 20, "{expected:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let have = exported(&app.metrics().await);
        let missing: Vec<&(String, String)> =
            expected.iter().filter(|(m, _)| !have.contains(m)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "named but not exported: {missing:#?}\nexported: {have:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A real Prometheus scrapes two instances and answers a query for a PupMatch metric from each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_instance() {
    let app = spawn_app(Backend::Postgres).await;
    let other = app.spawn_sibling().await;
    app.gql(None, "{ __typename }", json!({})).await;
    other.gql(None, "{ __typename }", json!({})).await;
    let targets: Vec<String> = [&app, &other]
        .iter()
        .map(|a| a.address.trim_start_matches("http://").to_string())
        .collect();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pupmatch\n    static_configs:\n      - targets: [{}]\n",
            targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
        ),
    )
    .expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let _prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus runs (scripts/test.sh installs Debian's prometheus)");
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=sum%20by%20(instance)%20(graphql_operations_total)"
    );
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        if let Ok(res) = reqwest::get(&query).await
            && let Ok(body) = res.json::<Value>().await
        {
            let instances: BTreeSet<String> = body["data"]["result"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["metric"]["instance"].as_str().map(str::to_string))
                .collect();
            if targets.iter().all(|t| instances.contains(t)) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had both instances"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
