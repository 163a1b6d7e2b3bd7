-- Whether a person has written in a conversation already: their first message there spends one
-- of their daily first messages. By index whatever the table's statistics say, as every read
-- on the message path is.
CREATE FUNCTION pupmatch_has_written(p_conversation uuid, p_sender uuid) RETURNS boolean
LANGUAGE sql STABLE
SET enable_seqscan = off
AS $$
    SELECT EXISTS (SELECT 1 FROM messages
                    WHERE conversation_id = p_conversation AND sender_id = p_sender)
$$;
