//! Push notifications: the [`PushSender`] trait, an FCM HTTP v1 client, and a sender that only
//! logs (when no FCM credentials are configured).
//!
//! FCM HTTP v1: a service account signs a JWT (RS256) that Google's token endpoint exchanges for
//! an OAuth2 access token (cached until shortly before it expires); each push is then one
//! `POST {endpoint}/v1/projects/{project}/messages:send`. Transient failures (429, 5xx, network)
//! are retried with exponential backoff, honouring `Retry-After`; a token the service says is
//! gone (404 `UNREGISTERED`, 400 on the token) is reported so its device is forgotten.

use std::path::Path;
use std::time::Duration;
use tracing::Instrument;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use url::Url;

/// What a push shows, and data the app reads when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub title: String,
    pub body: String,
    /// String pairs only (FCM's `data` map).
    pub data: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The device token is no longer valid: forget the device.
    #[error("the device token is not registered")]
    Unregistered,
    /// Worth another try later.
    #[error("push failed for now: {0}")]
    Transient(String),
    /// Will not work however often it is retried (bad credentials, rejected request).
    #[error("push failed: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait PushSender: Send + Sync {
    async fn send(&self, device_token: &str, message: &PushMessage) -> Result<(), PushError>;
}

/// Logs that a push would go out (never its content or the token).
pub struct LogSender;

#[async_trait]
impl PushSender for LogSender {
    async fn send(&self, _device_token: &str, _message: &PushMessage) -> Result<(), PushError> {
        tracing::info!("push not sent: no FCM credentials configured");
        Ok(())
    }
}

/// The fields of a Google service-account JSON key that FCM needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key: String,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";
/// Attempts per push within one call (the queue retries later beyond that).
const ATTEMPTS: u32 = 3;

pub struct FcmSender {
    http: reqwest::Client,
    account: ServiceAccount,
    key: jsonwebtoken::EncodingKey,
    send_url: Url,
    token: Mutex<Option<(String, std::time::Instant)>>,
    backoff: Duration,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl FcmSender {
    /// From a service-account JSON file; `endpoint` overrides `https://fcm.googleapis.com`.
    pub fn from_file(path: &Path, endpoint: Option<&Url>) -> anyhow::Result<FcmSender> {
        let json = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read FCM credentials {}: {e}", path.display()))?;
        let account: ServiceAccount = serde_json::from_str(&json).map_err(|e| {
            anyhow::anyhow!(
                "FCM credentials {} are not a service-account key: {e}",
                path.display()
            )
        })?;
        FcmSender::new(account, endpoint)
    }

    pub fn new(account: ServiceAccount, endpoint: Option<&Url>) -> anyhow::Result<FcmSender> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| anyhow::anyhow!("the FCM private key is not an RSA PEM key: {e}"))?;
        let base = match endpoint {
            Some(url) => url.clone(),
            None => Url::parse(DEFAULT_ENDPOINT)?,
        };
        let send_url = base.join(&format!("v1/projects/{}/messages:send", account.project_id))?;
        Ok(FcmSender {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            account,
            key,
            send_url,
            token: Mutex::new(None),
            backoff: Duration::from_millis(200),
        })
    }

    async fn access_token(&self) -> Result<String, PushError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && std::time::Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let claims = AssertionClaims {
            iss: &self.account.client_email,
            scope: FCM_SCOPE,
            aud: &self.account.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.key,
        )
        .map_err(|e| PushError::Permanent(format!("signing the token request: {e}")))?;
        let response = self
            .http
            .post(&self.account.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| PushError::Transient(format!("token endpoint: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                PushError::Transient(format!("token endpoint answered {status}"))
            } else {
                PushError::Permanent(format!("token endpoint refused the credentials ({status})"))
            });
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| PushError::Transient(format!("token endpoint answer: {e}")))?;
        // Renewed a minute early.
        let until = std::time::Instant::now()
            + Duration::from_secs(token.expires_in.saturating_sub(60).max(1));
        *cached = Some((token.access_token.clone(), until));
        Ok(token.access_token)
    }

    async fn send_once(
        &self,
        device_token: &str,
        message: &PushMessage,
    ) -> Result<(), (PushError, Option<Duration>)> {
        let access = self.access_token().await.map_err(|e| (e, None))?;
        let data: serde_json::Map<String, serde_json::Value> = message
            .data
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let body = serde_json::json!({
            "message": {
                "token": device_token,
                "notification": { "title": message.title, "body": message.body },
                "data": data,
            }
        });
        let response = self
            .http
            .post(self.send_url.clone())
            .bearer_auth(&access)
            .json(&body)
            .send()
            .await
            .map_err(|e| (PushError::Transient(format!("send: {e}")), None))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        Err(match status.as_u16() {
            404 => (PushError::Unregistered, None),
            400 if text.contains("UNREGISTERED") || text.contains("registration token") => {
                (PushError::Unregistered, None)
            }
            401 => {
                // The access token was revoked early: fetch a new one next time.
                *self.token.lock().await = None;
                (PushError::Transient("access token refused".into()), None)
            }
            429 | 500..=599 => (
                PushError::Transient(format!("FCM answered {status}")),
                retry_after,
            ),
            _ => (
                PushError::Permanent(format!("FCM refused the message ({status})")),
                None,
            ),
        })
    }
}

#[async_trait]
impl PushSender for FcmSender {
    async fn send(&self, device_token: &str, message: &PushMessage) -> Result<(), PushError> {
        // Traced without the device token or the text.
        let span = tracing::info_span!("push", otel.name = "push send", otel.kind = "client");
        self.send_with_retries(device_token, message)
            .instrument(span)
            .await
    }
}

impl FcmSender {
    async fn send_with_retries(
        &self,
        device_token: &str,
        message: &PushMessage,
    ) -> Result<(), PushError> {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match self.send_once(device_token, message).await {
                Ok(()) => {
                    metrics::counter!("push_sent_total").increment(1);
                    return Ok(());
                }
                Err((PushError::Transient(reason), retry_after)) if attempt < ATTEMPTS => {
                    let delay = retry_after.unwrap_or(wait).min(Duration::from_secs(30));
                    tracing::warn!(attempt, reason, "push attempt failed; retrying");
                    tokio::time::sleep(delay).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err((err, _)) => {
                    metrics::counter!("push_failed_total").increment(1);
                    return Err(err);
                }
            }
        }
    }
}

/// The configured sender: FCM when credentials are set, else the log sender.
pub fn from_config(
    config: &crate::config::Config,
) -> anyhow::Result<std::sync::Arc<dyn PushSender>> {
    Ok(match &config.fcm_credentials {
        Some(path) => {
            std::sync::Arc::new(FcmSender::from_file(path, config.fcm_endpoint.as_ref())?)
        }
        None => std::sync::Arc::new(LogSender),
    })
}
