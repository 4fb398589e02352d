//! The AWS request budget: one token bucket per (AWS account, region), because that is how
//! EventBridge counts its quotas (50 requests/s by default for every API but `PutEvents`; the
//! quota page does not say whether that is per API, so every partner call counts against one
//! budget).
//!
//! What a plain token bucket does not give, and this one does:
//! - **User-driven work first.** A call is [`Priority::User`] (a new or changed object, a
//!   deletion, a retry of either) or [`Priority::Resync`] (the drift check of a Ready object).
//!   A resync call never takes a token while a user call waits, and resync passes are admitted
//!   only within their share (`--resync-budget`) of the rate, so new objects are never starved.
//! - **A resync interval that stretches** when the objects outgrow that share: N objects each
//!   checked every `resync` need `N / resync` calls/s; when that is more than the share, the
//!   effective interval becomes `N / share`.
//! - **AIMD on throttling.** A throttling answer (`crate::error::is_throttling`: `ThrottlingException`,
//!   `TooManyRequestsException`, HTTP 429, ...) halves the rate (never below a floor);
//!   every success adds back a small step, so several replicas, shards or scripts sharing one
//!   account converge on their fair part of the quota instead of fighting for it.
//!
//! governor's buckets have a fixed rate and no priorities, hence this small one of our own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Whose work a call serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Priority {
    /// A new or changed object, a deletion, or a retry of either.
    User,
    /// The periodic drift check of an object that is already settled.
    Resync,
}

/// The settings every budget starts from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetSettings {
    /// Calls per second at most (the AWS quota, or the part of it this operator may use).
    pub rate: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: u32,
    /// The fraction of `rate`, in (0, 1], that resyncs may use.
    pub resync_share: f64,
}

impl BudgetSettings {
    /// Checks the settings, naming the flag at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(format!(
                "--aws-rps must be a positive number, got {}",
                self.rate
            ));
        }
        if self.burst == 0 {
            return Err("--aws-burst must be at least 1".into());
        }
        if !(self.resync_share > 0.0 && self.resync_share <= 1.0) {
            return Err(format!(
                "--resync-budget must be a fraction in (0, 1], got {}",
                self.resync_share
            ));
        }
        Ok(())
    }
}

/// The lowest the rate goes under throttling, as a fraction of the configured rate.
const FLOOR: f64 = 0.05;
/// What one success adds back to a throttled rate, as a fraction of the configured rate.
const STEP: f64 = 0.01;

#[derive(Debug)]
struct Bucket {
    /// The rate in force now (AIMD moves it between the floor and the configured rate).
    rate: f64,
    tokens: f64,
    refilled: Instant,
    /// Resync admissions: a second bucket at `rate * share`, one token per resync pass.
    resync_tokens: f64,
    /// User calls waiting for a token.
    users_waiting: usize,
    /// Objects whose resyncs this budget pays for.
    population: usize,
}

/// One AWS account's budget in one region.
#[derive(Debug)]
pub struct Budget {
    settings: BudgetSettings,
    bucket: Mutex<Bucket>,
}

impl Budget {
    /// A full budget.
    pub fn new(settings: BudgetSettings) -> Self {
        Budget {
            settings,
            bucket: Mutex::new(Bucket {
                rate: settings.rate,
                tokens: f64::from(settings.burst),
                refilled: Instant::now(),
                resync_tokens: 1.0,
                users_waiting: 0,
                population: 0,
            }),
        }
    }

    fn bucket(&self) -> MutexGuard<'_, Bucket> {
        // The bucket holds plain numbers; a panic elsewhere cannot leave it inconsistent.
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.duration_since(b.refilled).as_secs_f64();
        b.refilled = now;
        b.tokens = (b.tokens + elapsed * b.rate).min(f64::from(self.settings.burst));
        let resync_rate = b.rate * self.settings.resync_share;
        b.resync_tokens = (b.resync_tokens + elapsed * resync_rate).min(1.0);
        b
    }

    /// Waits for a token. Resync calls wait while any user call does.
    ///
    /// Cancellation-safe: a user call is counted as waiting by a guard, so a future dropped
    /// while it waits (a shutdown, a timeout around it) takes its count with it instead of
    /// leaving a phantom waiter that would hold back every resync from then on.
    pub async fn acquire(&self, priority: Priority) {
        let mut waiting = Waiting {
            budget: self,
            counted: false,
        };
        loop {
            let wait = {
                let mut b = self.bucket();
                let others_first = priority == Priority::Resync && b.users_waiting > 0;
                if b.tokens >= 1.0 && !others_first {
                    b.tokens -= 1.0;
                    if waiting.counted {
                        b.users_waiting -= 1;
                        waiting.counted = false;
                    }
                    return;
                }
                if priority == Priority::User && !waiting.counted {
                    b.users_waiting += 1;
                    waiting.counted = true;
                }
                // Until the next token; a resync behind user calls looks again half a token
                // later.
                let tokens_short = if b.tokens >= 1.0 { 0.5 } else { 1.0 - b.tokens };
                Duration::from_secs_f64(tokens_short / b.rate)
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Admits one resync pass within the resync share, or says how long until one fits.
    pub fn admit_resync(&self) -> Result<(), Duration> {
        let mut b = self.bucket();
        if b.resync_tokens >= 1.0 {
            b.resync_tokens -= 1.0;
            return Ok(());
        }
        let resync_rate = b.rate * self.settings.resync_share;
        Err(Duration::from_secs_f64(
            (1.0 - b.resync_tokens) / resync_rate,
        ))
    }

    /// AWS said the account is over its quota: halve the rate, not below the floor.
    pub fn throttled(&self) {
        let mut b = self.bucket();
        b.rate = (b.rate / 2.0).max(self.settings.rate * FLOOR);
        b.tokens = b.tokens.min(0.0);
    }

    /// A call went through: step the rate back towards the configured one.
    pub fn succeeded(&self) {
        let mut b = self.bucket();
        b.rate = (b.rate + self.settings.rate * STEP).min(self.settings.rate);
    }

    /// How many user calls wait for a token now.
    pub fn users_waiting(&self) -> usize {
        self.bucket().users_waiting
    }

    /// The rate in force now, in calls per second.
    pub fn rate(&self) -> f64 {
        self.bucket().rate
    }

    /// The configured rate, the ceiling `rate` returns to once AWS stops throttling.
    pub fn configured_rate(&self) -> f64 {
        self.settings.rate
    }

    /// Records how many objects this budget resyncs.
    pub fn set_population(&self, objects: usize) {
        self.bucket().population = objects;
    }

    /// The interval at which every object can be resynced within the resync share, never
    /// shorter than `base`: `objects / (rate * share)` once the objects outgrow the share.
    pub fn resync_interval(&self, base: Duration) -> Duration {
        let b = self.bucket();
        let share = self.settings.rate * self.settings.resync_share;
        let needed = Duration::from_secs_f64(b.population as f64 / share);
        base.max(needed)
    }
}

/// A user call counted among the waiters of a budget; uncounts it when dropped before its
/// token came.
struct Waiting<'a> {
    budget: &'a Budget,
    counted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.budget.bucket().users_waiting -= 1;
        }
    }
}

/// Which budget a call draws from: the AWS account the identity resolves to, and the region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BudgetKey {
    /// The AWS account ID, or `default` for the operator's own identity.
    pub account: String,
    /// The AWS region.
    pub region: String,
}

/// Every budget of the process, made on first use.
#[derive(Debug)]
pub struct Budgets {
    settings: BudgetSettings,
    budgets: Mutex<HashMap<BudgetKey, Arc<Budget>>>,
}

impl Budgets {
    /// No budgets yet; each starts from `settings`.
    pub fn new(settings: BudgetSettings) -> Result<Self, String> {
        settings.validate()?;
        Ok(Budgets {
            settings,
            budgets: Mutex::new(HashMap::new()),
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<BudgetKey, Arc<Budget>>> {
        // The map only caches budgets; a poisoned lock still holds usable ones.
        self.budgets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The budget of `key`.
    pub fn get(&self, key: &BudgetKey) -> Arc<Budget> {
        self.get_with_rate(key, None)
    }

    /// The budget of `key`; when it is made now, at `rate` calls per second if given (a
    /// PartnerAccount's own share) instead of the operator's.
    pub fn get_with_rate(&self, key: &BudgetKey, rate: Option<f64>) -> Arc<Budget> {
        self.map()
            .entry(key.clone())
            .or_insert_with(|| {
                let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
                Arc::new(Budget::new(BudgetSettings {
                    rate: rate.unwrap_or(self.settings.rate),
                    ..self.settings
                }))
            })
            .clone()
    }

    /// Every budget made so far, by key.
    pub fn all(&self) -> Vec<(BudgetKey, Arc<Budget>)> {
        let mut all: Vec<_> = self
            .map()
            .iter()
            .map(|(k, b)| (k.clone(), b.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: f64, burst: u32, resync_share: f64) -> BudgetSettings {
        BudgetSettings {
            rate,
            burst,
            resync_share,
        }
    }

    #[test]
    fn settings_outside_their_range_name_the_flag() {
        for (s, flag) in [
            (settings(0.0, 1, 0.2), "--aws-rps"),
            (settings(f64::NAN, 1, 0.2), "--aws-rps"),
            (settings(5.0, 0, 0.2), "--aws-burst"),
            (settings(5.0, 1, 0.0), "--resync-budget"),
            (settings(5.0, 1, 1.5), "--resync-budget"),
        ] {
            let err = s.validate().unwrap_err();
            assert!(err.contains(flag), "{s:?}: {err}");
        }
        assert_eq!(settings(5.0, 1, 1.0).validate(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_burst_are_paced_at_the_rate() {
        let budget = Budget::new(settings(10.0, 2, 0.2));
        let start = Instant::now();
        for _ in 0..12 {
            budget.acquire(Priority::User).await;
        }
        // Two from the burst, ten more at 10/s: about a second of (virtual) time.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(950) && took <= Duration::from_millis(1100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_resync_call_never_overtakes_a_waiting_user_call() {
        let budget = Arc::new(Budget::new(settings(10.0, 1, 1.0)));
        budget.acquire(Priority::User).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let resync = tokio::spawn({
            let (budget, order) = (budget.clone(), order.clone());
            async move {
                budget.acquire(Priority::Resync).await;
                order.lock().unwrap().push("resync");
            }
        });
        tokio::task::yield_now().await;
        let users = tokio::spawn({
            let (budget, order) = (budget.clone(), order.clone());
            async move {
                for _ in 0..3 {
                    budget.acquire(Priority::User).await;
                    order.lock().unwrap().push("user");
                }
            }
        });
        users.await.unwrap();
        resync.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["user", "user", "user", "resync"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_call_dropped_while_waiting_does_not_hold_back_resyncs() {
        let budget = Budget::new(settings(10.0, 1, 1.0));
        budget.acquire(Priority::User).await;
        // A user call that gives up (a timeout around it) while it waits for the next token.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(10), budget.acquire(Priority::User)).await;
        assert!(
            gave_up.is_err(),
            "the bucket was empty: the call had to wait"
        );
        assert_eq!(budget.users_waiting(), 0, "no phantom waiter is left");
        // A resync gets the next token once it comes.
        tokio::time::timeout(Duration::from_secs(1), budget.acquire(Priority::Resync))
            .await
            .expect("a resync is not held back by a call that is gone");
    }

    #[tokio::test(start_paused = true)]
    async fn resync_passes_are_admitted_within_their_share() {
        let budget = Budget::new(settings(50.0, 50, 0.2));
        assert_eq!(budget.admit_resync(), Ok(()));
        // The share is 10/s: the next admission is a tenth of a second away.
        let wait = budget.admit_resync().unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        tokio::time::advance(wait).await;
        assert_eq!(budget.admit_resync(), Ok(()));
    }

    #[test]
    fn the_resync_interval_stretches_when_objects_outgrow_the_share() {
        let budget = Budget::new(settings(5.0, 10, 0.2));
        let base = Duration::from_secs(300);
        budget.set_population(100);
        assert_eq!(
            budget.resync_interval(base),
            base,
            "100 objects fit in 5 min at 1/s"
        );
        budget.set_population(3000);
        // 3,000 objects at one resync call per second: every 3,000 s.
        assert_eq!(budget.resync_interval(base), Duration::from_secs(3000));
    }

    #[test]
    fn throttling_halves_the_rate_and_successes_bring_it_back() {
        let budget = Budget::new(settings(50.0, 50, 0.2));
        budget.throttled();
        assert_eq!(budget.rate(), 25.0);
        for _ in 0..10 {
            budget.throttled();
        }
        assert_eq!(budget.rate(), 50.0 * FLOOR, "never below the floor");
        for _ in 0..200 {
            budget.succeeded();
        }
        assert_eq!(
            budget.rate(),
            50.0,
            "back to the configured rate, not beyond"
        );
    }

    #[test]
    fn one_budget_per_account_and_region() {
        let budgets = Budgets::new(settings(5.0, 10, 0.2)).unwrap();
        let key = |account: &str, region: &str| BudgetKey {
            account: account.into(),
            region: region.into(),
        };
        let a = budgets.get(&key("111111111111", "eu-west-1"));
        let same = budgets.get(&key("111111111111", "eu-west-1"));
        let other_region = budgets.get(&key("111111111111", "us-east-1"));
        assert!(Arc::ptr_eq(&a, &same));
        assert!(!Arc::ptr_eq(&a, &other_region));
        assert_eq!(budgets.all().len(), 2);
    }
}
