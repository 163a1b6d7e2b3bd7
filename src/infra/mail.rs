//! Outgoing email. With `PUPMATCH_SMTP_URL` mail goes over SMTP (lettre); without it, the
//! message is written to the log so a developer can follow reset links locally.

use anyhow::Context;
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::Config;

/// One plain-text email.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
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
        self.transport
            .send(message)
            .await
            .context("Failed to send the email over SMTP")?;
        Ok(())
    }
}

/// Development mailer: logs the message (it contains the reset link; never use in production).
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, email: Email) -> anyhow::Result<()> {
        tracing::info!(
            subject = %email.subject,
            body = %email.body,
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
            if config.is_production() {
                tracing::warn!(
                    "PUPMATCH_SMTP_URL is not set: password-reset emails are only logged"
                );
            }
            Ok(Box::new(LogMailer))
        }
    }
}
