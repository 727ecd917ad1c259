//! A value that may not be measurable on this machine: never a silent 0.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reading<T> {
    Measured {
        value: T,
    },
    /// Derived indirectly (e.g. energy integrated from power samples); `method` says how.
    Estimated {
        value: T,
        method: String,
    },
    Unavailable {
        reason: String,
    },
}

impl<T: Copy> Reading<T> {
    /// The same kind of reading with its value transformed.
    pub fn map<U>(&self, f: impl FnOnce(T) -> U) -> Reading<U> {
        match self {
            Reading::Measured { value } => Reading::Measured { value: f(*value) },
            Reading::Estimated { value, method } => Reading::Estimated {
                value: f(*value),
                method: method.clone(),
            },
            Reading::Unavailable { reason } => Reading::Unavailable {
                reason: reason.clone(),
            },
        }
    }

    pub fn value(&self) -> Option<T> {
        match self {
            Reading::Measured { value } | Reading::Estimated { value, .. } => Some(*value),
            Reading::Unavailable { .. } => None,
        }
    }

    pub fn unavailable(reason: impl Into<String>) -> Self {
        Reading::Unavailable {
            reason: reason.into(),
        }
    }
}
