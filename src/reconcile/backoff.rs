//! Per-object exponential backoff: the delay before the next retry, and the count of
//! transient failures in a row that it grows from.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Delay before retry number `failures + 1`: exponential from `base`, capped at `cap`, with
/// jitter that keeps it within the upper half so delays still grow from one failure to the next.
pub fn retry_delay(failures: u32, jitter: f64, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(failures.min(31)));
    let full = exp.min(cap);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Transient failures in a row, by object UID. An object that succeeds, or whose cleanup
/// finished, is forgotten, so the map holds only objects that are failing right now.
#[derive(Debug, Default)]
pub struct FailureCounts {
    counts: Mutex<HashMap<String, u32>>,
}

impl FailureCounts {
    fn counts(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        // The map holds plain counters; a panic elsewhere cannot leave it inconsistent.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Failures in a row before this pass.
    pub fn get(&self, uid: &str) -> u32 {
        self.counts().get(uid).copied().unwrap_or(0)
    }

    /// Records how a pass ended: the count it reports, zero forgetting the object.
    pub fn set(&self, uid: &str, failures: u32) {
        let mut counts = self.counts();
        if failures == 0 {
            counts.remove(uid);
        } else {
            counts.insert(uid.to_owned(), failures);
        }
    }

    /// Counts one more failure (a pass that could not finish) and returns the new count.
    pub fn bump(&self, uid: &str) -> u32 {
        let mut counts = self.counts();
        let n = counts.entry(uid.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// How many objects are failing right now.
    pub fn len(&self) -> usize {
        self.counts().len()
    }

    /// Whether no object is failing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_retries_within_the_upper_half() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        assert_eq!(retry_delay(3, 0.0, base, cap), Duration::from_secs(4));
        assert_eq!(retry_delay(3, 1.0, base, cap), Duration::from_secs(8));
        assert!(retry_delay(3, 0.3, base, cap) < retry_delay(3, 0.7, base, cap));
        assert_eq!(retry_delay(40, 1.0, base, cap), cap);
        assert_eq!(retry_delay(u32::MAX, 1.0, base, cap), cap);
    }

    #[test]
    fn failures_count_up_per_object_and_success_forgets_them() {
        let counts = FailureCounts::default();
        assert_eq!(counts.get("a"), 0);
        assert_eq!(counts.bump("a"), 1);
        assert_eq!(counts.bump("a"), 2);
        assert_eq!(counts.bump("b"), 1);
        assert_eq!((counts.get("a"), counts.get("b")), (2, 1));
        counts.set("a", 0);
        assert_eq!(counts.get("a"), 0);
        assert_eq!(counts.len(), 1, "a succeeded and is forgotten");
        counts.set("b", 7);
        assert_eq!(counts.get("b"), 7);
        counts.set("b", 0);
        assert!(counts.is_empty());
    }

    #[test]
    fn a_count_never_overflows() {
        let counts = FailureCounts::default();
        counts.set("a", u32::MAX);
        assert_eq!(counts.bump("a"), u32::MAX);
    }
}
