-- A notice about a conversation (a match's, a message's) is stored only while the conversation
-- exists. Its row is share-locked meanwhile: a block or unmatch deleting it waits, then clears
-- the notice with the others; one that deleted it first leaves nothing to lock, and no notice.
-- Returns what `pupmatch_notify` returns (NULL: not stored). Every statement in it is a keyed
-- lookup, whatever the statistics say.
CREATE FUNCTION pupmatch_notify_in_conversation(
    p_conversation uuid, p_id uuid, p_user uuid, p_kind text, p_title text, p_body text,
    p_data text, p_now timestamptz, p_offline boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
AS $$
BEGIN
    PERFORM 1 FROM conversations c WHERE c.id = p_conversation FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN pupmatch_notify(p_id, p_user, p_kind, p_title, p_body, p_data, p_now, p_offline);
END
$$;
