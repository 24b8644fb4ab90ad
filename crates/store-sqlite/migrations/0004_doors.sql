-- Doors (access points), subject groups, and door decisions in the audit trail.
ALTER TABLE subjects ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE events ADD COLUMN door_id TEXT;
ALTER TABLE events ADD COLUMN reason TEXT;
ALTER TABLE events ADD COLUMN liveness REAL;
CREATE INDEX events_passages ON events (collection_id, action, result, at_ms);
CREATE INDEX events_by_subject ON events (collection_id, subject_id, seq);

CREATE TABLE doors (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    policy        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Ignore lists: strangers' templates kept as negatives of the subject they were taken for (sealed like
-- templates), erased with the subject.
CREATE TABLE negatives (
    id            TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    subject_id    TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    pack          TEXT NOT NULL,
    pack_version  TEXT NOT NULL,
    nonce         BLOB NOT NULL,
    ciphertext    BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX negatives_by_subject ON negatives (subject_id, created_at_ms);

-- Webhooks (their signing secret sealed like templates) and the transactional outbox: one row per event
-- and subscribed webhook, written in the transaction of the change, kept as the delivery log.
CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url               TEXT NOT NULL,
    event_types       TEXT NOT NULL,
    secret_nonce      BLOB NOT NULL,
    secret_ciphertext BLOB NOT NULL,
    created_at_ms     INTEGER NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id);

CREATE TABLE outbox (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id         TEXT NOT NULL UNIQUE,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    webhook_id         TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type         TEXT NOT NULL,
    payload            TEXT NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    state              TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER,
    last_status        INTEGER,
    last_error         TEXT,
    delivered_at_ms    INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at_ms);
CREATE INDEX outbox_by_webhook ON outbox (webhook_id, seq);
