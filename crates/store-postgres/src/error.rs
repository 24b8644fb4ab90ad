//! Database errors onto the store's: constraint violations, transient and connection failures.

use super::*;

/// Maps database errors onto the store's: constraint violations, transient and connection failures.
pub(crate) fn map_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            match code.as_str() {
                "23505" => StoreError::Conflict(db.message().to_string()),
                "23503" => StoreError::NotFound,
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" => StoreError::Unavailable(error.to_string()),
                c if c.starts_with("08") => StoreError::Unavailable(error.to_string()),
                _ => StoreError::Backend(error.to_string()),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Backend(error.to_string()),
    }
}
