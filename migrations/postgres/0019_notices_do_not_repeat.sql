-- Notices do not repeat. A like tells its person "someone likes you" once per liker in 30
-- days (`like_notices` remembers when, kept 30 days), however often the like is taken back and
-- made again. A person's unread message notices collapse to one per conversation: a new one
-- replaces those still unread (and their pending pushes).
CREATE TABLE like_notices (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, target_id)
);
CREATE INDEX like_notices_target_idx ON like_notices (target_id);
CREATE INDEX like_notices_sent_idx ON like_notices (sent_at);
CREATE INDEX notifications_unread_messages_idx ON notifications (user_id)
    WHERE read_at IS NULL AND kind = 'MESSAGE';

CREATE OR REPLACE FUNCTION pupmatch_like(
    p_user uuid, p_target uuid, p_lock bigint, p_now timestamptz,
    p_like_id uuid, p_match_id uuid, p_conversation_id uuid,
    p_notice_id uuid, p_notice_kind text, p_notice_title text, p_notice_body text,
    p_notice_data text, p_target_offline boolean)
RETURNS TABLE (out_outcome text, out_match_id uuid, out_conversation_id uuid,
               out_created_at timestamptz, out_push_state text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    pair_a uuid := LEAST(p_user, p_target);
    pair_b uuid := GREATEST(p_user, p_target);
    new_like boolean;
    notice_state text;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(p_lock);
    IF NOT EXISTS (SELECT 1 FROM profiles pr WHERE pr.user_id = p_user) THEN
        RETURN QUERY SELECT 'no_profile'::text, NULL::uuid, NULL::uuid, NULL::timestamptz, NULL::text;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM profiles pr JOIN users u ON u.id = pr.user_id
                    WHERE pr.user_id = p_target
                      AND (u.hidden_until IS NULL OR u.hidden_until <= p_now)) THEN
        RETURN QUERY SELECT 'no_user'::text, NULL::uuid, NULL::uuid, NULL::timestamptz, NULL::text;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM blocks bl
                WHERE (bl.blocker_id = p_user AND bl.blocked_id = p_target)
                   OR (bl.blocker_id = p_target AND bl.blocked_id = p_user)) THEN
        RETURN QUERY SELECT 'blocked'::text, NULL::uuid, NULL::uuid, NULL::timestamptz, NULL::text;
        RETURN;
    END IF;
    INSERT INTO likes AS lk (id, user_id, target_id, created_at)
    VALUES (p_like_id, p_user, p_target, p_now)
    ON CONFLICT (user_id, target_id) DO NOTHING;
    new_like := FOUND;
    DELETE FROM passes ps WHERE ps.user_id = p_user AND ps.target_id = p_target;
    IF NOT EXISTS (SELECT 1 FROM likes lk WHERE lk.user_id = p_target AND lk.target_id = p_user) THEN
        IF new_like THEN
            -- One "someone likes you" per liker and person in 30 days: liking, unliking and
            -- liking again (or again after an unmatch) tells them once.
            IF EXISTS (SELECT 1 FROM like_notices ln
                        WHERE ln.user_id = p_user AND ln.target_id = p_target
                          AND ln.sent_at > p_now - interval '30 days') THEN
                RETURN QUERY SELECT 'liked'::text, NULL::uuid, NULL::uuid, NULL::timestamptz,
                                    NULL::text;
                RETURN;
            END IF;
            notice_state := pupmatch_notify(p_notice_id, p_target, p_notice_kind,
                                            p_notice_title, p_notice_body, p_notice_data,
                                            p_now, p_target_offline);
            IF notice_state IS NOT NULL THEN
                INSERT INTO like_notices AS ln (user_id, target_id, sent_at)
                VALUES (p_user, p_target, p_now)
                ON CONFLICT (user_id, target_id) DO UPDATE SET sent_at = EXCLUDED.sent_at;
            END IF;
            RETURN QUERY SELECT 'liked'::text, NULL::uuid, NULL::uuid, NULL::timestamptz,
                                notice_state;
        ELSE
            RETURN QUERY SELECT 'liked_again'::text, NULL::uuid, NULL::uuid, NULL::timestamptz,
                                NULL::text;
        END IF;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'matched'::text, m.id, c.id, m.created_at, NULL::text
                   FROM matches m JOIN conversations c ON c.match_id = m.id
                  WHERE m.user_a = pair_a AND m.user_b = pair_b;
    IF FOUND THEN
        RETURN;
    END IF;
    INSERT INTO matches (id, user_a, user_b, created_at)
    VALUES (p_match_id, pair_a, pair_b, p_now);
    INSERT INTO conversations (id, match_id, user_a, user_b, created_at, updated_at)
    VALUES (p_conversation_id, p_match_id, pair_a, pair_b, p_now, p_now);
    RETURN QUERY SELECT 'new_match'::text, p_match_id, p_conversation_id, p_now, NULL::text;
END
$$;
ALTER FUNCTION pupmatch_like(uuid, uuid, bigint, timestamptz, uuid, uuid, uuid, uuid, text,
                             text, text, text, boolean)
    SET enable_seqscan = off;

CREATE OR REPLACE FUNCTION pupmatch_notify_in_conversation(
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
    IF p_kind = 'MESSAGE' THEN
        DELETE FROM notifications n
         WHERE n.user_id = p_user AND n.kind = 'MESSAGE' AND n.read_at IS NULL
           AND n.data LIKE '%"conversationId":"' || p_conversation::text || '"%';
    END IF;
    RETURN pupmatch_notify(p_id, p_user, p_kind, p_title, p_body, p_data, p_now, p_offline);
END
$$;
