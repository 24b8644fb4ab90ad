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

-- Retention: audit events older than a collection's retention are deleted; subjects carry a consent
-- record and are erased at its expiry, the receipt kept (it outlives the collection).
ALTER TABLE collections ADD COLUMN retention_days INTEGER;
ALTER TABLE collections ADD COLUMN liveness_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subjects ADD COLUMN consent TEXT;
ALTER TABLE subjects ADD COLUMN consent_expires_at_ms INTEGER;
CREATE INDEX subjects_by_consent_expiry ON subjects (consent_expires_at_ms) WHERE consent_expires_at_ms IS NOT NULL;
CREATE TABLE receipts (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    collection_id  TEXT NOT NULL,
    subject_id     TEXT NOT NULL,
    reason         TEXT NOT NULL,
    erased_at_ms   INTEGER NOT NULL,
    receipt        TEXT NOT NULL,
    receipt_sha256 TEXT NOT NULL
);
CREATE INDEX receipts_by_collection ON receipts (tenant_id, collection_id, seq);
