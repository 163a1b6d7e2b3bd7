//! Discovery benchmark: recommendations latency (warm: cached list; cold: list recomputed) for
//! one user over N profiles, and like throughput, through the real HTTP server on loopback.
//!
//!   cargo bench --bench discovery -- --profiles 100000 --database-url postgres://…/pupmatch_bench
//!   cargo bench --bench discovery -- --profiles 100000            # SQLite in a temp folder
//!
//! Seeds the database up to N demo profiles first (an existing bench database is reused).

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use pupmatch::{Application, Config};
use serde_json::{Value, json};

struct Args {
    profiles: usize,
    database_url: Option<String>,
    redis_url: Option<String>,
    warm: usize,
    cold: usize,
    likes: usize,
}

fn args() -> Args {
    let flags = common::Flags::parse();
    Args {
        profiles: flags.get("profiles", 100_000),
        database_url: flags.text("database-url"),
        redis_url: flags.text("redis-url"),
        warm: flags.get("warm", 2000),
        cold: flags.get("cold", 300),
        likes: flags.get("likes", 5000),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let dir = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse()?;
    config.database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
    config.redis_url = args.redis_url.clone();
    config.media_dir = dir.path().join("media");
    config.rate_limits.user_per_min = 10_000_000;
    config.rate_limits.ip_per_min = 10_000_000;
    config.rate_limits.auth_per_min = 10_000_000;
    config.database_max_connections = 20;
    // Request paths only: the background jobs' first ticks (a refresh of every active
    // person's list, the daily cleanup) would run at start-up, during the measurements.
    config.jobs.in_serve = false;

    let app = Application::build(config).await?;
    let state = app.state();
    let backend = state.db.backend_name();
    let url = format!("http://127.0.0.1:{}/graphql", app.port());
    tokio::spawn(app.run_until_stopped());

    let started = Instant::now();
    let have: i64 = match &state.db {
        pupmatch::infra::db::Db::Postgres(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM profiles")
                .fetch_one(p)
                .await?
        }
        pupmatch::infra::db::Db::Sqlite(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM profiles")
                .fetch_one(p)
                .await?
        }
    };
    let missing = args
        .profiles
        .saturating_sub(usize::try_from(have).unwrap_or(0));
    if missing > 0 {
        pupmatch::seed::seed(&state.db, state.blobs.clone(), missing).await?;
        if let pupmatch::infra::db::Db::Postgres(p) = &state.db {
            sqlx::query("ANALYZE").execute(p).await?;
        }
    }
    println!(
        "backend: {backend}; profiles: {}; seeding took {:.1} s",
        args.profiles,
        started.elapsed().as_secs_f64()
    );

    let client = reqwest::Client::new();
    let email = format!("bench-{}@pupmatch.example", uuid::Uuid::new_v4().simple());
    let reg = common::gql(&client, &url, None, "mutation($e: String!) { register(input: {email: $e, password: \"benchmark-password\"}) { accessToken user { id } } }", json!({ "e": email })).await;
    let token = reg["register"]["accessToken"]
        .as_str()
        .expect("token")
        .to_string();
    let user_id: uuid::Uuid = reg["register"]["user"]["id"]
        .as_str()
        .expect("id")
        .parse()?;
    common::gql(&client, &url, Some(&token), "mutation { createProfile(input: {name: \"Bench\", age: 4, bio: \"\", activityLevel: HIGH}) { id } }", json!({})).await;
    // Only a complete profile (2 photos) browses recommendations.
    for shade in [40u8, 200] {
        let mut jpeg = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([shade, (x * 4) as u8, (y * 5) as u8])
        }))
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)?;
        let part = reqwest::multipart::Part::bytes(jpeg.into_inner())
            .file_name("dog.jpg")
            .mime_str("image/jpeg")?;
        let uploaded = client
            .post(format!("{}/v1/photos", url.trim_end_matches("/graphql")))
            .bearer_auth(&token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await?;
        anyhow::ensure!(
            uploaded.status() == 201,
            "photo upload: {}",
            uploaded.status()
        );
    }
    common::gql(
        &client,
        &url,
        Some(&token),
        "mutation { updatePreferences(input: {maxDistance: 50}) { minAge } }",
        json!({}),
    )
    .await;
    let (_, lat, lon) = pupmatch::seed::CITIES[0];
    common::gql(
        &client,
        &url,
        Some(&token),
        "mutation($a: Float!, $o: Float!) { updateLocation(latitude: $a, longitude: $o) }",
        json!({ "a": lat, "o": lon }),
    )
    .await;

    let recs_query = "{ recommendations(first: 10) { edges { node { score distance likedYou profile { userId name photos { url } } } } } }";
    let first = common::gql(&client, &url, Some(&token), recs_query, json!({})).await;
    let served = first["recommendations"]["edges"]
        .as_array()
        .map_or(0, Vec::len);
    println!("recommendations served per page: {served}");

    let mut warm = Vec::with_capacity(args.warm);
    for _ in 0..args.warm {
        let t = Instant::now();
        common::gql(&client, &url, Some(&token), recs_query, json!({})).await;
        warm.push(t.elapsed());
    }
    println!(
        "recommendations warm (cached list): {}",
        common::percentiles(warm)
    );

    let mut cold = Vec::with_capacity(args.cold);
    for _ in 0..args.cold {
        state.discovery.invalidate(user_id).await;
        let t = Instant::now();
        common::gql(&client, &url, Some(&token), recs_query, json!({})).await;
        cold.push(t.elapsed());
    }
    println!(
        "recommendations cold (list recomputed): {}",
        common::percentiles(cold)
    );

    // Like throughput: 50 demo accounts like distinct others concurrently.
    let likers = 50usize;
    let mut tokens = Vec::new();
    for i in 0..likers {
        let d = common::gql(&client, &url, None, "mutation($e: String!) { login(email: $e, password: \"demo-password\") { accessToken } }", json!({ "e": format!("demo{i}@pupmatch.example") })).await;
        tokens.push(
            d["login"]["accessToken"]
                .as_str()
                .expect("token")
                .to_string(),
        );
    }
    let targets: Vec<uuid::Uuid> = match &state.db {
        pupmatch::infra::db::Db::Postgres(p) => {
            sqlx::query_scalar("SELECT user_id FROM profiles ORDER BY user_id DESC LIMIT 200")
                .fetch_all(p)
                .await?
        }
        pupmatch::infra::db::Db::Sqlite(p) => {
            sqlx::query_scalar("SELECT user_id FROM profiles ORDER BY user_id DESC LIMIT 200")
                .fetch_all(p)
                .await?
        }
    };
    let per = args.likes / likers;
    let jobs: Vec<(String, uuid::Uuid)> = (0..per)
        .flat_map(|j| tokens.iter().map(move |t| (t.clone(), j)))
        .map(|(t, j)| (t, targets[j % targets.len()]))
        .collect();
    let total = jobs.len();
    let t = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(jobs)
        .map(|(tok, target)| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let s = Instant::now();
                let res: Value = client
                    .post(&url)
                    .bearer_auth(tok)
                    .json(&json!({ "query": "mutation($u: UUID!) { like(userId: $u) { isMatch } }", "variables": { "u": target } }))
                    .send()
                    .await
                    .expect("like")
                    .json()
                    .await
                    .expect("json");
                assert!(res["errors"].is_null() || res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", "{res}");
                s.elapsed()
            }
        })
        .buffer_unordered(likers)
        .collect()
        .await;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "likes: {total} in {secs:.2} s = {:.0} likes/s at {likers} concurrent clients; latency {}",
        total as f64 / secs,
        common::percentiles(latencies)
    );
    Ok(())
}
