-- A new like and its LIKE notification commit together, in the like's one round trip.
--
-- pupmatch_notify stores a notification if the person's preferences want its kind (no
-- preferences row means every kind is wanted) and returns its push state: 'PENDING' (due now)
-- when the person is offline, has push on and has a device, else 'NONE'; NULL when it was not
-- wanted. The notification store calls it for every other notification.
CREATE FUNCTION pupmatch_notify(
    p_id uuid, p_user uuid, p_kind text, p_title text, p_body text, p_data text,
    p_now timestamptz, p_offline boolean)
RETURNS text
-- PL/pgSQL, not SQL: its statement's plan is cached per connection (a SQL-language function
-- called from PL/pgSQL is parsed and planned again on every call).
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_state text;
BEGIN
    INSERT INTO notifications (id, user_id, kind, title, body, data, created_at,
                               push_state, push_attempts, next_attempt_at)
    SELECT p_id, p_user, p_kind, p_title, p_body, p_data, p_now,
           CASE WHEN o.pushable AND COALESCE(p.push, true) THEN 'PENDING' ELSE 'NONE' END, 0,
           CASE WHEN o.pushable AND COALESCE(p.push, true) THEN p_now END
      FROM (SELECT p_offline AND EXISTS (SELECT 1 FROM devices d WHERE d.user_id = p_user)
                   AS pushable) o
      LEFT JOIN notification_preferences p ON p.user_id = p_user
     WHERE COALESCE(CASE p_kind WHEN 'MATCH' THEN p.matches
                                WHEN 'MESSAGE' THEN p.messages
                                WHEN 'LIKE' THEN p.likes END, true)
    RETURNING push_state INTO v_state;
    RETURN v_state;
END
$$;

DROP FUNCTION pupmatch_like(uuid, uuid, bigint, timestamptz, uuid, uuid, uuid);

-- As in 0002, and besides: both people must have a profile ('no_profile' when the liker has
-- none, 'no_user' when the person liked has none), and a new like that is not mutual stores
-- the notification the caller made for the person liked (id, kind, title, body, data; and
-- whether that person is offline) in the same transaction; out_push_state is its push state
-- (NULL: not stored).
CREATE FUNCTION pupmatch_like(
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
    IF NOT EXISTS (SELECT 1 FROM profiles pr WHERE pr.user_id = p_target) THEN
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
