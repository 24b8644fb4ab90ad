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
impl SightingStore for SqliteStore {
    async fn record_sighting(
        &self,
        tenant_id: &TenantId,
        sighting: &NewSighting,
        evidence: Option<&SightingEvidence>,
    ) -> StoreResult<i64> {
        let (t, s, e) = (tenant_id.clone(), sighting.clone(), evidence.cloned());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &s.collection_id)?;
            if let Some(subject_id) = &s.subject_id {
                ensure_subject(tx, &t, &s.collection_id, subject_id)?;
            }
            tx.execute(
                "INSERT INTO sightings (collection_id, camera, track_id, decision, subject_id, cluster_id, score, \
                     first_seen_ms, last_seen_ms, stream_first_s, stream_last_s, template_nonce, template, \
                     shot_nonce, shot) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
                    s.stream_last_s,
                    e.as_ref().map(|e| &e.template.nonce),
                    e.as_ref().map(|e| &e.template.ciphertext),
                    e.as_ref().and_then(|e| e.best_shot.as_ref()).map(|b| &b.nonce),
                    e.as_ref().and_then(|e| e.best_shot.as_ref()).map(|b| &b.ciphertext),
                ],
            )
            .map_err(map_error)?;
            Ok(tx.last_insert_rowid())
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
            select(tx, &c, &f, "", sighting_row)
        })
        .await
    }

    async fn sighting_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        filter: &SightingFilter,
    ) -> StoreResult<Vec<(Sighting, EncryptedTemplate)>> {
        let (t, c, f) = (tenant_id.clone(), collection_id.clone(), filter.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            select(tx, &c, &f, "AND s.template IS NOT NULL", |row| {
                Ok((sighting_row(row)?, EncryptedTemplate { nonce: row.get(13)?, ciphertext: row.get(14)? }))
            })
        })
        .await
    }

    async fn sighting(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        seq: i64,
    ) -> StoreResult<SightingWithEvidence> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let sql = format!(
                "SELECT {SIGHTING_COLUMNS}, s.template_nonce, s.template, s.shot_nonce, s.shot \
                     FROM sightings s LEFT JOIN subjects n ON n.id = s.subject_id \
                     WHERE s.collection_id = ?1 AND s.seq = ?2"
            );
            tx.query_row(&sql, params![c, seq], |row| {
                let sealed = |nonce: usize| -> rusqlite::Result<Option<EncryptedTemplate>> {
                    let (nonce, ciphertext): (Option<Vec<u8>>, Option<Vec<u8>>) =
                        (row.get(nonce)?, row.get(nonce + 1)?);
                    Ok(nonce.zip(ciphertext).map(|(nonce, ciphertext)| EncryptedTemplate { nonce, ciphertext }))
                };
                let evidence =
                    sealed(13)?.map(|template| Ok::<_, rusqlite::Error>((template, sealed(15)?))).transpose()?;
                Ok(SightingWithEvidence {
                    sighting: sighting_row(row)?,
                    evidence: evidence.map(|(template, best_shot)| SightingEvidence { template, best_shot }),
                })
            })
            .optional()
            .map_err(map_error)?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn new_cluster_id(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        at_least: u64,
    ) -> StoreResult<u64> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        let floor = i64::try_from(at_least).unwrap_or(i64::MAX - 1);
        self.transaction(move |tx| {
            let id: Option<i64> = tx
                .query_row(
                    "UPDATE collections SET next_cluster_id = max(next_cluster_id, ?3) + 1 \
                         WHERE id = ?1 AND tenant_id = ?2 RETURNING next_cluster_id - 1",
                    params![c, t, floor],
                    |row| row.get(0),
                )
                .optional()
                .map_err(map_error)?;
            id.and_then(|id| u64::try_from(id).ok()).ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn relabel_sighting(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        seq: i64,
        label: &SightingLabel,
    ) -> StoreResult<()> {
        let (t, c, l) = (tenant_id.clone(), collection_id.clone(), label.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            if let Some(subject_id) = &l.subject_id {
                ensure_subject(tx, &t, &c, subject_id)?;
            }
            let shot = l.evidence.best_shot.as_ref();
            let changed = tx
                .execute(
                    "UPDATE sightings SET decision = ?3, subject_id = ?4, cluster_id = ?5, template_nonce = ?6, \
                         template = ?7, shot_nonce = ?8, shot = ?9 WHERE collection_id = ?1 AND seq = ?2",
                    params![
                        c,
                        seq,
                        l.decision.as_str(),
                        l.subject_id,
                        l.cluster_id.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
                        l.evidence.template.nonce,
                        l.evidence.template.ciphertext,
                        shot.map(|b| &b.nonce),
                        shot.map(|b| &b.ciphertext),
                    ],
                )
                .map_err(map_error)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}

/// A collection's sightings that pass `filter` and the extra condition `and`, read by `read`; the
/// sealed template's columns follow the sighting's (13, 14).
fn select<T>(
    tx: &Transaction<'_>,
    collection_id: &CollectionId,
    f: &SightingFilter,
    and: &str,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let sql = format!(
        "SELECT {SIGHTING_COLUMNS}, s.template_nonce, s.template FROM sightings s \
             LEFT JOIN subjects n ON n.id = s.subject_id \
             WHERE s.collection_id = ?1 AND s.seq > ?2 \
             AND (?3 IS NULL OR s.subject_id = ?3) AND (?4 IS NULL OR s.camera = ?4) \
             AND (?5 IS NULL OR s.decision = ?5) AND s.last_seen_ms >= ?6 AND s.first_seen_ms < ?7 \
             AND (?8 IS NULL OR s.cluster_id = ?8) {and} \
             ORDER BY s.seq LIMIT ?9"
    );
    let mut statement = tx.prepare(&sql).map_err(map_error)?;
    let rows = statement
        .query_map(
            params![
                collection_id,
                f.after_seq.unwrap_or(i64::MIN),
                f.subject_id,
                f.camera,
                f.decision.map(SightingDecision::as_str),
                f.from_ms.unwrap_or(i64::MIN),
                f.until_ms.unwrap_or(i64::MAX),
                f.cluster_id.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
                f.limit
            ],
            read,
        )
        .map_err(map_error)?;
    collect(rows)
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
