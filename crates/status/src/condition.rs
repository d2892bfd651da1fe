//! Status conditions, as in `metav1.Condition` minus the timestamp.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Text of a condition: its type and reason are almost always constants, and so is many a
/// message. A condition is kept for every route several times over (its conversion, its
/// attachment outcome, its status), so constants are borrowed instead of copied: three
/// allocations fewer per condition.
pub type Text = Cow<'static, str>;

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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Accepted`.
    #[serde(rename = "type")]
    pub type_: Text,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// CamelCase machine-readable reason.
    pub reason: Text,
    /// Human-readable explanation.
    pub message: Text,
    /// `metadata.generation` of the object the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition with status `True`.
    pub fn ok(type_: impl Into<Text>, reason: impl Into<Text>, message: impl Into<Text>) -> Self {
        Self::new(type_, ConditionStatus::True, reason, message)
    }

    /// A condition with status `False`.
    pub fn not(type_: impl Into<Text>, reason: impl Into<Text>, message: impl Into<Text>) -> Self {
        Self::new(type_, ConditionStatus::False, reason, message)
    }

    /// A condition with any status.
    pub fn new(
        type_: impl Into<Text>,
        status: ConditionStatus,
        reason: impl Into<Text>,
        message: impl Into<Text>,
    ) -> Self {
        Self {
            type_: type_.into(),
            status,
            reason: reason.into(),
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
