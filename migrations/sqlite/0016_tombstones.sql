-- Deleting an account does not escape a ban. An account deleted while reports about it are open
-- or while reports hold it leaves a tombstone: its id, the keyed hash of its email (as banned
-- emails are kept) and when it was deleted, nothing else; the reports keep their snapshots.
-- Moderators can ban a tombstone like an account: its email is refused from then on, and so is
-- an account registered since with the same email (`successor_id`). A tombstone goes when its
-- case is decided, or 180 days after the deletion.
CREATE TABLE tombstones (
    user_id       BLOB PRIMARY KEY NOT NULL,
    email_hash    BLOB NOT NULL,
    deleted_at    TEXT NOT NULL,
    successor_id  BLOB REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX tombstones_email_idx ON tombstones (email_hash);
CREATE INDEX tombstones_deleted_idx ON tombstones (deleted_at);
