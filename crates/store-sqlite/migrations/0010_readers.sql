-- Door readers (a door's OSDP output: settings, and its Secure Channel key sealed like templates) and the
-- card credentials of subjects (gone with the subject).
CREATE TABLE door_readers (
    door_id        TEXT PRIMARY KEY REFERENCES doors(id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    settings       TEXT NOT NULL,
    key_nonce      BLOB NOT NULL,
    key_ciphertext BLOB NOT NULL,
    updated_at_ms  INTEGER NOT NULL
);
CREATE TABLE subject_credentials (
    subject_id  TEXT PRIMARY KEY REFERENCES subjects(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    credentials TEXT NOT NULL
);
