-- Cameras a server watches. The source URL is sealed by the gallery (it may carry credentials); only
-- its form without them is kept readable. A collection's cameras go with it.
CREATE TABLE cameras (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    collection_id   TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    source          TEXT NOT NULL,
    url_nonce       BLOB NOT NULL,
    url_ciphertext  BLOB NOT NULL,
    settings        TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
