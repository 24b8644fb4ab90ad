//! The schema migrations, embedded and applied by sqlx's migrator.

use super::*;

/// The schema migrations, in order, embedded; sqlx's migrator records each with its checksum in
/// `_sqlx_migrations`, refuses a database whose applied migrations were changed or are unknown to this
/// build, and applies the pending ones under its advisory lock.
pub(crate) fn migrator() -> Migrator {
    let migration = |version, name: &'static str, sql: &'static str| {
        Migration::new(version, name.into(), MigrationType::Simple, sql.into_sql_str(), false)
    };
    Migrator::with_migrations(vec![
        migration(1, "init", include_str!("../migrations/0001_init.sql")),
        migration(2, "packs", include_str!("../migrations/0002_packs.sql")),
        migration(3, "doors", include_str!("../migrations/0003_doors.sql")),
        migration(4, "hardening", include_str!("../migrations/0004_hardening.sql")),
        migration(5, "sightings", include_str!("../migrations/0005_sightings.sql")),
        migration(6, "cameras", include_str!("../migrations/0006_cameras.sql")),
        migration(7, "sighting evidence", include_str!("../migrations/0007_sighting_evidence.sql")),
        migration(8, "cluster ids", include_str!("../migrations/0008_cluster_ids.sql")),
        migration(9, "readers", include_str!("../migrations/0009_readers.sql")),
    ])
}
