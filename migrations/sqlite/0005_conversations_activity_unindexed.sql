-- Every message moves its conversation's `updated_at`; with `updated_at` in two indexes each
-- message also rewrote an entry in both. The list query selects `user_a = ? OR user_b = ?` and
-- sorts, so the second column never gave an order.
DROP INDEX conversations_user_a_idx;
DROP INDEX conversations_user_b_idx;
CREATE INDEX conversations_user_a_idx ON conversations (user_a);
CREATE INDEX conversations_user_b_idx ON conversations (user_b);
