-- Moderation: roles, restrictions, report resolution, message evidence, banned emails and an
-- append-only audit log.

-- Who may moderate. Granted only from the command line, or by an admin in the console.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'MEMBER'
    CONSTRAINT users_role_enum CHECK (role IN ('MEMBER', 'MODERATOR', 'ADMIN'));
-- A suspension ends at `suspended_until`; a ban has no end. Either refuses sign-in.
ALTER TABLE users ADD COLUMN suspended_until timestamptz;
ALTER TABLE users ADD COLUMN banned_at timestamptz;
-- Others do not see the person until then (a suspension's end; 'infinity' for a ban or while
-- many recent reports wait for a moderator). NULL: visible.
ALTER TABLE users ADD COLUMN hidden_until timestamptz;
CREATE INDEX users_hidden_idx ON users (hidden_until) WHERE hidden_until IS NOT NULL;
CREATE INDEX users_staff_idx ON users (role) WHERE role <> 'MEMBER';

-- How each report was closed.
ALTER TABLE reports ADD COLUMN resolved_at timestamptz;
ALTER TABLE reports ADD COLUMN action_id uuid;
CREATE INDEX reports_open_reported_idx ON reports (reported_id, created_at) WHERE status = 'OPEN';

-- The messages the reported person had sent the reporter, copied when the report is made (the
-- block that comes with a report ends the conversation).
CREATE TABLE report_messages (
    report_id  uuid NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    message_id uuid NOT NULL,
    sent_at    timestamptz NOT NULL,
    content    text NOT NULL,
    PRIMARY KEY (report_id, message_id)
);

-- Emails of banned accounts, as keyed hashes (HMAC-SHA-256 under a key derived from the
-- server secret): a new account with the same email is refused, the address is not kept.
CREATE TABLE banned_emails (
    email_hash bytea PRIMARY KEY,
    banned_at  timestamptz NOT NULL,
    user_id    uuid NOT NULL
);

-- Every moderator action and role change. Append-only: updates and deletes are refused.
CREATE TABLE moderation_actions (
    id          uuid PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    actor_id    uuid,            -- NULL: the command line
    actor_email text NOT NULL,   -- as it was, or 'command line'
    kind        text NOT NULL,
    subject_id  uuid NOT NULL,
    subject_name text,           -- the profile name (or email for role changes) at the time
    reason      text NOT NULL,
    detail      text,            -- days of a suspension, the role granted, the photo removed
    CONSTRAINT moderation_actions_kind_enum CHECK (kind IN
        ('DISMISS', 'WARN', 'REMOVE_PHOTO', 'SUSPEND', 'BAN', 'LIFT', 'GRANT_ROLE', 'REVOKE_ROLE')),
    CONSTRAINT moderation_actions_reason_len CHECK (char_length(reason) BETWEEN 1 AND 1000)
);
CREATE INDEX moderation_actions_subject_idx ON moderation_actions (subject_id, created_at);

CREATE FUNCTION pupmatch_audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the moderation audit log is append-only';
END $$;
CREATE TRIGGER moderation_actions_append_only
    BEFORE UPDATE OR DELETE ON moderation_actions
    FOR EACH ROW EXECUTE FUNCTION pupmatch_audit_log_is_append_only();
CREATE TRIGGER moderation_actions_no_truncate
    BEFORE TRUNCATE ON moderation_actions
    FOR EACH STATEMENT EXECUTE FUNCTION pupmatch_audit_log_is_append_only();

-- A like finds no one behind a person hidden by moderation ('no_user'), as behind a block.
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
            RETURN QUERY SELECT 'liked'::text, NULL::uuid, NULL::uuid, NULL::timestamptz,
                                pupmatch_notify(p_notice_id, p_target, p_notice_kind,
                                                p_notice_title, p_notice_body, p_notice_data,
                                                p_now, p_target_offline);
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

-- A message finds no conversation with a person hidden by moderation ('not_member').
CREATE OR REPLACE FUNCTION pupmatch_send_message(
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
     WHERE c.id = p_conversation AND (c.user_a = p_sender OR c.user_b = p_sender)
       AND NOT EXISTS (SELECT 1 FROM users h
                        WHERE h.id = CASE WHEN c.user_a = p_sender THEN c.user_b ELSE c.user_a END
                          AND h.hidden_until > p_now);
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
