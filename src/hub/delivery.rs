//! Delivery: to the sockets of this instance, and to those of every other through the bus.

use super::*;

impl Hub {
    /// Publishes a frame for the sockets of `to` on every instance.
    pub async fn send(&self, to: Vec<Uuid>, skip: Option<Uuid>, frame: ServerFrame) {
        self.send_traced(to, skip, frame, None).await
    }

    /// [`Hub::send`] for a frame that carries a stored message: its delivery latency is
    /// measured, and no socket writes it twice. The delivery carries the current trace.
    pub async fn send_message(
        &self,
        to: Vec<Uuid>,
        skip: Option<Uuid>,
        frame: ServerFrame,
        message: StoredMessage,
    ) {
        self.send_traced(to, skip, frame, Some(message)).await
    }

    async fn send_traced(
        &self,
        to: Vec<Uuid>,
        skip: Option<Uuid>,
        frame: ServerFrame,
        message: Option<StoredMessage>,
    ) {
        let span = tracing::info_span!(
            "publish",
            otel.name = "hub publish",
            otel.kind = "producer",
            recipients = to.len(),
        );
        self.publish_delivery(to, skip, frame, message)
            .instrument(span)
            .await
    }

    async fn publish_delivery(
        &self,
        to: Vec<Uuid>,
        skip: Option<Uuid>,
        frame: ServerFrame,
        message: Option<StoredMessage>,
    ) {
        let frame = match serde_json::value::RawValue::from_string(frame.to_text()) {
            Ok(frame) => frame,
            Err(err) => {
                tracing::error!(error = %err, "unserializable frame");
                return;
            }
        };
        let delivery = Delivery {
            to,
            skip,
            frame,
            traceparent: crate::infra::traces::current_traceparent(),
            since_ms: message.as_ref().map(|m| m.stored_at.timestamp_millis()),
            message_id: message.map(|m| m.id),
        };
        let payload = match serde_json::to_string(&delivery) {
            Ok(p) => p,
            Err(err) => {
                tracing::error!(error = %err, "unserializable frame");
                return;
            }
        };
        if let Err(err) = self.bus.publish(TOPIC_DELIVER, payload).await {
            tracing::error!(error = format!("{err:#}"), "publishing a frame failed");
        }
    }

    pub(super) fn deliver_local_from(
        &self,
        to: &[Uuid],
        skip: Option<Uuid>,
        frame: &str,
        origin: Option<Arc<Origin>>,
    ) {
        let text = Outgoing {
            text: frame.into(),
            origin,
        };
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        for user in to {
            let Some(list) = sockets.get_mut(user) else {
                continue;
            };
            // A full queue means a socket that stopped reading: it is let go (its task sees the
            // closed channel and closes it), and the client catches up with `resync`.
            list.retain(|socket| {
                Some(socket.id) == skip
                    || match socket.tx.try_send(text.clone()) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            metrics::counter!("ws_slow_sockets_dropped_total").increment(1);
                            false
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    }
            });
            if list.is_empty() {
                sockets.remove(user);
            }
        }
        metrics::counter!("ws_frames_delivered_total").increment(1);
    }

    pub(super) fn deliver_match_event(&self, topic: &str, event: &MatchEvent) {
        let [a, b] = event.users;
        let origin = event.traceparent.as_ref().map(|traceparent| {
            Arc::new(Origin {
                traceparent: Some(traceparent.clone()),
                since_ms: None,
                message_id: None,
            })
        });
        for (me, other) in [(a, b), (b, a)] {
            let frame = if topic == TOPIC_MATCH {
                ServerFrame::Match {
                    matched: MatchFrame {
                        id: event.match_id,
                        user_id: other,
                        conversation_id: event.conversation_id,
                        created_at: event.created_at,
                    },
                }
            } else {
                ServerFrame::Unmatched {
                    match_id: event.match_id,
                    conversation_id: event.conversation_id,
                }
            };
            self.deliver_local_from(&[me], None, &frame.to_text(), origin.clone());
        }
    }
}
