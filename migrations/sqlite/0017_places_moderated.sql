-- Places are moderated and tidied. Moderators remove a place or merge a duplicate into another
-- (audited as REMOVE_PLACE / MERGE_PLACE, the place as the subject); the cleanup job removes a
-- place nobody has saved for 30 days (`last_unsaved_at`: when a favourite of it last went).
-- SQLite cannot change a CHECK constraint: the audit log is copied into a table with the new one.
CREATE TABLE moderation_actions_new (
    id          BLOB PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL,
    actor_id    BLOB,
    actor_email TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject_id  BLOB NOT NULL,
    subject_name TEXT,
    reason      TEXT NOT NULL,
    detail      TEXT,
    CONSTRAINT moderation_actions_kind_enum CHECK (kind IN
        ('DISMISS', 'WARN', 'REMOVE_PHOTO', 'SUSPEND', 'BAN', 'LIFT', 'GRANT_ROLE', 'REVOKE_ROLE',
         'REMOVE_PLACE', 'MERGE_PLACE')),
    CONSTRAINT moderation_actions_reason_len CHECK (length(reason) BETWEEN 1 AND 1000)
);
INSERT INTO moderation_actions_new
    SELECT id, created_at, actor_id, actor_email, kind, subject_id, subject_name, reason, detail
      FROM moderation_actions;
DROP TABLE moderation_actions;
ALTER TABLE moderation_actions_new RENAME TO moderation_actions;
CREATE INDEX moderation_actions_subject_idx ON moderation_actions (subject_id, created_at);
CREATE TRIGGER moderation_actions_no_update BEFORE UPDATE ON moderation_actions
BEGIN
    SELECT RAISE(ABORT, 'the moderation audit log is append-only');
END;
CREATE TRIGGER moderation_actions_no_delete BEFORE DELETE ON moderation_actions
BEGIN
    SELECT RAISE(ABORT, 'the moderation audit log is append-only');
END;

ALTER TABLE playgrounds ADD COLUMN last_unsaved_at TEXT;
CREATE TRIGGER playground_favorites_unsaved AFTER DELETE ON playground_favorites
BEGIN
    UPDATE playgrounds SET last_unsaved_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = OLD.playground_id;
END;
CREATE INDEX playgrounds_created_idx ON playgrounds (created_at);
-- The messages that shared a place, found when it is merged or removed.
CREATE INDEX messages_playground_idx ON messages (playground_id) WHERE playground_id IS NOT NULL;
