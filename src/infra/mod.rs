//! Cross-cutting backends, each with a real implementation per mode, chosen once at startup,
//! and the small helpers every domain shares. Nothing here knows about a domain.
//!
//! - [`db`]: PostgreSQL + PostGIS or SQLite pools and embedded migrations.
//! - [`replicas`]: PostgreSQL read replicas for reads that may be a moment stale, with their
//!   lag measured and bounded.
//! - [`sql`]: what lets a store write each statement once for both backends (`with_db!`,
//!   timestamps, id lists, write transactions, row locks).
//! - [`redis`]: the optional shared Redis connection, with a deadline per command and a probe
//!   that brings it back after an outage.
//! - [`bus`]: publish/subscribe, in-process or across instances through Redis.
//! - [`cache`]: the two-tier (L1 moka, L2 Redis) cache with invalidation over the bus.
//! - [`blobs`]: photo storage — S3 (or compatible), or local disk served with signed URLs.
//! - [`rate_limit`]: GCRA limits, in-process (governor) or shared through Redis.
//! - [`mail`]: outgoing email over SMTP, or logged (secrets redacted) when SMTP is not set.
//! - [`push`]: push notifications through FCM's HTTP v1 API.
//! - [`seal`]: opaque tokens (pagination cursors) sealed with a key from the server secret.
//! - [`stored`]: enums stored as text on both backends (`stored_enum!`).
//! - [`time`]: the clock and the fixed-width timestamp format SQLite stores.
//! - [`to_end`]: writes that run to their end even when whoever asked goes away.
//! - [`tls`]: encrypted connections to PostgreSQL and Redis, with an optional private CA.
//! - [`work`]: bounded pools for CPU- and memory-heavy work (images, password hashes).
//! - [`telemetry`]: logging and Prometheus metrics, and the subscriber that also times every SQL
//!   statement ([`statements`]) and exports traces ([`traces`]: OpenTelemetry over OTLP/HTTP).

pub mod blobs;
pub mod bus;
pub mod cache;
pub mod db;
pub mod mail;
pub mod push;
pub mod rate_limit;
pub mod redis;
pub mod replicas;
pub mod sampling;
pub mod seal;
pub mod sql;
pub mod statements;
pub mod stored;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod to_end;
pub mod traces;
pub mod work;
