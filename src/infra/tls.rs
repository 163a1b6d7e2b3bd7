//! Encrypted connections to PostgreSQL and Redis (rustls): the process's TLS provider, and the
//! connections that cross a network unverified. What the settings mean, and their checks, are
//! in [`crate::config::tls`].

use crate::config::tls::{effective_pg_ssl_mode, pg_host};

/// Makes ring the process's TLS provider (the crates in the build enable more than one, and
/// rustls then needs to be told). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all this wants.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether a host name or address is another machine.
fn remote(name: &str) -> bool {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name != "localhost"
        && !name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Connections that cross a network unverified: a PostgreSQL host that is not this machine
/// whose certificate is not verified (`verify-full`, `verify-ca`, or `require` with a CA
/// file), or a Redis host without `rediss://`. Logged as warnings at startup (a private
/// network may be trusted on purpose, so they are not refused).
pub fn unverified_connections(
    database_url: &str,
    database_ca_file: bool,
    redis_url: Option<&str>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        let host = pg_host(database_url).unwrap_or_default();
        if remote(&host)
            && !host.is_empty()
            && !matches!(
                effective_pg_ssl_mode(database_url, database_ca_file).as_deref(),
                Some("verify-full" | "verify-ca")
            )
        {
            warnings.push(format!(
                "PostgreSQL at {host} is reached without verifying its certificate: set \
                 sslmode=verify-full (and PUPMATCH_DATABASE_CA_FILE for a private CA)"
            ));
        }
    }
    if let Some(Ok(url)) = redis_url.map(url::Url::parse)
        && matches!(url.scheme(), "redis" | "valkey")
        && url.host_str().is_some_and(remote)
    {
        warnings.push(format!(
            "Redis at {} is reached unencrypted: use a rediss:// URL (and \
             PUPMATCH_REDIS_CA_FILE for a private CA)",
            url.host_str().unwrap_or_default()
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unverified_connections_to_other_machines_are_warned_about() {
        let none: Vec<String> = Vec::new();
        for (db, redis) in [
            ("postgres://u@127.0.0.1/db", Some("redis://localhost:6379")),
            ("postgres://u@[::1]/db", Some("redis://127.0.0.1")),
            (
                "postgres://u@db.internal/db?sslmode=verify-full",
                Some("rediss://cache.internal"),
            ),
            ("postgres://u@db.internal/db?sslmode=verify-ca", None),
            ("postgres://u@db.internal/db?host=/var/run/postgresql", None),
            ("sqlite://./data/pupmatch.db", None),
        ] {
            assert_eq!(
                unverified_connections(db, false, redis),
                none,
                "{db} {redis:?}"
            );
        }
        // A CA file makes `require` verify the chain.
        assert_eq!(
            unverified_connections("postgres://u@db.internal/db?sslmode=require", true, None),
            none
        );
        // Read as the driver reads it: a `host` parameter, the last `sslmode`.
        for db in [
            "postgres://u@localhost/db?host=db.internal",
            "postgres://u@db.internal/db?sslmode=verify-full&sslmode=require",
        ] {
            let warnings = unverified_connections(db, false, None);
            assert!(
                warnings.len() == 1 && warnings[0].contains("PostgreSQL at db.internal"),
                "{db}: {warnings:?}"
            );
        }
        let warnings = unverified_connections(
            "postgres://u:secret@db.internal/db?sslmode=require",
            false,
            Some("redis://:secret@cache.internal:6379"),
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("PostgreSQL at db.internal"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("Redis at cache.internal"),
            "{warnings:?}"
        );
        assert!(
            !warnings.concat().contains("secret"),
            "no password in a warning"
        );
    }

    #[test]
    fn a_remote_valkey_without_tls_is_warned_about_like_redis() {
        let warnings =
            unverified_connections("sqlite://x.db", false, Some("valkey://cache.internal"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}
