-- Likes written together (group commit): the likes an instance has waiting, in one transaction.
-- Each is `pupmatch_like` with the i-th element of every array, taken in the order of the
-- pairs' lock keys (`p_lock`), so two such transactions take their advisory locks in the same
-- order and cannot deadlock on them; `out_index` is the like's place in the arrays (from 1).
CREATE FUNCTION pupmatch_like_batch(
    p_user uuid[], p_target uuid[], p_lock bigint[], p_now timestamptz[],
    p_like_id uuid[], p_match_id uuid[], p_conversation_id uuid[],
    p_notice_id uuid[], p_notice_kind text[], p_notice_title text[], p_notice_body text[],
    p_notice_data text[], p_target_offline boolean[])
RETURNS TABLE (out_index int, out_outcome text, out_match_id uuid, out_conversation_id uuid,
               out_created_at timestamptz, out_push_state text)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
AS $$
DECLARE
    i int;
BEGIN
    FOR i IN SELECT g FROM generate_subscripts(p_user, 1) AS g ORDER BY p_lock[g], g LOOP
        RETURN QUERY
            SELECT i, l.out_outcome, l.out_match_id, l.out_conversation_id, l.out_created_at,
                   l.out_push_state
              FROM pupmatch_like(p_user[i], p_target[i], p_lock[i], p_now[i], p_like_id[i],
                                 p_match_id[i], p_conversation_id[i], p_notice_id[i],
                                 p_notice_kind[i], p_notice_title[i], p_notice_body[i],
                                 p_notice_data[i], p_target_offline[i]) AS l;
    END LOOP;
END
$$;
