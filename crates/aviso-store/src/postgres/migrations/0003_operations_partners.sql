-- Aviso PostgreSQL schema, migration 3: partners, partner endpoints and
-- keys, recorded test sends, background tasks.

CREATE TABLE partners (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

ALTER TABLE tenants ADD COLUMN partner_id TEXT REFERENCES partners(id);
CREATE INDEX tenants_by_partner ON tenants (partner_id, id) WHERE partner_id IS NOT NULL;

-- Endpoints belong to a tenant or to a partner.
ALTER TABLE endpoints
    ALTER COLUMN tenant_id DROP NOT NULL,
    ADD COLUMN partner_id TEXT REFERENCES partners(id) ON DELETE CASCADE,
    -- Partner endpoints: every tenant of the partner, or those in endpoint_tenants.
    ADD COLUMN all_tenants BOOLEAN NOT NULL DEFAULT FALSE,
    ADD CONSTRAINT endpoints_one_owner CHECK ((tenant_id IS NULL) <> (partner_id IS NULL));
CREATE INDEX endpoints_by_partner ON endpoints (partner_id, id) WHERE partner_id IS NOT NULL;

CREATE TABLE endpoint_tenants (
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    PRIMARY KEY (endpoint_id, tenant_id)
);
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

-- Keys may now belong to a partner: replace the scope CHECKs (whatever
-- PostgreSQL named them).
DO $$
DECLARE c TEXT;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'api_keys'::regclass AND contype = 'c' LOOP
        EXECUTE format('ALTER TABLE api_keys DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE api_keys
    ADD COLUMN partner_id TEXT REFERENCES partners(id) ON DELETE CASCADE,
    ADD CONSTRAINT api_keys_scope CHECK (scope IN ('admin', 'tenant', 'partner')),
    ADD CONSTRAINT api_keys_tenant CHECK ((scope = 'tenant') = (tenant_id IS NOT NULL)),
    ADD CONSTRAINT api_keys_partner CHECK ((scope = 'partner') = (partner_id IS NOT NULL));
CREATE INDEX api_keys_by_partner ON api_keys (partner_id) WHERE partner_id IS NOT NULL;

-- No new index on events or deliveries: each would slow every publish. The
-- audit's time filters read deliveries_by_endpoint; the latest event of a
-- type walks events_by_tenant backwards.

CREATE TABLE endpoint_tests (
    id                    TEXT PRIMARY KEY,
    endpoint_id           TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    event_id              TEXT NOT NULL,
    event_type            TEXT NOT NULL,
    payload               TEXT NOT NULL,
    succeeded             BOOLEAN NOT NULL,
    at                    BIGINT NOT NULL,
    duration_ms           BIGINT NOT NULL,
    status_code           INTEGER,
    error                 TEXT,
    error_detail          TEXT,
    response_headers_json TEXT NOT NULL,
    response_snippet      TEXT
);
CREATE INDEX endpoint_tests_by_endpoint ON endpoint_tests (endpoint_id, id);

-- Bulk operations, run batch by batch by whichever node holds the task
-- (`locked_by` until `locked_until`, application clock).
-- No foreign key on endpoint_id: a task outlives its endpoint to say it failed.
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    owner_id        TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    spec_json       TEXT NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT,
    total           BIGINT,
    processed       BIGINT NOT NULL DEFAULT 0,
    queued          BIGINT NOT NULL DEFAULT 0,
    -- Where the next batch starts (an id or a seq, by kind).
    cursor          TEXT,
    -- Kinds that fix their work list up front keep it here (a JSON array of ids).
    plan_json       TEXT,
    error           TEXT,
    locked_by       TEXT,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE UNIQUE INDEX tasks_idempotency ON tasks (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_open ON tasks (created_at) WHERE status IN ('queued', 'running');
