-- The webhook outbox: one row per event, holding the whole delivery as JSON;
-- the columns beside it are copies that queries filter, order or claim on,
-- rewritten with it. `claimed_until` holds a pending delivery for the
-- instance attempting it, so that two instances never send it at once.
CREATE TABLE webhook_deliveries (
    id text PRIMARY KEY,
    event_type text NOT NULL,
    team_id text,
    connection_id text,
    status text NOT NULL,
    next_attempt_at timestamptz,
    claimed_until timestamptz,
    created_at timestamptz NOT NULL,
    delivery jsonb NOT NULL
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_created_at ON webhook_deliveries (created_at, id);
