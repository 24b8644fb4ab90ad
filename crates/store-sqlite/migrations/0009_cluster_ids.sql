-- The next id of a group of unknown faces, per collection: handed out by the store, so two processes
-- sharing a store never give two groups the same id.
ALTER TABLE collections ADD COLUMN next_cluster_id INTEGER NOT NULL DEFAULT 1;
