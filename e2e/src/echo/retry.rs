//! Attempt counter behind the `/retry/` simulator.
//!
//! Counts live in memory per process, which is why the upstream manifests run
//! the retry backend (infra-backend-v3) as a single replica.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct RetryCounter {
    attempts: Mutex<HashMap<String, u64>>,
}

impl RetryCounter {
    /// Records one attempt for `uuid` and returns how many came before it.
    pub(crate) fn record(&self, uuid: &str) -> u64 {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let seen = attempts.entry(uuid.to_owned()).or_insert(0);
        let before = *seen;
        *seen += 1;
        before
    }
}
