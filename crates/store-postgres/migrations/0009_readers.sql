-- Door readers (a door's OSDP output: settings, and its Secure Channel key sealed like templates) and the
-- card credentials of subjects (gone with the subject).
CREATE TABLE IF NOT EXISTS door_readers (
    door_id        TEXT PRIMARY KEY REFERENCES doors(id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    settings       TEXT NOT NULL,
    key_nonce      BYTEA NOT NULL,
    key_ciphertext BYTEA NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS subject_credentials (
    subject_id  TEXT PRIMARY KEY REFERENCES subjects(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    credentials TEXT NOT NULL
);
