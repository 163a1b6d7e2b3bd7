use super::raw::RawConfig;
use super::*;

#[test]
fn the_default_pool_has_four_connections_per_core_and_at_most_twenty() {
    assert_eq!(default_pool_size(1), 4);
    assert_eq!(default_pool_size(2), 8);
    assert_eq!(default_pool_size(5), 20);
    assert_eq!(default_pool_size(64), 20);
    assert_eq!(
        Config::defaults().database_max_connections,
        default_pool_size(cores())
    );
    let set = RawConfig {
        database_max_connections: Some(50),
        ..raw()
    }
    .validate()
    .expect("valid");
    assert_eq!(set.database_max_connections, 50);
}

fn raw() -> RawConfig {
    RawConfig::default()
}

#[test]
fn defaults_are_embedded_mode_on_8080() {
    let c = Config::defaults();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url, "sqlite://./data/pupmatch.db");
    assert!(c.redis_url.is_none());
    assert_eq!(c.rate_limits.auth_per_min, 10);
}

#[test]
fn production_refuses_the_dev_secret() {
    let err = RawConfig {
        env: Some("production".into()),
        ..raw()
    }
    .validate()
    .expect_err("must refuse");
    assert!(err.to_string().contains("PUPMATCH_JWT_SECRET"));
}

fn production() -> RawConfig {
    RawConfig {
        env: Some("production".into()),
        jwt_secret: Some(SecretString::from(
            "a production secret of at least 32 bytes",
        )),
        smtp_url: Some(SecretString::from("smtp://127.0.0.1:2525")),
        public_url: Some("https://pupmatch.example".into()),
        allowed_origins: Some("https://app.pupmatch.example".into()),
        ..raw()
    }
}

#[test]
fn email_confirmation_is_required_in_production_unless_turned_off() {
    assert!(
        production()
            .validate()
            .expect("valid")
            .require_email_confirmation
    );
    assert!(!raw().validate().expect("valid").require_email_confirmation);
    let off = RawConfig {
        require_email_confirmation: Some(false),
        ..production()
    };
    assert!(!off.validate().expect("valid").require_email_confirmation);
    let on = RawConfig {
        require_email_confirmation: Some(true),
        ..raw()
    };
    assert!(on.validate().expect("valid").require_email_confirmation);
}

#[test]
fn production_names_its_origins_and_is_served_over_https() {
    production()
        .validate()
        .expect("a complete production configuration");
    let err = RawConfig {
        allowed_origins: None,
        ..production()
    }
    .validate()
    .expect_err("refused");
    assert!(
        err.to_string().contains("PUPMATCH_ALLOWED_ORIGINS"),
        "{err}"
    );
    let any = RawConfig {
        allowed_origins: Some(" * ".into()),
        ..production()
    }
    .validate()
    .expect("`*` on purpose");
    assert!(any.any_origin() && any.origin_allowed("https://evil.example"));
    let err = RawConfig {
        allowed_origins: Some("*, https://a.example".into()),
        ..production()
    }
    .validate()
    .expect_err("refused");
    assert!(err.to_string().contains("`*`"), "{err}");
    for url in [None, Some("http://pupmatch.example")] {
        let err = RawConfig {
            public_url: url.map(String::from),
            ..production()
        }
        .validate()
        .expect_err("refused");
        assert!(err.to_string().contains("PUPMATCH_PUBLIC_URL"), "{err}");
    }
    let listed = production().validate().expect("valid");
    assert!(!listed.any_origin());
    assert!(listed.origin_allowed("https://app.pupmatch.example"));
    assert!(!listed.origin_allowed("https://evil.example"));
    // Development stays open without the setting.
    let dev = Config::defaults();
    assert!(dev.any_origin() && dev.origin_allowed("http://localhost:19006"));
}

#[test]
fn a_toml_file_overrides_the_defaults() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pupmatch.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9999\"\nrate_limit_auth_per_min = 7\nallowed_origins = \"https://a.example, https://b.example/\"\n",
    )
    .expect("write");
    let c = Config::load(Some(&path)).expect("valid");
    assert_eq!(c.listen.port(), 9999);
    assert_eq!(c.rate_limits.auth_per_min, 7);
    assert_eq!(
        c.allowed_origins,
        Some(vec![
            "https://a.example".to_string(),
            "https://b.example".to_string()
        ])
    );
}

#[test]
fn a_bad_or_unknown_toml_value_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pupmatch.toml");
    std::fs::write(&path, "rate_limit_user_per_min = \"lots\"\n").expect("write");
    let err = Config::load(Some(&path)).expect_err("refused").to_string();
    assert!(err.contains("rate_limit_user_per_min"), "{err}");
    std::fs::write(&path, "databse_url = \"sqlite://x.db\"\n").expect("write");
    let err = Config::load(Some(&path)).expect_err("refused").to_string();
    assert!(err.contains("databse_url"), "{err}");
    let missing = Config::load(Some(&dir.path().join("nope.toml"))).expect_err("refused");
    assert!(missing.to_string().contains("does not exist"));
}

#[test]
fn every_bad_value_gets_its_own_line() {
    let err = RawConfig {
        env: Some("staging".into()),
        listen: Some("nowhere".into()),
        log_format: Some("xml".into()),
        rate_limit_user_per_min: Some(0),
        jwt_secret: Some(SecretString::from("short")),
        ..raw()
    }
    .validate()
    .expect_err("must refuse");
    assert_eq!(err.0.len(), 5, "{err}");
}

#[test]
fn read_replicas_are_postgres_urls_of_a_postgres_primary() {
    let err = RawConfig {
        database_replica_urls: Some("postgres://replica/pupmatch".into()),
        ..raw()
    }
    .validate()
    .expect_err("SQLite has no replicas");
    assert!(err.0[0].contains("SQLite has no replicas"), "{err}");
    let err = RawConfig {
        database_url: Some("postgres://primary/pupmatch".into()),
        database_replica_urls: Some(
            "postgres://a/pupmatch?sslmode=verify-full, mysql://b/pupmatch".into(),
        ),
        database_replica_max_lag_ms: Some(0),
        ..raw()
    }
    .validate()
    .expect_err("must refuse");
    assert_eq!(err.0.len(), 2, "{err}");
    let ok = RawConfig {
        database_url: Some("postgres://primary/pupmatch".into()),
        database_replica_urls: Some(" postgres://a/p , postgres://b/p ,".into()),
        ..raw()
    }
    .validate()
    .expect("valid");
    assert_eq!(
        ok.database_replica_urls,
        ["postgres://a/p", "postgres://b/p"]
    );
    assert_eq!(
        ok.database_replica_max_lag,
        std::time::Duration::from_secs(2)
    );
}
