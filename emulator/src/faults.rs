//! Fault injection (scripted errors, latency, token-bucket quotas) and call counting.
//!
//! These are plain values driven by explicit instants, so their behaviour is
//! tested without a clock or a server.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, default_message, default_status};

/// One scripted error answer for an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedError {
    /// The error code (`__type`), e.g. `ConcurrentModificationException`.
    pub code: String,
    /// The message; a code-specific default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP status; the one AWS uses for the code when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl ScriptedError {
    /// A scripted error with AWS's status and a default message for `code`.
    pub fn code(code: &str) -> ScriptedError {
        ScriptedError {
            code: code.to_owned(),
            message: None,
            status: None,
        }
    }

    fn to_api_error(&self) -> ApiError {
        ApiError {
            code: self.code.clone(),
            message: self
                .message
                .clone()
                .unwrap_or_else(|| default_message(&self.code)),
            status: self.status.unwrap_or_else(|| default_status(&self.code)),
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate_per_sec`; one per call.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate_per_sec: f64,
    burst: u32,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate_per_sec: f64, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate_per_sec,
            burst,
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes a token if one is left after refilling up to `now`.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The faults configured for one operation.
#[derive(Debug, Clone, Default)]
struct OperationFaults {
    scripted: VecDeque<ScriptedError>,
    latency: Duration,
    quota: Option<TokenBucket>,
}

/// What the fault layer decides for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Serve the call normally.
    Proceed,
    /// Answer with this error instead (throttled or scripted).
    Fail(ApiError),
}

/// All configured faults, per operation.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    operations: BTreeMap<String, OperationFaults>,
}

/// A serializable view of one operation's faults, for the admin API.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FaultView {
    pending_errors: Vec<ScriptedError>,
    latency_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaView>,
}

#[derive(Debug, Clone, Serialize)]
struct QuotaView {
    rate_per_sec: f64,
    burst: u32,
}

impl Faults {
    /// Appends errors to the operation's script; they answer the next calls in order.
    pub(crate) fn push_errors(
        &mut self,
        operation: &str,
        errors: impl IntoIterator<Item = ScriptedError>,
    ) {
        self.operations
            .entry(operation.to_owned())
            .or_default()
            .scripted
            .extend(errors);
    }

    /// Sets the extra latency of every answer to the operation.
    pub(crate) fn set_latency(&mut self, operation: &str, latency: Duration) {
        self.operations
            .entry(operation.to_owned())
            .or_default()
            .latency = latency;
    }

    /// Installs a fresh (full) token bucket for the operation.
    pub(crate) fn set_quota(
        &mut self,
        operation: &str,
        rate_per_sec: f64,
        burst: u32,
        now: Instant,
    ) {
        self.operations
            .entry(operation.to_owned())
            .or_default()
            .quota = Some(TokenBucket::new(rate_per_sec, burst, now));
    }

    /// Removes the quota of the operation.
    pub(crate) fn clear_quota(&mut self, operation: &str) {
        if let Some(f) = self.operations.get_mut(operation) {
            f.quota = None;
        }
    }

    /// Removes every fault of one operation, or of all when `operation` is `None`.
    pub(crate) fn clear(&mut self, operation: Option<&str>) {
        match operation {
            Some(op) => {
                self.operations.remove(op);
            }
            None => self.operations.clear(),
        }
    }

    /// The extra latency of the operation.
    pub(crate) fn latency(&self, operation: &str) -> Duration {
        self.operations
            .get(operation)
            .map(|f| f.latency)
            .unwrap_or_default()
    }

    /// Decides one call: the quota first (a throttled call leaves the script
    /// untouched, as a real throttle answers before the service does any work),
    /// then the next scripted error.
    pub(crate) fn admit(&mut self, operation: &str, now: Instant) -> Admission {
        let Some(faults) = self.operations.get_mut(operation) else {
            return Admission::Proceed;
        };
        if let Some(bucket) = &mut faults.quota
            && !bucket.try_take(now)
        {
            return Admission::Fail(ApiError::throttling());
        }
        match faults.scripted.pop_front() {
            Some(scripted) => Admission::Fail(scripted.to_api_error()),
            None => Admission::Proceed,
        }
    }

    /// The configured faults, for the admin API.
    pub(crate) fn view(&self) -> BTreeMap<String, FaultView> {
        self.operations
            .iter()
            .map(|(op, f)| {
                (
                    op.clone(),
                    FaultView {
                        pending_errors: f.scripted.iter().cloned().collect(),
                        latency_ms: f.latency.as_millis(),
                        quota: f.quota.as_ref().map(|q| QuotaView {
                            rate_per_sec: q.rate_per_sec,
                            burst: q.burst,
                        }),
                    },
                )
            })
            .collect()
    }
}

/// The outcome key of a successful call in the call counts.
pub const OUTCOME_OK: &str = "ok";

/// Calls per operation and outcome.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct CallCounts {
    #[serde(flatten)]
    operations: BTreeMap<String, OperationCalls>,
}

/// Calls of one operation.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct OperationCalls {
    total: u64,
    /// `ok` or the error code, to the number of calls that ended so.
    outcomes: BTreeMap<String, u64>,
}

impl CallCounts {
    /// Records one call that ended with `outcome` (`ok` or an error code).
    pub(crate) fn record(&mut self, operation: &str, outcome: &str) {
        let calls = self.operations.entry(operation.to_owned()).or_default();
        calls.total += 1;
        *calls.outcomes.entry(outcome.to_owned()).or_default() += 1;
    }

    /// All calls of the operation.
    pub(crate) fn total(&self, operation: &str) -> u64 {
        self.operations.get(operation).map_or(0, |c| c.total)
    }

    /// Calls of the operation that ended with `outcome`.
    pub(crate) fn with_outcome(&self, operation: &str, outcome: &str) -> u64 {
        self.operations
            .get(operation)
            .and_then(|c| c.outcomes.get(outcome))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3, t0);
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0));
        // Half a second at 2/s refills one token.
        assert!(bucket.try_take(t0 + Duration::from_millis(500)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(500)));
        // Never more than the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(bucket.try_take(later));
        }
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn script_runs_in_order_then_proceeds() {
        let mut faults = Faults::default();
        let now = Instant::now();
        faults.push_errors(
            "CreatePartnerEventSource",
            [
                ScriptedError::code("ConcurrentModificationException"),
                ScriptedError::code("InternalException"),
            ],
        );
        let Admission::Fail(first) = faults.admit("CreatePartnerEventSource", now) else {
            panic!("first call fails");
        };
        assert_eq!(first.code, "ConcurrentModificationException");
        assert_eq!(first.status, 400);
        let Admission::Fail(second) = faults.admit("CreatePartnerEventSource", now) else {
            panic!("second call fails");
        };
        assert_eq!(second.status, 500);
        assert_eq!(
            faults.admit("CreatePartnerEventSource", now),
            Admission::Proceed
        );
        assert_eq!(
            faults.admit("DescribePartnerEventSource", now),
            Admission::Proceed
        );
    }

    #[test]
    fn throttling_does_not_consume_the_script() {
        let mut faults = Faults::default();
        let now = Instant::now();
        faults.set_quota("ListPartnerEventSources", 0.0, 0, now);
        faults.push_errors(
            "ListPartnerEventSources",
            [ScriptedError::code("InternalException")],
        );
        let Admission::Fail(err) = faults.admit("ListPartnerEventSources", now) else {
            panic!("throttled");
        };
        assert_eq!(err.code, "ThrottlingException");
        faults.clear_quota("ListPartnerEventSources");
        let Admission::Fail(err) = faults.admit("ListPartnerEventSources", now) else {
            panic!("scripted");
        };
        assert_eq!(err.code, "InternalException");
    }

    #[test]
    fn counts_per_outcome() {
        let mut calls = CallCounts::default();
        calls.record("A", OUTCOME_OK);
        calls.record("A", "ThrottlingException");
        calls.record("A", OUTCOME_OK);
        assert_eq!(calls.total("A"), 3);
        assert_eq!(calls.with_outcome("A", OUTCOME_OK), 2);
        assert_eq!(calls.with_outcome("A", "ThrottlingException"), 1);
        assert_eq!(calls.total("B"), 0);
    }
}
