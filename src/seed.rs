//! `pupmatch seed --profiles N`: realistic demo data on either backend — complete profiles
//! spread over six real cities, with photos (real JPEG blobs in the configured store),
//! prompts, preferences, locations and some likes. Every demo account's password is
//! [`DEMO_PASSWORD`]; emails are `demo<N>@pupmatch.example`.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use rand::Rng;
use rand::seq::IndexedRandom;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::discovery::geo::Coordinates;
use crate::infra::blobs::BlobStore;
use crate::infra::db::Db;
use crate::infra::time::{self, sqlite_ts};
use crate::profiles::input::PROMPT_QUESTIONS;
use crate::profiles::model::{ActivityLevel, DogSize};

pub const DEMO_PASSWORD: &str = "demo-password";

/// (name, latitude, longitude) of the cities demo dogs live in.
pub const CITIES: &[(&str, f64, f64)] = &[
    ("Berlin", 52.5200, 13.4050),
    ("Munich", 48.1374, 11.5755),
    ("Hamburg", 53.5511, 9.9937),
    ("London", 51.5074, -0.1278),
    ("New York", 40.7128, -74.0060),
    ("San Francisco", 37.7749, -122.4194),
];

const NAMES: &[&str] = &[
    "Rex", "Bella", "Luna", "Max", "Charlie", "Daisy", "Milo", "Lola", "Rocky", "Nala", "Buddy",
    "Coco", "Bailey", "Ruby", "Toby", "Rosie", "Finn", "Maple", "Otis", "Pepper",
];
const BREEDS: &[&str] = &[
    "Beagle",
    "Labrador",
    "Border Collie",
    "Dachshund",
    "Poodle",
    "Golden Retriever",
    "Pug",
    "Husky",
    "Corgi",
    "Whippet",
    "Mixed",
];
const ANSWERS: &[&str] = &[
    "The squeaky duck",
    "Chasing pigeons at dawn",
    "Belly rubs, obviously",
    "Cheese",
    "Sit, paw, roll over and a little dance",
    "When the leash comes out",
    "Under the piano",
];
const BIOS: &[&str] = &[
    "Loves long walks and longer naps.",
    "Zoomies champion of the neighbourhood.",
    "Looking for a fetch partner.",
    "Gentle giant, scared of cats.",
    "",
];

struct SeedProfile {
    user_id: Uuid,
    email: String,
    name: String,
    age: i32,
    bio: String,
    breed: Option<String>,
    size: DogSize,
    activity: ActivityLevel,
    exact: Coordinates,
    grid: Coordinates,
    prompts: Vec<(String, String)>,
    photos: Vec<(Uuid, String, String)>,
    active_at: DateTime<Utc>,
    pref_min: i32,
    pref_max: i32,
    pref_km: f64,
    likes: Vec<Uuid>,
}

/// Creates `count` demo profiles. Returns how many were created.
/// `pupmatch seed`: refuses production (the demo accounts share a published password), then
/// connects, migrates and seeds `count` profiles.
pub async fn run(config: &crate::Config, count: usize) -> anyhow::Result<usize> {
    anyhow::ensure!(
        !config.is_production(),
        "pupmatch seed refuses to run with PUPMATCH_ENV=production: it creates demo accounts \
         whose password is published"
    );
    let db = Db::connect(
        &config.database_url,
        config.database_max_connections,
        config.database_ca_file.as_deref(),
    )
    .await?;
    db.migrate().await.context("migration failed")?;
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => format!("http://{}", config.listen).parse()?,
    };
    let blobs = crate::app::blob_store(config, &public_url)?;
    let made = seed(&db, blobs, count).await;
    db.close().await;
    made
}

pub async fn seed(db: &Db, blobs: Arc<dyn BlobStore>, count: usize) -> anyhow::Result<usize> {
    let gate = crate::infra::work::WorkGate::new("password", 1, 32, std::time::Duration::MAX);
    let hash = crate::auth::password::hash(&gate, DEMO_PASSWORD.to_string()).await?;
    let photos = sample_photos();
    let offset = existing_demo_users(db).await?;
    let now = time::now();
    let mut made = 0;
    let mut recent: Vec<Uuid> = Vec::new();
    while made < count {
        let n = (count - made).min(500);
        let batch: Vec<SeedProfile> = {
            let mut rng = rand::rng();
            (0..n)
                .map(|i| make_profile(&mut rng, offset + made + i, now, &recent))
                .collect()
        };
        write_blobs(&blobs, &batch, &photos).await?;
        match db {
            Db::Postgres(pool) => insert_pg(pool, &batch, &hash, now).await?,
            Db::Sqlite(pool) => insert_sqlite(pool, &batch, &hash, now).await?,
        }
        recent = batch.iter().map(|p| p.user_id).collect();
        made += n;
        tracing::info!(made, of = count, "seeding");
    }
    Ok(made)
}

async fn existing_demo_users(db: &Db) -> anyhow::Result<usize> {
    let n: i64 = match db {
        Db::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE email LIKE 'demo%@pupmatch.example'",
            )
            .fetch_one(pool)
            .await?
        }
        Db::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE email LIKE 'demo%@pupmatch.example'",
            )
            .fetch_one(pool)
            .await?
        }
    };
    Ok(usize::try_from(n).unwrap_or(0))
}

fn make_profile(rng: &mut impl Rng, n: usize, now: DateTime<Utc>, recent: &[Uuid]) -> SeedProfile {
    let (_, lat, lon) = CITIES[n % CITIES.len()];
    // Spread over ~20 km around the centre.
    let r_km = 20.0 * rng.random::<f64>().sqrt();
    let bearing = rng.random::<f64>() * std::f64::consts::TAU;
    let dlat = (r_km / 111.195) * bearing.cos();
    let dlon = (r_km / (111.195 * lat.to_radians().cos())) * bearing.sin();
    let exact = Coordinates::parse(lat + dlat, lon + dlon)
        .unwrap_or(Coordinates::parse(lat, lon).expect("city centres are valid coordinates"));
    let user_id = Uuid::now_v7();
    let mut questions: Vec<&str> = PROMPT_QUESTIONS.to_vec();
    let prompt_count = rng.random_range(0..=3);
    let prompts = (0..prompt_count)
        .map(|_| {
            let i = rng.random_range(0..questions.len());
            let q = questions.swap_remove(i);
            let a = ANSWERS.choose(rng).copied().unwrap_or("Fetch");
            (q.to_string(), a.to_string())
        })
        .collect();
    let photo_count = rng.random_range(2..=4);
    let photos = (0..photo_count)
        .map(|_| {
            let id = Uuid::now_v7();
            let base = format!("photos/{}/{}", user_id.simple(), id.simple());
            (id, format!("{base}.jpg"), format!("{base}_thumb.jpg"))
        })
        .collect();
    let likes = if recent.is_empty() {
        Vec::new()
    } else {
        (0..rng.random_range(0..3))
            .filter_map(|_| recent.choose(rng).copied())
            .collect()
    };
    let pref_min = rng.random_range(0..4);
    SeedProfile {
        user_id,
        email: format!("demo{n}@pupmatch.example"),
        name: NAMES.choose(rng).copied().unwrap_or("Rex").to_string(),
        age: rng.random_range(0..=15),
        bio: BIOS.choose(rng).copied().unwrap_or("").to_string(),
        breed: BREEDS.choose(rng).map(|b| (*b).to_string()),
        size: [DogSize::Small, DogSize::Medium, DogSize::Large][rng.random_range(0..3)],
        activity: [
            ActivityLevel::Low,
            ActivityLevel::Medium,
            ActivityLevel::High,
        ][rng.random_range(0..3)],
        grid: exact.snapped(),
        exact,
        prompts,
        photos,
        active_at: now - Duration::minutes(rng.random_range(0..60 * 24 * 14)),
        pref_min,
        pref_max: rng.random_range(pref_min.max(8)..=30),
        pref_km: [10.0, 25.0, 50.0, 100.0][rng.random_range(0..4)],
        likes,
    }
}

/// A handful of real JPEGs (photo, thumbnail) in different colours.
fn sample_photos() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0u8..8)
        .map(|i| {
            let img = image::RgbImage::from_fn(96, 96, |x, y| {
                image::Rgb([i.wrapping_mul(31), (x * 2) as u8, (y * 2) as u8])
            });
            let encode = |img: &image::RgbImage| {
                let mut out = Vec::new();
                let _ = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
                    .encode_image(img);
                out
            };
            let thumb = image::imageops::thumbnail(&img, 32, 32);
            (encode(&img), encode(&thumb))
        })
        .collect()
}

async fn write_blobs(
    blobs: &Arc<dyn BlobStore>,
    batch: &[SeedProfile],
    samples: &[(Vec<u8>, Vec<u8>)],
) -> anyhow::Result<()> {
    let jobs: Vec<(String, Vec<u8>)> = batch
        .iter()
        .flat_map(|p| p.photos.iter())
        .enumerate()
        .flat_map(|(i, (_, key, thumb))| {
            let (full, small) = &samples[i % samples.len()];
            [(key.clone(), full.clone()), (thumb.clone(), small.clone())]
        })
        .collect();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(jobs)
        .map(|(key, bytes)| {
            let blobs = blobs.clone();
            async move { blobs.put(&key, bytes).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results
        .into_iter()
        .collect::<anyhow::Result<()>>()
        .context("Failed to store demo photos")
}

/// Emits the same multi-row INSERTs for both backends; `$ts` binds a timestamp in the
/// backend's own representation.
macro_rules! insert_batch {
    ($tx:expr, $db:ty, $batch:expr, $hash:expr, $now:expr, $ts:expr) => {{
        let ts = $ts;
        let now = $now;
        let mut q = QueryBuilder::<$db>::new(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at, last_active_at) ",
        );
        q.push_values($batch, |mut b, p| {
            b.push_bind(p.user_id).push_bind(&p.email).push_bind($hash)
                .push_bind(ts(now)).push_bind(ts(now)).push_bind(ts(p.active_at));
        });
        q.build().execute(&mut *$tx).await?;

        let mut q = QueryBuilder::<$db>::new("INSERT INTO notification_preferences (user_id, updated_at) ");
        q.push_values($batch, |mut b, p| {
            b.push_bind(p.user_id).push_bind(ts(now));
        });
        q.build().execute(&mut *$tx).await?;

        let mut q = QueryBuilder::<$db>::new(
            "INSERT INTO profiles (id, user_id, name, age, bio, breed, size, activity_level, is_paused, photo_count, created_at, updated_at) ",
        );
        q.push_values($batch, |mut b, p| {
            b.push_bind(Uuid::now_v7()).push_bind(p.user_id).push_bind(&p.name).push_bind(p.age)
                .push_bind(&p.bio).push_bind(&p.breed).push_bind(p.size).push_bind(p.activity)
                .push_bind(false).push_bind(i32::try_from(p.photos.len()).unwrap_or(2))
                .push_bind(ts(now)).push_bind(ts(now));
        });
        q.build().execute(&mut *$tx).await?;

        let photos: Vec<(Uuid, i32, &(Uuid, String, String))> = $batch
            .iter()
            .flat_map(|p| (0i32..).zip(p.photos.iter()).map(move |(i, ph)| (p.user_id, i, ph)))
            .collect();
        let mut q = QueryBuilder::<$db>::new(
            "INSERT INTO photos (id, user_id, position, storage_key, thumbnail_key, width, height, byte_size, created_at) ",
        );
        q.push_values(&photos, |mut b, (user, pos, (id, key, thumb))| {
            b.push_bind(*id).push_bind(*user).push_bind(*pos).push_bind(key).push_bind(thumb)
                .push_bind(96).push_bind(96).push_bind(4096).push_bind(ts(now));
        });
        q.build().execute(&mut *$tx).await?;

        let prompts: Vec<(Uuid, i32, &(String, String))> = $batch
            .iter()
            .flat_map(|p| (0i32..).zip(p.prompts.iter()).map(move |(i, pr)| (p.user_id, i, pr)))
            .collect();
        if !prompts.is_empty() {
            let mut q = QueryBuilder::<$db>::new(
                "INSERT INTO prompts (id, user_id, position, question, answer, created_at) ",
            );
            q.push_values(&prompts, |mut b, (user, pos, (question, answer))| {
                b.push_bind(Uuid::now_v7()).push_bind(*user).push_bind(*pos).push_bind(question)
                    .push_bind(answer).push_bind(ts(now));
            });
            q.build().execute(&mut *$tx).await?;
        }

        let mut q = QueryBuilder::<$db>::new(
            "INSERT INTO preferences (user_id, min_age, max_age, max_distance, activity_level, distance_unit, updated_at) ",
        );
        q.push_values($batch, |mut b, p| {
            b.push_bind(p.user_id).push_bind(p.pref_min).push_bind(p.pref_max).push_bind(p.pref_km)
                .push_bind(p.activity).push_bind("KILOMETERS").push_bind(ts(now));
        });
        q.build().execute(&mut *$tx).await?;

        let mut q = QueryBuilder::<$db>::new(
            "INSERT INTO locations (user_id, latitude, longitude, grid_latitude, grid_longitude, updated_at) ",
        );
        q.push_values($batch, |mut b, p| {
            b.push_bind(p.user_id).push_bind(p.exact.latitude()).push_bind(p.exact.longitude())
                .push_bind(p.grid.latitude()).push_bind(p.grid.longitude()).push_bind(ts(now));
        });
        q.build().execute(&mut *$tx).await?;

        let likes: Vec<(Uuid, Uuid)> = $batch
            .iter()
            .flat_map(|p| p.likes.iter().map(move |t| (p.user_id, *t)))
            .collect();
        if !likes.is_empty() {
            let mut q = QueryBuilder::<$db>::new("INSERT INTO likes (id, user_id, target_id, created_at) ");
            q.push_values(&likes, |mut b, (from, to)| {
                b.push_bind(Uuid::now_v7()).push_bind(*from).push_bind(*to).push_bind(ts(now));
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

async fn insert_pg(
    pool: &sqlx::PgPool,
    batch: &[SeedProfile],
    hash: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    insert_batch!(tx, sqlx::Postgres, batch, hash, now, |t: DateTime<Utc>| t);
    tx.commit().await?;
    Ok(())
}

async fn insert_sqlite(
    pool: &sqlx::SqlitePool,
    batch: &[SeedProfile],
    hash: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut tx = crate::infra::db::begin_write(pool).await?;
    insert_batch!(tx, sqlx::Sqlite, batch, hash, now, sqlite_ts);
    tx.commit().await?;
    Ok(())
}
