//! Rows onto records: the columns each query selects and how a row becomes a record.

use super::*;
use facegate_store::WireName;

pub(crate) const COLLECTION_COLUMNS: &str = "c.id, c.tenant_id, c.name, c.pack, c.embedding_size, c.target_fmr, c.keep_crops, c.created_at_ms, c.retention_days, c.liveness_required, \
     (SELECT COUNT(*) FROM subjects s WHERE s.collection_id = c.id) AS subject_count, \
     (SELECT COUNT(*) FROM faces f WHERE f.collection_id = c.id) AS face_count";

pub(crate) fn collection_row(row: &PgRow) -> Result<Collection, sqlx::Error> {
    Ok(Collection {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        pack: row.try_get("pack")?,
        embedding_size: u32::try_from(row.try_get::<i32, _>("embedding_size")?).unwrap_or(0),
        target_fmr: row.try_get("target_fmr")?,
        keep_crops: row.try_get("keep_crops")?,
        retention_days: row.try_get::<Option<i32>, _>("retention_days")?.and_then(|d| u32::try_from(d).ok()),
        liveness_required: row.try_get("liveness_required")?,
        created_at_ms: row.try_get("created_at_ms")?,
        subject_count: u64::try_from(row.try_get::<i64, _>("subject_count")?).unwrap_or(0),
        face_count: u64::try_from(row.try_get::<i64, _>("face_count")?).unwrap_or(0),
    })
}

pub(crate) const SUBJECT_COLUMNS: &str = "s.id, s.collection_id, s.name, s.metadata, s.groups, s.consent, s.created_at_ms, \
     (SELECT COUNT(*) FROM faces f WHERE f.subject_id = s.id) AS face_count";

pub(crate) fn subject_row(row: &PgRow) -> Result<Subject, sqlx::Error> {
    let metadata: String = row.try_get("metadata")?;
    Ok(Subject {
        id: row.try_get("id")?,
        collection_id: row.try_get("collection_id")?,
        name: row.try_get("name")?,
        metadata: serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null),
        groups: json_column(row, "groups")?,
        consent: row.try_get::<Option<String>, _>("consent")?.and_then(|text| serde_json::from_str(&text).ok()),
        created_at_ms: row.try_get("created_at_ms")?,
        face_count: u64::try_from(row.try_get::<i64, _>("face_count")?).unwrap_or(0),
    })
}

pub(crate) const FACE_COLUMNS: &str = "id, subject_id, detection_score, sharpness, face_size, created_at_ms, pack, \
     pack_version, EXISTS (SELECT 1 FROM face_crops k WHERE k.face_id = faces.id) AS crop_kept";

pub(crate) fn face_row(row: &PgRow) -> Result<FaceRecord, sqlx::Error> {
    Ok(FaceRecord {
        id: row.try_get("id")?,
        subject_id: row.try_get("subject_id")?,
        detection_score: row.try_get("detection_score")?,
        sharpness: row.try_get("sharpness")?,
        face_size: row.try_get("face_size")?,
        created_at_ms: row.try_get("created_at_ms")?,
        pack: PackVersion { pack: row.try_get("pack")?, version: row.try_get("pack_version")? },
        crop_kept: row.try_get("crop_kept")?,
    })
}

pub(crate) fn template_row(row: &PgRow) -> Result<StoredTemplate, sqlx::Error> {
    Ok(StoredTemplate {
        face_id: row.try_get("id")?,
        subject_id: row.try_get("subject_id")?,
        template: EncryptedTemplate { nonce: row.try_get("nonce")?, ciphertext: row.try_get("ciphertext")? },
    })
}

pub(crate) fn key_row(row: &PgRow) -> Result<ApiKeyRecord, sqlx::Error> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        key_hash: row.try_get("key_hash")?,
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        created_at_ms: row.try_get("created_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
    })
}

pub(crate) fn rows<T>(rows: Vec<PgRow>, read: fn(&PgRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
    rows.iter().map(read).collect::<Result<_, _>>().map_err(map_error)
}

pub(crate) const KEY_COLUMNS: &str = "id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms";

pub(crate) const EVENT_COLUMNS: &str = "seq, collection_id, at_ms, key_id, request_id, action, result, subject_id, score, face_index, door_id, reason, \
     liveness, correlation_id";

pub(crate) fn event_row(row: &PgRow) -> Result<AuditEvent, sqlx::Error> {
    let unknown =
        |column: &str, value: String| sqlx::Error::ColumnDecode { index: column.into(), source: value.into() };
    let (action, result): (String, String) = (row.try_get("action")?, row.try_get("result")?);
    let reason: Option<String> = row.try_get("reason")?;
    Ok(AuditEvent {
        seq: row.try_get("seq")?,
        event: NewEvent {
            collection_id: row.try_get("collection_id")?,
            at_ms: row.try_get("at_ms")?,
            key_id: row.try_get("key_id")?,
            request_id: row.try_get("request_id")?,
            action: AuditAction::parse(&action).ok_or_else(|| unknown("action", action.clone()))?,
            result: AuditResult::parse(&result).ok_or_else(|| unknown("result", result.clone()))?,
            subject_id: row.try_get("subject_id")?,
            score: row.try_get("score")?,
            face_index: row.try_get::<Option<i32>, _>("face_index")?.map(|i| i as u32),
            door_id: row.try_get("door_id")?,
            reason: reason.map(|r| AuditReason::parse(&r).ok_or_else(|| unknown("reason", r.clone()))).transpose()?,
            liveness: row.try_get("liveness")?,
            correlation_id: row.try_get("correlation_id")?,
        },
    })
}

pub(crate) const CHANGE_COLUMNS: &str = "seq, at_ms, key_id, request_id, correlation_id, action, object_id, details";

pub(crate) fn change_row(row: &PgRow) -> Result<Change, sqlx::Error> {
    let action: String = row.try_get("action")?;
    let details: String = row.try_get("details")?;
    Ok(Change {
        seq: row.try_get("seq")?,
        change: NewChange {
            at_ms: row.try_get("at_ms")?,
            key_id: row.try_get("key_id")?,
            request_id: row.try_get("request_id")?,
            correlation_id: row.try_get("correlation_id")?,
            action: ChangeAction::parse(&action)
                .ok_or_else(|| sqlx::Error::ColumnDecode { index: "action".into(), source: action.clone().into() })?,
            object_id: row.try_get("object_id")?,
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
        },
    })
}

/// A JSON text column as a value of `T`.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(row: &PgRow, column: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode { index: column.into(), source: Box::new(e) })
}

pub(crate) const DOOR_COLUMNS: &str = "id, tenant_id, collection_id, name, policy, created_at_ms";

pub(crate) fn door_row(row: &PgRow) -> Result<Door, sqlx::Error> {
    Ok(Door {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        collection_id: row.try_get("collection_id")?,
        name: row.try_get("name")?,
        policy: json_column(row, "policy")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}
