//! The one spelling of each fieldless enum: the name its `#[serde]` attributes give a value, used as
//! stored, on the wire and in messages. Nothing writes a name twice.

use serde::Serialize;

/// A fieldless enum whose values are named by serde (`rename_all`, `rename`).
pub trait WireName: Serialize + Copy + 'static {
    /// Every value, in order.
    const ALL: &'static [Self];

    /// The value's serde name.
    fn as_str(self) -> &'static str {
        // A fieldless enum always serialises as a unit variant, which has a static name.
        serde_variant::to_variant_name(&self).unwrap_or_default()
    }

    /// The value named `name`.
    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|value| value.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditAction, AuditResult, ChangeAction, DeliveryState, DoorReason, EventType, MigrationState, Scope};

    fn round_trips<T: WireName + PartialEq + std::fmt::Debug + serde::de::DeserializeOwned>() {
        for value in T::ALL {
            let name = value.as_str();
            assert!(!name.is_empty(), "{value:?} has a name");
            assert_eq!(T::parse(name), Some(*value), "{name}");
            assert_eq!(serde_json::to_value(value).expect("json"), serde_json::Value::from(name), "{name}");
            assert_eq!(serde_json::from_value::<T>(name.into()).expect("json"), *value, "{name}");
        }
        assert_eq!(T::parse("no such name"), None);
    }

    #[test]
    fn every_name_is_the_serde_name_and_parses_back() {
        round_trips::<Scope>();
        round_trips::<MigrationState>();
        round_trips::<ChangeAction>();
        round_trips::<EventType>();
        round_trips::<DeliveryState>();
        round_trips::<AuditAction>();
        round_trips::<AuditResult>();
        round_trips::<DoorReason>();
        round_trips::<crate::SightingDecision>();
        assert_eq!(ChangeAction::KeyCreated.as_str(), "key.created");
        assert_eq!(DoorReason::AntiPassback.as_str(), "anti_passback");
    }
}
