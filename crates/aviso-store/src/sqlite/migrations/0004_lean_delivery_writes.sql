-- Aviso SQLite schema, migration 4: fewer B-tree writes per delivery.
--
-- Attempts are stored in the order of their delivery's key: one B-tree per
-- attempt instead of three (a rowid table, the unique index on `id` and the
-- index by delivery). Every read of attempts is by delivery, and an attempt
-- id already stored for its delivery is still refused, so a retried outcome
-- write is still recognised.
CREATE TABLE attempts_new (
    delivery_id           TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    id                    TEXT NOT NULL,
    at                    INTEGER NOT NULL,
    duration_ms           INTEGER NOT NULL,
    status_code           INTEGER,
    error                 TEXT,
    error_detail          TEXT,
    response_headers_json TEXT NOT NULL,
    response_snippet      TEXT,
    PRIMARY KEY (delivery_id, id)
) WITHOUT ROWID;
INSERT INTO attempts_new (delivery_id, id, at, duration_ms, status_code, error, error_detail,
                          response_headers_json, response_snippet)
    SELECT delivery_id, id, at, duration_ms, status_code, error, error_detail,
           response_headers_json, response_snippet FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;

-- Deliveries are rebuilt with their foreign keys checked at commit
-- (DEFERRABLE INITIALLY DEFERRED) and without an index on claims.
--
-- An event's deliveries are one multi-row INSERT OR FAIL. With immediate
-- foreign keys SQLite gives every such statement a statement journal (a copy
-- of each page it touches, so it could undo its own rows); deferred ones are
-- counted and checked once per transaction. The writer inserts deliveries
-- only for the event it has just stored and endpoints its exact routing cache
-- holds, so a violation at commit would be a bug, and would roll back the
-- whole batch, acknowledging nothing.
--
-- Claims (`locked_by`) are not indexed: every delivery is inserted claimed by
-- the node that sends it and unclaimed by its outcome, so the index was two
-- writes per delivery to serve one statement, the release of a previous
-- run's claims at start, which reads the table instead.
CREATE TABLE deliveries_new (
    id               TEXT PRIMARY KEY NOT NULL,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE
                         DEFERRABLE INITIALLY DEFERRED,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE
                         DEFERRABLE INITIALLY DEFERRED,
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
    updated_at       INTEGER NOT NULL,
    order_key        TEXT
);
INSERT INTO deliveries_new (rowid, id, event_id, endpoint_id, tenant_id, event_type, status,
                            attempts, round_attempts, round_started_at, next_attempt_at,
                            locked_by, last_status_code, last_error, created_at, updated_at,
                            order_key)
    SELECT rowid, id, event_id, endpoint_id, tenant_id, event_type, status,
           attempts, round_attempts, round_started_at, next_attempt_at,
           locked_by, last_status_code, last_error, created_at, updated_at,
           order_key FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status = 'pending' AND locked_by IS NULL;
CREATE INDEX deliveries_due_by_endpoint ON deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending' AND locked_by IS NULL;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_ordered ON deliveries (endpoint_id, order_key)
    WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE status <> 'pending';
