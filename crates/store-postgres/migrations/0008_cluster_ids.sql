-- The next id of a group of unknown faces, per collection: handed out by the store, so two servers
-- sharing it never give two groups the same id.
ALTER TABLE collections ADD COLUMN IF NOT EXISTS next_cluster_id BIGINT NOT NULL DEFAULT 1;
