-- A session is the app's (refreshable, 30 days) or the moderation console's (never refreshed,
-- 8 hours, only in its cookie). Neither can stand in for the other.
ALTER TABLE sessions ADD COLUMN kind text NOT NULL DEFAULT 'app'
    CHECK (kind IN ('app', 'console'));
