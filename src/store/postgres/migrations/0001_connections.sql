-- The connections: each row holds the whole record as the JSON file store
-- writes it (secrets stay JWE strings, so the database never sees a
-- plaintext token); the columns beside it are copies that queries key,
-- filter or lock on, rewritten with the record on every write.
CREATE TABLE connections (
    id text PRIMARY KEY,
    provider text NOT NULL,
    kind text NOT NULL,
    external_id text NOT NULL,
    team_id text,
    version bigint NOT NULL,
    next_refresh_at timestamptz,
    record jsonb NOT NULL
);

-- The natural key: concurrent upserts of one account converge on one row.
-- No team and the empty team are one key here.
CREATE UNIQUE INDEX connections_natural_key
    ON connections (provider, kind, external_id, (coalesce(team_id, '')));

-- Sweeps look for the connections due for a refresh.
CREATE INDEX connections_next_refresh_at
    ON connections (next_refresh_at) WHERE next_refresh_at IS NOT NULL;

-- One row per connection ever leased: the newest fencing token granted on
-- it, and its holder until `expires_at` (both null once released).
CREATE TABLE leases (
    connection_id text PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    holder text,
    fencing_token bigint NOT NULL,
    expires_at timestamptz
);

-- Fencing tokens, shared by every connection and every instance: a token
-- is drawn while the lease row is locked, so a connection's tokens grow.
CREATE SEQUENCE fencing_tokens;

-- The store's generation (`/readyz`): every write transaction draws one, so
-- it grows with each committed write (a rolled-back one leaves a gap).
CREATE SEQUENCE store_writes;
