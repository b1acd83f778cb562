-- Aviso SQLite schema, migration 3: partners, partner endpoints and keys,
-- recorded test sends, background tasks. Run with foreign keys off (see
-- schema.rs), so tables other tables refer to can be rebuilt in place.

CREATE TABLE partners (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

ALTER TABLE tenants ADD COLUMN partner_id TEXT REFERENCES partners(id);
CREATE INDEX tenants_by_partner ON tenants (partner_id, id) WHERE partner_id IS NOT NULL;

-- Endpoints belong to a tenant or to a partner: tenant_id becomes nullable,
-- which SQLite can only do by rebuilding the table.
CREATE TABLE endpoints_new (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    partner_id          TEXT REFERENCES partners(id) ON DELETE CASCADE,
    -- Partner endpoints: every tenant of the partner, or those in endpoint_tenants.
    all_tenants         INTEGER NOT NULL DEFAULT 0,
    spec_json           TEXT NOT NULL,
    enabled             INTEGER NOT NULL,
    current_secret      TEXT NOT NULL,
    previous_secret     TEXT,
    previous_expires_at INTEGER,
    disabled_reason     TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CHECK ((tenant_id IS NULL) <> (partner_id IS NULL))
);
INSERT INTO endpoints_new (id, tenant_id, spec_json, enabled, current_secret, previous_secret,
                           previous_expires_at, disabled_reason, created_at, updated_at)
    SELECT id, tenant_id, spec_json, enabled, current_secret, previous_secret,
           previous_expires_at, disabled_reason, created_at, updated_at FROM endpoints;
DROP TABLE endpoints;
ALTER TABLE endpoints_new RENAME TO endpoints;
CREATE INDEX endpoints_by_tenant ON endpoints (tenant_id, id);
CREATE INDEX endpoints_by_partner ON endpoints (partner_id, id) WHERE partner_id IS NOT NULL;

CREATE TABLE endpoint_tenants (
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    PRIMARY KEY (endpoint_id, tenant_id)
) WITHOUT ROWID;
CREATE INDEX endpoint_tenants_by_tenant ON endpoint_tenants (tenant_id);

-- Which tenants' events each endpoint receives. A partner endpoint covers a
-- tenant only while the tenant is still the partner's.
CREATE VIEW endpoint_coverage AS
    SELECT id AS endpoint_id, tenant_id FROM endpoints WHERE tenant_id IS NOT NULL
    UNION ALL
    SELECT p.id AS endpoint_id, t.id AS tenant_id
    FROM endpoints p JOIN tenants t ON t.partner_id = p.partner_id
    WHERE p.partner_id IS NOT NULL
      AND (p.all_tenants OR EXISTS (SELECT 1 FROM endpoint_tenants x
                                    WHERE x.endpoint_id = p.id AND x.tenant_id = t.id));

-- Keys may now belong to a partner; the CHECKs change, so rebuild.
CREATE TABLE api_keys_new (
    id         TEXT PRIMARY KEY NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    scope      TEXT NOT NULL CHECK (scope IN ('admin', 'tenant', 'partner')),
    tenant_id  TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    partner_id TEXT REFERENCES partners(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK ((scope = 'tenant') = (tenant_id IS NOT NULL)),
    CHECK ((scope = 'partner') = (partner_id IS NOT NULL))
);
INSERT INTO api_keys_new (id, hash, scope, tenant_id, name, created_at)
    SELECT id, hash, scope, tenant_id, name, created_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);
CREATE INDEX api_keys_by_partner ON api_keys (partner_id) WHERE partner_id IS NOT NULL;

-- No new index on events or deliveries: each would slow every publish. The
-- audit's time filters read deliveries_by_endpoint; the latest event of a
-- type walks events_by_tenant backwards.

CREATE TABLE endpoint_tests (
    id                    TEXT PRIMARY KEY NOT NULL,
    endpoint_id           TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    event_id              TEXT NOT NULL,
    event_type            TEXT NOT NULL,
    payload               TEXT NOT NULL,
    succeeded             INTEGER NOT NULL,
    at                    INTEGER NOT NULL,
    duration_ms           INTEGER NOT NULL,
    status_code           INTEGER,
    error                 TEXT,
    error_detail          TEXT,
    response_headers_json TEXT NOT NULL,
    response_snippet      TEXT
);
CREATE INDEX endpoint_tests_by_endpoint ON endpoint_tests (endpoint_id, id);

-- Bulk operations, run batch by batch by whichever node holds the task.
-- No foreign key on endpoint_id: a task outlives its endpoint to say it failed.
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY NOT NULL,
    owner_id        TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    spec_json       TEXT NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT,
    total           INTEGER,
    processed       INTEGER NOT NULL DEFAULT 0,
    queued          INTEGER NOT NULL DEFAULT 0,
    -- Where the next batch starts (an id or a seq, by kind).
    cursor          TEXT,
    -- Kinds that fix their work list up front keep it here (a JSON array of ids).
    plan_json       TEXT,
    error           TEXT,
    locked_by       TEXT,
    locked_until    INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
CREATE UNIQUE INDEX tasks_idempotency ON tasks (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_open ON tasks (created_at) WHERE status IN ('queued', 'running');
