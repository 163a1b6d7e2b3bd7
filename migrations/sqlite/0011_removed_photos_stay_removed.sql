-- What each photo looks like, as a perceptual hash (144 bits) (null for photos stored before).
ALTER TABLE photos ADD COLUMN fingerprint BLOB;
-- Fingerprints of photos moderators removed and of every photo of a banned person: an upload
-- that looks the same is refused, for everyone. The pictures themselves are not kept.
CREATE TABLE removed_photo_fingerprints (
    fingerprint  BLOB PRIMARY KEY,
    removed_at   TEXT NOT NULL,
    action_id    BLOB                       -- the moderation action that removed it
);
