//! Helpers shared by the benchmarks: `--name value` flags, percentile summaries and GraphQL calls.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Value, json};

/// The `--name value` pairs of the command line (others, like cargo's `--bench`, are ignored).
pub struct Flags(HashMap<String, String>);

impl Flags {
    pub fn parse() -> Flags {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let mut flags = HashMap::new();
        let mut i = 0;
        while i < argv.len() {
            match (argv[i].strip_prefix("--"), argv.get(i + 1)) {
                (Some(name), Some(value)) if !value.starts_with("--") => {
                    flags.insert(name.to_string(), value.clone());
                    i += 2;
                }
                _ => i += 1,
            }
        }
        Flags(flags)
    }

    /// `--name`'s value parsed, or `default`; exits with a message when it does not parse.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.0.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!("--{name}: cannot use {v:?}");
                std::process::exit(2)
            }),
        }
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// `n=… p50=… p90=… p99=… max=…` in milliseconds, of one run's samples.
pub fn percentiles(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "n=0".into();
    }
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    format!(
        "n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    )
}

/// POSTs a GraphQL document to `url` (as `token`'s owner) and returns its `data`; panics on any
/// error, since a benchmark measures only what works.
pub async fn gql(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    vars: Value,
) -> Value {
    let mut req = client
        .post(url)
        .json(&json!({ "query": query, "variables": vars }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let body: Value = req
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(body["errors"].is_null(), "{body}");
    body["data"].clone()
}
