//! Sightings of video tracks.

use facegate_store::{
    NewSighting, Sighting, SightingDecision, SightingEvidence, SightingFilter, SightingLabel, SightingStore,
    SightingWithEvidence, WireName as _,
};

use super::*;

/// The columns of a sighting and its subject's name (`sightings s LEFT JOIN subjects n`).
const SIGHTING_COLUMNS: &str = "s.seq, s.collection_id, s.camera, s.track_id, s.decision, s.subject_id, s.cluster_id, \
     s.score, s.first_seen_ms, s.last_seen_ms, s.stream_first_s, s.stream_last_s, n.name AS subject_name";

#[async_trait]
impl SightingStore for PgStore {
    async fn record_sighting(
        &self,
        tenant_id: &TenantId,
        sighting: &NewSighting,
        evidence: Option<&SightingEvidence>,
    ) -> StoreResult<i64> {
        let s = sighting;
        let shot = evidence.and_then(|e| e.best_shot.as_ref());
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, &s.collection_id).await?;
            if let Some(subject_id) = &s.subject_id {
                ensure_subject(&mut tx, tenant_id, &s.collection_id, subject_id).await?;
            }
            let seq: i64 = sqlx::query(
                "INSERT INTO sightings (collection_id, camera, track_id, decision, subject_id, cluster_id, score, \
                     first_seen_ms, last_seen_ms, stream_first_s, stream_last_s, template_nonce, template, \
                     shot_nonce, shot) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING seq",
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
            .bind(evidence.map(|e| &e.template.nonce))
            .bind(evidence.map(|e| &e.template.ciphertext))
            .bind(shot.map(|b| &b.nonce))
            .bind(shot.map(|b| &b.ciphertext))
            .fetch_one(&mut *tx)
            .await
            .map_err(map_error)?
            .try_get("seq")
            .map_err(map_error)?;
            Ok((seq, tx))
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
            let found = select(&mut tx, collection_id, filter, "").await?;
            Ok((rows(found, sighting_row)?, tx))
        })
        .await
    }

    async fn sighting_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        filter: &SightingFilter,
    ) -> StoreResult<Vec<(Sighting, EncryptedTemplate)>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let found = select(&mut tx, collection_id, filter, "AND s.template IS NOT NULL").await?;
            let read = |row: &PgRow| -> Result<_, sqlx::Error> {
                let template =
                    EncryptedTemplate { nonce: row.try_get("template_nonce")?, ciphertext: row.try_get("template")? };
                Ok((sighting_row(row)?, template))
            };
            Ok((rows(found, read)?, tx))
        })
        .await
    }

    async fn sighting(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        seq: i64,
    ) -> StoreResult<SightingWithEvidence> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!(
                "SELECT {SIGHTING_COLUMNS}, s.template_nonce, s.template, s.shot_nonce, s.shot \
                     FROM sightings s LEFT JOIN subjects n ON n.id = s.subject_id \
                     WHERE s.collection_id = $1 AND s.seq = $2"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(seq)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?
                .ok_or(StoreError::NotFound)?;
            let sealed = |nonce: &str, ciphertext: &str| -> Result<Option<EncryptedTemplate>, sqlx::Error> {
                let (nonce, ciphertext): (Option<Vec<u8>>, Option<Vec<u8>>) =
                    (row.try_get(nonce)?, row.try_get(ciphertext)?);
                Ok(nonce.zip(ciphertext).map(|(nonce, ciphertext)| EncryptedTemplate { nonce, ciphertext }))
            };
            let template = sealed("template_nonce", "template").map_err(map_error)?;
            let best_shot = sealed("shot_nonce", "shot").map_err(map_error)?;
            let found = SightingWithEvidence {
                sighting: sighting_row(&row).map_err(map_error)?,
                evidence: template.map(|template| SightingEvidence { template, best_shot }),
            };
            Ok((found, tx))
        })
        .await
    }

    async fn new_cluster_id(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        at_least: u64,
    ) -> StoreResult<u64> {
        let floor = i64::try_from(at_least).unwrap_or(i64::MAX - 1);
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE collections SET next_cluster_id = GREATEST(next_cluster_id, $3) + 1 \
                 WHERE id = $1 AND tenant_id = $2 RETURNING next_cluster_id - 1",
        )
        .bind(collection_id)
        .bind(tenant_id)
        .bind(floor)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        id.and_then(|id| u64::try_from(id).ok()).ok_or(StoreError::NotFound)
    }

    async fn relabel_sighting(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        seq: i64,
        label: &SightingLabel,
    ) -> StoreResult<()> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            if let Some(subject_id) = &label.subject_id {
                ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            }
            let shot = label.evidence.best_shot.as_ref();
            let changed = sqlx::query(
                "UPDATE sightings SET decision = $3, subject_id = $4, cluster_id = $5, template_nonce = $6, \
                     template = $7, shot_nonce = $8, shot = $9 WHERE collection_id = $1 AND seq = $2",
            )
            .bind(collection_id)
            .bind(seq)
            .bind(label.decision.as_str())
            .bind(&label.subject_id)
            .bind(label.cluster_id.map(|c| i64::try_from(c).unwrap_or(i64::MAX)))
            .bind(&label.evidence.template.nonce)
            .bind(&label.evidence.template.ciphertext)
            .bind(shot.map(|b| &b.nonce))
            .bind(shot.map(|b| &b.ciphertext))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?
            .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(((), tx))
        })
        .await
    }
}

/// A collection's sightings that pass `filter` and the extra condition `and`, with their sealed
/// templates' columns.
async fn select(
    tx: &mut Tx,
    collection_id: &CollectionId,
    filter: &SightingFilter,
    and: &str,
) -> StoreResult<Vec<PgRow>> {
    let sql = format!(
        "SELECT {SIGHTING_COLUMNS}, s.template_nonce, s.template FROM sightings s \
             LEFT JOIN subjects n ON n.id = s.subject_id \
             WHERE s.collection_id = $1 AND s.seq > $2 \
             AND ($3::TEXT IS NULL OR s.subject_id = $3) AND ($4::TEXT IS NULL OR s.camera = $4) \
             AND ($5::TEXT IS NULL OR s.decision = $5) AND s.last_seen_ms >= $6 AND s.first_seen_ms < $7 \
             AND ($8::BIGINT IS NULL OR s.cluster_id = $8) {and} \
             ORDER BY s.seq LIMIT $9"
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(collection_id)
        .bind(filter.after_seq.unwrap_or(i64::MIN))
        .bind(&filter.subject_id)
        .bind(&filter.camera)
        .bind(filter.decision.map(SightingDecision::as_str))
        .bind(filter.from_ms.unwrap_or(i64::MIN))
        .bind(filter.until_ms.unwrap_or(i64::MAX))
        .bind(filter.cluster_id.map(|c| i64::try_from(c).unwrap_or(i64::MAX)))
        .bind(i64::from(filter.limit))
        .fetch_all(&mut **tx)
        .await
        .map_err(map_error)
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
