-- Moderation: roles, restrictions, report resolution, message evidence, banned emails and an
-- append-only audit log.

-- Who may moderate. Granted only from the command line, or by an admin in the console.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'MEMBER'
    CONSTRAINT users_role_enum CHECK (role IN ('MEMBER', 'MODERATOR', 'ADMIN'));
-- A suspension ends at `suspended_until`; a ban has no end. Either refuses sign-in.
ALTER TABLE users ADD COLUMN suspended_until TEXT;
ALTER TABLE users ADD COLUMN banned_at TEXT;
-- Others do not see the person until then (a suspension's end; the far future for a ban or
-- while many recent reports wait for a moderator). NULL: visible.
ALTER TABLE users ADD COLUMN hidden_until TEXT;
CREATE INDEX users_hidden_idx ON users (hidden_until) WHERE hidden_until IS NOT NULL;
CREATE INDEX users_staff_idx ON users (role) WHERE role <> 'MEMBER';

-- How each report was closed.
ALTER TABLE reports ADD COLUMN resolved_at TEXT;
ALTER TABLE reports ADD COLUMN action_id BLOB;
CREATE INDEX reports_open_reported_idx ON reports (reported_id, created_at) WHERE status = 'OPEN';

-- The messages the reported person had sent the reporter, copied when the report is made (the
-- block that comes with a report ends the conversation).
CREATE TABLE report_messages (
    report_id  BLOB NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    message_id BLOB NOT NULL,
    sent_at    TEXT NOT NULL,
    content    TEXT NOT NULL,
    PRIMARY KEY (report_id, message_id)
);

-- Emails of banned accounts, as keyed hashes (HMAC-SHA-256 under a key derived from the
-- server secret): a new account with the same email is refused, the address is not kept.
CREATE TABLE banned_emails (
    email_hash BLOB PRIMARY KEY NOT NULL,
    banned_at  TEXT NOT NULL,
    user_id    BLOB NOT NULL
);

-- Every moderator action and role change. Append-only: updates and deletes are refused.
CREATE TABLE moderation_actions (
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
        ('DISMISS', 'WARN', 'REMOVE_PHOTO', 'SUSPEND', 'BAN', 'LIFT', 'GRANT_ROLE', 'REVOKE_ROLE')),
    CONSTRAINT moderation_actions_reason_len CHECK (length(reason) BETWEEN 1 AND 1000)
);
CREATE INDEX moderation_actions_subject_idx ON moderation_actions (subject_id, created_at);

CREATE TRIGGER moderation_actions_no_update BEFORE UPDATE ON moderation_actions
BEGIN
    SELECT RAISE(ABORT, 'the moderation audit log is append-only');
END;
CREATE TRIGGER moderation_actions_no_delete BEFORE DELETE ON moderation_actions
BEGIN
    SELECT RAISE(ABORT, 'the moderation audit log is append-only');
END;
