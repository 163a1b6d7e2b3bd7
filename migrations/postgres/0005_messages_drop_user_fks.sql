-- A message's sender and recipient are the two people of its conversation, and conversations
-- already cascade from both users, so these two foreign keys only cost two checks per message.
ALTER TABLE messages DROP CONSTRAINT messages_sender_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_recipient_id_fkey;
