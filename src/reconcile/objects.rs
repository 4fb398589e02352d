//! What the shell remembers about each object between passes, in one map by UID: transient
//! failures in a row (for the backoff), the generation marked `Creating` and not answered yet
//! (the backlog of user-driven work), and when its next check in AWS is due. One entry per
//! object, removed when the object goes, however it goes: its cleanup finished, it was gone
//! when its deletion was looked at, or it left the cache (deleted without a pass, or moved out
//! of the shard) — [`ObjectStates::retain`] sweeps those.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How early a resync may come and still count as due: a requeue may fire a moment early.
const RESYNC_SLACK: Duration = Duration::from_secs(1);

/// One object's memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ObjectState {
    /// Transient failures in a row.
    failures: u32,
    /// The generation marked `Creating` and not answered yet.
    creating: Option<i64>,
    /// When the next check in AWS is due.
    due: Option<Instant>,
}

/// Every object's memory, by UID.
#[derive(Debug, Default)]
pub struct ObjectStates {
    states: Mutex<HashMap<String, ObjectState>>,
}

impl ObjectStates {
    fn states(&self) -> MutexGuard<'_, HashMap<String, ObjectState>> {
        // Plain values replaced field by field; a panic elsewhere cannot leave one half-written.
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Transient failures in a row before this pass.
    pub fn failures(&self, uid: &str) -> u32 {
        self.states().get(uid).map_or(0, |s| s.failures)
    }

    /// Counts one more failure (a pass that could not finish) and returns the new count.
    pub fn bump_failures(&self, uid: &str) -> u32 {
        let mut states = self.states();
        let state = states.entry(uid.to_owned()).or_default();
        state.failures = state.failures.saturating_add(1);
        state.failures
    }

    /// Whether `generation` of the object is marked `Creating` already (the cache may not show
    /// the mark yet).
    pub fn marked(&self, uid: &str, generation: i64) -> bool {
        self.states()
            .get(uid)
            .is_some_and(|s| s.creating == Some(generation))
    }

    /// Records that `generation` of the object was marked `Creating`.
    pub fn mark(&self, uid: &str, generation: i64) {
        self.states().entry(uid.to_owned()).or_default().creating = Some(generation);
    }

    /// Whether the object waits for its first AWS answer.
    pub fn in_backlog(&self, uid: &str) -> bool {
        self.states().get(uid).is_some_and(|s| s.creating.is_some())
    }

    /// How many objects wait for their first AWS answer.
    pub fn backlog(&self) -> usize {
        self.states()
            .values()
            .filter(|s| s.creating.is_some())
            .count()
    }

    /// How long until the object's next check in AWS is due at `now`; `None` when it is due.
    /// The first time this process asks about an object, its check is placed at `jitter` (in
    /// `[0, 1)`) over the last nine tenths of `interval`: the status says it was fine when
    /// the last process looked, and a restart or a change of leader must not sweep AWS with
    /// every object at once.
    pub fn due_in(
        &self,
        uid: &str,
        now: Instant,
        interval: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        let mut states = self.states();
        let state = states.entry(uid.to_owned()).or_default();
        let due = *state
            .due
            .get_or_insert_with(|| now + interval.mul_f64(0.1 + 0.9 * jitter));
        due.checked_duration_since(now)
            .filter(|wait| *wait > RESYNC_SLACK)
    }

    /// Records how a pass ended: no longer in the backlog, `failures` in a row, the next check
    /// due at `due`.
    pub fn passed(&self, uid: &str, failures: u32, due: Instant) {
        let mut states = self.states();
        let state = states.entry(uid.to_owned()).or_default();
        state.creating = None;
        state.failures = failures;
        state.due = Some(due);
    }

    /// Forgets an object that is gone.
    pub fn forget(&self, uid: &str) {
        self.states().remove(uid);
    }

    /// Forgets every object not in `live` (the cache): those deleted or moved out of the shard
    /// without a last pass.
    pub fn retain(&self, live: &HashSet<String>) {
        self.states().retain(|uid, _| live.contains(uid));
    }

    /// How many objects are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.states().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// An object that failed, was marked and had its check placed: every field set.
    fn remembered(states: &ObjectStates, uid: &str, now: Instant) {
        states.bump_failures(uid);
        states.mark(uid, 1);
        states.due_in(uid, now, MINUTE, 0.5);
    }

    #[test]
    fn an_object_whose_cleanup_finished_is_forgotten() {
        let (states, now) = (ObjectStates::default(), Instant::now());
        remembered(&states, "a", now);
        remembered(&states, "b", now);
        states.forget("a");
        assert_eq!(states.len(), 1);
        assert_eq!(states.failures("a"), 0);
        assert!(!states.in_backlog("a"));
    }

    #[test]
    fn an_object_that_left_the_cache_without_a_pass_is_swept() {
        let (states, now) = (ObjectStates::default(), Instant::now());
        for uid in ["deleted", "moved-out-of-the-shard", "live"] {
            remembered(&states, uid, now);
        }
        states.retain(&HashSet::from(["live".to_owned()]));
        assert_eq!(states.len(), 1);
        assert!(states.in_backlog("live"));
        assert_eq!(states.backlog(), 1);
    }

    #[test]
    fn an_object_gone_when_its_deletion_is_looked_at_is_forgotten_like_a_finished_one() {
        // The shell calls `forget` for both: the object is no longer on the API server.
        let (states, now) = (ObjectStates::default(), Instant::now());
        remembered(&states, "gone", now);
        states.forget("gone");
        assert_eq!(states.len(), 0);
    }

    #[test]
    fn a_pass_leaves_the_backlog_and_sets_the_next_check() {
        let (states, now) = (ObjectStates::default(), Instant::now());
        states.mark("a", 3);
        assert!(states.marked("a", 3) && !states.marked("a", 4));
        assert_eq!(states.backlog(), 1);
        states.passed("a", 0, now + MINUTE);
        assert_eq!(states.backlog(), 0);
        assert_eq!(states.due_in("a", now, MINUTE, 0.9), Some(MINUTE));
        assert_eq!(
            states.due_in("a", now + MINUTE, MINUTE, 0.9),
            None,
            "due then"
        );
    }

    #[test]
    fn failures_count_up_and_a_pass_sets_them() {
        let states = ObjectStates::default();
        assert_eq!(states.bump_failures("a"), 1);
        assert_eq!(states.bump_failures("a"), 2);
        states.passed("a", 0, Instant::now());
        assert_eq!(states.failures("a"), 0);
    }

    #[test]
    fn a_failure_count_never_overflows() {
        let states = ObjectStates::default();
        states.passed("a", u32::MAX, Instant::now());
        assert_eq!(states.bump_failures("a"), u32::MAX);
    }

    #[test]
    fn the_first_check_after_a_start_is_spread_over_the_interval() {
        let (states, now) = (ObjectStates::default(), Instant::now());
        let early = states.due_in("a", now, MINUTE, 0.0).unwrap();
        let late = states.due_in("b", now, MINUTE, 0.999).unwrap();
        assert_eq!(early, MINUTE.mul_f64(0.1));
        assert!(late > MINUTE.mul_f64(0.99) && late <= MINUTE, "{late:?}");
        // Asked again, the placement stands.
        assert_eq!(states.due_in("a", now, MINUTE, 0.9), Some(early));
    }
}
