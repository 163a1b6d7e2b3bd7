//! The integration suite: the real server over HTTP, on PostgreSQL (+ Redis) and on SQLite.

mod helpers;

/// The allocator the `pupmatch` binary runs with, so memory measured here is the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod account_deletion;
mod auth;
mod ban_evasion;
mod behind_a_proxy;
mod blocking;
mod bus_outages;
mod cancelled_requests;
mod chat;
mod console_sessions;
mod contract;
mod credential_stuffing;
mod daily_ceilings;
mod database_restarts;
mod dependency_outages;
mod discovery;
mod discovery_properties;
mod email_confirmation;
mod encrypted_connections;
mod export;
mod graphql_limits;
mod graphql_over_http;
mod input_limits;
mod jobs;
mod log_secrets;
mod memory_limits;
mod moderation;
mod moderation_console;
mod monitoring;
mod n_plus_one;
mod notice_spam;
mod notifications;
mod operations;
mod origins;
mod password_reset;
mod photos;
mod place_moderation;
mod place_spam;
mod playgrounds;
mod profile_copying;
mod profiles;
mod properties;
mod query_plans;
mod ranking_privacy;
mod rate_limits;
mod read_replicas;
mod removed_photos;
mod report_weaponisation;
mod request_budgets;
mod restrictions;
mod socket_sessions;
mod sqlite_writer;
mod staff_reach;
mod text_hygiene;
mod tokens;
mod traces;
