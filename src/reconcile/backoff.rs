//! Per-object exponential backoff: the delay before the next retry, grown from the count of
//! transient failures in a row ([`crate::reconcile::objects::ObjectStates`] keeps it).

use std::time::Duration;

/// Delay before retry number `failures + 1`: exponential from `base`, capped at `cap`, with
/// jitter that keeps it within the upper half so delays still grow from one failure to the next.
pub fn retry_delay(failures: u32, jitter: f64, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(failures.min(31)));
    let full = exp.min(cap);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
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
}
