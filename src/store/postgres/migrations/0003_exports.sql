-- Export jobs: each row holds the whole job as JSON; the columns beside it
-- are copies that queries order, filter or fence on, rewritten with the job.
-- `heartbeat_at` is the database's time of the last write of the job: a
-- running job whose runner stopped writing is taken over by another runner.
CREATE TABLE export_jobs (
    id text PRIMARY KEY,
    owner text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL,
    created_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    job jsonb NOT NULL
);

CREATE INDEX export_jobs_created_at ON export_jobs (created_at, id);

-- A job's file: one row per written file, so that a rewrite gets a new
-- `file_id` and a reader of the old one never mixes chunks of the two.
CREATE TABLE export_files (
    file_id uuid PRIMARY KEY,
    job_id text NOT NULL UNIQUE REFERENCES export_jobs (id) ON DELETE CASCADE,
    bytes bigint NOT NULL,
    chunks integer NOT NULL
);

-- The file's bytes in order, in chunks of at most 512 KiB, so a download
-- streams one chunk at a time from any instance.
CREATE TABLE export_chunks (
    file_id uuid NOT NULL REFERENCES export_files (file_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (file_id, seq)
);
