-- Likes as one statement however many are written together, as a like is one call of
-- `pupmatch_like` on PostgreSQL. Inserting rows into the `like_requests` view runs, for each row
-- in order, what a like does: the like itself, dropping a pass it replaces, the liked person's
-- notice (as their preferences want it) when the like is new and not mutual, and the match and
-- its conversation when it is mutual and the pair has none. Each row's outcome, in
-- `pupmatch_like`'s words, goes into `like_outcomes`, which the writer reads back and empties in
-- the same transaction.
--
-- A like is allowed when both people have a profile, the person liked is not hidden by
-- moderation at `now`, and neither blocked the other.

CREATE TABLE like_outcomes (
    seq              INTEGER PRIMARY KEY,
    outcome          TEXT,
    match_id         BLOB,
    conversation_id  BLOB,
    created_at       TEXT,
    push_state       TEXT
);

-- `seq`: the like's place in its batch; `pair_a`/`pair_b`: the two people in id order;
-- `notice_*`: the liked person's notice; `target_offline`: whether a push is wanted for it.
CREATE VIEW like_requests (seq, user_id, target_id, now, like_id, match_id, conversation_id,
                           pair_a, pair_b, notice_id, notice_kind, notice_title, notice_body,
                           notice_data, target_offline) AS
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
 WHERE 0;

CREATE TRIGGER like_requests_write INSTEAD OF INSERT ON like_requests
BEGIN
    -- A refused like's outcome is its refusal; an allowed one's stays NULL until the end.
    INSERT INTO like_outcomes (seq, outcome)
    SELECT NEW.seq,
           CASE
             WHEN NOT EXISTS (SELECT 1 FROM profiles WHERE user_id = NEW.user_id) THEN 'no_profile'
             WHEN NOT EXISTS (SELECT 1 FROM profiles WHERE user_id = NEW.target_id)
                  OR EXISTS (SELECT 1 FROM users WHERE id = NEW.target_id AND hidden_until > NEW.now)
               THEN 'no_user'
             WHEN EXISTS (SELECT 1 FROM blocks
                           WHERE (blocker_id = NEW.user_id AND blocked_id = NEW.target_id)
                              OR (blocker_id = NEW.target_id AND blocked_id = NEW.user_id))
               THEN 'blocked'
           END;

    INSERT INTO likes (id, user_id, target_id, created_at)
    SELECT NEW.like_id, NEW.user_id, NEW.target_id, NEW.now
     WHERE (SELECT outcome FROM like_outcomes WHERE seq = NEW.seq) IS NULL
    ON CONFLICT (user_id, target_id) DO NOTHING;

    -- An allowed like replaces a pass.
    DELETE FROM passes
     WHERE user_id = NEW.user_id AND target_id = NEW.target_id
       AND (SELECT outcome FROM like_outcomes WHERE seq = NEW.seq) IS NULL;

    -- A new like that is not mutual: the liked person's notice, as they want it.
    INSERT INTO notifications (id, user_id, kind, title, body, data, created_at,
                               push_state, push_attempts, next_attempt_at)
    SELECT NEW.notice_id, NEW.target_id, NEW.notice_kind, NEW.notice_title, NEW.notice_body,
           NEW.notice_data, NEW.now,
           CASE WHEN o.pushable AND COALESCE(p.push, true) THEN 'PENDING' ELSE 'NONE' END,
           0,
           CASE WHEN o.pushable AND COALESCE(p.push, true) THEN NEW.now END
      FROM (SELECT NEW.target_offline AND EXISTS (SELECT 1 FROM devices d
                                                   WHERE d.user_id = NEW.target_id)
                   AS pushable) o
      LEFT JOIN notification_preferences p ON p.user_id = NEW.target_id
     WHERE COALESCE(CASE NEW.notice_kind WHEN 'MATCH' THEN p.matches
                                         WHEN 'MESSAGE' THEN p.messages
                                         WHEN 'LIKE' THEN p.likes END, true)
       AND EXISTS (SELECT 1 FROM likes WHERE id = NEW.like_id)
       AND NOT EXISTS (SELECT 1 FROM likes
                        WHERE user_id = NEW.target_id AND target_id = NEW.user_id);

    -- A mutual like: the match and its conversation, unless the pair has them.
    INSERT INTO matches (id, user_a, user_b, created_at)
    SELECT NEW.match_id, NEW.pair_a, NEW.pair_b, NEW.now
     WHERE (SELECT outcome FROM like_outcomes WHERE seq = NEW.seq) IS NULL
       AND EXISTS (SELECT 1 FROM likes WHERE user_id = NEW.target_id AND target_id = NEW.user_id)
       AND NOT EXISTS (SELECT 1 FROM matches WHERE user_a = NEW.pair_a AND user_b = NEW.pair_b);
    INSERT INTO conversations (id, match_id, user_a, user_b, created_at, updated_at)
    SELECT NEW.conversation_id, NEW.match_id, NEW.pair_a, NEW.pair_b, NEW.now, NEW.now
     WHERE EXISTS (SELECT 1 FROM matches WHERE id = NEW.match_id);

    -- An allowed like's outcome.
    UPDATE like_outcomes
       SET (outcome, match_id, conversation_id, created_at, push_state) = (
           SELECT CASE
                    WHEN m.id = NEW.match_id THEN 'new_match'
                    WHEN m.id IS NOT NULL
                         AND EXISTS (SELECT 1 FROM likes
                                      WHERE user_id = NEW.target_id AND target_id = NEW.user_id)
                      THEN 'matched'
                    WHEN EXISTS (SELECT 1 FROM likes WHERE id = NEW.like_id) THEN 'liked'
                    ELSE 'liked_again'
                  END,
                  m.id, c.id, m.created_at, n.push_state
             FROM (SELECT 1) AS one
             LEFT JOIN matches m ON m.user_a = NEW.pair_a AND m.user_b = NEW.pair_b
             LEFT JOIN conversations c ON c.match_id = m.id
             LEFT JOIN notifications n ON n.id = NEW.notice_id)
     WHERE seq = NEW.seq AND outcome IS NULL;
END;
