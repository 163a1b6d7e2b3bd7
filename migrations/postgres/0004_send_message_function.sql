-- Sending a message in one round trip. Called outside an explicit transaction, so the function
-- body is the whole transaction and each statement sees what committed before it started.
--
-- Order: both people's message streams are locked (advisory locks, key space 2, in a fixed
-- order) until the commit, and the id the caller made (a UUIDv7) must be above every id already
-- in either stream; if it is not ('stale_id', with the largest id in `id`), the caller makes a
-- larger one and calls again. So each person's messages commit in id order, and "every message
-- after id X" (resync) never misses one that committed later.
--
-- status: 'not_member' (no such conversation for the sender, or it ended), 'duplicate' (the
-- sender's client_id was used: that message), 'stale_id', 'stored' (this message).
CREATE FUNCTION pupmatch_send_message(
    p_conversation uuid, p_sender uuid, p_id uuid, p_kind text, p_content text,
    p_playground uuid, p_client_id text, p_now timestamptz)
RETURNS TABLE (status text, id uuid, conversation_id uuid, sender_id uuid, recipient_id uuid,
               kind text, content text, playground_id uuid, client_id text,
               read_at timestamptz, created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_a uuid;
    v_b uuid;
    v_last uuid;
BEGIN
    SELECT c.user_a, c.user_b INTO v_a, v_b FROM conversations c
     WHERE c.id = p_conversation AND (c.user_a = p_sender OR c.user_b = p_sender);
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_member'::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::uuid,
                            NULL::text, NULL::text, NULL::uuid, NULL::text, NULL::timestamptz,
                            NULL::timestamptz;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(2, LEAST(hashtext(v_a::text), hashtext(v_b::text)));
    PERFORM pg_advisory_xact_lock(2, GREATEST(hashtext(v_a::text), hashtext(v_b::text)));
    IF p_client_id IS NOT NULL THEN
        RETURN QUERY SELECT 'duplicate'::text, m.id, m.conversation_id, m.sender_id,
                            m.recipient_id, m.kind, m.content, m.playground_id, m.client_id,
                            m.read_at, m.created_at
                       FROM messages m WHERE m.sender_id = p_sender AND m.client_id = p_client_id;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    SELECT GREATEST(
        (SELECT m.id FROM messages m WHERE m.sender_id = v_a ORDER BY m.id DESC LIMIT 1),
        (SELECT m.id FROM messages m WHERE m.recipient_id = v_a ORDER BY m.id DESC LIMIT 1),
        (SELECT m.id FROM messages m WHERE m.sender_id = v_b ORDER BY m.id DESC LIMIT 1),
        (SELECT m.id FROM messages m WHERE m.recipient_id = v_b ORDER BY m.id DESC LIMIT 1))
      INTO v_last;
    IF v_last IS NOT NULL AND v_last >= p_id THEN
        RETURN QUERY SELECT 'stale_id'::text, v_last, NULL::uuid, NULL::uuid, NULL::uuid,
                            NULL::text, NULL::text, NULL::uuid, NULL::text, NULL::timestamptz,
                            NULL::timestamptz;
        RETURN;
    END IF;
    -- Still live: a concurrent unmatch deletes the conversation under its row lock.
    UPDATE conversations c SET updated_at = p_now WHERE c.id = p_conversation;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_member'::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::uuid,
                            NULL::text, NULL::text, NULL::uuid, NULL::text, NULL::timestamptz,
                            NULL::timestamptz;
        RETURN;
    END IF;
    INSERT INTO messages (id, conversation_id, sender_id, recipient_id, kind, content,
                          playground_id, client_id, created_at)
    VALUES (p_id, p_conversation, p_sender, CASE WHEN v_a = p_sender THEN v_b ELSE v_a END,
            p_kind, p_content, p_playground, p_client_id, p_now);
    RETURN QUERY SELECT 'stored'::text, p_id, p_conversation, p_sender,
                        CASE WHEN v_a = p_sender THEN v_b ELSE v_a END, p_kind, p_content,
                        p_playground, p_client_id, NULL::timestamptz, p_now;
END
$$;
