-- The like, notification and message functions look every row up by key. PostgreSQL keeps
-- their statements' plans per connection; a plan made while a table was small (or while its
-- statistics said so: a new deployment, or autovacuum off) reads the table whole, and stays
-- until the next ANALYZE of that table: every like then read every like (measured under load:
-- ~14 500 rows a like, half the likes a second). Inside these functions the planner may not
-- choose a sequential scan where an index serves, whatever the statistics.
ALTER FUNCTION pupmatch_like(uuid, uuid, bigint, timestamptz, uuid, uuid, uuid, uuid, text,
                             text, text, text, boolean)
    SET enable_seqscan = off;
ALTER FUNCTION pupmatch_notify(uuid, uuid, text, text, text, text, timestamptz, boolean)
    SET enable_seqscan = off;
ALTER FUNCTION pupmatch_send_message(uuid, uuid, uuid, text, text, uuid, text, timestamptz)
    SET enable_seqscan = off;

-- Each pair lookup finds its row through whichever index the planner picks: the second index
-- of each pair table holds both people too (it served "everyone who liked this person", and
-- a like back read all of them to find one).
DROP INDEX likes_target_idx;
CREATE INDEX likes_target_idx ON likes (target_id, user_id);
DROP INDEX passes_target_idx;
CREATE INDEX passes_target_idx ON passes (target_id, user_id);
DROP INDEX matches_user_b_idx;
CREATE INDEX matches_user_b_idx ON matches (user_b, user_a);
DROP INDEX blocks_blocked_idx;
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id, blocker_id);
