-- Doors (access points), subject groups, and door decisions in the audit trail.
ALTER TABLE subjects ADD COLUMN IF NOT EXISTS groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE events ADD COLUMN IF NOT EXISTS door_id TEXT;
ALTER TABLE events ADD COLUMN IF NOT EXISTS reason TEXT;
ALTER TABLE events ADD COLUMN IF NOT EXISTS liveness REAL;
CREATE INDEX IF NOT EXISTS events_passages ON events (collection_id, action, result, at_ms);
CREATE INDEX IF NOT EXISTS events_by_subject ON events (collection_id, subject_id, seq);

CREATE TABLE IF NOT EXISTS doors (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    policy        TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Ignore lists: strangers' templates kept as negatives of the subject they were taken for (sealed like
-- templates), erased with the subject.
CREATE TABLE IF NOT EXISTS negatives (
    id            TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    subject_id    TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    pack          TEXT NOT NULL,
    pack_version  TEXT NOT NULL,
    nonce         BYTEA NOT NULL,
    ciphertext    BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS negatives_by_subject ON negatives (subject_id, created_at_ms);

-- Webhooks (their signing secret sealed like templates) and the transactional outbox: one row per event
-- and subscribed webhook, written in the transaction of the change, kept as the delivery log.
CREATE TABLE IF NOT EXISTS webhooks (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url               TEXT NOT NULL,
    event_types       TEXT NOT NULL,
    secret_nonce      BYTEA NOT NULL,
    secret_ciphertext BYTEA NOT NULL,
    created_at_ms     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_by_tenant ON webhooks (tenant_id);

CREATE TABLE IF NOT EXISTS outbox (
    seq                BIGSERIAL PRIMARY KEY,
    message_id         TEXT NOT NULL UNIQUE,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    webhook_id         TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type         TEXT NOT NULL,
    payload            TEXT NOT NULL,
    created_at_ms      BIGINT NOT NULL,
    state              TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT,
    last_status        INTEGER,
    last_error         TEXT,
    delivered_at_ms    BIGINT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at_ms);
CREATE INDEX IF NOT EXISTS outbox_by_webhook ON outbox (webhook_id, seq);

-- Retention: audit events older than a collection's retention are deleted; subjects carry a consent
-- record and are erased at its expiry, the receipt kept (it outlives the collection).
ALTER TABLE collections ADD COLUMN IF NOT EXISTS retention_days INTEGER;
ALTER TABLE collections ADD COLUMN IF NOT EXISTS liveness_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE subjects ADD COLUMN IF NOT EXISTS consent TEXT;
ALTER TABLE subjects ADD COLUMN IF NOT EXISTS consent_expires_at_ms BIGINT;
CREATE INDEX IF NOT EXISTS subjects_by_consent_expiry ON subjects (consent_expires_at_ms) WHERE consent_expires_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS receipts (
    seq            BIGSERIAL PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    collection_id  TEXT NOT NULL,
    subject_id     TEXT NOT NULL,
    reason         TEXT NOT NULL,
    erased_at_ms   BIGINT NOT NULL,
    receipt        TEXT NOT NULL,
    receipt_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_by_collection ON receipts (tenant_id, collection_id, seq);
