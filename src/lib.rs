//! PupMatch: the backend of a dating app for dogs and their people.
//!
//! A guided tour, from the edge inwards. No two files import each other, and a top-level module
//! imports only its own layer and those below (`scripts/check-imports.py` checks both in CI,
//! with its layers in `LAYERS`): the server, then HTTP and jobs, the schema's assembly, the
//! application, the domains (each above those it uses), what every resolver shares, who is
//! calling, and the infrastructure and configuration at the bottom.
//! - [`server`]: startup and shutdown — `Application::build(config)` binds the listener and
//!   serves the HTTP surface (with the jobs, when `serve` runs them); `run_worker` runs the
//!   jobs alone.
//! - [`http`]: the router — GraphQL, media, photos, export, the socket, health and metrics, the
//!   moderation console — and its layers. Its state is the application plus the schemas.
//! - [`graphql`]: the merged schema, its limits and the cache of parsed documents.
//! - [`jobs`]: the background jobs and the worker that runs each tick once.
//! - [`app`]: the application — every service and the infrastructure under them, wired from
//!   the configuration. It knows nothing of HTTP, GraphQL or jobs.
//! - Domains, each with its model, service, store and resolvers (which take the services they
//!   use from the schema, by type). A store is one type over the configured pool with each
//!   statement written once for both databases ([`infra::sql`]); what truly differs (PostGIS,
//!   PL/pgSQL, SQLite's R*Tree and FTS5) stands per backend side by side. A transaction that
//!   spans domains runs the owning store's named statement (such as `PlaygroundStore::DELETE`)
//!   or a method the owning store gives either backend's transaction (`in_both_transactions!`,
//!   such as the profile store's `PhotosTx::remove_photo`);
//!   the exceptions are the like (its notice is written in the like's one statement, for one
//!   round trip) and what ends data wholesale (account deletion, cleanup, the export's reads).
//!   Shared SQL text is a named constant (`const_format::concatcp!` joins them):
//!   [`auth`] (accounts, sessions, passwords), [`profiles`] (dog profiles, photos),
//!   [`discovery`] (location, recommendations, likes, matches, blocks, reports), [`chat`]
//!   (messages, and the `/ws` protocol), [`notifications`] (inbox, push) and [`playgrounds`]
//!   (places); [`moderation`] (cases, actions, roles, the audit log) and [`export`] (a person's
//!   data, streamed).
//! - [`resolvers`]: what every resolver shares — the request's context, the signed-in check,
//!   the per-IP and per-person budgets, paging.
//! - [`identity`]: who is calling — access and opaque tokens, the signed-in person, and the
//!   session check the accounts domain provides (so resolvers need not depend on it).
//! - [`hub`]: this instance's live sockets and delivery to them, fed by the bus; chat and
//!   notifications both send through it.
//! - [`events`]: what crosses domains on the bus (matches begun or ended, sessions ended).
//! - [`frames`]: every frame the server sends on `/ws`, as one serde enum.
//! - [`config`]: typed configuration (defaults → TOML → `PUPMATCH_*`, and the standard
//!   `OTEL_*` variables), validated at startup, with what TLS and trace settings mean; the
//!   lowest layer.
//! - [`error`]: the one API error type and the policy mapping failures to codes and statuses.
//! - [`ids`]: typed ids (a person, a profile, a conversation, a message, a place).
//! - [`text`]: hygiene of every free-text input (normalisation, refused characters).
//! - [`seed`]: demo data (`pupmatch seed`).
//! - [`infra`]: database pools and migrations, the SQL layer both databases share, Redis, the
//!   bus, caches, rate limiting, mail, blobs, push, telemetry.

pub mod app;
pub mod auth;
pub mod chat;
pub mod config;
pub mod discovery;
pub mod error;
pub mod events;
pub mod export;
pub mod frames;
pub mod graphql;
pub mod http;
pub mod hub;
pub mod identity;
pub mod ids;
pub mod infra;
pub mod jobs;
pub mod moderation;
pub mod notifications;
pub mod playgrounds;
pub mod profiles;
pub mod resolvers;
pub mod seed;
pub mod server;
pub mod text;

pub use app::AppState;
pub use config::Config;
pub use server::Application;
