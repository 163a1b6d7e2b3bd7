//! Cross-cutting backends, each with a real implementation per mode, chosen once at startup.
//!
//! - [`bus`]: publish/subscribe, in-process or across instances through Redis.
//! - [`cache`]: the two-tier (L1 moka, L2 Redis) cache with invalidation over the bus.
//! - [`blobs`]: object storage (local disk with signed URLs).
//! - [`db`]: PostgreSQL + PostGIS or SQLite pools and embedded migrations.
//! - [`redis`]: the optional shared Redis connection (cache L2, pub/sub, shared rate limits).
//! - [`rate_limit`]: GCRA limits, in-process (governor) or shared through Redis.
//! - [`mail`]: outgoing email over SMTP, or logged when SMTP is not configured.
//! - [`seal`]: opaque tokens (pagination cursors) sealed with a key from the server secret.
//! - [`time`]: the clock and the fixed-width timestamp format SQLite stores.
//! - [`tls`]: encrypted connections to PostgreSQL and Redis, with an optional private CA.
//! - [`work`]: bounded pools for CPU- and memory-heavy work (images, password hashes).
//! - [`telemetry`]: logging and Prometheus metrics.

pub mod blobs;
pub mod bus;
pub mod cache;
pub mod db;
pub mod mail;
pub mod push;
pub mod rate_limit;
pub mod redis;
pub mod seal;
pub mod stored;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod work;
