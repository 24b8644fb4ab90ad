//! Sightings of video tracks.

use facegate_store::{NewSighting, Sighting, SightingDecision, SightingFilter, SightingStore, WireName as _};

use super::*;

/// The columns of a sighting and its subject's name (`sightings s LEFT JOIN subjects n`).
const SIGHTING_COLUMNS: &str = "s.seq, s.collection_id, s.camera, s.track_id, s.decision, s.subject_id, s.cluster_id, \
     s.score, s.first_seen_ms, s.last_seen_ms, s.stream_first_s, s.stream_last_s, n.name AS subject_name";

#[async_trait]
impl SightingStore for SqliteStore {
    async fn record_sighting(&self, tenant_id: &TenantId, sighting: &NewSighting) -> StoreResult<()> {
        let (t, s) = (tenant_id.clone(), sighting.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &s.collection_id)?;
            if let Some(subject_id) = &s.subject_id {
                ensure_subject(tx, &t, &s.collection_id, subject_id)?;
            }
            tx.execute(
                "INSERT INTO sightings (collection_id, camera, track_id, decision, subject_id, cluster_id, score, \
                     first_seen_ms, last_seen_ms, stream_first_s, stream_last_s) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    s.collection_id,
                    s.camera,
                    i64::try_from(s.track_id).unwrap_or(i64::MAX),
                    s.decision.as_str(),
                    s.subject_id,
                    s.cluster_id.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
                    s.score,
                    s.first_seen_ms,
                    s.last_seen_ms,
                    s.stream_first_s,
                    s.stream_last_s
                ],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    async fn sightings(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        filter: &SightingFilter,
    ) -> StoreResult<Vec<Sighting>> {
        let (t, c, f) = (tenant_id.clone(), collection_id.clone(), filter.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let sql = format!(
                "SELECT {SIGHTING_COLUMNS} FROM sightings s LEFT JOIN subjects n ON n.id = s.subject_id \
                     WHERE s.collection_id = ?1 AND s.seq > ?2 \
                     AND (?3 IS NULL OR s.subject_id = ?3) AND (?4 IS NULL OR s.camera = ?4) \
                     AND (?5 IS NULL OR s.decision = ?5) AND s.last_seen_ms >= ?6 AND s.first_seen_ms < ?7 \
                     ORDER BY s.seq LIMIT ?8"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            let rows = statement
                .query_map(
                    params![
                        c,
                        f.after_seq.unwrap_or(i64::MIN),
                        f.subject_id,
                        f.camera,
                        f.decision.map(SightingDecision::as_str),
                        f.from_ms.unwrap_or(i64::MIN),
                        f.until_ms.unwrap_or(i64::MAX),
                        f.limit
                    ],
                    sighting_row,
                )
                .map_err(map_error)?;
            collect(rows)
        })
        .await
    }
}

fn sighting_row(row: &Row<'_>) -> rusqlite::Result<Sighting> {
    let decision: String = row.get(4)?;
    let unsigned = |value: i64| u64::try_from(value).unwrap_or_default();
    Ok(Sighting {
        seq: row.get(0)?,
        sighting: NewSighting {
            collection_id: row.get(1)?,
            camera: row.get(2)?,
            track_id: unsigned(row.get(3)?),
            decision: SightingDecision::parse(&decision).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, decision.clone().into())
            })?,
            subject_id: row.get(5)?,
            cluster_id: row.get::<_, Option<i64>>(6)?.map(unsigned),
            score: row.get(7)?,
            first_seen_ms: row.get(8)?,
            last_seen_ms: row.get(9)?,
            stream_first_s: row.get(10)?,
            stream_last_s: row.get(11)?,
        },
        subject_name: row.get(12)?,
    })
}
