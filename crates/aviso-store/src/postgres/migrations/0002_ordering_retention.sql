-- FIFO ordering survives restarts and holds across nodes: a delivery of an
-- ordered endpoint carries its ordering key (NULL when the endpoint is
-- unordered), and a delivery is only claimed once every older pending
-- delivery with the same endpoint and key is claimed by the same node
-- (`ord`, from one identity sequence, gives the publish order).
ALTER TABLE deliveries ADD COLUMN order_key TEXT;
CREATE INDEX deliveries_ordered ON deliveries (endpoint_id, order_key, ord)
    WHERE status = 'pending' AND order_key IS NOT NULL;

-- Retention purges finished deliveries and then events left without any,
-- oldest first, in batches (events_by_time exists since version 1).
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE status <> 'pending';

-- The highest `seq` of a tenant's events purged so far: a feed cursor below
-- it missed purged events and is answered `expired`.
ALTER TABLE tenants ADD COLUMN purged_seq BIGINT NOT NULL DEFAULT 0;
