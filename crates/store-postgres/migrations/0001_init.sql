-- facegate PostgreSQL store, schema version 1. Idempotent: a database made before migrations were
-- recorded by sqlx's migrator (in `facegate_schema`) is adopted as it is.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);

CREATE TABLE IF NOT EXISTS data_keys (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    ciphertext    BYTEA NOT NULL
);

CREATE TABLE IF NOT EXISTS collections (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    pack           TEXT NOT NULL,
    embedding_size INTEGER NOT NULL,
    target_fmr     DOUBLE PRECISION NOT NULL,
    revision       BIGINT NOT NULL DEFAULT 0,
    created_at_ms  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE IF NOT EXISTS subjects (
    id            TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS subjects_by_collection ON subjects (collection_id);

-- `search_vector` is the template under the tenant's secret rotation (cosines unchanged); the template
-- itself is only in `ciphertext`. HNSW indexes are per dimension, created with the first collection of it.
CREATE TABLE IF NOT EXISTS faces (
    seq             BIGSERIAL UNIQUE,
    id              TEXT PRIMARY KEY,
    subject_id      TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    collection_id   TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    nonce           BYTEA NOT NULL,
    ciphertext      BYTEA NOT NULL,
    dim             INTEGER NOT NULL,
    search_vector   vector NOT NULL,
    detection_score REAL NOT NULL,
    sharpness       REAL NOT NULL,
    face_size       REAL NOT NULL,
    created_at_ms   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_by_subject ON faces (subject_id);
CREATE INDEX IF NOT EXISTS faces_by_collection ON faces (collection_id);

CREATE TABLE IF NOT EXISTS events (
    seq           BIGSERIAL PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    at_ms         BIGINT NOT NULL,
    key_id        TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    action        TEXT NOT NULL,
    result        TEXT NOT NULL,
    subject_id    TEXT,
    score         REAL,
    face_index    INTEGER
);
CREATE INDEX IF NOT EXISTS events_by_collection_time ON events (collection_id, at_ms);
