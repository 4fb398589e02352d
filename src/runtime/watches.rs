//! The health of the watches every pass depends on: whether each cache has synced, and whether
//! a watch has been failing for longer than a grace period (an RBAC change, a CRD removed, an
//! API server away). `/readyz` answers from here, the `watch_healthy` gauge and the ERROR line
//! that names a failing watch come from here, and nothing here ever ends the process: a
//! restarting API server is a reason to wait, not to crash.
//!
//! [`WatchState`] and [`review`] are pure; [`Watches`] holds the states of the three watches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kube::runtime::watcher;
use tokio::time::Instant;
use tracing::{error, info};

use crate::metrics::Metrics;
use crate::runtime::preflight::{self, Answer, Problem, Rbac, Resource};

/// The watches a pass waits on.
pub const WATCHED: [Resource; 3] = [
    Resource::PartnerEventSources,
    Resource::PartnerAccounts,
    Resource::Namespaces,
];

/// How long a watch may fail before it counts as unhealthy: long enough for a watch to be
/// re-established after an API server restart, short enough that a lost permission shows soon.
pub const GRACE: Duration = Duration::from_secs(30);

/// One watch as last seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchState {
    /// The initial list has completed once: the cache holds every object.
    pub synced: bool,
    /// Since when the watch fails, and the last answer; `None` while it works.
    pub failing: Option<(Instant, String)>,
    /// Whether the failure was reported (logged at ERROR, gauge at 0).
    pub reported: bool,
}

impl WatchState {
    /// The watch delivered an event: it works.
    pub fn ok(&mut self, init_done: bool) {
        self.synced |= init_done;
        self.failing = None;
    }

    /// The watch failed with `answer` at `now`; a failure in a row keeps its start.
    pub fn failed(&mut self, now: Instant, answer: String) {
        let since = self.failing.as_ref().map_or(now, |(since, _)| *since);
        self.failing = Some((since, answer));
    }

    /// Failing for longer than the grace period at `now`.
    pub fn unhealthy(&self, now: Instant, grace: Duration) -> bool {
        self.failing
            .as_ref()
            .is_some_and(|(since, _)| now.duration_since(*since) >= grace)
    }
}

/// A change of a watch's health to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// It has been failing for `for_` with this answer.
    Failing {
        /// How long it has failed.
        for_: Duration,
        /// The API server's last answer.
        answer: String,
    },
    /// It works again after a reported failure.
    Recovered,
}

/// What changed for one watch since it was last reported, and marks it reported.
pub fn review(state: &mut WatchState, now: Instant, grace: Duration) -> Option<Change> {
    match (&state.failing, state.reported) {
        (Some((since, answer)), false) if state.unhealthy(now, grace) => {
            let change = Change::Failing {
                for_: now.duration_since(*since),
                answer: answer.clone(),
            };
            state.reported = true;
            Some(change)
        }
        (None, true) => {
            state.reported = false;
            Some(Change::Recovered)
        }
        _ => None,
    }
}

/// Why a leader is not ready, or `Ok` when every watch has synced and none is unhealthy.
pub fn readiness(
    states: &BTreeMap<Resource, WatchState>,
    now: Instant,
    grace: Duration,
) -> Result<(), String> {
    for resource in WATCHED {
        let state = states.get(&resource).cloned().unwrap_or_default();
        if state.unhealthy(now, grace) {
            let answer = state.failing.map(|(_, a)| a).unwrap_or_default();
            return Err(format!(
                "the watch of {} is failing: {answer}",
                resource.display()
            ));
        }
        if !state.synced {
            return Err(format!(
                "waiting for the {} cache to sync",
                resource.display()
            ));
        }
    }
    Ok(())
}

/// The states of the watches of one leading term.
pub struct Watches {
    states: Mutex<BTreeMap<Resource, WatchState>>,
    rbac: Rbac,
}

impl Watches {
    /// Nothing synced yet.
    pub fn new(rbac: Rbac) -> Self {
        Watches {
            states: Mutex::new(BTreeMap::new()),
            rbac,
        }
    }

    fn states(&self) -> MutexGuard<'_, BTreeMap<Resource, WatchState>> {
        // Plain values replaced whole; a poisoned lock still holds usable ones.
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what a watch of `resource` delivered (after the cache applied it).
    pub fn observe<K>(&self, resource: Resource, item: &Result<watcher::Event<K>, watcher::Error>) {
        let mut states = self.states();
        let state = states.entry(resource).or_default();
        match item {
            Ok(event) => state.ok(matches!(event, watcher::Event::InitDone)),
            Err(e) => state.failed(Instant::now(), self.explain(resource, e)),
        }
    }

    /// The watch error with the fix, where the answer says what it is.
    fn explain(&self, resource: Resource, err: &watcher::Error) -> String {
        let api = match err {
            watcher::Error::InitialListFailed(e)
            | watcher::Error::WatchStartFailed(e)
            | watcher::Error::WatchFailed(e) => Some(preflight::classify(e)),
            _ => None,
        };
        let fix = match api {
            Some(Answer::NotFound) => Some(Problem::NotServed(resource).describe(&self.rbac)),
            Some(Answer::Forbidden(_)) => {
                let need = preflight::needs(&self.rbac, "")
                    .into_iter()
                    .find(|n| n.resource == resource && n.verb == "list");
                need.map(|n| Problem::Forbidden(n).describe(&self.rbac))
            }
            _ => None,
        };
        match fix {
            Some(fix) => format!("{err}; {fix}"),
            None => err.to_string(),
        }
    }

    /// Why this leader is not ready, if it is not.
    pub fn readiness(&self) -> Result<(), String> {
        readiness(&self.states(), Instant::now(), GRACE)
    }

    /// Reports what changed: an ERROR line and the gauge at 0 for a watch failing beyond the
    /// grace period, an Info line and the gauge at 1 when it recovers.
    pub fn report(&self, metrics: &Metrics) {
        let now = Instant::now();
        let mut states = self.states();
        for resource in WATCHED {
            let state = states.entry(resource).or_default();
            let healthy = state.synced && !state.unhealthy(now, GRACE);
            metrics.set_watch_healthy(&resource.display(), healthy);
            match review(state, now, GRACE) {
                Some(Change::Failing { for_, answer }) => error!(
                    resource = %resource.display(),
                    failing_for = ?for_,
                    "watch failing, /readyz answers 503 until it recovers: {answer}"
                ),
                Some(Change::Recovered) => {
                    info!(resource = %resource.display(), "watch recovered")
                }
                None => {}
            }
        }
    }
}

/// How often watch health is reported.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Reports the watches' health until the task is aborted.
pub async fn report_until_aborted(watches: Arc<Watches>, metrics: Arc<Metrics>) {
    loop {
        watches.report(&metrics);
        tokio::time::sleep(REPORT_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_synced() -> BTreeMap<Resource, WatchState> {
        WATCHED
            .into_iter()
            .map(|r| {
                let mut s = WatchState::default();
                s.ok(true);
                (r, s)
            })
            .collect()
    }

    #[test]
    fn ready_only_once_every_cache_a_pass_waits_on_has_synced() {
        let now = Instant::now();
        let mut states = BTreeMap::new();
        let mut sources = WatchState::default();
        sources.ok(true);
        states.insert(Resource::PartnerEventSources, sources);
        let why = readiness(&states, now, GRACE).unwrap_err();
        assert_eq!(
            why,
            "waiting for the partneraccounts.eventbridgepartner.dev cache to sync"
        );
        assert_eq!(readiness(&all_synced(), now, GRACE), Ok(()));
    }

    #[test]
    fn a_failure_turns_readiness_off_only_after_the_grace_period_and_until_it_recovers() {
        let start = Instant::now();
        let mut states = all_synced();
        let ns = states.get_mut(&Resource::Namespaces).unwrap();
        ns.failed(start, "forbidden".into());
        ns.failed(start + Duration::from_secs(10), "still forbidden".into());
        assert_eq!(
            readiness(&states, start + Duration::from_secs(29), GRACE),
            Ok(())
        );
        assert_eq!(
            readiness(&states, start + GRACE, GRACE),
            Err("the watch of namespaces is failing: still forbidden".into())
        );
        states.get_mut(&Resource::Namespaces).unwrap().ok(false);
        assert_eq!(readiness(&states, start + GRACE, GRACE), Ok(()));
    }

    #[test]
    fn a_failing_watch_is_reported_once_and_its_recovery_once() {
        let start = Instant::now();
        let mut state = WatchState::default();
        state.ok(true);
        state.failed(start, "403".into());
        assert_eq!(
            review(&mut state, start + Duration::from_secs(1), GRACE),
            None
        );
        assert_eq!(
            review(&mut state, start + GRACE, GRACE),
            Some(Change::Failing {
                for_: GRACE,
                answer: "403".into()
            })
        );
        assert_eq!(review(&mut state, start + GRACE * 2, GRACE), None, "once");
        state.ok(false);
        assert_eq!(
            review(&mut state, start + GRACE * 2, GRACE),
            Some(Change::Recovered)
        );
        assert_eq!(review(&mut state, start + GRACE * 3, GRACE), None);
    }

    #[test]
    fn a_short_failure_is_never_reported() {
        let start = Instant::now();
        let mut state = WatchState::default();
        state.failed(start, "connection refused".into());
        state.ok(true);
        assert_eq!(review(&mut state, start + GRACE * 2, GRACE), None);
    }
}
