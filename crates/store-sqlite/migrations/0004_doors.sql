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
