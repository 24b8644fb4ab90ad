//! The schema migrations (embedded, version in user_version), secure deletion and file permissions.

use super::*;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(crate) const MIGRATIONS: [&str; 10] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_secure_delete.sql"),
    include_str!("../migrations/0003_packs.sql"),
    include_str!("../migrations/0004_doors.sql"),
    include_str!("../migrations/0005_hardening.sql"),
    include_str!("../migrations/0006_sightings.sql"),
    include_str!("../migrations/0007_cameras.sql"),
    include_str!("../migrations/0008_sighting_evidence.sql"),
    include_str!("../migrations/0009_cluster_ids.sql"),
    include_str!("../migrations/0010_readers.sql"),
];

/// The first schema version whose files were always written with `secure_delete`; a file from before
/// it is vacuumed once, so bytes deleted by older versions do not linger in its free space.
pub(crate) const SECURE_DELETE_SINCE: usize = 2;

/// Applies pending migrations; returns the schema version found before.
pub(crate) fn migrate(connection: &mut Connection) -> StoreResult<usize> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    let version = usize::try_from(version).unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "store schema version {version} is newer than this facegate ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = connection.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(version)
}

/// Checkpoints the write-ahead log into the database file and truncates it to zero bytes; false when
/// another process's reader kept it from completing within the busy timeout.
pub(crate) fn checkpoint(connection: &Connection) -> StoreResult<bool> {
    let busy: i64 = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0)).map_err(map_error)?;
    Ok(busy == 0)
}

/// Creates the database file readable by its owner only, and makes its WAL and shared-memory files so
/// (SQLite gives those the database file's mode when it creates them).
pub(crate) fn owner_only(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", path.display()));
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        if Path::new(&file).exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}
