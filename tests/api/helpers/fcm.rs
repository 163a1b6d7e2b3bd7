//! A local server standing in for Google's FCM token and send endpoints (FCM itself cannot be
//! reached here), checking each request as Google would.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Form, Json, Router};
use pupmatch::Config;
use serde_json::{Value, json};

pub const PROJECT: &str = "pupmatch-test";
const CLIENT_EMAIL: &str = "push@pupmatch-test.iam.gserviceaccount.example";
const PRIVATE_KEY: &str = include_str!("../../fixtures/fcm-test-key.pem");
const PUBLIC_KEY: &str = include_str!("../../fixtures/fcm-test-key.pub.pem");

/// What the stand-in saw and how it behaves.
#[derive(Default)]
pub struct Fcm {
    pub base: String,
    pub tokens_issued: Vec<String>,
    /// Accepted sends: (device token, message body).
    pub sent: Vec<(String, Value)>,
    /// Device tokens whose next send fails with 503 (then succeeds).
    pub flaky_once: Vec<String>,
    pub refused: Vec<String>,
    /// Devices named `down…` are refused until this is set.
    pub recovered: bool,
}

pub type Shared = Arc<Mutex<Fcm>>;

async fn token_endpoint(
    State(fcm): State<Shared>,
    Form(form): Form<Vec<(String, String)>>,
) -> impl IntoResponse {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "unsupported_grant_type" })),
        );
    }
    let base = fcm.lock().expect("lock").base.clone();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[format!("{base}/token")]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key");
    let Ok(claims) = jsonwebtoken::decode::<Value>(&get("assertion"), &key, &validation) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant" })),
        );
    };
    if claims.claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_scope" })),
        );
    }
    let mut fcm = fcm.lock().expect("lock");
    let token = format!("access-{}", fcm.tokens_issued.len());
    fcm.tokens_issued.push(token.clone());
    (
        StatusCode::OK,
        Json(json!({ "access_token": token, "expires_in": 3600, "token_type": "Bearer" })),
    )
}

async fn send_endpoint(
    State(fcm): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let mut fcm = fcm.lock().expect("lock");
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !fcm.tokens_issued.iter().any(|t| t == bearer) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": { "status": "UNAUTHENTICATED" } })),
        );
    }
    let message = &body["message"];
    let device = message["token"].as_str().unwrap_or("").to_string();
    if message["notification"]["title"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": { "status": "INVALID_ARGUMENT" } })),
        );
    }
    if device.starts_with("gone") {
        return (
            StatusCode::NOT_FOUND,
            Json(
                json!({ "error": { "status": "NOT_FOUND", "details": [{ "errorCode": "UNREGISTERED" }] } }),
            ),
        );
    }
    if device.starts_with("down") && !fcm.recovered {
        fcm.refused.push(device);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": { "status": "UNAVAILABLE" } })),
        );
    }
    if let Some(i) = fcm.flaky_once.iter().position(|d| *d == device) {
        fcm.flaky_once.remove(i);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": { "status": "UNAVAILABLE" } })),
        );
    }
    fcm.sent.push((device, body.clone()));
    (
        StatusCode::OK,
        Json(json!({ "name": format!("projects/{PROJECT}/messages/{}", fcm.sent.len()) })),
    )
}

/// The stand-in, running; keep it (and its credentials' folder) for the test's length.
pub struct FcmStandIn {
    pub fcm: Shared,
    base: String,
    credentials: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl FcmStandIn {
    pub async fn start() -> FcmStandIn {
        let fcm: Shared = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        fcm.lock().expect("lock").base = base.clone();
        let router = Router::new()
            .route("/token", post(token_endpoint))
            .route(
                &format!("/v1/projects/{PROJECT}/messages:send"),
                post(send_endpoint),
            )
            .with_state(fcm.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let dir = tempfile::tempdir().expect("dir");
        let credentials = dir.path().join("service-account.json");
        std::fs::write(
            &credentials,
            json!({
                "type": "service_account",
                "project_id": PROJECT,
                "client_email": CLIENT_EMAIL,
                "private_key": PRIVATE_KEY,
                "token_uri": format!("{base}/token"),
            })
            .to_string(),
        )
        .expect("write credentials");
        FcmStandIn {
            fcm,
            base,
            credentials,
            _dir: dir,
        }
    }

    /// Points an app's FCM client at the stand-in.
    pub fn configure(&self, config: &mut Config) {
        config.fcm_credentials = Some(self.credentials.clone());
        config.fcm_endpoint = Some(self.base.parse().expect("url"));
    }
}

/// The push service is back and every queued push is due: one run of the delivery job, as the
/// worker makes it.
pub async fn deliver_queued_pushes(
    app: &super::TestApp,
    fcm: &Shared,
) -> pupmatch::jobs::store::JobRun {
    fcm.lock().expect("lock").recovered = true;
    let due = "UPDATE notifications SET next_attempt_at = created_at WHERE push_state = 'PENDING'";
    match &app.db {
        pupmatch::infra::db::Db::Postgres(p) => sqlx::query(due).execute(p).await.map(drop),
        pupmatch::infra::db::Db::Sqlite(p) => sqlx::query(due).execute(p).await.map(drop),
    }
    .expect("due now");
    app.worker()
        .await
        .run(pupmatch::jobs::Job::DeliverNotifications, 1)
        .await
}
