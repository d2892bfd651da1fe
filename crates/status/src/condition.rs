//! Status conditions, as in `metav1.Condition` minus the timestamp.

use serde::{Deserialize, Serialize};

/// `True`, `False` or `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// Not yet known.
    Unknown,
}

/// One condition. Writers add `lastTransitionTime`; comparisons ignore it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Accepted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// CamelCase machine-readable reason.
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
    /// `metadata.generation` of the object the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition with status `True`.
    pub fn ok(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, ConditionStatus::True, reason, message)
    }

    /// A condition with status `False`.
    pub fn not(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, ConditionStatus::False, reason, message)
    }

    /// A condition with any status.
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.into(),
            observed_generation: None,
        }
    }

    /// Same condition, tagged with the object's generation.
    pub fn at_generation(mut self, generation: Option<i64>) -> Self {
        self.observed_generation = generation;
        self
    }

    /// True when `type`, `status` and `reason` are equal: what decides whether a
    /// condition transitioned (its `lastTransitionTime` moves) and whether a write is due.
    pub fn same_state(&self, other: &Condition) -> bool {
        self.type_ == other.type_ && self.status == other.status && self.reason == other.reason
    }
}
