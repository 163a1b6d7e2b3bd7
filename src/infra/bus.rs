//! Publish/subscribe between the parts of a deployment. In embedded mode it is an in-process
//! broadcast; with Redis, every message goes through Redis pub/sub and reaches every instance
//! (the publisher included), so subscribers never need to know which mode they run in.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;

use super::redis::Redis;

/// One message on a topic.
#[derive(Debug, Clone)]
pub struct BusMessage {
    pub topic: String,
    pub payload: String,
}

#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<BusMessage>,
    redis: Option<Redis>,
}

const LOCAL_CAPACITY: usize = 4096;

/// Topic of the in-process message a Redis bus sends when its subscription is lost and again
/// when it is back: what was published in between never reached this instance.
pub const TOPIC_BUS_GAP: &str = "bus_gap";

impl Bus {
    /// In-process only.
    pub fn local() -> Bus {
        Bus {
            local: broadcast::channel(LOCAL_CAPACITY).0,
            redis: None,
        }
    }

    /// Through Redis. Returns once the subscription is active, so nothing published after
    /// this returns is missed.
    pub async fn redis(redis: Redis) -> anyhow::Result<Bus> {
        let local = broadcast::channel(LOCAL_CAPACITY).0;
        let pattern = redis.key("bus:*");
        let prefix = redis.key("bus:");
        let mut pubsub = redis.client.get_async_pubsub().await?;
        pubsub.psubscribe(&pattern).await?;
        let (client, sender) = (redis.client.clone(), local.clone());
        tokio::spawn(async move {
            let mut pubsub = pubsub;
            loop {
                {
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Some(topic) = msg.get_channel_name().strip_prefix(&prefix) else {
                            continue;
                        };
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        let _ = sender.send(BusMessage {
                            topic: topic.to_string(),
                            payload,
                        });
                    }
                }
                // The connection dropped: whatever is published until it is back is missed here.
                tracing::warn!("bus subscription lost; reconnecting");
                let gap = |payload: &str| BusMessage {
                    topic: TOPIC_BUS_GAP.to_string(),
                    payload: payload.to_string(),
                };
                let _ = sender.send(gap("lost"));
                let mut delay = Duration::from_millis(100);
                pubsub = loop {
                    tokio::time::sleep(delay).await;
                    if let Ok(mut p) = client.get_async_pubsub().await
                        && p.psubscribe(&pattern).await.is_ok()
                    {
                        break p;
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                };
                tracing::info!("bus subscription back");
                let _ = sender.send(gap("regained"));
            }
        });
        Ok(Bus {
            local,
            redis: Some(redis),
        })
    }

    pub async fn publish(&self, topic: &str, payload: String) -> anyhow::Result<()> {
        match &self.redis {
            Some(redis) => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(redis.key(&format!("bus:{topic}"))).arg(&payload);
                if let Err(err) = redis.query::<i64>(cmd).await {
                    // Redis is down: this instance still hears its own message (its sockets
                    // and caches stay right); the others cannot until Redis is back.
                    tracing::warn!(error = %err, topic, "published in-process only");
                    let _ = self.local.send(BusMessage {
                        topic: topic.to_string(),
                        payload,
                    });
                }
            }
            None => {
                let _ = self.local.send(BusMessage {
                    topic: topic.to_string(),
                    payload,
                });
            }
        }
        Ok(())
    }

    /// Runs `first` and then publishes `payload` on `topic`, in one round trip: Redis runs a
    /// pipeline's commands in order, so no instance hears the message before `first` took
    /// effect. False when Redis did not confirm it (the message is then heard in-process only,
    /// as with [`Self::publish`]); without Redis, `first` has nowhere to run and only the
    /// in-process message goes out.
    pub async fn publish_after(
        &self,
        mut first: redis::Pipeline,
        topic: &str,
        payload: String,
    ) -> bool {
        let Some(redis) = &self.redis else {
            let _ = self.local.send(BusMessage {
                topic: topic.to_string(),
                payload,
            });
            return false;
        };
        first
            .cmd("PUBLISH")
            .arg(redis.key(&format!("bus:{topic}")))
            .arg(&payload)
            .ignore();
        match redis.pipeline::<()>(first).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, topic, "published in-process only");
                let _ = self.local.send(BusMessage {
                    topic: topic.to_string(),
                    payload,
                });
                false
            }
        }
    }

    /// Every message published from now on (receivers filter by topic).
    pub fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.local.subscribe()
    }
}
