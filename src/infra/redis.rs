//! The optional shared Redis. Every key and channel is namespaced with `PUPMATCH_REDIS_PREFIX`.

use anyhow::Context;
use redis::aio::ConnectionManager;

/// A multiplexed, auto-reconnecting Redis connection plus the key prefix.
#[derive(Clone)]
pub struct Redis {
    /// Cheap to clone; commands are pipelined over one connection.
    pub conn: ConnectionManager,
    /// Used to open dedicated pub/sub connections.
    pub client: redis::Client,
    prefix: String,
}

impl Redis {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Redis> {
        let client = redis::Client::open(url).context("Failed to parse the Redis URL")?;
        let conn = ConnectionManager::new(client.clone())
            .await
            .context("Failed to connect to Redis")?;
        Ok(Redis {
            conn,
            client,
            prefix: prefix.to_string(),
        })
    }

    /// `<prefix><name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish()
    }
}
