-- Background jobs (see the PostgreSQL migration of the same name).
CREATE TABLE job_leases (
    job         TEXT PRIMARY KEY NOT NULL,
    tick        INTEGER NOT NULL,
    holder      TEXT NOT NULL,
    claimed_at  TEXT NOT NULL
);

CREATE TABLE job_runs (
    id           BLOB PRIMARY KEY NOT NULL,
    job          TEXT NOT NULL,
    tick         INTEGER NOT NULL,
    worker       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    items        INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    CONSTRAINT job_runs_outcome_enum CHECK (outcome IN ('ok', 'failed'))
);
CREATE INDEX job_runs_job_idx ON job_runs (job, started_at);
CREATE INDEX job_runs_started_idx ON job_runs (started_at);
CREATE INDEX notifications_read_created_idx ON notifications (created_at) WHERE read_at IS NOT NULL;
