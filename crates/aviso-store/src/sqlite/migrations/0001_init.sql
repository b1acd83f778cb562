-- Aviso SQLite schema, version 1. Timestamps are Unix milliseconds; ids are text.

CREATE TABLE event_types (
    name         TEXT PRIMARY KEY NOT NULL,
    description  TEXT NOT NULL,
    grp          TEXT,
    schema_json  TEXT,
    example_json TEXT,
    archived     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY NOT NULL,
    uid           TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    spec_json           TEXT NOT NULL,
    -- Denormalised from spec_json so queries can skip disabled endpoints.
    enabled             INTEGER NOT NULL,
    current_secret      TEXT NOT NULL,
    previous_secret     TEXT,
    previous_expires_at INTEGER,
    disabled_reason     TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX endpoints_by_tenant ON endpoints (tenant_id, id);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    scope      TEXT NOT NULL CHECK (scope IN ('admin', 'tenant')),
    tenant_id  TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK ((scope = 'admin') = (tenant_id IS NULL))
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

-- AUTOINCREMENT so a seq is never reused, even after the newest event is
-- deleted: `seq` is the polling feed's cursor.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant_id, seq);
CREATE UNIQUE INDEX events_idempotency ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY NOT NULL,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    round_attempts   INTEGER NOT NULL DEFAULT 0,
    round_started_at INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    locked_by        TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- The scan of due work reads only this small partial index.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status = 'pending' AND locked_by IS NULL;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_claimed ON deliveries (locked_by) WHERE locked_by IS NOT NULL;

CREATE TABLE attempts (
    id                    TEXT PRIMARY KEY NOT NULL,
    delivery_id           TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    at                    INTEGER NOT NULL,
    duration_ms           INTEGER NOT NULL,
    status_code           INTEGER,
    error                 TEXT,
    error_detail          TEXT,
    response_headers_json TEXT NOT NULL,
    response_snippet      TEXT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id);
