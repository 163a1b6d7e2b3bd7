//! PupMatch: the backend of a dating app for dogs and their people.
//!
//! A guided tour, from the edge inwards:
//! - [`app`]: `Application::build(config)` wires everything; `AppState` is what handlers share.
//! - [`config`]: typed configuration (defaults → TOML → `PUPMATCH_*`), validated at startup.
//! - [`http`]: the router — GraphQL, media, health and metrics — and its layers.
//! - [`graphql`]: the merged schema, its limits, and per-request auth helpers.
//! - [`error`]: the one API error type and the policy mapping failures to codes and statuses.
//! - Domains, each with its model, service, store (both SQL dialects) and resolvers:
//!   [`auth`] (accounts, sessions, passwords), [`profiles`] (dog profiles, photos) and
//!   [`discovery`] (location, recommendations, likes, matches, blocks), [`chat`] (messages and
//!   live sockets), [`notifications`] (inbox, push) and [`playgrounds`] (places).
//! - [`moderation`]: cases built from reports, moderator actions, roles and the audit log;
//!   served by the admin GraphQL API and the web console (`/admin`).
//! - [`export`]: a person's data export (`GET /v1/me/export`), streamed.
//! - [`jobs`]: the background jobs and the worker that runs each tick once (`pupmatch worker`).
//! - [`seed`]: demo data (`pupmatch seed`).
//! - [`text`]: hygiene of every free-text input (normalisation, refused characters).
//! - [`infra`]: database pools and migrations, Redis, rate limiting, mail, blobs, telemetry.

pub mod app;
pub mod auth;
pub mod chat;
pub mod config;
pub mod discovery;
pub mod error;
pub mod export;
pub mod graphql;
pub mod http;
pub mod infra;
pub mod jobs;
pub mod moderation;
pub mod notifications;
pub mod playgrounds;
pub mod profiles;
pub mod seed;
pub mod text;

pub use app::{AppState, Application};
pub use config::Config;
