-- Background jobs. A lease row per job: a worker runs tick N of a job only if it moved the
-- job's row to N (from an older tick) itself, so each tick runs once however many workers run.
CREATE TABLE job_leases (
    job         text PRIMARY KEY,
    tick        bigint NOT NULL,
    holder      text NOT NULL,
    claimed_at  timestamptz NOT NULL
);

-- One row per run, for operators and tests: what ran, where, how it went.
CREATE TABLE job_runs (
    id           uuid PRIMARY KEY,
    job          text NOT NULL,
    tick         bigint NOT NULL,
    worker       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    attempts     integer NOT NULL,
    outcome      text NOT NULL,
    items        bigint NOT NULL DEFAULT 0,
    error        text,
    CONSTRAINT job_runs_outcome_enum CHECK (outcome IN ('ok', 'failed'))
);
CREATE INDEX job_runs_job_idx ON job_runs (job, started_at);
CREATE INDEX job_runs_started_idx ON job_runs (started_at);
CREATE INDEX notifications_read_created_idx ON notifications (created_at) WHERE read_at IS NOT NULL;
