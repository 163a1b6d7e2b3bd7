//! The soak's load generator and judge (run by `scripts/soak.sh`, which builds the fleet and
//! injects the faults). Generated people behave like the app's: they sign up, build a complete
//! profile with photos, set a location, page through recommendations, like and pass, chat over
//! `/ws` with a `clientId` on every message, drop their connection now and then and `resync`.
//! Every request is timed and kept; at the end the run is judged against what the fleet must
//! guarantee, from what people saw and from the database:
//!
//! - every acknowledged message is stored exactly once and reached its recipient exactly once
//!   (live or by `resync`);
//! - no pair has two matches, and every mutual like has one;
//! - every job tick ran once (no tick twice, none skipped);
//! - outside the fault windows no request failed and p99 stayed under 100 ms; inside them a
//!   failure is only a 503 with `Retry-After`, or a closed socket (which `resync` repairs);
//! - each instance's memory after warm-up grew less than 10 %.
//!
//! ```text
//! cargo bench --bench soak -- --base http://127.0.0.1:18180 --database postgres://… \
//!     --duration 90 --people 40 --rate 1 --faults faults.tsv --memory memory.tsv --report report.md
//! ```
//!
//! `--faults` is read at the end: one fault per line, `name<TAB>start_ms<TAB>end_ms` (Unix
//! milliseconds; the end is when the fault was repaired). `--memory` likewise:
//! `instance<TAB>pid<TAB>unix_ms<TAB>rss_kib`. Exits 1 when an invariant broke.

// The soak uses only the command-line flags of the shared helpers.
#[allow(dead_code)]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// After a fault is repaired, how long its window stays open (clients back off and reconnect).
const RECOVERY_GRACE: Duration = Duration::from_secs(5);
/// The latency every operation's p99 stays under outside the fault windows (a release build;
/// `--latency-goal-ms 0` reports latency without judging it, for a debug build).
const P99_GOAL: Duration = Duration::from_millis(100);
/// How much an instance's memory may grow from the end of warm-up to the end of the run.
const MEMORY_GROWTH_LIMIT: f64 = 0.10;
/// The shortest run whose memory growth is judged: warm-up is a third of the run, and in a
/// shorter one every fault (each raises the allocator's high-water mark once, e.g. a pool's
/// connections opened again after the database restarted) falls after it. Shorter runs report
/// memory without judging it.
const MEMORY_JUDGED_FROM: Duration = Duration::from_secs(300);
/// Longest any one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const BERLIN: (f64, f64) = (52.52, 13.405);

fn unix_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok,
    /// 503 (or SERVICE_UNAVAILABLE) with a retry hint.
    Unavailable,
    /// A socket closed under the person (they reconnect and resync).
    Closed,
    /// Anything else: status or code, and a few words.
    Failed(String),
}

struct Sample {
    op: &'static str,
    at_ms: u64,
    took: Duration,
    outcome: Outcome,
}

/// What every person's tasks record, for the judgement.
#[derive(Default)]
struct Record {
    samples: Mutex<Vec<Sample>>,
    /// Acknowledged messages: client id → recipient.
    acked: Mutex<HashMap<String, uuid::Uuid>>,
    /// Messages received by their recipient (live or by resync): (recipient, client id) → times.
    received: Mutex<HashMap<(uuid::Uuid, String), u32>>,
    /// Conversations of the matches that likes were answered with.
    matched: Mutex<Vec<String>>,
    messages_sent: AtomicU64,
}

impl Record {
    fn sample(&self, op: &'static str, started: Instant, at_ms: u64, outcome: Outcome) {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Sample {
                op,
                at_ms,
                took: started.elapsed(),
                outcome,
            });
    }
}

struct Settings {
    base: String,
    duration: Duration,
    people: usize,
    /// Actions per second of each person.
    rate: f64,
    seed: u64,
    /// The period of every background job, in seconds (the script sets them all alike).
    job_every: u64,
    /// What every operation's p99 must stay under outside the fault windows; `None`: reported
    /// only.
    p99_goal: Option<Duration>,
}

/// A signed-up person.
struct Person {
    id: uuid::Uuid,
    token: String,
    index: usize,
}

/// A GraphQL call, classified. `Err` holds the outcome of a failed one.
async fn gql(
    client: &reqwest::Client,
    settings: &Settings,
    token: Option<&str>,
    query: &str,
    vars: Value,
) -> Result<Value, Outcome> {
    let mut req = client
        .post(format!("{}/graphql", settings.base))
        .timeout(REQUEST_TIMEOUT)
        .json(&json!({ "query": query, "variables": vars }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req
        .send()
        .await
        .map_err(|e| Outcome::Failed(format!("transport: {e}")))?;
    let status = res.status().as_u16();
    let retry_after = res.headers().contains_key("retry-after");
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if status == 200 && body["errors"].is_null() {
        return Ok(body["data"].clone());
    }
    if (status == 503 || code == "SERVICE_UNAVAILABLE") && retry_after {
        return Err(Outcome::Unavailable);
    }
    Err(Outcome::Failed(format!(
        "HTTP {status} {code}: {}",
        body["errors"][0]["message"].as_str().unwrap_or_default()
    )))
}

/// [`gql`], timed and recorded as `op`; retried after a refusal with a retry hint while the
/// run lasts (as the app does), until it works.
async fn call(
    client: &reqwest::Client,
    settings: &Settings,
    record: &Record,
    op: &'static str,
    token: Option<&str>,
    query: &str,
    vars: Value,
) -> Option<Value> {
    for _ in 0..60 {
        let started = Instant::now();
        let at = unix_ms();
        match gql(client, settings, token, query, vars.clone()).await {
            Ok(data) => {
                record.sample(op, started, at, Outcome::Ok);
                return Some(data);
            }
            Err(outcome) => {
                let retry = outcome == Outcome::Unavailable;
                record.sample(op, started, at, outcome);
                if !retry {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    None
}

/// A small PNG of its own for each call (people's photos differ).
fn photo(rng: &mut impl Rng) -> Vec<u8> {
    let (w, h) = (96u32, 72u32);
    let (a, b): ([u8; 3], [u8; 3]) = (rng.random(), rng.random());
    let (cx, cy) = (rng.random_range(0..w), rng.random_range(0..h));
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let near = x.abs_diff(cx) < 24 && y.abs_diff(cy) < 18;
            pixels.extend_from_slice(if near { &b } else { &a });
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header");
        writer.write_image_data(&pixels).expect("PNG data");
    }
    out
}

/// Signs up person `index` and completes their profile near Berlin.
async fn sign_up(
    client: &reqwest::Client,
    settings: &Settings,
    record: &Record,
    run: &str,
    index: usize,
) -> Option<Person> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(settings.seed ^ index as u64);
    let data = call(
        client,
        settings,
        record,
        "register",
        None,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
        json!({ "i": { "email": format!("soak-{run}-{index}@example.com"),
                       "password": format!("soak-password-{run}-{index}") } }),
    )
    .await?;
    let token = data["register"]["accessToken"].as_str()?.to_string();
    let id = data["register"]["user"]["id"].as_str()?.parse().ok()?;
    call(
        client,
        settings,
        record,
        "createProfile",
        Some(&token),
        "mutation($i: ProfileInput!) { createProfile(input: $i) { id } }",
        json!({ "i": { "name": format!("Soak {index}"), "age": rng.random_range(1..12),
                       "bio": "Fetch, naps, and more fetch.", "breed": "Beagle",
                       "size": "MEDIUM", "activityLevel": "HIGH" } }),
    )
    .await?;
    for k in 0..2 {
        let mut uploaded = false;
        for _ in 0..20 {
            let part = reqwest::multipart::Part::bytes(photo(&mut rng))
                .file_name(format!("dog{k}.png"))
                .mime_str("image/png")
                .expect("mime");
            let started = Instant::now();
            let at = unix_ms();
            let res = client
                .post(format!("{}/v1/photos", settings.base))
                .timeout(REQUEST_TIMEOUT)
                .bearer_auth(&token)
                .multipart(reqwest::multipart::Form::new().part("file", part))
                .send()
                .await;
            let outcome = match &res {
                Ok(r) if r.status().as_u16() == 201 => Outcome::Ok,
                Ok(r) if r.status().as_u16() == 503 && r.headers().contains_key("retry-after") => {
                    Outcome::Unavailable
                }
                Ok(r) => Outcome::Failed(format!("HTTP {}", r.status())),
                Err(e) => Outcome::Failed(format!("transport: {e}")),
            };
            let done = outcome == Outcome::Ok;
            let retry = outcome == Outcome::Unavailable;
            record.sample("uploadPhoto", started, at, outcome);
            if done {
                uploaded = true;
                break;
            }
            if !retry {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !uploaded {
            return None;
        }
    }
    let (lat, lon) = (
        BERLIN.0 + rng.random_range(-0.03..0.03),
        BERLIN.1 + rng.random_range(-0.04..0.04),
    );
    call(
        client,
        settings,
        record,
        "updateLocation",
        Some(&token),
        "mutation($a: Float!, $o: Float!) { updateLocation(latitude: $a, longitude: $o) }",
        json!({ "a": lat, "o": lon }),
    )
    .await?;
    Some(Person { id, token, index })
}

/// What a socket's reader hands the person.
enum Answer {
    Ack,
    Refused(Outcome),
}

/// One open `/ws` connection: a writer, and a reader task that records messages.
struct Socket {
    sink: mpsc::UnboundedSender<Message>,
    closed: Arc<AtomicBool>,
    /// The resync sent on opening has finished (`resync_done`).
    resynced: Arc<AtomicBool>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>>,
}

/// The last message id a person received, for `resync`.
type LastSeen = Arc<Mutex<Option<String>>>;

async fn open_socket(
    settings: &Settings,
    record: &Arc<Record>,
    person: &Person,
    last_seen: &LastSeen,
) -> Option<Socket> {
    let url = format!("{}/ws", settings.base.replacen("http", "ws", 1));
    let started = Instant::now();
    let at = unix_ms();
    let stream = match tokio::time::timeout(
        REQUEST_TIMEOUT,
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    {
        Ok(Ok((stream, _))) => stream,
        Ok(Err(e)) => {
            let outcome = match &e {
                tokio_tungstenite::tungstenite::Error::Http(r) if r.status().as_u16() == 503 => {
                    Outcome::Unavailable
                }
                _ => Outcome::Failed(format!("connect: {e}")),
            };
            record.sample("wsConnect", started, at, outcome);
            return None;
        }
        Err(_) => {
            record.sample("wsConnect", started, at, Outcome::Failed("timeout".into()));
            return None;
        }
    };
    let (mut write, mut read) = stream.split();
    let auth = json!({ "type": "auth", "token": person.token }).to_string();
    if write.send(Message::Text(auth.into())).await.is_err() {
        record.sample("wsConnect", started, at, Outcome::Closed);
        return None;
    }
    // Ready first; then, when the person has seen messages before, everything since.
    let ready = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while let Some(Ok(frame)) = read.next().await {
            if let Message::Text(text) = frame
                && serde_json::from_str::<Value>(&text).is_ok_and(|v| v["type"] == "ready")
            {
                return true;
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        record.sample("wsConnect", started, at, Outcome::Closed);
        return None;
    }
    record.sample("wsConnect", started, at, Outcome::Ok);
    // Everything since the last message seen (all of it when none was seen yet).
    let since = last_seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let resync = json!({ "type": "resync", "since": since }).to_string();
    let _ = write.send(Message::Text(resync.into())).await;
    let (sink, mut outgoing) = mpsc::unbounded_channel::<Message>();
    let closed = Arc::new(AtomicBool::new(false));
    let resynced = Arc::new(AtomicBool::new(false));
    let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>> = Arc::default();
    tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if write.send(frame).await.is_err() {
                break;
            }
        }
        let _ = write.close().await;
    });
    {
        let (closed, resynced, pending, record, last_seen) = (
            closed.clone(),
            resynced.clone(),
            pending.clone(),
            record.clone(),
            last_seen.clone(),
        );
        let me = person.id;
        tokio::spawn(async move {
            while let Some(Ok(frame)) = read.next().await {
                let Message::Text(text) = frame else { continue };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match frame["type"].as_str() {
                    Some("message") => {
                        let m = &frame["message"];
                        if m["recipientId"] == me.to_string() {
                            if let Some(client_id) = m["clientId"].as_str() {
                                *record
                                    .received
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .entry((me, client_id.to_string()))
                                    .or_default() += 1;
                            }
                            if let Some(id) = m["id"].as_str() {
                                *last_seen.lock().unwrap_or_else(|e| e.into_inner()) =
                                    Some(id.to_string());
                            }
                        }
                    }
                    Some("resync_done") => resynced.store(true, Ordering::Relaxed),
                    Some("message_ack") | Some("error") => {
                        let Some(client_id) = frame["clientId"].as_str() else {
                            continue;
                        };
                        let waiter = pending
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(client_id);
                        let answer = if frame["type"] == "message_ack" {
                            Answer::Ack
                        } else if frame["code"] == "SERVICE_UNAVAILABLE"
                            && frame["retryAfter"].is_number()
                        {
                            Answer::Refused(Outcome::Unavailable)
                        } else {
                            Answer::Refused(Outcome::Failed(format!(
                                "{} {}",
                                frame["code"], frame["message"]
                            )))
                        };
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(answer);
                        }
                    }
                    _ => {}
                }
            }
            closed.store(true, Ordering::Relaxed);
            // Whoever waits for an answer on this socket learns it closed.
            pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
    }
    Some(Socket {
        sink,
        closed,
        resynced,
        pending,
    })
}

/// A conversation a person is in: its id and the other person.
#[derive(Clone)]
struct Conversation {
    id: String,
    other: uuid::Uuid,
}

/// One person's life until the deadline.
async fn live(
    client: reqwest::Client,
    settings: Arc<Settings>,
    record: Arc<Record>,
    person: Person,
    deadline: Instant,
) -> (Person, LastSeen) {
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(settings.seed.wrapping_mul(31) ^ person.index as u64);
    let last_seen: LastSeen = Arc::default();
    let mut socket: Option<Socket> = None;
    let mut candidates: Vec<uuid::Uuid> = Vec::new();
    let mut conversations: Vec<Conversation> = Vec::new();
    let mut sent = 0u64;
    // People arrive over the first tenth of the run (at most 10 s), not all at one instant.
    let ramp = settings
        .duration
        .min(Duration::from_secs(100))
        .as_secs_f64()
        / 10.0;
    tokio::time::sleep(Duration::from_secs_f64(
        rng.random_range(0.0..ramp.max(0.001)),
    ))
    .await;
    while Instant::now() < deadline {
        let think = -rng.random_range(0.01f64..1.0).ln() / settings.rate;
        tokio::time::sleep(Duration::from_secs_f64(think.min(5.0))).await;
        if socket
            .as_ref()
            .is_none_or(|s| s.closed.load(Ordering::Relaxed))
        {
            if socket.take().is_some() {
                // Closed under us (an instance went away, or the bus did): reconnect, resync.
                record.sample("wsConnect", Instant::now(), unix_ms(), Outcome::Closed);
            }
            socket = open_socket(&settings, &record, &person, &last_seen).await;
            if socket.is_none() {
                continue;
            }
        }
        let roll: f64 = rng.random();
        if roll < 0.02 {
            // The app goes to the background: the connection drops; it resyncs on return.
            socket = None;
        } else if roll < 0.30 || candidates.is_empty() && roll < 0.6 {
            if let Some(data) = call(
                &client,
                &settings,
                &record,
                "recommendations",
                Some(&person.token),
                "{ recommendations(first: 10) { edges { node { score distance profile { userId name photos { url } } } } } }",
                json!({}),
            )
            .await
            {
                candidates = data["recommendations"]["edges"]
                    .as_array()
                    .map(|edges| {
                        edges
                            .iter()
                            .filter_map(|e| e["node"]["profile"]["userId"].as_str()?.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default();
            }
        } else if roll < 0.60 {
            let Some(target) = candidates.pop() else {
                continue;
            };
            if rng.random_bool(0.6) {
                let data = call(
                    &client,
                    &settings,
                    &record,
                    "like",
                    Some(&person.token),
                    "mutation($u: UUID!) { like(userId: $u) { isMatch match { conversationId } } }",
                    json!({ "u": target }),
                )
                .await;
                if let Some(id) = data
                    .as_ref()
                    .and_then(|d| d["like"]["match"]["conversationId"].as_str())
                {
                    record
                        .matched
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(id.to_string());
                    conversations.push(Conversation {
                        id: id.to_string(),
                        other: target,
                    });
                }
            } else {
                call(
                    &client,
                    &settings,
                    &record,
                    "pass",
                    Some(&person.token),
                    "mutation($u: UUID!) { pass(userId: $u) }",
                    json!({ "u": target }),
                )
                .await;
            }
        } else if roll < 0.68 {
            if let Some(data) = call(
                &client,
                &settings,
                &record,
                "matches",
                Some(&person.token),
                "{ matches(first: 50) { edges { node { conversationId profile { userId } } } } }",
                json!({}),
            )
            .await
            {
                conversations = data["matches"]["edges"]
                    .as_array()
                    .map(|edges| {
                        edges
                            .iter()
                            .filter_map(|e| {
                                Some(Conversation {
                                    id: e["node"]["conversationId"].as_str()?.to_string(),
                                    other: e["node"]["profile"]["userId"].as_str()?.parse().ok()?,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
        } else if let Some(conversation) = (!conversations.is_empty())
            .then(|| conversations[rng.random_range(0..conversations.len())].clone())
        {
            sent += 1;
            let client_id = format!("p{}-{sent}", person.index);
            send(
                &settings,
                &record,
                &person,
                &last_seen,
                &mut socket,
                &conversation,
                &client_id,
            )
            .await;
        } else {
            call(
                &client,
                &settings,
                &record,
                "me",
                Some(&person.token),
                "{ me { id profile { name isComplete } } }",
                json!({}),
            )
            .await;
        }
    }
    (person, last_seen)
}

/// After everyone stopped: each person opens the app once more and resyncs, so whatever they
/// missed since their last message arrives.
async fn catch_up(settings: &Settings, record: &Arc<Record>, person: Person, last_seen: LastSeen) {
    for _ in 0..10 {
        if let Some(socket) = open_socket(settings, record, &person, &last_seen).await {
            let until = Instant::now() + REQUEST_TIMEOUT;
            while Instant::now() < until && !socket.resynced.load(Ordering::Relaxed) {
                if socket.closed.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if socket.resynced.load(Ordering::Relaxed) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sends one message with `client_id` until acknowledged (a refusal with a retry hint, or a
/// socket that closed, is retried with the same client id, as the app does).
async fn send(
    settings: &Settings,
    record: &Arc<Record>,
    person: &Person,
    last_seen: &LastSeen,
    socket: &mut Option<Socket>,
    conversation: &Conversation,
    client_id: &str,
) {
    for _ in 0..40 {
        if socket
            .as_ref()
            .is_none_or(|s| s.closed.load(Ordering::Relaxed))
        {
            *socket = open_socket(settings, record, person, last_seen).await;
        }
        let Some(s) = socket.as_ref() else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let (tx, rx) = oneshot::channel();
        s.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client_id.to_string(), tx);
        let frame = json!({ "type": "send_message", "conversationId": conversation.id,
                            "content": format!("hello from {}", person.index),
                            "clientId": client_id });
        let started = Instant::now();
        let at = unix_ms();
        if s.sink
            .send(Message::Text(frame.to_string().into()))
            .is_err()
        {
            record.sample("sendMessage", started, at, Outcome::Closed);
            *socket = None;
            continue;
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(Answer::Ack)) => {
                record.sample("sendMessage", started, at, Outcome::Ok);
                record.messages_sent.fetch_add(1, Ordering::Relaxed);
                record
                    .acked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(client_id.to_string(), conversation.other);
                return;
            }
            Ok(Ok(Answer::Refused(outcome))) => {
                let retry = outcome == Outcome::Unavailable;
                // Which conversation and whose, so a refusal can be looked up afterwards.
                let outcome = match outcome {
                    Outcome::Failed(why) => Outcome::Failed(format!(
                        "{why} (conversation {}, from person {} to {}, client id {client_id})",
                        conversation.id, person.index, conversation.other
                    )),
                    other => other,
                };
                record.sample("sendMessage", started, at, outcome);
                if !retry {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // The socket closed before the answer: unknown whether it was stored; the same
            // client id again finds out.
            Ok(Err(_)) => {
                record.sample("sendMessage", started, at, Outcome::Closed);
                *socket = None;
            }
            Err(_) => {
                record.sample(
                    "sendMessage",
                    started,
                    at,
                    Outcome::Failed("no answer in 10 s".into()),
                );
                *socket = None;
            }
        }
    }
}

/// A fault as `scripts/soak.sh` logged it.
struct Fault {
    name: String,
    start_ms: u64,
    end_ms: u64,
}

impl Fault {
    fn window_end(&self) -> u64 {
        self.end_ms + u64::try_from(RECOVERY_GRACE.as_millis()).unwrap_or(0)
    }
    fn covers(&self, at_ms: u64, took: Duration) -> bool {
        let end = at_ms + u64::try_from(took.as_millis()).unwrap_or(0);
        end >= self.start_ms && at_ms <= self.window_end()
    }
}

fn read_tsv(path: Option<&str>) -> Vec<Vec<String>> {
    let Some(path) = path else { return Vec::new() };
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let flags = common::Flags::parse();
    let settings = Arc::new(Settings {
        base: flags
            .text("base")
            .unwrap_or_else(|| "http://127.0.0.1:18180".into()),
        duration: Duration::from_secs(flags.get("duration", 90)),
        people: flags.get("people", 40),
        rate: flags.get("rate", 1.0),
        seed: flags.get("seed", 1),
        job_every: flags.get("job-every", 5),
        p99_goal: match flags.get("latency-goal-ms", P99_GOAL.as_millis() as u64) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        },
    });
    let database = flags.text("database");
    let report_path = flags.text("report");
    let run = format!("{:x}", unix_ms());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let record = Arc::new(Record::default());

    eprintln!("soak: signing up {} people", settings.people);
    let signed_up = futures::future::join_all((0..settings.people).map(|i| {
        let (client, settings, record, run) = (
            client.clone(),
            settings.clone(),
            record.clone(),
            run.clone(),
        );
        async move { sign_up(&client, &settings, &record, &run, i).await }
    }))
    .await;
    let people: Vec<Person> = signed_up.into_iter().flatten().collect();
    let started_ms = unix_ms();
    eprintln!(
        "soak: {} people live for {} s at {} actions/s each",
        people.len(),
        settings.duration.as_secs(),
        settings.rate
    );
    let deadline = Instant::now() + settings.duration;
    let lives: Vec<_> = people
        .into_iter()
        .map(|person| {
            tokio::spawn(live(
                client.clone(),
                settings.clone(),
                record.clone(),
                person,
                deadline,
            ))
        })
        .collect();
    let mut done = Vec::new();
    for life in lives {
        if let Ok(ended) = life.await {
            done.push(ended);
        }
    }
    let ended_ms = unix_ms();
    // Let the last live deliveries land, then everyone catches up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    futures::future::join_all(
        done.into_iter()
            .map(|(person, last_seen)| catch_up(&settings, &record, person, last_seen)),
    )
    .await;

    let faults: Vec<Fault> = read_tsv(flags.text("faults").as_deref())
        .into_iter()
        .filter_map(|f| {
            Some(Fault {
                name: f.first()?.clone(),
                start_ms: f.get(1)?.parse().ok()?,
                end_ms: f.get(2)?.parse().ok()?,
            })
        })
        .collect();
    let (report, broken) = judge(
        &settings,
        &record,
        &faults,
        read_tsv(flags.text("memory").as_deref()),
        database.as_deref(),
        started_ms,
        ended_ms,
    )
    .await;
    println!("{report}");
    if let Some(path) = report_path {
        std::fs::write(&path, &report).expect("report written");
    }
    if broken {
        std::process::exit(1);
    }
}

/// The report, and whether an invariant broke.
async fn judge(
    settings: &Settings,
    record: &Record,
    faults: &[Fault],
    memory: Vec<Vec<String>>,
    database: Option<&str>,
    started_ms: u64,
    ended_ms: u64,
) -> (String, bool) {
    let mut out = String::new();
    let mut broken = Vec::new();
    let samples = std::mem::take(&mut *record.samples.lock().unwrap_or_else(|e| e.into_inner()));
    let secs = (ended_ms.saturating_sub(started_ms)) as f64 / 1000.0;
    let in_window = |s: &Sample| faults.iter().position(|f| f.covers(s.at_ms, s.took));
    let during_run: Vec<&Sample> = samples.iter().filter(|s| s.at_ms >= started_ms).collect();
    let _ = writeln!(
        out,
        "## Soak: {} people, {:.0} s, {} faults\n\n{:.1} requests/s, {:.1} messages/s acknowledged \
         ({} requests, {} messages){}\n",
        settings.people,
        secs,
        faults.len(),
        during_run.len() as f64 / secs,
        record.messages_sent.load(Ordering::Relaxed) as f64 / secs,
        during_run.len(),
        record.messages_sent.load(Ordering::Relaxed),
        match settings.p99_goal {
            Some(goal) => format!("; p99 goal {} ms", goal.as_millis()),
            None => "; latency reported, not judged (a debug build)".into(),
        },
    );

    // Latency and failures per operation, outside the fault windows.
    // Signing up (before the run; password hashing and photo processing, all at once) is
    // reported, not judged.
    let mut signing_up: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.at_ms < started_ms) {
        signing_up.entry(s.op).or_default().push(s.took);
    }
    let _ = writeln!(
        out,
        "Signing up {} people at once, before the run:",
        settings.people
    );
    for (op, times) in &mut signing_up {
        times.sort();
        let _ = writeln!(
            out,
            "- {op}: {} requests, p50 {} ms, p99 {} ms",
            times.len(),
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.99))
        );
    }
    let _ = writeln!(out, "\nDuring the run:\n");
    // The final catch-up (everyone reconnects at once after the load stopped) is not judged.
    let mut by_op: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.at_ms >= started_ms && s.at_ms <= ended_ms)
    {
        by_op.entry(s.op).or_default().push(s);
    }
    let _ = writeln!(
        out,
        "| operation | requests | outside faults: p50 ms | p99 ms | failed | inside faults: failed (503 / closed / other) |\n|---|---:|---:|---:|---:|---:|"
    );
    for (op, list) in &by_op {
        let (inside, outside): (Vec<&&Sample>, Vec<&&Sample>) =
            list.iter().partition(|s| in_window(s).is_some());
        let mut ok_times: Vec<Duration> = outside
            .iter()
            .filter(|s| s.outcome == Outcome::Ok)
            .map(|s| s.took)
            .collect();
        ok_times.sort();
        let failed_outside: Vec<&&&Sample> = outside
            .iter()
            .filter(|s| s.outcome != Outcome::Ok)
            .collect();
        let count = |kind: fn(&Outcome) -> bool| inside.iter().filter(|s| kind(&s.outcome)).count();
        let unavailable = count(|o| *o == Outcome::Unavailable);
        let closed = count(|o| *o == Outcome::Closed);
        let other = count(|o| matches!(o, Outcome::Failed(_)));
        for s in inside
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_)))
        {
            eprintln!(
                "{op} failed at +{:.1} s: {:?}",
                s.at_ms.saturating_sub(started_ms) as f64 / 1000.0,
                s.outcome
            );
        }
        let p99 = percentile(&ok_times, 0.99);
        let _ = writeln!(
            out,
            "| {op} | {} | {} | {} | {} | {unavailable} / {closed} / {other} |",
            list.len(),
            ms(percentile(&ok_times, 0.5)),
            ms(p99),
            failed_outside.len(),
        );
        // A socket closing under a person (not a request failing) is what the fault windows
        // are for; outside them it must not happen either.
        if let Some(s) = failed_outside.first() {
            broken.push(format!(
                "{op}: {} failed outside the fault windows (first: {:?} at {})",
                failed_outside.len(),
                s.outcome,
                s.at_ms
            ));
        }
        if let Some(goal) = settings.p99_goal
            && ok_times.len() >= 20
            && p99 > goal
        {
            broken.push(format!(
                "{op}: p99 {} ms outside the fault windows",
                ms(p99)
            ));
        }
        let mut slow: Vec<&&&Sample> = outside
            .iter()
            .filter(|s| s.took > settings.p99_goal.unwrap_or(P99_GOAL))
            .collect();
        slow.sort_by_key(|s| std::cmp::Reverse(s.took));
        for s in slow.iter().take(8) {
            eprintln!(
                "slow {op}: {} ms at +{:.1} s",
                ms(s.took),
                s.at_ms.saturating_sub(started_ms) as f64 / 1000.0
            );
        }
        if other > 0 {
            let first = inside
                .iter()
                .find(|s| matches!(s.outcome, Outcome::Failed(_)))
                .map(|s| format!("{:?}", s.outcome))
                .unwrap_or_default();
            broken.push(format!(
                "{op}: {other} failed inside a fault window with something else than 503 + Retry-After ({first})"
            ));
        }
    }

    // Per fault: failures in its window and the time until requests succeeded again.
    let _ = writeln!(
        out,
        "\n| fault | lasted s | failed in window (503 / closed / other) | recovered after s |\n|---|---:|---:|---:|"
    );
    for (i, fault) in faults.iter().enumerate() {
        let mine: Vec<&Sample> = samples.iter().filter(|s| in_window(s) == Some(i)).collect();
        let failed: Vec<&&Sample> = mine.iter().filter(|s| s.outcome != Outcome::Ok).collect();
        let last_failure = failed.iter().map(|s| s.at_ms).max();
        let recovered =
            last_failure.map_or(0.0, |t| t.saturating_sub(fault.start_ms) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} / {} / {} | {:.1} |",
            fault.name,
            fault.end_ms.saturating_sub(fault.start_ms) as f64 / 1000.0,
            failed
                .iter()
                .filter(|s| s.outcome == Outcome::Unavailable)
                .count(),
            failed
                .iter()
                .filter(|s| s.outcome == Outcome::Closed)
                .count(),
            failed
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Failed(_)))
                .count(),
            recovered
        );
    }

    // Messages: acknowledged → received exactly once by the recipient.
    let acked = record
        .acked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let received = record
        .received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut missing = 0;
    let mut twice = 0;
    for (client_id, recipient) in &acked {
        match received
            .get(&(*recipient, client_id.clone()))
            .copied()
            .unwrap_or(0)
        {
            0 => {
                missing += 1;
                eprintln!("not received: {client_id} (to {recipient})");
            }
            1 => {}
            times => {
                twice += 1;
                eprintln!("received {times} times: {client_id} (to {recipient})");
            }
        }
    }
    let _ = writeln!(
        out,
        "\nMessages: {} acknowledged; not received {missing}, received more than once {twice}",
        acked.len()
    );
    if missing > 0 || twice > 0 {
        broken.push(format!(
            "messages: {missing} acknowledged never reached their recipient, {twice} reached it more than once"
        ));
    }

    if let Some(url) = database {
        let matched = record
            .matched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match check_database(url, &acked, &matched, faults, settings.job_every).await {
            Ok(lines) => {
                for (line, ok) in lines {
                    let _ = writeln!(out, "{} {line}", if ok { "ok:" } else { "BROKEN:" });
                    if !ok {
                        broken.push(line);
                    }
                }
            }
            Err(e) => broken.push(format!("database checks could not run: {e}")),
        }
    }

    // Memory: from the end of warm-up (a third of the run, at least a minute: the caches fill
    // for a while) to the end of the load, per process.
    let warm = started_ms + (ended_ms.saturating_sub(started_ms) / 3).max(60_000);
    let mut by_process: BTreeMap<(String, String), Vec<(u64, u64)>> = BTreeMap::new();
    for row in memory {
        if let [instance, pid, at, kib] = &row[..]
            && let (Ok(at), Ok(kib)) = (at.parse::<u64>(), kib.parse::<u64>())
        {
            by_process
                .entry((instance.clone(), pid.clone()))
                .or_default()
                .push((at, kib));
        }
    }
    if settings.duration < MEMORY_JUDGED_FROM {
        let _ = writeln!(
            out,
            "\n(a run shorter than {} s: memory is reported, not judged)",
            MEMORY_JUDGED_FROM.as_secs()
        );
    }
    let _ = writeln!(
        out,
        "\n| instance (pid) | RSS after warm-up MiB | at the end MiB | growth |\n|---|---:|---:|---:|"
    );
    for ((instance, pid), rows) in &by_process {
        let after: Vec<&(u64, u64)> = rows
            .iter()
            .filter(|(at, _)| *at >= warm && *at <= ended_ms)
            .collect();
        let (Some(first), Some(last)) = (after.first(), after.last()) else {
            continue;
        };
        // A process started after warm-up (a replacement) has no warm-up of its own here.
        if rows.first().is_some_and(|(at, _)| *at > warm) {
            let _ = writeln!(
                out,
                "| {instance} ({pid}, started during the run) | {:.1} | {:.1} | not judged |",
                first.1 as f64 / 1024.0,
                last.1 as f64 / 1024.0
            );
            continue;
        }
        let growth = (last.1 as f64 - first.1 as f64) / first.1.max(1) as f64;
        let _ = writeln!(
            out,
            "| {instance} ({pid}) | {:.1} | {:.1} | {:+.1} % |",
            first.1 as f64 / 1024.0,
            last.1 as f64 / 1024.0,
            growth * 100.0
        );
        if settings.duration >= MEMORY_JUDGED_FROM && growth > MEMORY_GROWTH_LIMIT {
            broken.push(format!(
                "{instance} ({pid}): memory grew {:.1} % after warm-up",
                growth * 100.0
            ));
        }
    }

    if broken.is_empty() {
        let _ = writeln!(out, "\nEvery invariant held.");
    } else {
        let _ = writeln!(out, "\nBROKEN:");
        for b in &broken {
            let _ = writeln!(out, "- {b}");
        }
    }
    (out, !broken.is_empty())
}

/// The database's side: each acknowledged message stored once, each match a like was answered
/// with kept, one match per pair and one for every mutual like, each job tick run once and none
/// skipped.
async fn check_database(
    url: &str,
    acked: &HashMap<String, uuid::Uuid>,
    matched: &[String],
    faults: &[Fault],
    job_every: u64,
) -> Result<Vec<(String, bool)>, sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut lines = Vec::new();
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT client_id, count(*) FROM messages WHERE client_id IS NOT NULL GROUP BY client_id",
    )
    .fetch_all(&mut conn)
    .await?;
    let stored: HashMap<String, i64> = stored.into_iter().collect();
    let missing: Vec<&String> = acked.keys().filter(|c| !stored.contains_key(*c)).collect();
    for client_id in &missing {
        eprintln!("acknowledged but not stored: {client_id}");
    }
    let not_stored = missing.len();
    let twice = stored.values().filter(|n| **n > 1).count();
    lines.push((
        format!(
            "every acknowledged message is stored exactly once ({} acknowledged, {} stored; {not_stored} missing, {twice} twice)",
            acked.len(),
            stored.len()
        ),
        not_stored == 0 && twice == 0,
    ));
    let duplicate_matches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT least(user_a, user_b), greatest(user_a, user_b)
                                 FROM matches GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .fetch_one(&mut conn)
    .await?;
    let matches: i64 = sqlx::query_scalar("SELECT count(*) FROM matches")
        .fetch_one(&mut conn)
        .await?;
    lines.push((
        format!("no pair has two matches ({matches} matches, {duplicate_matches} pairs with more)"),
        duplicate_matches == 0,
    ));
    // A like answered with a match: that match and its conversation still exist. Nobody here
    // unmatches; a pass ends a match only when its person was recommended again after the
    // like, which must not happen (nor may an acknowledged write be lost).
    let found: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM conversations WHERE id::text = ANY($1)")
            .bind(matched)
            .fetch_all(&mut conn)
            .await?;
    let missing: Vec<String> = matched
        .iter()
        .filter(|id| !found.contains(id))
        .map(|id| {
            // A conversation's id is a UUIDv7 made when its match was: when that was.
            let at = id
                .parse::<uuid::Uuid>()
                .ok()
                .and_then(|u| u.get_timestamp())
                .map(|t| {
                    let (secs, nanos) = t.to_unix();
                    chrono::DateTime::from_timestamp(secs as i64, nanos)
                        .map(|d| d.format("%H:%M:%S%.3f").to_string())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            format!("{id} made at {at}")
        })
        .collect();
    lines.push((
        format!(
            "every match a like was answered with exists ({} answered, {} missing{})",
            matched.len(),
            missing.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(": {}", missing.join(", "))
            }
        ),
        missing.is_empty(),
    ));
    let unmatched_mutual: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM likes l
           JOIN likes r ON r.user_id = l.target_id AND r.target_id = l.user_id
          WHERE l.user_id < l.target_id
            AND NOT EXISTS (SELECT 1 FROM matches m
                             WHERE m.user_a = l.user_id AND m.user_b = l.target_id)",
    )
    .fetch_one(&mut conn)
    .await?;
    lines.push((
        format!("every mutual like has a match ({unmatched_mutual} without)"),
        unmatched_mutual == 0,
    ));
    // Each tick once; a tick may be lost only while a worker or the database was down (a
    // worker that dies mid-run loses its tick), never otherwise.
    let runs: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT job, tick, count(*) FROM job_runs GROUP BY job, tick ORDER BY job, tick",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut by_job: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (job, tick, count) in runs {
        by_job.entry(job).or_default().push((tick, count));
    }
    let every_ms = i64::try_from(job_every.max(1) * 1000).unwrap_or(i64::MAX);
    let mut jobs_ok = !by_job.is_empty();
    let mut summary = Vec::new();
    for (job, ticks) in &by_job {
        let twice = ticks.iter().filter(|(_, n)| *n > 1).count();
        let mut lost_in_faults = 0;
        let mut lost_otherwise = 0;
        for pair in ticks.windows(2) {
            for tick in pair[0].0 + 1..pair[1].0 {
                let (from, to) = (tick * every_ms, (tick + 1) * every_ms);
                let in_fault = faults.iter().any(|f| {
                    i64::try_from(f.start_ms).is_ok_and(|s| s < to)
                        && i64::try_from(f.window_end()).is_ok_and(|e| e >= from)
                });
                if in_fault {
                    lost_in_faults += 1;
                } else {
                    lost_otherwise += 1;
                }
            }
        }
        summary.push(format!(
            "{job}: {} ticks, {twice} ran twice, {lost_in_faults} lost in a fault window, {lost_otherwise} lost otherwise",
            ticks.len()
        ));
        if twice > 0 || lost_otherwise > 0 {
            jobs_ok = false;
        }
    }
    lines.push((
        format!("every job tick ran once ({})", summary.join("; ")),
        jobs_ok,
    ));
    Ok(lines)
}
