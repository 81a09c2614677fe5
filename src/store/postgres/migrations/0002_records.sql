-- The records kept beside connections, shared by every instance.

-- OAuth state nonces: a taken one stays (taken) until it expires, so that a
-- replay is told it was used; rows past their expiry are purged as new
-- ones are issued.
CREATE TABLE oauth_nonces (
    id text PRIMARY KEY,
    payload text NOT NULL,
    expires_at timestamptz NOT NULL,
    taken boolean NOT NULL DEFAULT false
);

CREATE INDEX oauth_nonces_expires_at ON oauth_nonces (expires_at);

-- The recent finished refresh runs, each as the run store writes it (with
-- its split by team); only the most recent by `started_at` are kept.
CREATE TABLE refresh_runs (
    id text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    run jsonb NOT NULL
);

CREATE INDEX refresh_runs_started_at ON refresh_runs (started_at DESC, id DESC);

-- The audit trail of token hand-outs: appended to, never updated.
CREATE TABLE audit_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    action text NOT NULL,
    key_id text NOT NULL,
    connection_id text NOT NULL,
    outcome text NOT NULL
);

-- The insights cache (insights/pg_cache.rs), keyed by the SHA-256 of the
-- cache key. `json`, not `jsonb`: an answer served from the cache keeps the
-- key order it was computed with.
CREATE TABLE insights_cache (
    key text PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    value json NOT NULL
);

CREATE INDEX insights_cache_expires_at ON insights_cache (expires_at);
