//! Outgoing email. With `PUPMATCH_SMTP_URL` mail goes over SMTP (lettre); without it (in
//! development only: production refuses to start), the message is written to the log with
//! its secrets (reset tokens) redacted, unless `PUPMATCH_MAIL_LOG_SECRETS=true` asks for them.

use anyhow::Context;
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tracing::Instrument;

use crate::config::Config;

/// One plain-text email.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Parts of the body that grant access (a reset token): never written to a log.
    pub secrets: Vec<String>,
}

impl Email {
    /// The body with every secret replaced by `[redacted]`.
    pub fn redacted_body(&self) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(self.body.clone(), |body, secret| {
                body.replace(secret.as_str(), "[redacted]")
            })
    }
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: Email) -> anyhow::Result<()>;
}

/// Sends through an SMTP server (`smtp://host:port`, `smtp://…?tls=required`, `smtps://…`).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: Email) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(email.to.parse().context("Failed to parse the recipient")?)
            .subject(email.subject)
            .body(email.body)
            .context("Failed to build the email")?;
        // Traced without the recipient or the text.
        let span = tracing::info_span!("mail", otel.name = "mail send", otel.kind = "client");
        self.transport
            .send(message)
            .instrument(span)
            .await
            .context("Failed to send the email over SMTP")?;
        Ok(())
    }
}

/// Development mailer: logs the message, its secrets redacted unless `log_secrets` (never in
/// production, which refuses to start without SMTP).
pub struct LogMailer {
    pub log_secrets: bool,
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, email: Email) -> anyhow::Result<()> {
        let body = if self.log_secrets {
            email.body.clone()
        } else {
            email.redacted_body()
        };
        tracing::info!(
            subject = %email.subject,
            body = %body,
            "email not sent (PUPMATCH_SMTP_URL is not set); its text follows"
        );
        Ok(())
    }
}

/// The mailer the configuration asks for.
pub fn from_config(config: &Config) -> anyhow::Result<Box<dyn Mailer>> {
    let from: Mailbox = config
        .mail_from
        .parse()
        .context("Failed to parse PUPMATCH_MAIL_FROM")?;
    match &config.smtp_url {
        Some(url) => {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                .context("Failed to parse PUPMATCH_SMTP_URL")?
                .build();
            Ok(Box::new(SmtpMailer { transport, from }))
        }
        None => {
            // Configuration validation refuses production without SMTP; this is a last guard.
            anyhow::ensure!(
                !config.is_production(),
                "PUPMATCH_SMTP_URL must be set in production"
            );
            Ok(Box::new(LogMailer {
                log_secrets: config.mail_log_secrets,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_email_hides_its_secrets() {
        let email = Email {
            to: "rex@example.com".into(),
            subject: "Reset".into(),
            body: "Open https://x/reset?token=abc123XYZ\nReset token: abc123XYZ\n".into(),
            secrets: vec!["abc123XYZ".into()],
        };
        let shown = email.redacted_body();
        assert!(!shown.contains("abc123XYZ"), "{shown}");
        assert_eq!(shown.matches("[redacted]").count(), 2);
    }
}
