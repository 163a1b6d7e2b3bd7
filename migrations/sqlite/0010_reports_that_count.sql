-- Whether a report counts towards the automatic hold (a reporter with a complete profile, an
-- account old enough, who could have met the person, and whose reports moderators have not
-- often dismissed), and why not. Every report still reaches moderators. Reports made before
-- this rule count, as they did.
ALTER TABLE reports ADD COLUMN counts_towards_hold INTEGER NOT NULL DEFAULT 1;
ALTER TABLE reports ADD COLUMN not_counted_because TEXT;
-- A reporter's dismissed reports of the last days are counted at every report.
CREATE INDEX reports_dismissed_idx ON reports (reporter_id, resolved_at) WHERE status = 'DISMISSED';
