-- What a sighting keeps of its track, sealed by the gallery: the fused template (searches by photo, the
-- grouping of unknown faces) and the best shot (a JPEG). Named sightings' are sealed under the subject's
-- key, unknown ones' under the tenant's.
ALTER TABLE sightings ADD COLUMN IF NOT EXISTS template_nonce BYTEA;
ALTER TABLE sightings ADD COLUMN IF NOT EXISTS template BYTEA;
ALTER TABLE sightings ADD COLUMN IF NOT EXISTS shot_nonce BYTEA;
ALTER TABLE sightings ADD COLUMN IF NOT EXISTS shot BYTEA;
CREATE INDEX IF NOT EXISTS sightings_by_cluster ON sightings (collection_id, cluster_id) WHERE cluster_id IS NOT NULL;
