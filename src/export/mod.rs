//! Data export (GDPR art. 15 and 20): everything stored about a person, as one JSON document,
//! streamed.
//!
//! The document is written section by section into a small queue that the HTTP response
//! reads; the large sections (messages, notifications) are read in pages of [`PAGE`] rows, so
//! an export of 100 000 messages holds a page at a time, not the whole history. Photos come as
//! signed URLs (valid at least 10 minutes), devices with their push tokens masked, sessions with their
//! times only; no password hash and no token hash is ever read.

pub mod store;

use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::infra::blobs::BlobStore;
use crate::infra::db::Db;
use crate::infra::time;
use store::ExportStore;

/// Rows read per page of the long sections.
const PAGE: i64 = 500;
/// Bytes gathered before a chunk goes to the client.
const CHUNK: usize = 64 * 1024;
/// Chunks that may wait for a slow client before the export waits too.
const QUEUE: usize = 4;

pub struct ExportService {
    store: Arc<ExportStore>,
    blobs: Arc<dyn BlobStore>,
}

/// The export stopped part-way (the client sees a cut-off body, never a partial document
/// passed off as whole).
type Failed = std::io::Error;

impl ExportService {
    pub fn new(db: &Db, blobs: Arc<dyn BlobStore>) -> Self {
        ExportService {
            store: Arc::new(ExportStore::new(db.clone())),
            blobs,
        }
    }

    /// The person's export as a stream of JSON chunks; NOT_FOUND when the account is gone.
    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn export(
        &self,
        user_id: Uuid,
    ) -> ApiResult<impl Stream<Item = Result<Bytes, Failed>> + Send + 'static> {
        let account = self
            .store
            .account(user_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such account".into()))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            tx,
            buffer: String::with_capacity(CHUNK),
        };
        let store = self.store.clone();
        let blobs = self.blobs.clone();
        tokio::spawn(async move {
            let mut writer = writer;
            let outcome = write_document(&mut writer, &store, blobs.as_ref(), account).await;
            match outcome {
                Ok(()) => {
                    writer.flush().await;
                    tracing::info!("data export written");
                }
                Err(Stop::ClientGone) => {}
                Err(Stop::Failed(err)) => {
                    tracing::error!(error = format!("{err:#}"), "data export failed part-way");
                    let _ = writer
                        .tx
                        .send(Err(std::io::Error::other("the export failed")))
                        .await;
                }
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }
}

enum Stop {
    ClientGone,
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(err: E) -> Self {
        Stop::Failed(err.into())
    }
}

/// Gathers the document's text and hands it on in chunks.
struct Writer {
    tx: mpsc::Sender<Result<Bytes, Failed>>,
    buffer: String,
}

impl Writer {
    async fn raw(&mut self, text: &str) -> Result<(), Stop> {
        self.buffer.push_str(text);
        if self.buffer.len() >= CHUNK {
            let chunk = std::mem::replace(&mut self.buffer, String::with_capacity(CHUNK));
            self.tx
                .send(Ok(Bytes::from(chunk)))
                .await
                .map_err(|_| Stop::ClientGone)?;
        }
        Ok(())
    }

    async fn value(&mut self, value: &impl Serialize) -> Result<(), Stop> {
        let text = serde_json::to_string(value)?;
        self.raw(&text).await
    }

    /// `,"name":value`
    async fn field(&mut self, name: &str, value: &impl Serialize) -> Result<(), Stop> {
        self.raw(&format!(",{}:", serde_json::to_string(name)?))
            .await?;
        self.value(value).await
    }

    async fn flush(&mut self) {
        if !self.buffer.is_empty() {
            let chunk = std::mem::take(&mut self.buffer);
            let _ = self.tx.send(Ok(Bytes::from(chunk))).await;
        }
    }
}

/// A push token shown by its ends only: enough to recognise a device, not to push to it.
fn mask(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() <= 8 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

async fn write_document(
    w: &mut Writer,
    store: &ExportStore,
    blobs: &dyn BlobStore,
    account: store::Account,
) -> Result<(), Stop> {
    let user = account.id;
    w.raw("{\"format\":\"pupmatch-export-v1\"").await?;
    w.field("exportedAt", &time::now()).await?;
    w.field("account", &account).await?;
    w.field("profile", &store.profile(user).await?).await?;
    w.field("prompts", &store.prompts(user).await?).await?;
    let mut photos = Vec::new();
    for p in store.photos(user).await? {
        photos.push(json!({
            "id": p.id,
            "position": p.position,
            "url": blobs.url(&p.storage_key).await?,
            "thumbnailUrl": blobs.url(&p.thumbnail_key).await?,
            "width": p.width,
            "height": p.height,
            "createdAt": p.created_at,
        }));
    }
    w.field("photos", &photos).await?;
    w.field("preferences", &store.preferences(user).await?)
        .await?;
    w.field("location", &store.location(user).await?).await?;
    w.field("likes", &store.likes(user).await?).await?;
    w.field("passes", &store.passes(user).await?).await?;
    w.field("blocks", &store.blocks(user).await?).await?;
    w.field("reports", &store.reports_made(user).await?).await?;
    w.field("matches", &store.matches(user).await?).await?;
    w.field("conversations", &store.conversations(user).await?)
        .await?;
    w.field("playgroundsAdded", &store.playgrounds_added(user).await?)
        .await?;
    w.field("playgroundsFavorited", &store.favorites(user).await?)
        .await?;
    w.field(
        "notificationPreferences",
        &store.notification_preferences(user).await?,
    )
    .await?;
    let devices: Vec<_> = store
        .devices(user)
        .await?
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "platform": d.platform,
                "token": mask(&d.token),
                "createdAt": d.created_at,
                "lastSeenAt": d.last_seen_at,
            })
        })
        .collect();
    w.field("devices", &devices).await?;
    w.field("sessions", &store.sessions(user).await?).await?;

    w.raw(",\"notifications\":").await?;
    write_pages(
        w,
        |after| store.notifications_after(user, after, PAGE),
        |n| n.id,
    )
    .await?;
    w.raw(",\"messages\":").await?;
    write_pages(w, |after| store.messages_after(user, after, PAGE), |m| m.id).await?;
    w.raw("}").await?;
    Ok(())
}

/// A JSON list of every row `page` hands out, read [`PAGE`] rows at a time by id.
async fn write_pages<T, F, Fut>(
    w: &mut Writer,
    mut page: F,
    id: impl Fn(&T) -> Uuid,
) -> Result<(), Stop>
where
    T: Serialize,
    F: FnMut(Uuid) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, crate::error::StoreError>>,
{
    w.raw("[").await?;
    let mut after = Uuid::nil();
    let mut first = true;
    loop {
        let rows = page(after).await?;
        for row in &rows {
            if !first {
                w.raw(",").await?;
            }
            first = false;
            w.value(row).await?;
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == PAGE => after = id(last),
            _ => break,
        }
    }
    w.raw("]").await
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn a_push_token_is_masked_to_its_ends() {
        assert_eq!(mask("abcdefghijklmnop"), "abcd…mnop");
        assert_eq!(mask("short"), "…");
    }
}
