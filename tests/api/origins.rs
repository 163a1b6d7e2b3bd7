//! Production answers only the web origins it names: without `PUPMATCH_ALLOWED_ORIGINS` it
//! does not start, a page from another origin gets no CORS grant and no WebSocket, and `*` is
//! allowed only on purpose, with a warning at start.

use reqwest::Method;

use crate::both_backends;
use crate::helpers::process::serve_with;
use crate::helpers::{
    Backend, PRODUCTION_ORIGIN, TestDb, in_production, spawn_app_with, test_config,
};

both_backends!(
    production_answers_only_the_origins_it_names,
    production_allows_any_origin_only_on_purpose,
);

const FOREIGN: &str = "https://evil.example";

/// The `Access-Control-Allow-Origin` a browser gets for a preflight of a GraphQL POST.
async fn preflight(client: &reqwest::Client, url: &str, origin: &str) -> Option<String> {
    let res = client
        .request(Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight");
    res.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().expect("ascii").to_string())
}

async fn production_answers_only_the_origins_it_names(backend: Backend) {
    let db = TestDb::create(backend).await;
    let media = tempfile::tempdir().expect("dir");
    let mut config = test_config(backend, &db, media.path());
    in_production(&mut config);
    config.allowed_origins = None;
    let err = pupmatch::Application::build(config)
        .await
        .err()
        .expect("production without its origins must refuse to start");
    assert!(
        err.to_string().contains("PUPMATCH_ALLOWED_ORIGINS"),
        "{err}"
    );

    let app = spawn_app_with(backend, in_production).await;
    let url = app.url("/graphql");
    assert_eq!(
        preflight(&app.client, &url, PRODUCTION_ORIGIN)
            .await
            .as_deref(),
        Some(PRODUCTION_ORIGIN)
    );
    assert_eq!(preflight(&app.client, &url, FOREIGN).await, None);
    let user = app.new_user().await;
    assert!(
        app.try_ws_raw(Some(&user.access_token), Some(FOREIGN))
            .await
            .is_err(),
        "a page from another origin opens no socket"
    );
    let mut ok = app
        .ws_raw(Some(&user.access_token), Some(PRODUCTION_ORIGIN))
        .await;
    assert_eq!(ok.recv().await["type"], "ready");
}

async fn production_allows_any_origin_only_on_purpose(backend: Backend) {
    let production = [
        ("PUPMATCH_ENV", "production"),
        (
            "PUPMATCH_JWT_SECRET",
            "a production secret of at least 32 bytes",
        ),
        ("PUPMATCH_SMTP_URL", "smtp://127.0.0.1:1"),
        ("PUPMATCH_PUBLIC_URL", "https://pupmatch.test"),
        ("PUPMATCH_ALLOWED_ORIGINS", "*"),
    ];
    let mut server = serve_with(backend, &production).await;
    let _ = server.process.kill().await;
    assert!(
        server
            .log
            .lines()
            .any(|l| l.contains("\"WARN\"") && l.contains("PUPMATCH_ALLOWED_ORIGINS=*")),
        "{}",
        server.log
    );
    // The development default is open without a word.
    let mut server = serve_with(backend, &[]).await;
    let _ = server.process.kill().await;
    assert!(
        !server.log.contains("PUPMATCH_ALLOWED_ORIGINS"),
        "{}",
        server.log
    );
}
