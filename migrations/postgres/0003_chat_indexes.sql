-- Resync reads one person's messages after an id, as recipient and as sender.
CREATE INDEX messages_recipient_id_idx ON messages (recipient_id, id);
CREATE INDEX messages_sender_id_idx ON messages (sender_id, id);
