//! Rows onto records: the columns each query selects and how a row becomes a record.

use super::*;
use facegate_store::WireName;

pub(crate) const COLLECTION_COLUMNS: &str = "c.id, c.tenant_id, c.name, c.pack, c.embedding_size, c.target_fmr, c.created_at_ms, c.keep_crops, \
     (SELECT COUNT(*) FROM subjects s WHERE s.collection_id = c.id), \
     (SELECT COUNT(*) FROM faces f WHERE f.collection_id = c.id), c.retention_days, c.liveness_required";

pub(crate) fn collection_row(row: &Row<'_>) -> rusqlite::Result<Collection> {
    Ok(Collection {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        name: row.get(2)?,
        pack: row.get(3)?,
        embedding_size: row.get(4)?,
        target_fmr: row.get(5)?,
        created_at_ms: row.get(6)?,
        keep_crops: row.get(7)?,
        subject_count: count(row, 8)?,
        face_count: count(row, 9)?,
        retention_days: row.get(10)?,
        liveness_required: row.get(11)?,
    })
}

pub(crate) const SUBJECT_COLUMNS: &str = "s.id, s.collection_id, s.name, s.metadata, s.created_at_ms, (SELECT COUNT(*) FROM faces f WHERE f.subject_id = s.id), s.groups, s.consent";

pub(crate) fn subject_row(row: &Row<'_>) -> rusqlite::Result<Subject> {
    let metadata: String = row.get(3)?;
    Ok(Subject {
        id: row.get(0)?,
        collection_id: row.get(1)?,
        name: row.get(2)?,
        metadata: serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null),
        created_at_ms: row.get(4)?,
        face_count: count(row, 5)?,
        groups: json_column(row, 6)?,
        consent: row.get::<_, Option<String>>(7)?.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

pub(crate) fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    row.get::<_, i64>(index).map(|n| u64::try_from(n).unwrap_or(0))
}

pub(crate) fn face_row(row: &Row<'_>) -> rusqlite::Result<FaceRecord> {
    Ok(FaceRecord {
        id: row.get(0)?,
        subject_id: row.get(1)?,
        detection_score: row.get(2)?,
        sharpness: row.get(3)?,
        face_size: row.get(4)?,
        created_at_ms: row.get(5)?,
        pack: PackVersion { pack: row.get(6)?, version: row.get(7)? },
        crop_kept: row.get(8)?,
    })
}

pub(crate) fn template_row(row: &Row<'_>) -> rusqlite::Result<StoredTemplate> {
    Ok(StoredTemplate {
        face_id: row.get(0)?,
        subject_id: row.get(1)?,
        template: EncryptedTemplate { nonce: row.get(2)?, ciphertext: row.get(3)? },
    })
}

pub(crate) fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let scopes: String = row.get(4)?;
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        name: row.get(2)?,
        key_hash: row.get(3)?,
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        created_at_ms: row.get(5)?,
        revoked_at_ms: row.get(6)?,
    })
}

pub(crate) fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> StoreResult<Vec<T>> {
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(map_error)
}

pub(crate) const EVENT_COLUMNS: &str = "seq, collection_id, at_ms, key_id, request_id, action, result, subject_id, score, face_index, door_id, reason, \
     liveness, correlation_id";

pub(crate) fn event_row(row: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    let unknown = |index: usize, value: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, value.into())
    };
    let (action, result): (String, String) = (row.get(5)?, row.get(6)?);
    let reason: Option<String> = row.get(11)?;
    Ok(AuditEvent {
        seq: row.get(0)?,
        event: NewEvent {
            collection_id: row.get(1)?,
            at_ms: row.get(2)?,
            key_id: row.get(3)?,
            request_id: row.get(4)?,
            action: AuditAction::parse(&action).ok_or_else(|| unknown(5, action.clone()))?,
            result: AuditResult::parse(&result).ok_or_else(|| unknown(6, result.clone()))?,
            subject_id: row.get(7)?,
            score: row.get(8)?,
            face_index: row.get(9)?,
            door_id: row.get(10)?,
            reason: reason.map(|r| AuditReason::parse(&r).ok_or_else(|| unknown(11, r.clone()))).transpose()?,
            liveness: row.get(12)?,
            correlation_id: row.get(13)?,
        },
    })
}

pub(crate) const CHANGE_COLUMNS: &str = "seq, at_ms, key_id, request_id, correlation_id, action, object_id, details";

pub(crate) fn change_row(row: &Row<'_>) -> rusqlite::Result<Change> {
    let action: String = row.get(5)?;
    let details: String = row.get(7)?;
    Ok(Change {
        seq: row.get(0)?,
        change: NewChange {
            at_ms: row.get(1)?,
            key_id: row.get(2)?,
            request_id: row.get(3)?,
            correlation_id: row.get(4)?,
            action: ChangeAction::parse(&action).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, action.clone().into())
            })?,
            object_id: row.get(6)?,
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
        },
    })
}

/// A JSON text column as a value of `T`.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e)))
}

pub(crate) const DOOR_COLUMNS: &str = "id, tenant_id, collection_id, name, policy, created_at_ms";

pub(crate) fn door_row(row: &Row<'_>) -> rusqlite::Result<Door> {
    Ok(Door {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        collection_id: row.get(2)?,
        name: row.get(3)?,
        policy: json_column(row, 4)?,
        created_at_ms: row.get(5)?,
    })
}
