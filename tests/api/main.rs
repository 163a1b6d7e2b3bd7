//! The integration suite: the real server over HTTP, on PostgreSQL (+ Redis) and on SQLite.

mod helpers;

mod account_deletion;
mod auth;
mod blocking;
mod chat;
mod contract;
mod discovery;
mod discovery_properties;
mod export;
mod graphql_limits;
mod input_limits;
mod jobs;
mod log_secrets;
mod n_plus_one;
mod notifications;
mod operations;
mod password_reset;
mod photos;
mod playgrounds;
mod profiles;
mod properties;
mod rate_limits;
mod request_budgets;
mod socket_sessions;
mod text_hygiene;
mod tokens;
