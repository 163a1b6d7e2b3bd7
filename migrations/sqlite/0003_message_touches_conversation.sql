-- A new message moves its conversation up the list: done by the database, so sending is one
-- statement (one trip to the writer connection).
CREATE TRIGGER messages_touch_conversation AFTER INSERT ON messages
BEGIN
    UPDATE conversations SET updated_at = NEW.created_at WHERE id = NEW.conversation_id;
END;
