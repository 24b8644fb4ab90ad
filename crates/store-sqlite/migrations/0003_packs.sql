-- Templates carry their pack and version; collections may keep each face's sealed frame; migrations.
ALTER TABLE collections ADD COLUMN keep_crops INTEGER NOT NULL DEFAULT 0;
ALTER TABLE faces ADD COLUMN pack TEXT NOT NULL DEFAULT '';
ALTER TABLE faces ADD COLUMN pack_version TEXT NOT NULL DEFAULT '';
UPDATE faces SET pack = (SELECT c.pack FROM collections c WHERE c.id = faces.collection_id);

-- A face's kept frame (sealed like templates), erased with the face.
CREATE TABLE face_crops (
    face_id    TEXT PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);

-- Templates of a face under packs other than the one it is searched by (a migration's target, the
-- pack it moved from), erased with the face.
CREATE TABLE face_templates (
    face_id       TEXT NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    pack          TEXT NOT NULL,
    pack_version  TEXT NOT NULL,
    nonce         BLOB NOT NULL,
    ciphertext    BLOB NOT NULL,
    PRIMARY KEY (face_id, pack, pack_version)
);
CREATE INDEX face_templates_by_collection ON face_templates (collection_id, pack, pack_version);

-- The latest migration of each collection.
CREATE TABLE migrations (
    collection_id  TEXT PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
    from_pack      TEXT NOT NULL,
    target_pack    TEXT NOT NULL,
    target_version TEXT NOT NULL,
    target_dim     INTEGER NOT NULL,
    state          TEXT NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER
);

-- The pack once named `default` (YuNet + MobileFaceNet-128) is `mobilefacenet`; `default` is no longer
-- a pack name (the default pack is `omz-0095`).
UPDATE collections SET pack = 'mobilefacenet' WHERE pack = 'default';
UPDATE faces SET pack = 'mobilefacenet' WHERE pack = 'default';
UPDATE migrations SET from_pack = 'mobilefacenet' WHERE from_pack = 'default';
