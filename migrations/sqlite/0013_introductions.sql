-- The people the app has put in front of someone: each person served to them in their
-- recommendations, stored when the page is served. A profile answers only its owner, the people
-- it was introduced to, whoever its owner liked, and its owner's matches; the introductions of
-- the last day are the ceiling on new profiles viewed. Kept 30 days.
CREATE TABLE introductions (
    viewer_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    person_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    introduced_at  TEXT NOT NULL,
    PRIMARY KEY (viewer_id, person_id)
) WITHOUT ROWID;
CREATE INDEX introductions_viewer_time_idx ON introductions (viewer_id, introduced_at);
CREATE INDEX introductions_person_idx ON introductions (person_id);
CREATE INDEX introductions_time_idx ON introductions (introduced_at);
