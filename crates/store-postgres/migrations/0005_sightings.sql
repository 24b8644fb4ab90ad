-- Sightings of video tracks: who (or which unknown face) a camera saw, and when. They go with the
-- subject's erasure and the collection's deletion, and follow the collection's retention.
CREATE TABLE IF NOT EXISTS sightings (
    seq             BIGSERIAL PRIMARY KEY,
    collection_id   TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    camera          TEXT NOT NULL,
    track_id        BIGINT NOT NULL,
    decision        TEXT NOT NULL,
    subject_id      TEXT REFERENCES subjects(id) ON DELETE CASCADE,
    cluster_id      BIGINT,
    score           REAL,
    first_seen_ms   BIGINT NOT NULL,
    last_seen_ms    BIGINT NOT NULL,
    stream_first_s  DOUBLE PRECISION NOT NULL,
    stream_last_s   DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS sightings_by_collection ON sightings (collection_id, last_seen_ms);
CREATE INDEX IF NOT EXISTS sightings_by_subject ON sightings (subject_id) WHERE subject_id IS NOT NULL;
