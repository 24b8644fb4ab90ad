//! Identifiers as types: a tenant id cannot be passed where a collection id is expected. Each is a
//! string on the wire and in the database (UUID v4 when facegate makes one; callers may choose face
//! ids), and reads as `&str` wherever a string is wanted. The backends' features (`rusqlite`,
//! `postgres`) let them bind and read ids as their own column type.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// A fresh random identifier (UUID v4, hyphenated).
            pub fn random() -> Self {
                Self(crate::new_id())
            }

            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        #[cfg(feature = "rusqlite")]
        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        #[cfg(feature = "rusqlite")]
        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                String::column_result(value).map(Self)
            }
        }

        #[cfg(feature = "postgres")]
        impl sqlx_core::types::Type<sqlx_postgres::Postgres> for $name {
            fn type_info() -> sqlx_postgres::PgTypeInfo {
                <String as sqlx_core::types::Type<sqlx_postgres::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx_postgres::PgTypeInfo) -> bool {
                <String as sqlx_core::types::Type<sqlx_postgres::Postgres>>::compatible(ty)
            }
        }

        #[cfg(feature = "postgres")]
        impl sqlx_postgres::PgHasArrayType for $name {
            fn array_type_info() -> sqlx_postgres::PgTypeInfo {
                <String as sqlx_postgres::PgHasArrayType>::array_type_info()
            }
        }

        #[cfg(feature = "postgres")]
        impl sqlx_core::encode::Encode<'_, sqlx_postgres::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx_postgres::PgArgumentBuffer,
            ) -> Result<sqlx_core::encode::IsNull, sqlx_core::error::BoxDynError> {
                <&str as sqlx_core::encode::Encode<'_, sqlx_postgres::Postgres>>::encode(self.0.as_str(), buf)
            }
        }

        #[cfg(feature = "postgres")]
        impl sqlx_core::decode::Decode<'_, sqlx_postgres::Postgres> for $name {
            fn decode(value: sqlx_postgres::PgValueRef<'_>) -> Result<Self, sqlx_core::error::BoxDynError> {
                <String as sqlx_core::decode::Decode<'_, sqlx_postgres::Postgres>>::decode(value).map(Self)
            }
        }
    };
}

id_type!(
    /// An organisation's identifier.
    TenantId
);
id_type!(
    /// An API key's identifier (never its secret).
    KeyId
);
id_type!(
    /// A collection's identifier.
    CollectionId
);
id_type!(
    /// A subject's (person's) identifier.
    SubjectId
);
id_type!(
    /// An enrolled face's identifier; it is bound into the encryption of its template.
    FaceId
);
id_type!(
    /// The identifier of the HTTP request a decision belongs to.
    RequestId
);
id_type!(
    /// A door's (access point's) identifier.
    DoorId
);
id_type!(
    /// An ignore-list entry's identifier (a stranger's template kept as a negative of a subject); it is
    /// bound into the encryption of its template.
    NegativeId
);
id_type!(
    /// A webhook's (event subscription's) identifier.
    WebhookId
);
id_type!(
    /// A camera's identifier; it is bound into the encryption of its source URL.
    CameraId
);
