-- PupMatch data model (PostgreSQL 15 + PostGIS 3).
-- Every table that holds a person's data references users(id) ON DELETE CASCADE, so deleting an
-- account removes every row of that person. Uniqueness and ranges live here, not only in code.

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Accounts ------------------------------------------------------------------------------------

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    email           text NOT NULL,
    password_hash   text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_active_at  timestamptz NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email)) AND char_length(email) BETWEEN 3 AND 254)
);
CREATE INDEX users_last_active_idx ON users (last_active_at);

-- One row per signed-in device: a refresh-token family. Access tokens carry its id (`sid`).
CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CONSTRAINT refresh_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_hash_len CHECK (octet_length(token_hash) = 32)
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

CREATE TABLE password_reset_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CONSTRAINT password_reset_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT password_reset_tokens_hash_len CHECK (octet_length(token_hash) = 32)
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);
CREATE INDEX password_reset_tokens_expires_idx ON password_reset_tokens (expires_at);

-- Profiles ------------------------------------------------------------------------------------

CREATE TABLE profiles (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            text NOT NULL,
    age             integer NOT NULL,
    bio             text NOT NULL DEFAULT '',
    breed           text,
    size            text,
    activity_level  text NOT NULL,
    is_paused       boolean NOT NULL DEFAULT false,
    photo_count     integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT profiles_user_key UNIQUE (user_id),
    CONSTRAINT profiles_name_len CHECK (char_length(name) BETWEEN 1 AND 50),
    CONSTRAINT profiles_age_range CHECK (age BETWEEN 0 AND 30),
    CONSTRAINT profiles_bio_len CHECK (char_length(bio) <= 500),
    CONSTRAINT profiles_breed_len CHECK (breed IS NULL OR char_length(breed) <= 60),
    CONSTRAINT profiles_size_enum CHECK (size IS NULL OR size IN ('SMALL', 'MEDIUM', 'LARGE')),
    CONSTRAINT profiles_activity_enum CHECK (activity_level IN ('LOW', 'MEDIUM', 'HIGH')),
    CONSTRAINT profiles_photo_count_range CHECK (photo_count BETWEEN 0 AND 6)
);
-- Discovery reads only complete, unpaused profiles.
CREATE INDEX profiles_discoverable_idx ON profiles (user_id) WHERE NOT is_paused AND photo_count >= 2;

CREATE TABLE photos (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position       integer NOT NULL,
    storage_key    text NOT NULL,
    thumbnail_key  text NOT NULL,
    width          integer NOT NULL,
    height         integer NOT NULL,
    byte_size      integer NOT NULL,
    created_at     timestamptz NOT NULL,
    CONSTRAINT photos_position_range CHECK (position BETWEEN 0 AND 5),
    CONSTRAINT photos_user_position_key UNIQUE (user_id, position) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT photos_storage_key_key UNIQUE (storage_key),
    CONSTRAINT photos_thumbnail_key_key UNIQUE (thumbnail_key),
    CONSTRAINT photos_dimensions CHECK (width > 0 AND height > 0 AND byte_size > 0)
);

CREATE TABLE prompts (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    question    text NOT NULL,
    answer      text NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT prompts_position_range CHECK (position BETWEEN 0 AND 2),
    CONSTRAINT prompts_user_position_key UNIQUE (user_id, position),
    CONSTRAINT prompts_question_len CHECK (char_length(question) BETWEEN 1 AND 200),
    CONSTRAINT prompts_answer_len CHECK (char_length(answer) BETWEEN 1 AND 300)
);

CREATE TABLE preferences (
    user_id         uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    min_age         integer NOT NULL,
    max_age         integer NOT NULL,
    max_distance    double precision NOT NULL,
    activity_level  text NOT NULL,
    distance_unit   text NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT preferences_age_range CHECK (0 <= min_age AND min_age <= max_age AND max_age <= 30),
    CONSTRAINT preferences_activity_enum CHECK (activity_level IN ('LOW', 'MEDIUM', 'HIGH')),
    CONSTRAINT preferences_unit_enum CHECK (distance_unit IN ('MILES', 'KILOMETERS')),
    CONSTRAINT preferences_distance_range CHECK (
        max_distance > 0 AND (
            (distance_unit = 'KILOMETERS' AND max_distance <= 500) OR
            (distance_unit = 'MILES' AND max_distance <= 310)))
);

-- A person's exact point is only ever returned to its owner. `grid_*` is the point snapped to a
-- ~1 km grid: distances shown to other people are computed from it (DESIGN §5).
CREATE TABLE locations (
    user_id         uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    grid_latitude   double precision NOT NULL,
    grid_longitude  double precision NOT NULL,
    geog            geography(Point, 4326) GENERATED ALWAYS AS
                        (ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography) STORED,
    grid_geog       geography(Point, 4326) GENERATED ALWAYS AS
                        (ST_SetSRID(ST_MakePoint(grid_longitude, grid_latitude), 4326)::geography) STORED,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT locations_lat_range CHECK (latitude BETWEEN -90 AND 90 AND grid_latitude BETWEEN -90 AND 90),
    CONSTRAINT locations_lon_range CHECK (longitude BETWEEN -180 AND 180 AND grid_longitude BETWEEN -180 AND 180)
);
CREATE INDEX locations_geog_gist ON locations USING gist (geog);
CREATE INDEX locations_grid_geog_gist ON locations USING gist (grid_geog);

-- Discovery actions ---------------------------------------------------------------------------

CREATE TABLE likes (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    CONSTRAINT likes_pair_key UNIQUE (user_id, target_id),
    CONSTRAINT likes_not_self CHECK (user_id <> target_id)
);
CREATE INDEX likes_target_idx ON likes (target_id);

CREATE TABLE passes (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    CONSTRAINT passes_pair_key UNIQUE (user_id, target_id),
    CONSTRAINT passes_not_self CHECK (user_id <> target_id)
);
CREATE INDEX passes_target_idx ON passes (target_id);
CREATE INDEX passes_created_idx ON passes (created_at);

-- One match per pair: the pair is stored ordered (user_a < user_b) so (a,b) and (b,a) collide.
CREATE TABLE matches (
    id          uuid PRIMARY KEY,
    user_a      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    CONSTRAINT matches_pair_key UNIQUE (user_a, user_b),
    CONSTRAINT matches_ordered_pair CHECK (user_a < user_b)
);
CREATE INDEX matches_user_b_idx ON matches (user_b);

CREATE TABLE blocks (
    blocker_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT blocks_not_self CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id);

CREATE TABLE reports (
    id           uuid PRIMARY KEY,
    reporter_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reported_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason       text NOT NULL,
    details      text,
    status       text NOT NULL DEFAULT 'OPEN',
    created_at   timestamptz NOT NULL,
    CONSTRAINT reports_reason_enum CHECK (reason IN ('SPAM', 'FAKE_PROFILE', 'INAPPROPRIATE_CONTENT', 'HARASSMENT', 'SCAM', 'OTHER')),
    CONSTRAINT reports_status_enum CHECK (status IN ('OPEN', 'REVIEWED', 'ACTIONED', 'DISMISSED')),
    CONSTRAINT reports_details_len CHECK (details IS NULL OR char_length(details) <= 1000),
    CONSTRAINT reports_not_self CHECK (reporter_id <> reported_id)
);
CREATE INDEX reports_reported_idx ON reports (reported_id);
CREATE INDEX reports_open_idx ON reports (created_at) WHERE status = 'OPEN';

-- Playgrounds (places are public; people are not) --------------------------------------------

CREATE TABLE playgrounds (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    name_search  text NOT NULL,  -- lower-cased, accents stripped: what name search matches
    description  text NOT NULL DEFAULT '',
    latitude     double precision NOT NULL,
    longitude    double precision NOT NULL,
    geog         geography(Point, 4326) GENERATED ALWAYS AS
                     (ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography) STORED,
    created_by   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    CONSTRAINT playgrounds_name_len CHECK (char_length(name) BETWEEN 1 AND 80),
    CONSTRAINT playgrounds_description_len CHECK (char_length(description) <= 500),
    CONSTRAINT playgrounds_lat_range CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT playgrounds_lon_range CHECK (longitude BETWEEN -180 AND 180)
);
CREATE INDEX playgrounds_geog_gist ON playgrounds USING gist (geog);
CREATE INDEX playgrounds_name_trgm ON playgrounds USING gin (name_search gin_trgm_ops);
CREATE INDEX playgrounds_created_by_idx ON playgrounds (created_by);

CREATE TABLE playground_favorites (
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    playground_id  uuid NOT NULL REFERENCES playgrounds (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, playground_id)
);
CREATE INDEX playground_favorites_playground_idx ON playground_favorites (playground_id);

-- Chat ------------------------------------------------------------------------------------------

-- A conversation lives as long as its match: unmatch or block ends it for both.
CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    match_id         uuid NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    user_a           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,  -- last activity: ordering of the conversation list
    a_cleared_at     timestamptz,           -- deleteConversation by user_a hides what came before
    b_cleared_at     timestamptz,
    CONSTRAINT conversations_match_key UNIQUE (match_id),
    CONSTRAINT conversations_ordered_pair CHECK (user_a < user_b)
);
CREATE INDEX conversations_user_a_idx ON conversations (user_a, updated_at DESC);
CREATE INDEX conversations_user_b_idx ON conversations (user_b, updated_at DESC);

CREATE TABLE messages (
    id               uuid PRIMARY KEY,  -- UUIDv7: increasing, so ordering by id is ordering by time
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipient_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             text NOT NULL DEFAULT 'TEXT',
    content          text NOT NULL,
    playground_id    uuid REFERENCES playgrounds (id) ON DELETE SET NULL,
    client_id        text,
    read_at          timestamptz,
    created_at       timestamptz NOT NULL,
    CONSTRAINT messages_kind_enum CHECK (kind IN ('TEXT', 'PLAYGROUND')),
    CONSTRAINT messages_content_len CHECK (char_length(content) BETWEEN 1 AND 2000),
    CONSTRAINT messages_client_id_len CHECK (client_id IS NULL OR char_length(client_id) BETWEEN 1 AND 64),
    CONSTRAINT messages_sender_client_key UNIQUE (sender_id, client_id),
    CONSTRAINT messages_not_self CHECK (sender_id <> recipient_id)
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);
CREATE INDEX messages_unread_idx ON messages (recipient_id, conversation_id) WHERE read_at IS NULL;

-- Notifications ---------------------------------------------------------------------------------

CREATE TABLE notifications (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             text NOT NULL,
    title            text NOT NULL,
    body             text NOT NULL,
    data             text,
    read_at          timestamptz,
    created_at       timestamptz NOT NULL,
    push_state       text NOT NULL DEFAULT 'NONE',
    push_attempts    integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    CONSTRAINT notifications_kind_enum CHECK (kind IN ('MATCH', 'MESSAGE', 'LIKE', 'SYSTEM')),
    CONSTRAINT notifications_push_state_enum CHECK (push_state IN ('NONE', 'PENDING', 'SENT', 'FAILED')),
    CONSTRAINT notifications_title_len CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT notifications_body_len CHECK (char_length(body) <= 1000)
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_push_pending_idx ON notifications (next_attempt_at) WHERE push_state = 'PENDING';

CREATE TABLE notification_preferences (
    user_id     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    matches     boolean NOT NULL DEFAULT true,
    messages    boolean NOT NULL DEFAULT true,
    likes       boolean NOT NULL DEFAULT true,
    push        boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE devices (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token         text NOT NULL,
    platform      text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    CONSTRAINT devices_token_key UNIQUE (token),
    CONSTRAINT devices_token_len CHECK (char_length(token) BETWEEN 1 AND 4096),
    CONSTRAINT devices_platform_enum CHECK (platform IN ('IOS', 'ANDROID', 'WEB'))
);
CREATE INDEX devices_user_idx ON devices (user_id);
