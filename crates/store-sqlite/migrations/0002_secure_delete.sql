-- facegate embedded store, schema version 2: from this version on every connection sets
-- `PRAGMA secure_delete = ON` and every erasure truncates the write-ahead log, so erased templates are
-- overwritten in the file. Opening a version-1 file upgrades it and vacuums it once, which rewrites
-- the free space that deletions made before this version may have left readable.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('erasure', 'secure_delete + wal_checkpoint(TRUNCATE)');
