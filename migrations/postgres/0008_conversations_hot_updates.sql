-- Every message moves its conversation's `updated_at`. With `updated_at` in two indexes each of
-- those updates was a non-HOT update: a new entry in all four of the table's indexes per
-- message, and dead entries piling up in them between vacuums on the busiest rows. The list
-- query selects `user_a = $1 OR user_b = $1` (a bitmap OR of both indexes, then a sort), so the
-- second column never gave an order; without it, and with room left on each page, the update
-- is HOT: no index is touched and the old row version is pruned in place.
DROP INDEX conversations_user_a_idx;
DROP INDEX conversations_user_b_idx;
CREATE INDEX conversations_user_a_idx ON conversations (user_a);
CREATE INDEX conversations_user_b_idx ON conversations (user_b);
ALTER TABLE conversations SET (fillfactor = 70);
