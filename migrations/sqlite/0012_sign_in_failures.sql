-- Failed sign-ins, by the keyed hash of the email tried (whether or not it has an account, so
-- the limit answers the same for both): after 10 within 15 minutes, sign-ins for that email are
-- refused for a while, from every address. Kept one day.
CREATE TABLE sign_in_failures (
    email_hash  BLOB NOT NULL,
    failed_at   TEXT NOT NULL
);
CREATE INDEX sign_in_failures_email_idx ON sign_in_failures (email_hash, failed_at);
-- When the account's owner was last told about failed sign-ins.
ALTER TABLE users ADD COLUMN sign_in_failures_told_at TEXT;
