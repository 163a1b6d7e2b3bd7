//! WebSocket benchmark against a real server process (`pupmatch serve`, embedded mode, or
//! scale-out with `--database-url postgres://… --redis-url redis://…`):
//!
//! 1. send→receive latency: matched pairs chat over `/ws` at a fixed total rate (default
//!    1000 messages/s for 10 s); each message's latency is from the sender's write to the
//!    recipient's read of the `message` frame.
//! 2. memory: the server's RSS before and after opening N idle authenticated sockets (default
//!    10 000).
//!
//!   cargo bench --bench websocket -- [--rate 1000] [--seconds 10] [--warmup 0] [--idle 10000]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Args {
    rate: u64,
    seconds: u64,
    /// Seconds of the same traffic before measuring (new pool connections, statements
    /// prepared on each, first plans), not counted.
    warmup: u64,
    idle: usize,
    pairs: usize,
    database_url: Option<String>,
    redis_url: Option<String>,
}

fn args() -> Args {
    let flags = common::Flags::parse();
    Args {
        rate: flags.get("rate", 1000),
        seconds: flags.get("seconds", 10),
        warmup: flags.get("warmup", 0),
        idle: flags.get("idle", 10_000),
        pairs: flags.get("pairs", 50),
        database_url: flags.text("database-url"),
        redis_url: flags.text("redis-url"),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Registers a user with a profile: (user id, access token).
async fn dog(client: &reqwest::Client, base: &str, i: usize) -> (String, String) {
    let d = common::gql(
        client,
        &format!("{base}/graphql"),
        None,
        "mutation($e: String!) { register(input: { email: $e, password: \"bench-password\" }) { accessToken user { id } } }",
        json!({ "e": format!("ws{i}-{}@bench.example", uuid::Uuid::new_v4().simple()) }),
    )
    .await;
    let token = d["register"]["accessToken"]
        .as_str()
        .expect("token")
        .to_string();
    let id = d["register"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    common::gql(
        client,
        &format!("{base}/graphql"),
        Some(&token),
        "mutation { createProfile(input: { name: \"Bench\", age: 3, bio: \"\", activityLevel: HIGH }) { id } }",
        json!({}),
    )
    .await;
    (id, token)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(ws_url: &str, token: &str) -> Ws {
    let mut request = ws_url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => ws,
        other => panic!("expected ready, got {other:?}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let dir = tempfile::tempdir()?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pupmatch"));
    command
        .arg("serve")
        .env("PUPMATCH_LISTEN", format!("127.0.0.1:{port}"))
        .env("PUPMATCH_DATABASE_URL", &database_url)
        .env("PUPMATCH_MEDIA_DIR", dir.path().join("media"))
        .env("PUPMATCH_RATE_LIMIT_USER_PER_MIN", "100000000")
        .env("PUPMATCH_RATE_LIMIT_IP_PER_MIN", "100000000")
        .env("PUPMATCH_RATE_LIMIT_AUTH_PER_MIN", "100000000")
        .env("PUPMATCH_RATE_LIMIT_MESSAGE_PER_MIN", "100000000")
        .env("PUPMATCH_LOG", "warn")
        // Request paths only: no background jobs' first ticks during the measurements.
        .env("PUPMATCH_JOBS_IN_SERVE", "false");
    if let Some(redis) = &args.redis_url {
        command.env("PUPMATCH_REDIS_URL", redis);
    }
    let mut server = command.spawn()?;
    let pid = server.id();
    let base = format!("http://127.0.0.1:{port}");
    let graphql = format!("{base}/graphql");
    let ws_url = format!("ws://127.0.0.1:{port}/ws");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "server: pid {pid}, {}, {} pairs",
        if database_url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite (embedded)"
        },
        args.pairs
    );

    // Matched pairs.
    let mut pairs = Vec::new();
    for i in 0..args.pairs {
        let a = dog(&client, &base, 2 * i).await;
        let b = dog(&client, &base, 2 * i + 1).await;
        let like = "mutation($u: UUID!) { like(userId: $u) { match { conversationId } } }";
        common::gql(&client, &graphql, Some(&a.1), like, json!({ "u": b.0 })).await;
        let d = common::gql(&client, &graphql, Some(&b.1), like, json!({ "u": a.0 })).await;
        let conversation = d["like"]["match"]["conversationId"]
            .as_str()
            .expect("conversation")
            .to_string();
        pairs.push((a, b, conversation));
    }

    // 1. Latency at a fixed rate.
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    for (a, b, conversation) in &pairs {
        let (sink, mut a_stream) = connect(&ws_url, &a.1).await.split();
        // The sender's acks and notifications are drained.
        readers.push(tokio::spawn(async move {
            while a_stream.next().await.is_some() {}
        }));
        let (_b_sink, mut b_stream) = connect(&ws_url, &b.1).await.split();
        let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
        readers.push(tokio::spawn(async move {
            let _keep = _b_sink;
            while let Some(Ok(Message::Text(text))) = b_stream.next().await {
                let frame: Value = serde_json::from_str(&text).unwrap_or_default();
                if frame["type"] == "message"
                    && let Some(client_id) = frame["message"]["clientId"].as_str()
                    && let Some(at) = sent_at.lock().expect("lock").remove(client_id)
                    && client_id.starts_with('b')
                {
                    latencies.lock().expect("lock").push(at.elapsed());
                }
            }
        }));
        senders.push((sink, conversation.clone()));
    }
    let total = args.rate * args.seconds;
    let warmup = args.rate * args.warmup;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut started = Instant::now();
    for n in 0..warmup + total {
        tick.tick().await;
        if n == warmup {
            started = Instant::now();
        }
        let k = (n as usize) % senders.len();
        let (sink, conversation) = &mut senders[k];
        // Warm-up messages ("w…") are sent and received but not measured.
        let client_id = if n < warmup {
            format!("w{n}")
        } else {
            format!("b{n}")
        };
        sent_at
            .lock()
            .expect("lock")
            .insert(client_id.clone(), Instant::now());
        let frame = json!({ "type": "send_message", "conversationId": conversation, "content": "woof woof", "clientId": client_id });
        sink.send(Message::Text(frame.to_string().into())).await?;
    }
    let send_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = std::mem::take(&mut *latencies.lock().expect("lock"));
    let lost = sent_at.lock().expect("lock").len();
    println!(
        "latency: {total} messages in {send_secs:.1} s after {} s of warm-up ({:.0}/s offered), received {}, not received {lost}: {}",
        args.warmup,
        total as f64 / send_secs,
        samples.len(),
        common::percentiles(samples)
    );
    drop(senders);
    for r in readers {
        r.abort();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 2. Idle sockets.
    let before = rss_kib(pid);
    let tokens: Vec<String> = pairs
        .iter()
        .flat_map(|(a, b, _)| [a.1.clone(), b.1.clone()])
        .collect();
    let mut idle = Vec::with_capacity(args.idle);
    let t = Instant::now();
    for chunk in (0..args.idle).collect::<Vec<_>>().chunks(200) {
        let opened = futures::future::join_all(
            chunk
                .iter()
                .map(|i| connect(&ws_url, &tokens[i % tokens.len()])),
        )
        .await;
        idle.extend(opened);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    println!(
        "idle sockets: {} authenticated sockets opened in {:.1} s; server RSS {:.1} MiB before, {:.1} MiB after (+{:.1} MiB, {:.1} KiB per socket)",
        idle.len(),
        t.elapsed().as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / idle.len().max(1) as f64
    );
    drop(idle);
    server.kill()?;
    let _ = server.wait();
    Ok(())
}
