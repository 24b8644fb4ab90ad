//! The configuration audit trail: what every change to keys, webhooks, doors and collection settings
//! recorded (the store writes it in the transaction of the change), and how a change is described: the
//! fields that differ, before and after, never a secret.

use facegate_store::Change;
use serde_json::{Map, Value};

use crate::collections::Actor;
use crate::{Gallery, GalleryError};

/// The top-level fields of two JSON objects that differ: `{field: {"from": before, "to": after}}`.
pub(crate) fn diff(before: &Value, after: &Value) -> Value {
    let empty = Map::new();
    let (old, new) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut fields: Vec<&String> = old.keys().chain(new.keys()).collect();
    fields.sort_unstable();
    fields.dedup();
    let changed: Map<String, Value> = fields
        .into_iter()
        .filter_map(|field| {
            let (from, to) = (old.get(field).unwrap_or(&Value::Null), new.get(field).unwrap_or(&Value::Null));
            (from != to).then(|| (field.clone(), serde_json::json!({ "from": from, "to": to })))
        })
        .collect();
    Value::Object(changed)
}

/// The origin (`scheme://host:port`) of a URL: what the trail keeps of a webhook's address, whose path
/// or query may carry a receiver's token.
pub(crate) fn origin(url: &str) -> String {
    url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

impl Gallery {
    /// The tenant's configuration changes in order, after the cursor `after_seq`, at most `limit`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn changes(
        &self,
        actor: &Actor,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Change>, GalleryError> {
        Ok(self.store.changes(&actor.tenant_id, after_seq, limit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_names_the_fields_that_differ() {
        let before = serde_json::json!({ "a": 1, "b": [1, 2], "c": "same" });
        let after = serde_json::json!({ "a": 2, "b": [1, 2], "c": "same", "d": true });
        assert_eq!(
            diff(&before, &after),
            serde_json::json!({ "a": { "from": 1, "to": 2 }, "d": { "from": null, "to": true } })
        );
        assert_eq!(origin("https://hooks.example.org:8443/T000/B000/secret?token=x"), "https://hooks.example.org:8443");
    }
}
