-- Email addresses are confirmed. `email_confirmed_at` is set when the owner opens the link of a
-- confirmation email (a single-use token, valid 48 hours; a new one ends the earlier ones).
-- Accounts made before confirmation existed count as confirmed.
ALTER TABLE users ADD COLUMN email_confirmed_at TEXT;
UPDATE users SET email_confirmed_at = created_at;

CREATE TABLE email_confirmation_tokens (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    CONSTRAINT email_confirmation_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT email_confirmation_tokens_hash_len CHECK (length(token_hash) = 32)
);
CREATE INDEX email_confirmation_tokens_user_idx ON email_confirmation_tokens (user_id);
CREATE INDEX email_confirmation_tokens_expires_idx ON email_confirmation_tokens (expires_at);
