-- FIFO ordering survives restarts: a delivery of an ordered endpoint carries
-- its ordering key (NULL when the endpoint is unordered), and a delivery is
-- only claimed once every older pending delivery with the same endpoint and
-- key is claimed by the same node (rowid gives the publish order).
ALTER TABLE deliveries ADD COLUMN order_key TEXT;
CREATE INDEX deliveries_ordered ON deliveries (endpoint_id, order_key)
    WHERE status = 'pending' AND order_key IS NOT NULL;

-- Retention purges finished deliveries and then events left without any,
-- oldest first, in batches.
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE status <> 'pending';
CREATE INDEX events_by_time ON events (created_at);

-- The scan reads endpoints one by one through this index when some are
-- excluded (full lanes), instead of stepping over their due rows.
CREATE INDEX deliveries_due_by_endpoint ON deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending' AND locked_by IS NULL;

-- The highest `seq` of a tenant's events purged so far: a feed cursor below
-- it missed purged events and is answered `expired`.
ALTER TABLE tenants ADD COLUMN purged_seq INTEGER NOT NULL DEFAULT 0;
