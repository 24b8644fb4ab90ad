//! Sightings of video tracks.

use facegate_store::{NewSighting, Sighting, SightingDecision, SightingFilter, SightingStore, WireName as _};

use super::*;

/// The columns of a sighting and its subject's name (`sightings s LEFT JOIN subjects n`).
const SIGHTING_COLUMNS: &str = "s.seq, s.collection_id, s.camera, s.track_id, s.decision, s.subject_id, s.cluster_id, \
     s.score, s.first_seen_ms, s.last_seen_ms, s.stream_first_s, s.stream_last_s, n.name AS subject_name";

#[async_trait]
impl SightingStore for PgStore {
    async fn record_sighting(&self, tenant_id: &TenantId, sighting: &NewSighting) -> StoreResult<()> {
        let s = sighting;
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, &s.collection_id).await?;
            if let Some(subject_id) = &s.subject_id {
                ensure_subject(&mut tx, tenant_id, &s.collection_id, subject_id).await?;
            }
            sqlx::query(
                "INSERT INTO sightings (collection_id, camera, track_id, decision, subject_id, cluster_id, score, \
                     first_seen_ms, last_seen_ms, stream_first_s, stream_last_s) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&s.collection_id)
            .bind(&s.camera)
            .bind(i64::try_from(s.track_id).unwrap_or(i64::MAX))
            .bind(s.decision.as_str())
            .bind(&s.subject_id)
            .bind(s.cluster_id.map(|c| i64::try_from(c).unwrap_or(i64::MAX)))
            .bind(s.score)
            .bind(s.first_seen_ms)
            .bind(s.last_seen_ms)
            .bind(s.stream_first_s)
            .bind(s.stream_last_s)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            Ok(((), tx))
        })
        .await
    }

    async fn sightings(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        filter: &SightingFilter,
    ) -> StoreResult<Vec<Sighting>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!(
                "SELECT {SIGHTING_COLUMNS} FROM sightings s LEFT JOIN subjects n ON n.id = s.subject_id \
                     WHERE s.collection_id = $1 AND s.seq > $2 \
                     AND ($3::TEXT IS NULL OR s.subject_id = $3) AND ($4::TEXT IS NULL OR s.camera = $4) \
                     AND ($5::TEXT IS NULL OR s.decision = $5) AND s.last_seen_ms >= $6 AND s.first_seen_ms < $7 \
                     ORDER BY s.seq LIMIT $8"
            );
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(filter.after_seq.unwrap_or(i64::MIN))
                .bind(&filter.subject_id)
                .bind(&filter.camera)
                .bind(filter.decision.map(SightingDecision::as_str))
                .bind(filter.from_ms.unwrap_or(i64::MIN))
                .bind(filter.until_ms.unwrap_or(i64::MAX))
                .bind(i64::from(filter.limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok((rows(found, sighting_row)?, tx))
        })
        .await
    }
}

fn sighting_row(row: &PgRow) -> Result<Sighting, sqlx::Error> {
    let decision: String = row.try_get("decision")?;
    let unsigned = |value: i64| u64::try_from(value).unwrap_or_default();
    Ok(Sighting {
        seq: row.try_get("seq")?,
        sighting: NewSighting {
            collection_id: row.try_get("collection_id")?,
            camera: row.try_get("camera")?,
            track_id: unsigned(row.try_get("track_id")?),
            decision: SightingDecision::parse(&decision)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown sighting decision {decision}").into()))?,
            subject_id: row.try_get("subject_id")?,
            cluster_id: row.try_get::<Option<i64>, _>("cluster_id")?.map(unsigned),
            score: row.try_get("score")?,
            first_seen_ms: row.try_get("first_seen_ms")?,
            last_seen_ms: row.try_get("last_seen_ms")?,
            stream_first_s: row.try_get("stream_first_s")?,
            stream_last_s: row.try_get("stream_last_s")?,
        },
        subject_name: row.try_get("subject_name")?,
    })
}
