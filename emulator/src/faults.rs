//! Fault injection (scripted errors, latency, token-bucket quotas) and call counting.
//!
//! These are plain values driven by explicit instants, so their behaviour is
//! tested without a clock or a server.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, default_message, default_status};
use crate::model::Model;

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

/// Faults drawn at random for every partner-API call from a seeded generator: the weather of a
/// chaos run. Each rate is a probability per call, in [0, 1]; the same seed draws the same
/// sequence of faults for the same sequence of calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomFaults {
    /// Seed of the generator.
    pub seed: u64,
    /// An error a client should retry, among those the operation documents in the service
    /// model (`InternalException`, `ConcurrentModificationException`,
    /// `LimitExceededException`) and AWS's common `ThrottlingException` and 503
    /// `ServiceUnavailable`.
    pub error_rate: f64,
    /// A latency spike of `spike_ms` after the call took effect.
    pub spike_rate: f64,
    /// Length of a latency spike, in milliseconds.
    pub spike_ms: u64,
    /// No answer for `timeout_ms` (set it above the client's timeout): half of these calls
    /// took effect and lost their answer, the other half never reached the service and end
    /// with a 504 `RequestTimeout` nobody waits for.
    pub timeout_rate: f64,
    /// How long a timed-out call is held, in milliseconds.
    pub timeout_ms: u64,
}

impl RandomFaults {
    /// Whether every rate is a probability.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (field, rate) in [
            ("error_rate", self.error_rate),
            ("spike_rate", self.spike_rate),
            ("timeout_rate", self.timeout_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{field} must be within [0, 1], got {rate}"));
            }
        }
        Ok(())
    }
}

/// Codes of the errors a client retries; of these, an operation gets the ones its model lists.
const RETRYABLE_DOCUMENTED: [&str; 3] = [
    "InternalException",
    "ConcurrentModificationException",
    "LimitExceededException",
];

/// What the random faults make of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Weather {
    /// Held this long before the service sees the call.
    pub(crate) before: Duration,
    /// Answered with this error instead of serving the call.
    pub(crate) error: Option<ApiError>,
    /// Held this long after the call took effect.
    pub(crate) after: Duration,
}

/// How many faults were injected, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InjectedFaults {
    /// Error answers: scripted, throttled by a quota, or drawn at random.
    pub errors: u64,
    /// Calls held past the client's timeout.
    pub timeouts: u64,
    /// Latency spikes (the call succeeds, late).
    pub spikes: u64,
}

impl InjectedFaults {
    /// Faults that cost the client a call: errors and timeouts.
    pub fn failed_calls(&self) -> u64 {
        self.errors + self.timeouts
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
    random: Option<(RandomFaults, StdRng)>,
    injected: InjectedFaults,
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

    /// Removes every fault of one operation, or of all (random faults included) when
    /// `operation` is `None`.
    pub(crate) fn clear(&mut self, operation: Option<&str>) {
        match operation {
            Some(op) => {
                self.operations.remove(op);
            }
            None => {
                self.operations.clear();
                self.random = None;
            }
        }
    }

    /// Draws faults at random for every later call, or stops when `None`.
    pub(crate) fn set_random(&mut self, random: Option<RandomFaults>) {
        self.random = random.map(|r| {
            let rng = StdRng::seed_from_u64(r.seed);
            (r, rng)
        });
    }

    /// The random faults in force.
    pub(crate) fn random(&self) -> Option<&RandomFaults> {
        self.random.as_ref().map(|(r, _)| r)
    }

    /// How many faults were injected so far.
    pub(crate) fn injected(&self) -> InjectedFaults {
        self.injected
    }

    /// Draws what the random faults make of one call to `operation`. Every call draws the
    /// same number of values, so a seed gives the same faults to the same sequence of calls.
    pub(crate) fn weather(&mut self, operation: &str) -> Weather {
        let Some((random, rng)) = &mut self.random else {
            return Weather::default();
        };
        let (error, timeout, lost_before, spike) = (
            rng.random_bool(random.error_rate),
            rng.random_bool(random.timeout_rate),
            rng.random_bool(0.5),
            rng.random_bool(random.spike_rate),
        );
        let pick: usize = rng.random_range(0..usize::MAX);
        let held = Duration::from_millis(random.timeout_ms);
        let mut weather = Weather::default();
        if error {
            let codes = retryable_codes(operation);
            weather.error = Some(ScriptedError::code(codes[pick % codes.len()]).to_api_error());
            self.injected.errors += 1;
        } else if timeout && lost_before {
            weather.before = held;
            weather.error = Some(ApiError {
                code: "RequestTimeout".to_owned(),
                message: "The request was not processed in time.".to_owned(),
                status: 504,
            });
            self.injected.timeouts += 1;
        } else if timeout {
            weather.after = held;
            self.injected.timeouts += 1;
        } else if spike {
            weather.after = Duration::from_millis(random.spike_ms);
            self.injected.spikes += 1;
        }
        weather
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
            self.injected.errors += 1;
            return Admission::Fail(ApiError::throttling());
        }
        match faults.scripted.pop_front() {
            Some(scripted) => {
                self.injected.errors += 1;
                Admission::Fail(scripted.to_api_error())
            }
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

/// The retryable errors an operation may answer: those of [`RETRYABLE_DOCUMENTED`] its model
/// lists, then AWS's common throttling and unavailability answers.
fn retryable_codes(operation: &str) -> Vec<&'static str> {
    let model = Model::get();
    let mut codes: Vec<&'static str> = RETRYABLE_DOCUMENTED
        .into_iter()
        .filter(|code| model.documents_error(operation, code))
        .collect();
    codes.extend(["ThrottlingException", "ServiceUnavailable"]);
    codes
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

    /// All calls of every operation.
    pub(crate) fn all(&self) -> u64 {
        self.operations.values().map(|c| c.total).sum()
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

    fn weather_of(seed: u64, calls: usize) -> Vec<Weather> {
        let mut faults = Faults::default();
        faults.set_random(Some(RandomFaults {
            seed,
            error_rate: 0.3,
            spike_rate: 0.3,
            spike_ms: 50,
            timeout_rate: 0.3,
            timeout_ms: 2000,
        }));
        (0..calls)
            .map(|_| faults.weather("DeletePartnerEventSource"))
            .collect()
    }

    #[test]
    fn random_faults_repeat_with_their_seed() {
        assert_eq!(weather_of(7, 200), weather_of(7, 200));
        assert_ne!(weather_of(7, 200), weather_of(8, 200));
    }

    #[test]
    fn random_errors_are_retryable_ones_the_operation_documents() {
        let weather = weather_of(1, 500);
        let codes: std::collections::BTreeSet<&str> = weather
            .iter()
            .filter_map(|w| w.error.as_ref().map(|e| e.code.as_str()))
            .collect();
        // DeletePartnerEventSource documents InternalException and
        // ConcurrentModificationException, not LimitExceededException.
        assert_eq!(
            codes.into_iter().collect::<Vec<_>>(),
            [
                "ConcurrentModificationException",
                "InternalException",
                "RequestTimeout",
                "ServiceUnavailable",
                "ThrottlingException"
            ]
        );
        let unavailable = weather
            .iter()
            .filter_map(|w| w.error.as_ref())
            .find(|e| e.code == "ServiceUnavailable");
        assert_eq!(unavailable.map(|e| e.status), Some(503));
        // A call lost before the service saw it is held; one whose answer was lost is held
        // after it took effect.
        assert!(
            weather
                .iter()
                .any(|w| w.before == Duration::from_secs(2) && w.error.is_some())
        );
        assert!(
            weather
                .iter()
                .any(|w| w.after == Duration::from_secs(2) && w.error.is_none())
        );
        assert!(weather.iter().any(|w| w.after == Duration::from_millis(50)));
        assert!(weather.iter().any(|w| *w == Weather::default()));
    }

    #[test]
    fn injected_faults_are_counted_by_kind() {
        let mut faults = Faults::default();
        faults.set_random(Some(RandomFaults {
            seed: 3,
            error_rate: 0.2,
            spike_rate: 0.2,
            spike_ms: 10,
            timeout_rate: 0.2,
            timeout_ms: 10,
        }));
        let weather: Vec<Weather> = (0..300)
            .map(|_| faults.weather("CreatePartnerEventSource"))
            .collect();
        let injected = faults.injected();
        let timeouts = weather
            .iter()
            .filter(|w| {
                w.before > Duration::ZERO
                    || w.after == Duration::from_millis(10) && w.error.is_none()
            })
            .count();
        assert_eq!(
            injected.errors as usize,
            weather
                .iter()
                .filter(|w| w.error.is_some() && w.before.is_zero())
                .count()
        );
        assert!(injected.errors > 0 && injected.timeouts > 0 && injected.spikes > 0);
        assert_eq!(injected.failed_calls(), injected.errors + injected.timeouts);
        assert!(timeouts as u64 >= injected.timeouts);
        faults.clear(None);
        assert_eq!(
            faults.weather("CreatePartnerEventSource"),
            Weather::default()
        );
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
