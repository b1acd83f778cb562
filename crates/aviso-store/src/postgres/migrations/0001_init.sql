-- Aviso PostgreSQL schema, version 1. Same shape as the SQLite schema:
-- timestamps are Unix milliseconds (BIGINT) set by the application, ids are
-- text, JSON is kept as text so payloads stay byte for byte as published.

CREATE TABLE event_types (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    grp          TEXT,
    schema_json  TEXT,
    example_json TEXT,
    archived     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    uid           TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE endpoints (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    spec_json           TEXT NOT NULL,
    -- Denormalised from spec_json so queries can skip disabled endpoints.
    enabled             BOOLEAN NOT NULL,
    current_secret      TEXT NOT NULL,
    previous_secret     TEXT,
    previous_expires_at BIGINT,
    disabled_reason     TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX endpoints_by_tenant ON endpoints (tenant_id, id);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    scope      TEXT NOT NULL CHECK (scope IN ('admin', 'tenant')),
    tenant_id  TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK ((scope = 'admin') = (tenant_id IS NULL))
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

-- `seq` is the polling feed's cursor. Publishes of one tenant hold a
-- transaction-scoped advisory lock on that tenant from before `seq` is drawn
-- until commit, so within a tenant `seq` order is commit order on every node.
CREATE TABLE events (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant_id, seq);
CREATE UNIQUE INDEX events_idempotency ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Retention deletes old events in batches by time.
CREATE INDEX events_by_time ON events (created_at);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    round_attempts   INTEGER NOT NULL DEFAULT 0,
    round_started_at BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    -- The node holding the claim; the claim lives as long as that node's
    -- lease in `nodes` (see below).
    locked_by        TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    -- Insertion order within an event (SQLite's rowid).
    ord              BIGINT GENERATED ALWAYS AS IDENTITY
);
-- The claim query reads only this small partial index.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status = 'pending' AND locked_by IS NULL;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX deliveries_by_event ON deliveries (event_id, ord);
CREATE INDEX deliveries_claimed ON deliveries (locked_by, endpoint_id) WHERE locked_by IS NOT NULL;

CREATE TABLE attempts (
    id                    TEXT PRIMARY KEY,
    delivery_id           TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    at                    BIGINT NOT NULL,
    duration_ms           BIGINT NOT NULL,
    status_code           INTEGER,
    error                 TEXT,
    error_detail          TEXT,
    response_headers_json TEXT NOT NULL,
    response_snippet      TEXT,
    ord                   BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, at, ord);
-- Retention deletes old attempts in batches by time.
CREATE INDEX attempts_by_time ON attempts (at);

-- One row per running node: its claims are valid while `lease_until` is in
-- the future (database clock). Nodes renew their lease periodically; claims
-- of a node whose lease ran out are released by whichever node sweeps first.
-- One row per node instead of a per-row expiry keeps renewal to one update.
CREATE TABLE nodes (
    node        TEXT PRIMARY KEY,
    lease_until TIMESTAMPTZ NOT NULL
);

-- Exclusive endpoints: while its node is alive, one node alone sends to an
-- endpoint, so the endpoint's in-flight limit, rate limit and FIFO order,
-- enforced in that node's memory, hold across all nodes. Ownership passes
-- on when the owner's lease runs out, when it leaves, or when it has held
-- no claim on the endpoint for a while.
CREATE TABLE endpoint_owners (
    endpoint_id TEXT PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
    node        TEXT NOT NULL
);
CREATE INDEX endpoint_owners_by_node ON endpoint_owners (node);
