-- Queued webhook events know their collection and subject, so they follow the collection's retention,
-- its deletion and the subject's erasure.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS collection_id TEXT;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS subject_id TEXT;
UPDATE outbox SET collection_id = (payload::jsonb) -> 'data' ->> 'collection_id',
                  subject_id = (payload::jsonb) -> 'data' ->> 'subject_id';
DELETE FROM outbox WHERE collection_id IS NOT NULL AND collection_id NOT IN (SELECT id FROM collections);
ALTER TABLE outbox ADD CONSTRAINT outbox_collection_fk FOREIGN KEY (collection_id) REFERENCES collections(id) ON DELETE CASCADE;
CREATE INDEX IF NOT EXISTS outbox_by_subject ON outbox (subject_id) WHERE subject_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_by_collection ON outbox (collection_id, created_at_ms);

-- A client's own request id, validated, apart from the id the server made.
ALTER TABLE events ADD COLUMN IF NOT EXISTS correlation_id TEXT;

-- The configuration audit trail of each tenant.
CREATE TABLE IF NOT EXISTS changes (
    seq            BIGSERIAL PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at_ms          BIGINT NOT NULL,
    key_id         TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    correlation_id TEXT,
    action         TEXT NOT NULL,
    object_id      TEXT NOT NULL,
    details        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_tenant ON changes (tenant_id, seq);

-- Anti-passback presence, apart from the audit trail and its retention: a row says the subject passed the
-- door and has not passed its paired door since.
CREATE TABLE IF NOT EXISTS presence (
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    door_id    TEXT NOT NULL REFERENCES doors(id) ON DELETE CASCADE,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (subject_id, door_id)
);
CREATE INDEX IF NOT EXISTS presence_by_door ON presence (door_id);
-- Presence as the trail left it: each subject's latest granted passage of an anti-passback door with no
-- later passage of its paired door.
INSERT INTO presence (subject_id, door_id, at_ms)
SELECT e.subject_id, e.door_id, MAX(e.at_ms)
FROM events e JOIN doors d ON d.id = e.door_id JOIN subjects s ON s.id = e.subject_id
WHERE e.action = 'door' AND e.result = 'granted'
  AND (d.policy::jsonb) -> 'anti_passback' ->> 'paired_door' IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM events x
      WHERE x.subject_id = e.subject_id AND x.action = 'door' AND x.result = 'granted'
        AND x.door_id = (d.policy::jsonb) -> 'anti_passback' ->> 'paired_door'
        AND x.seq > (SELECT MAX(y.seq) FROM events y WHERE y.subject_id = e.subject_id AND y.door_id = e.door_id
                     AND y.action = 'door' AND y.result = 'granted'))
GROUP BY e.subject_id, e.door_id
ON CONFLICT DO NOTHING;

-- Each subject's own data key, sealed under the tenant's: the subject's templates, kept frames and ignore
-- list are sealed under it, so erasing the subject (which deletes the key) leaves nothing that opens them.
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id TEXT PRIMARY KEY REFERENCES subjects(id) ON DELETE CASCADE,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);
