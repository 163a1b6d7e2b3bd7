//! Encrypted connections to PostgreSQL and Redis (rustls).
//!
//! PostgreSQL follows libpq's `sslmode` in `PUPMATCH_DATABASE_URL` (`require`, `verify-ca`,
//! `verify-full`); Redis is encrypted with a `rediss://` URL and always verifies the server's
//! certificate and name. Each may trust a private CA given as a PEM file
//! (`PUPMATCH_DATABASE_CA_FILE`, `PUPMATCH_REDIS_CA_FILE`); otherwise the system's trust store
//! is used. A CA file given for PostgreSQL without an `sslmode` means `verify-full`; with
//! `sslmode=require` it verifies the chain as `verify-ca` does (as libpq does when a root
//! certificate is there). The URL is read as the driver reads it: the last `sslmode` wins, and
//! a `host` parameter names the host.

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The `sslmode` values of a PostgreSQL URL, weakest first.
pub const PG_SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Reads a CA bundle, checking that it holds at least one PEM certificate.
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(pem)
}

/// The `sslmode` a PostgreSQL URL names, if any, read as the driver reads it: the last
/// `sslmode` (or `ssl-mode`) wins.
pub fn pg_ssl_mode(url: &str) -> Option<String> {
    last_param(url, &["sslmode", "ssl-mode"]).map(|v| v.to_ascii_lowercase())
}

/// The value of the last of `keys` in `url`'s query.
fn last_param(url: &str, keys: &[&str]) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .filter(|(k, _)| keys.contains(&k.as_ref()))
        .last()
        .map(|(_, v)| v.into_owned())
}

/// The `sslmode` a connection to `url` runs with, as libpq would: with a root certificate (the
/// CA file, or `sslrootcert` in the URL) `require` also verifies the chain, as `verify-ca`
/// does; a CA file without a mode means `verify-full`. `None`: the driver's default.
pub fn effective_pg_ssl_mode(url: &str, ca_file: bool) -> Option<String> {
    let root_cert =
        ca_file || last_param(url, &["sslrootcert", "ssl-root-cert", "ssl-ca"]).is_some();
    match pg_ssl_mode(url).as_deref() {
        None if ca_file => Some("verify-full".into()),
        Some("require") if root_cert => Some("verify-ca".into()),
        other => other.map(String::from),
    }
}

/// The host a PostgreSQL URL connects to, as the driver reads it: a `host` (or `hostaddr`)
/// parameter overrides the URL's host; `None` for a Unix socket or no host at all.
pub fn pg_host(url: &str) -> Option<String> {
    let host = last_param(url, &["host", "hostaddr"])
        .or_else(|| url::Url::parse(url).ok()?.host_str().map(String::from))?;
    (!host.is_empty() && !host.starts_with('/') && !host.starts_with("%2F")).then_some(host)
}

/// Problems with the TLS settings, one line each (empty when they are consistent).
pub fn check_settings(
    database_url: &str,
    database_ca_file: Option<&Path>,
    redis_url: Option<&str>,
    redis_ca_file: Option<&Path>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let postgres =
        database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
    let mode = postgres.then(|| pg_ssl_mode(database_url)).flatten();
    if let Some(mode) = &mode
        && !PG_SSL_MODES.contains(&mode.as_str())
    {
        errors.push(format!(
            "PUPMATCH_DATABASE_URL: sslmode must be one of {}, not `{mode}`",
            PG_SSL_MODES.join(", ")
        ));
    }
    if let Some(ca) = database_ca_file {
        if !postgres {
            errors.push("PUPMATCH_DATABASE_CA_FILE applies to PostgreSQL URLs only".into());
        } else if let Some(mode) = mode.as_deref()
            && matches!(mode, "disable" | "allow" | "prefer")
        {
            errors.push(format!(
                "PUPMATCH_DATABASE_CA_FILE needs sslmode=verify-full (or verify-ca, require) in \
                 PUPMATCH_DATABASE_URL, which says sslmode={mode}"
            ));
        }
        if let Err(e) = read_ca_file(ca) {
            errors.push(format!("PUPMATCH_DATABASE_CA_FILE: {e}"));
        }
    }
    if let Some(Ok(url)) = redis_url.map(url::Url::parse)
        && url.fragment() == Some("insecure")
    {
        errors.push(
            "PUPMATCH_REDIS_URL: `#insecure` turns off the certificate check; name a private CA \
             with PUPMATCH_REDIS_CA_FILE instead"
                .into(),
        );
    }
    if let Some(ca) = redis_ca_file {
        if !redis_url.is_some_and(|u| u.starts_with("rediss://") || u.starts_with("valkeys://")) {
            errors.push(
                "PUPMATCH_REDIS_CA_FILE needs an encrypted PUPMATCH_REDIS_URL (rediss://…)".into(),
            );
        }
        if let Err(e) = read_ca_file(ca) {
            errors.push(format!("PUPMATCH_REDIS_CA_FILE: {e}"));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_A_CERT: &str = "hello";

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), contents).expect("write");
        f
    }

    #[test]
    fn sslmode_is_read_from_the_query() {
        assert_eq!(
            pg_ssl_mode("postgres://u@db.example/app?sslmode=Verify-Full").as_deref(),
            Some("verify-full")
        );
        assert_eq!(pg_ssl_mode("postgres://u@db.example/app"), None);
        // As the driver reads it: the last one wins.
        assert_eq!(
            pg_ssl_mode("postgres://u@h/app?sslmode=verify-full&ssl-mode=disable").as_deref(),
            Some("disable")
        );
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain() {
        let mode = |url: &str, ca: bool| effective_pg_ssl_mode(url, ca);
        assert_eq!(
            mode("postgres://u@h/db", true).as_deref(),
            Some("verify-full")
        );
        assert_eq!(mode("postgres://u@h/db", false), None);
        assert_eq!(
            mode("postgres://u@h/db?sslmode=require", true).as_deref(),
            Some("verify-ca")
        );
        assert_eq!(
            mode(
                "postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem",
                false
            )
            .as_deref(),
            Some("verify-ca")
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=require", false).as_deref(),
            Some("require")
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=verify-ca", true).as_deref(),
            Some("verify-ca")
        );
    }

    #[test]
    fn the_host_is_read_as_the_driver_reads_it() {
        assert_eq!(
            pg_host("postgres://u@db.example/app").as_deref(),
            Some("db.example")
        );
        assert_eq!(
            pg_host("postgres://u@localhost/app?host=db.internal").as_deref(),
            Some("db.internal")
        );
        assert_eq!(
            pg_host("postgres://u@localhost/app?hostaddr=10.1.2.3").as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(
            pg_host("postgres://u@localhost/app?host=/var/run/postgresql"),
            None
        );
    }

    #[test]
    fn an_unknown_sslmode_is_refused() {
        let errors = check_settings("postgres://u@h/db?sslmode=on", None, None, None);
        assert!(errors[0].contains("sslmode must be one of"), "{errors:?}");
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused() {
        let ca = file(NOT_A_CERT);
        let errors = check_settings("postgres://u@h/db", Some(ca.path()), None, None);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("holds no PEM certificate"), "{errors:?}");
        let missing = Path::new("/nonexistent/ca.pem");
        let errors = check_settings("postgres://u@h/db", Some(missing), None, None);
        assert!(
            errors[0].contains("cannot read /nonexistent/ca.pem"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_database_ca_file_with_a_mode_that_skips_verification_is_refused() {
        let missing = Path::new("/nonexistent/ca.pem");
        for mode in ["disable", "allow", "prefer"] {
            let url = format!("postgres://u@h/db?sslmode={mode}");
            let errors = check_settings(&url, Some(missing), None, None);
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains("needs sslmode=verify-full")),
                "{mode}: {errors:?}"
            );
        }
        let errors = check_settings("sqlite://x.db", Some(missing), None, None);
        assert!(errors[0].contains("PostgreSQL URLs only"), "{errors:?}");
    }

    #[test]
    fn redis_certificate_checks_cannot_be_turned_off() {
        for url in [
            "rediss://cache.internal:6379/#insecure",
            "valkeys://cache.internal/#insecure",
        ] {
            let errors = check_settings("sqlite://x.db", None, Some(url), None);
            assert!(
                errors.len() == 1 && errors[0].contains("`#insecure`"),
                "{url}: {errors:?}"
            );
        }
        assert!(
            check_settings("sqlite://x.db", None, Some("rediss://cache.internal"), None).is_empty()
        );
    }

    #[test]
    fn a_redis_ca_file_needs_rediss() {
        let missing = Path::new("/nonexistent/ca.pem");
        for url in [None, Some("redis://127.0.0.1:6379")] {
            let errors = check_settings("sqlite://x.db", None, url, Some(missing));
            assert!(
                errors[0].contains("needs an encrypted"),
                "{url:?}: {errors:?}"
            );
        }
    }
}
