-- What each photo looks like, as a perceptual hash (144 bits) (null for photos stored before).
ALTER TABLE photos ADD COLUMN fingerprint bytea;
-- Fingerprints of photos moderators removed and of every photo of a banned person: an upload
-- that looks the same is refused, for everyone. The pictures themselves are not kept.
CREATE TABLE removed_photo_fingerprints (
    fingerprint  bytea PRIMARY KEY,
    removed_at   timestamptz NOT NULL,
    action_id    uuid                       -- the moderation action that removed it
);
