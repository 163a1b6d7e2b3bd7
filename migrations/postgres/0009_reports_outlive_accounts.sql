-- Reports are evidence for moderation and outlive the accounts involved: a report about a
-- person keeps their id (no longer a foreign key, so deleting the account keeps the report),
-- with a snapshot of their name, bio and photo keys taken when the report was made (a later
-- edit or deletion cannot hide what was reported). A report's author who deletes their
-- account loses their id from it; the reason and details stay.
ALTER TABLE reports DROP CONSTRAINT reports_reported_id_fkey;
ALTER TABLE reports DROP CONSTRAINT reports_reporter_id_fkey;
ALTER TABLE reports ALTER COLUMN reporter_id DROP NOT NULL;
ALTER TABLE reports ADD CONSTRAINT reports_reporter_id_fkey
    FOREIGN KEY (reporter_id) REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE reports ADD COLUMN reported_name text;
ALTER TABLE reports ADD COLUMN reported_bio text;
ALTER TABLE reports ADD COLUMN reported_photo_keys text NOT NULL DEFAULT '[]';
CREATE INDEX reports_reporter_idx ON reports (reporter_id);
