-- What a sighting keeps of its track, sealed by the gallery: the fused template (searches by photo, the
-- grouping of unknown faces) and the best shot (a JPEG). Named sightings' are sealed under the subject's
-- key, unknown ones' under the tenant's.
ALTER TABLE sightings ADD COLUMN template_nonce BLOB;
ALTER TABLE sightings ADD COLUMN template BLOB;
ALTER TABLE sightings ADD COLUMN shot_nonce BLOB;
ALTER TABLE sightings ADD COLUMN shot BLOB;
CREATE INDEX sightings_by_cluster ON sightings (collection_id, cluster_id) WHERE cluster_id IS NOT NULL;
