-- The connections each cached insights answer was computed from, so that
-- erasing a user's data (Meta's Data Deletion callback) finds its entries.
-- Entries written before have none, and are erased with any request.
ALTER TABLE insights_cache ADD COLUMN sources text[] NOT NULL DEFAULT '{}';
CREATE INDEX insights_cache_sources ON insights_cache USING gin (sources);

-- Data deletion requests, by confirmation code: what the status page shows.
CREATE TABLE data_deletion_requests (
    code text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    request jsonb NOT NULL
);
