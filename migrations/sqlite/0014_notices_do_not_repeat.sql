-- Notices do not repeat. A like tells its person "someone likes you" once per liker in 30
-- days (`like_notices` remembers when, kept 30 days), however often the like is taken back and
-- made again. A person's unread message notices collapse to one per conversation: a new one
-- replaces those still unread (and their pending pushes).
CREATE TABLE like_notices (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sent_at    TEXT NOT NULL,
    PRIMARY KEY (user_id, target_id)
) WITHOUT ROWID;
CREATE INDEX like_notices_target_idx ON like_notices (target_id);
CREATE INDEX like_notices_sent_idx ON like_notices (sent_at);
CREATE INDEX notifications_unread_messages_idx ON notifications (user_id)
    WHERE read_at IS NULL AND kind = 'MESSAGE';

-- The like trigger as before, telling a person of a liker at most once in 30 days.
DROP TRIGGER like_requests_write;
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
                        WHERE user_id = NEW.target_id AND target_id = NEW.user_id)
       AND NOT EXISTS (SELECT 1 FROM like_notices
                        WHERE user_id = NEW.user_id AND target_id = NEW.target_id
                          AND sent_at > strftime('%Y-%m-%dT%H:%M:%fZ', NEW.now, '-30 days'));
    INSERT INTO like_notices (user_id, target_id, sent_at)
    SELECT NEW.user_id, NEW.target_id, NEW.now
     WHERE EXISTS (SELECT 1 FROM notifications WHERE id = NEW.notice_id)
    ON CONFLICT (user_id, target_id) DO UPDATE SET sent_at = excluded.sent_at;

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
