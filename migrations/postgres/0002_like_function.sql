-- A like in one round trip. Called outside an explicit transaction, so the function body is
-- the whole transaction; every statement in it takes a fresh snapshot (READ COMMITTED), which
-- is what makes the advisory lock work: two people liking each other at the same instant
-- queue on the pair's lock, and the second one sees the first one's committed like and
-- creates the one match (properties 5 and 6).
--
-- Likes commit without waiting for the WAL flush (synchronous_commit off for this transaction
-- only): a crash can lose the last fraction of a second of likes — all of a transaction or none
-- of it, never a match without its likes.
--
-- out_outcome: 'no_user' (target does not exist), 'blocked' (either blocked the other),
-- 'liked' (stored, no mutual like yet), 'liked_again' (it was already there), 'matched' (already matched), 'new_match' (made here).
CREATE FUNCTION pupmatch_like(
    p_user uuid, p_target uuid, p_lock bigint, p_now timestamptz,
    p_like_id uuid, p_match_id uuid, p_conversation_id uuid)
RETURNS TABLE (out_outcome text, out_match_id uuid, out_conversation_id uuid,
               out_created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    pair_a uuid := LEAST(p_user, p_target);
    pair_b uuid := GREATEST(p_user, p_target);
    new_like boolean;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(p_lock);
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p_target) THEN
        RETURN QUERY SELECT 'no_user'::text, NULL::uuid, NULL::uuid, NULL::timestamptz;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM blocks bl
                WHERE (bl.blocker_id = p_user AND bl.blocked_id = p_target)
                   OR (bl.blocker_id = p_target AND bl.blocked_id = p_user)) THEN
        RETURN QUERY SELECT 'blocked'::text, NULL::uuid, NULL::uuid, NULL::timestamptz;
        RETURN;
    END IF;
    INSERT INTO likes AS lk (id, user_id, target_id, created_at)
    VALUES (p_like_id, p_user, p_target, p_now)
    ON CONFLICT (user_id, target_id) DO NOTHING;
    new_like := FOUND;
    DELETE FROM passes ps WHERE ps.user_id = p_user AND ps.target_id = p_target;
    IF NOT EXISTS (SELECT 1 FROM likes lk WHERE lk.user_id = p_target AND lk.target_id = p_user) THEN
        RETURN QUERY SELECT CASE WHEN new_like THEN 'liked' ELSE 'liked_again' END,
                            NULL::uuid, NULL::uuid, NULL::timestamptz;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'matched'::text, m.id, c.id, m.created_at
                   FROM matches m JOIN conversations c ON c.match_id = m.id
                  WHERE m.user_a = pair_a AND m.user_b = pair_b;
    IF FOUND THEN
        RETURN;
    END IF;
    INSERT INTO matches (id, user_a, user_b, created_at)
    VALUES (p_match_id, pair_a, pair_b, p_now);
    INSERT INTO conversations (id, match_id, user_a, user_b, created_at, updated_at)
    VALUES (p_conversation_id, p_match_id, pair_a, pair_b, p_now, p_now);
    RETURN QUERY SELECT 'new_match'::text, p_match_id, p_conversation_id, p_now;
END
$$;
