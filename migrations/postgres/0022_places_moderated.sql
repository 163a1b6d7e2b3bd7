-- Places are moderated and tidied. Moderators remove a place or merge a duplicate into another
-- (audited as REMOVE_PLACE / MERGE_PLACE, the place as the subject); the cleanup job removes a
-- place nobody has saved for 30 days (`last_unsaved_at`: when a favourite of it last went).
ALTER TABLE moderation_actions DROP CONSTRAINT moderation_actions_kind_enum;
ALTER TABLE moderation_actions ADD CONSTRAINT moderation_actions_kind_enum CHECK (kind IN
    ('DISMISS', 'WARN', 'REMOVE_PHOTO', 'SUSPEND', 'BAN', 'LIFT', 'GRANT_ROLE', 'REVOKE_ROLE',
     'REMOVE_PLACE', 'MERGE_PLACE'));

ALTER TABLE playgrounds ADD COLUMN last_unsaved_at timestamptz;
CREATE FUNCTION pupmatch_place_unsaved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE playgrounds SET last_unsaved_at = now() WHERE id = OLD.playground_id;
    RETURN NULL;
END $$;
CREATE TRIGGER playground_favorites_unsaved AFTER DELETE ON playground_favorites
    FOR EACH ROW EXECUTE FUNCTION pupmatch_place_unsaved();
CREATE INDEX playgrounds_created_idx ON playgrounds (created_at);
-- The messages that shared a place, found when it is merged or removed.
CREATE INDEX messages_playground_idx ON messages (playground_id) WHERE playground_id IS NOT NULL;
