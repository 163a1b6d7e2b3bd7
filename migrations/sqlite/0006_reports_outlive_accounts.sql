-- Reports are evidence for moderation and outlive the accounts involved: a report about a
-- person keeps their id (no longer a foreign key, so deleting the account keeps the report),
-- with a snapshot of their name, bio and photo keys taken when the report was made (a later
-- edit or deletion cannot hide what was reported). A report's author who deletes their
-- account loses their id from it; the reason and details stay. (SQLite changes foreign keys by
-- rebuilding the table; nothing refers to it.)
CREATE TABLE reports_rebuilt (
    id                   BLOB PRIMARY KEY NOT NULL,
    reporter_id          BLOB REFERENCES users (id) ON DELETE SET NULL,
    reported_id          BLOB NOT NULL,
    reason               TEXT NOT NULL,
    details              TEXT,
    status               TEXT NOT NULL DEFAULT 'OPEN',
    created_at           TEXT NOT NULL,
    reported_name        TEXT,
    reported_bio         TEXT,
    reported_photo_keys  TEXT NOT NULL DEFAULT '[]',
    CONSTRAINT reports_reason_enum CHECK (reason IN ('SPAM', 'FAKE_PROFILE', 'INAPPROPRIATE_CONTENT', 'HARASSMENT', 'SCAM', 'OTHER')),
    CONSTRAINT reports_status_enum CHECK (status IN ('OPEN', 'REVIEWED', 'ACTIONED', 'DISMISSED')),
    CONSTRAINT reports_details_len CHECK (details IS NULL OR length(details) <= 1000),
    CONSTRAINT reports_not_self CHECK (reporter_id <> reported_id)
);
INSERT INTO reports_rebuilt (id, reporter_id, reported_id, reason, details, status, created_at)
    SELECT id, reporter_id, reported_id, reason, details, status, created_at FROM reports;
DROP TABLE reports;
ALTER TABLE reports_rebuilt RENAME TO reports;
CREATE INDEX reports_reported_idx ON reports (reported_id);
CREATE INDEX reports_reporter_idx ON reports (reporter_id);
CREATE INDEX reports_open_idx ON reports (created_at) WHERE status = 'OPEN';
