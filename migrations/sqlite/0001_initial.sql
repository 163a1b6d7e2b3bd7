-- PupMatch data model (SQLite, embedded mode). Same tables, keys and checks as the PostgreSQL
-- schema. Dialect notes: UUIDs are 16-byte BLOBs (UUIDv7 bytes sort by time); timestamps are
-- fixed-width RFC 3339 TEXT written by the application ('YYYY-MM-DDTHH:MM:SS.ffffffZ'), so text
-- order is time order; booleans are 0/1. Geography is an R*Tree prefilter kept in sync by
-- triggers, with exact haversine distances computed in Rust. Foreign keys are enforced
-- (PRAGMA foreign_keys = ON on every connection).

-- Accounts ------------------------------------------------------------------------------------

CREATE TABLE users (
    id              BLOB PRIMARY KEY NOT NULL,
    email           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    last_active_at  TEXT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalised CHECK (email = lower(trim(email)) AND length(email) BETWEEN 3 AND 254)
);
CREATE INDEX users_last_active_idx ON users (last_active_at);

CREATE TABLE sessions (
    id            BLOB PRIMARY KEY NOT NULL,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id          BLOB PRIMARY KEY NOT NULL,
    session_id  BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    CONSTRAINT refresh_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_hash_len CHECK (length(token_hash) = 32)
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

CREATE TABLE password_reset_tokens (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    CONSTRAINT password_reset_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT password_reset_tokens_hash_len CHECK (length(token_hash) = 32)
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);
CREATE INDEX password_reset_tokens_expires_idx ON password_reset_tokens (expires_at);

-- Profiles ------------------------------------------------------------------------------------

CREATE TABLE profiles (
    id              BLOB PRIMARY KEY NOT NULL,
    user_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    age             INTEGER NOT NULL,
    bio             TEXT NOT NULL DEFAULT '',
    breed           TEXT,
    size            TEXT,
    activity_level  TEXT NOT NULL,
    is_paused       INTEGER NOT NULL DEFAULT 0,
    photo_count     INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CONSTRAINT profiles_user_key UNIQUE (user_id),
    CONSTRAINT profiles_name_len CHECK (length(name) BETWEEN 1 AND 50),
    CONSTRAINT profiles_age_range CHECK (age BETWEEN 0 AND 30),
    CONSTRAINT profiles_bio_len CHECK (length(bio) <= 500),
    CONSTRAINT profiles_breed_len CHECK (breed IS NULL OR length(breed) <= 60),
    CONSTRAINT profiles_size_enum CHECK (size IS NULL OR size IN ('SMALL', 'MEDIUM', 'LARGE')),
    CONSTRAINT profiles_activity_enum CHECK (activity_level IN ('LOW', 'MEDIUM', 'HIGH')),
    CONSTRAINT profiles_paused_bool CHECK (is_paused IN (0, 1)),
    CONSTRAINT profiles_photo_count_range CHECK (photo_count BETWEEN 0 AND 6)
);
CREATE INDEX profiles_discoverable_idx ON profiles (user_id) WHERE is_paused = 0 AND photo_count >= 2;

CREATE TABLE photos (
    id             BLOB PRIMARY KEY NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    storage_key    TEXT NOT NULL,
    thumbnail_key  TEXT NOT NULL,
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    byte_size      INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    CONSTRAINT photos_position_range CHECK (position BETWEEN 0 AND 5),
    CONSTRAINT photos_user_position_key UNIQUE (user_id, position),
    CONSTRAINT photos_storage_key_key UNIQUE (storage_key),
    CONSTRAINT photos_thumbnail_key_key UNIQUE (thumbnail_key),
    CONSTRAINT photos_dimensions CHECK (width > 0 AND height > 0 AND byte_size > 0)
);

CREATE TABLE prompts (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    question    TEXT NOT NULL,
    answer      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    CONSTRAINT prompts_position_range CHECK (position BETWEEN 0 AND 2),
    CONSTRAINT prompts_user_position_key UNIQUE (user_id, position),
    CONSTRAINT prompts_question_len CHECK (length(question) BETWEEN 1 AND 200),
    CONSTRAINT prompts_answer_len CHECK (length(answer) BETWEEN 1 AND 300)
);

CREATE TABLE preferences (
    user_id         BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    min_age         INTEGER NOT NULL,
    max_age         INTEGER NOT NULL,
    max_distance    REAL NOT NULL,
    activity_level  TEXT NOT NULL,
    distance_unit   TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CONSTRAINT preferences_age_range CHECK (0 <= min_age AND min_age <= max_age AND max_age <= 30),
    CONSTRAINT preferences_activity_enum CHECK (activity_level IN ('LOW', 'MEDIUM', 'HIGH')),
    CONSTRAINT preferences_unit_enum CHECK (distance_unit IN ('MILES', 'KILOMETERS')),
    CONSTRAINT preferences_distance_range CHECK (
        max_distance > 0 AND (
            (distance_unit = 'KILOMETERS' AND max_distance <= 500) OR
            (distance_unit = 'MILES' AND max_distance <= 310)))
);

CREATE TABLE locations (
    user_id         BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    latitude        REAL NOT NULL,
    longitude       REAL NOT NULL,
    grid_latitude   REAL NOT NULL,
    grid_longitude  REAL NOT NULL,
    updated_at      TEXT NOT NULL,
    CONSTRAINT locations_lat_range CHECK (latitude BETWEEN -90 AND 90 AND grid_latitude BETWEEN -90 AND 90),
    CONSTRAINT locations_lon_range CHECK (longitude BETWEEN -180 AND 180 AND grid_longitude BETWEEN -180 AND 180)
);
-- R*Tree over the exact points, keyed by the locations rowid.
CREATE VIRTUAL TABLE locations_rtree USING rtree (id, min_lat, max_lat, min_lon, max_lon);
CREATE TRIGGER locations_rtree_insert AFTER INSERT ON locations BEGIN
    INSERT INTO locations_rtree VALUES (new.rowid, new.latitude, new.latitude, new.longitude, new.longitude);
END;
CREATE TRIGGER locations_rtree_update AFTER UPDATE OF latitude, longitude ON locations BEGIN
    UPDATE locations_rtree SET min_lat = new.latitude, max_lat = new.latitude,
                               min_lon = new.longitude, max_lon = new.longitude
     WHERE id = new.rowid;
END;
CREATE TRIGGER locations_rtree_delete AFTER DELETE ON locations BEGIN
    DELETE FROM locations_rtree WHERE id = old.rowid;
END;

-- Discovery actions ---------------------------------------------------------------------------

CREATE TABLE likes (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    CONSTRAINT likes_pair_key UNIQUE (user_id, target_id),
    CONSTRAINT likes_not_self CHECK (user_id <> target_id)
);
CREATE INDEX likes_target_idx ON likes (target_id);

CREATE TABLE passes (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    CONSTRAINT passes_pair_key UNIQUE (user_id, target_id),
    CONSTRAINT passes_not_self CHECK (user_id <> target_id)
);
CREATE INDEX passes_target_idx ON passes (target_id);
CREATE INDEX passes_created_idx ON passes (created_at);

CREATE TABLE matches (
    id          BLOB PRIMARY KEY NOT NULL,
    user_a      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    CONSTRAINT matches_pair_key UNIQUE (user_a, user_b),
    CONSTRAINT matches_ordered_pair CHECK (user_a < user_b)
);
CREATE INDEX matches_user_b_idx ON matches (user_b);

CREATE TABLE blocks (
    blocker_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT blocks_not_self CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id);

CREATE TABLE reports (
    id           BLOB PRIMARY KEY NOT NULL,
    reporter_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reported_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason       TEXT NOT NULL,
    details      TEXT,
    status       TEXT NOT NULL DEFAULT 'OPEN',
    created_at   TEXT NOT NULL,
    CONSTRAINT reports_reason_enum CHECK (reason IN ('SPAM', 'FAKE_PROFILE', 'INAPPROPRIATE_CONTENT', 'HARASSMENT', 'SCAM', 'OTHER')),
    CONSTRAINT reports_status_enum CHECK (status IN ('OPEN', 'REVIEWED', 'ACTIONED', 'DISMISSED')),
    CONSTRAINT reports_details_len CHECK (details IS NULL OR length(details) <= 1000),
    CONSTRAINT reports_not_self CHECK (reporter_id <> reported_id)
);
CREATE INDEX reports_reported_idx ON reports (reported_id);
CREATE INDEX reports_open_idx ON reports (created_at) WHERE status = 'OPEN';

-- Playgrounds ---------------------------------------------------------------------------------

CREATE TABLE playgrounds (
    id           BLOB PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    name_search  TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    latitude     REAL NOT NULL,
    longitude    REAL NOT NULL,
    created_by   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    CONSTRAINT playgrounds_name_len CHECK (length(name) BETWEEN 1 AND 80),
    CONSTRAINT playgrounds_description_len CHECK (length(description) <= 500),
    CONSTRAINT playgrounds_lat_range CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT playgrounds_lon_range CHECK (longitude BETWEEN -180 AND 180)
);
CREATE INDEX playgrounds_created_by_idx ON playgrounds (created_by);
CREATE VIRTUAL TABLE playgrounds_rtree USING rtree (id, min_lat, max_lat, min_lon, max_lon);
CREATE TRIGGER playgrounds_rtree_insert AFTER INSERT ON playgrounds BEGIN
    INSERT INTO playgrounds_rtree VALUES (new.rowid, new.latitude, new.latitude, new.longitude, new.longitude);
END;
CREATE TRIGGER playgrounds_rtree_delete AFTER DELETE ON playgrounds BEGIN
    DELETE FROM playgrounds_rtree WHERE id = old.rowid;
END;
-- Trigram full-text index over the normalised name (SQLite's counterpart of pg_trgm).
CREATE VIRTUAL TABLE playgrounds_fts USING fts5 (name_search, content = 'playgrounds', content_rowid = 'rowid', tokenize = 'trigram');
CREATE TRIGGER playgrounds_fts_insert AFTER INSERT ON playgrounds BEGIN
    INSERT INTO playgrounds_fts (rowid, name_search) VALUES (new.rowid, new.name_search);
END;
CREATE TRIGGER playgrounds_fts_delete AFTER DELETE ON playgrounds BEGIN
    INSERT INTO playgrounds_fts (playgrounds_fts, rowid, name_search) VALUES ('delete', old.rowid, old.name_search);
END;

CREATE TABLE playground_favorites (
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    playground_id  BLOB NOT NULL REFERENCES playgrounds (id) ON DELETE CASCADE,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (user_id, playground_id)
);
CREATE INDEX playground_favorites_playground_idx ON playground_favorites (playground_id);

-- Chat ------------------------------------------------------------------------------------------

CREATE TABLE conversations (
    id               BLOB PRIMARY KEY NOT NULL,
    match_id         BLOB NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    user_a           BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b           BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    a_cleared_at     TEXT,
    b_cleared_at     TEXT,
    CONSTRAINT conversations_match_key UNIQUE (match_id),
    CONSTRAINT conversations_ordered_pair CHECK (user_a < user_b)
);
CREATE INDEX conversations_user_a_idx ON conversations (user_a, updated_at DESC);
CREATE INDEX conversations_user_b_idx ON conversations (user_b, updated_at DESC);

CREATE TABLE messages (
    id               BLOB PRIMARY KEY NOT NULL,
    conversation_id  BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipient_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL DEFAULT 'TEXT',
    content          TEXT NOT NULL,
    playground_id    BLOB REFERENCES playgrounds (id) ON DELETE SET NULL,
    client_id        TEXT,
    read_at          TEXT,
    created_at       TEXT NOT NULL,
    CONSTRAINT messages_kind_enum CHECK (kind IN ('TEXT', 'PLAYGROUND')),
    CONSTRAINT messages_content_len CHECK (length(content) BETWEEN 1 AND 2000),
    CONSTRAINT messages_client_id_len CHECK (client_id IS NULL OR length(client_id) BETWEEN 1 AND 64),
    CONSTRAINT messages_sender_client_key UNIQUE (sender_id, client_id),
    CONSTRAINT messages_not_self CHECK (sender_id <> recipient_id)
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);
CREATE INDEX messages_unread_idx ON messages (recipient_id, conversation_id) WHERE read_at IS NULL;

-- Notifications ---------------------------------------------------------------------------------

CREATE TABLE notifications (
    id               BLOB PRIMARY KEY NOT NULL,
    user_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    data             TEXT,
    read_at          TEXT,
    created_at       TEXT NOT NULL,
    push_state       TEXT NOT NULL DEFAULT 'NONE',
    push_attempts    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    CONSTRAINT notifications_kind_enum CHECK (kind IN ('MATCH', 'MESSAGE', 'LIKE', 'SYSTEM')),
    CONSTRAINT notifications_push_state_enum CHECK (push_state IN ('NONE', 'PENDING', 'SENT', 'FAILED')),
    CONSTRAINT notifications_title_len CHECK (length(title) BETWEEN 1 AND 200),
    CONSTRAINT notifications_body_len CHECK (length(body) <= 1000)
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_push_pending_idx ON notifications (next_attempt_at) WHERE push_state = 'PENDING';

CREATE TABLE notification_preferences (
    user_id     BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    matches     INTEGER NOT NULL DEFAULT 1,
    messages    INTEGER NOT NULL DEFAULT 1,
    likes       INTEGER NOT NULL DEFAULT 1,
    push        INTEGER NOT NULL DEFAULT 1,
    updated_at  TEXT NOT NULL
);

CREATE TABLE devices (
    id            BLOB PRIMARY KEY NOT NULL,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token         TEXT NOT NULL,
    platform      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    CONSTRAINT devices_token_key UNIQUE (token),
    CONSTRAINT devices_token_len CHECK (length(token) BETWEEN 1 AND 4096),
    CONSTRAINT devices_platform_enum CHECK (platform IN ('IOS', 'ANDROID', 'WEB'))
);
CREATE INDEX devices_user_idx ON devices (user_id);
