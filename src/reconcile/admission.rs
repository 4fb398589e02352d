//! Whether a pass may go on to AWS now, decided from plain values: what kind of pass it is,
//! whether its check is due, the resync share's answer, and how busy the budget is with new
//! objects. The shell asks the budget and the per-object memory, then these functions decide.

use std::time::Duration;

use crate::aws::budget::Priority;
use crate::reconcile::status::{self, Observed};

/// Where the object is in its life, as the API server has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// No deletion timestamp.
    Live,
    /// Deleted: it has a deletion timestamp and waits on the finalizer.
    Deleting,
}

/// What a pass serves, and so its place in the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassKind {
    /// A new or changed object, or a retry of one: user-driven, first in the budget's queue.
    Apply,
    /// The periodic check of a settled object: background work within the resync share.
    Resync,
    /// The cleanup of a deleted object: user-driven, never deferred.
    Delete,
}

impl PassKind {
    /// The kind of a pass over an object as observed.
    pub fn of(lifecycle: Lifecycle, observed: &Observed<'_>) -> PassKind {
        match lifecycle {
            Lifecycle::Deleting => PassKind::Delete,
            Lifecycle::Live if status::is_resync(observed) => PassKind::Resync,
            Lifecycle::Live => PassKind::Apply,
        }
    }

    /// The priority its AWS calls have in the budget.
    pub fn priority(self) -> Priority {
        match self {
            PassKind::Resync => Priority::Resync,
            PassKind::Apply | PassKind::Delete => Priority::User,
        }
    }
}

/// What the shell does with a pass before any AWS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Go on to AWS now.
    Go,
    /// A resync whose check is not due yet: look again then, without an AWS call.
    NotDue(Duration),
    /// A resync that must fit in the resync share of the budget first.
    ResyncShare,
    /// A new or changed object: mark it `Creating` first when `mark`, then see whether the
    /// budget has room ([`defer_new`]).
    New {
        /// Write the `Creating` mark now.
        mark: bool,
    },
}

/// The first decision: by the kind of pass, whether the object is paused or has no region
/// (nothing to budget: the pass reports that without AWS), whether its check is due, and
/// whether the status needs a `Creating` mark (`needs_mark`) not written yet (`marked`).
pub fn gate(
    kind: PassKind,
    budgeted: bool,
    paused: bool,
    due_in: Option<Duration>,
    needs_mark: bool,
    marked: bool,
) -> Gate {
    match kind {
        PassKind::Resync if due_in.is_some() => Gate::NotDue(due_in.unwrap_or_default()),
        PassKind::Delete => Gate::Go,
        _ if paused || !budgeted => Gate::Go,
        PassKind::Resync => Gate::ResyncShare,
        PassKind::Apply => Gate::New {
            mark: needs_mark && !marked,
        },
    }
}

/// A resync the share refused (`wait` until a token) is deferred to a random point (`jitter`
/// in `[0, 1)`) of the effective resync interval, so that a crowd of due objects (after a
/// restart, say) spreads over it instead of spinning.
pub fn defer_resync(wait: Duration, interval: Duration, jitter: f64) -> Duration {
    wait + interval.mul_f64(jitter.clamp(0.0, 1.0))
}

/// How busy the budget is with new objects, for [`defer_new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backlog {
    /// The object is marked `Creating` and not answered yet.
    pub in_backlog: bool,
    /// User calls waiting for a token of its budget now.
    pub users_waiting: usize,
    /// How many workers may wait on the budget for new objects.
    pub waiting_limit: usize,
    /// Objects marked `Creating` and not answered, across the process.
    pub backlog: usize,
    /// The budget's rate now, in calls per second.
    pub rate: f64,
}

/// A new object goes on to AWS unless enough workers already wait on the budget for other new
/// objects; then it is deferred by about its turn in the backlog (`jitter` in `[0, 1)`), so
/// that the remaining workers stay free to mark what arrives next.
pub fn defer_new(b: Backlog, jitter: f64) -> Option<Duration> {
    if !b.in_backlog || b.users_waiting < b.waiting_limit {
        return None;
    }
    let backlog = b.backlog as f64 / b.rate.max(f64::MIN_POSITIVE);
    let turn = backlog * (0.3 + 0.7 * jitter.clamp(0.0, 1.0));
    Some(Duration::from_secs_f64(turn.clamp(0.2, 30.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_resync_before_its_check_is_due_makes_no_call_whatever_triggered_it() {
        assert_eq!(
            gate(
                PassKind::Resync,
                true,
                false,
                Some(SECOND * 7),
                false,
                false
            ),
            Gate::NotDue(SECOND * 7)
        );
        assert_eq!(
            gate(PassKind::Resync, true, false, None, false, false),
            Gate::ResyncShare
        );
    }

    #[test]
    fn deletions_paused_and_unbudgeted_passes_always_go_on() {
        assert_eq!(
            gate(PassKind::Delete, true, false, None, true, false),
            Gate::Go
        );
        assert_eq!(
            gate(PassKind::Apply, true, true, None, true, false),
            Gate::Go
        );
        assert_eq!(
            gate(PassKind::Resync, false, false, None, false, false),
            Gate::Go
        );
        assert_eq!(
            gate(PassKind::Apply, false, false, None, true, false),
            Gate::Go
        );
    }

    #[test]
    fn a_new_object_is_marked_creating_once() {
        assert_eq!(
            gate(PassKind::Apply, true, false, None, true, false),
            Gate::New { mark: true }
        );
        assert_eq!(
            gate(PassKind::Apply, true, false, None, true, true),
            Gate::New { mark: false },
            "the cache may not show the mark yet"
        );
        assert_eq!(
            gate(PassKind::Apply, true, false, None, false, false),
            Gate::New { mark: false },
            "already described: nothing to mark"
        );
    }

    #[test]
    fn a_refused_resync_is_spread_over_the_interval() {
        let interval = SECOND * 100;
        assert_eq!(defer_resync(SECOND, interval, 0.0), SECOND);
        assert_eq!(defer_resync(SECOND, interval, 0.5), SECOND * 51);
    }

    #[test]
    fn a_new_object_waits_its_turn_only_when_the_budget_is_busy() {
        let busy = Backlog {
            in_backlog: true,
            users_waiting: 2,
            waiting_limit: 2,
            backlog: 100,
            rate: 50.0,
        };
        // 100 waiting at 50/s: its turn is within 2 s.
        let wait = defer_new(busy, 1.0).unwrap();
        assert_eq!(wait, SECOND * 2);
        assert_eq!(defer_new(busy, 0.0).unwrap(), Duration::from_secs_f64(0.6));
        let room = Backlog {
            users_waiting: 1,
            ..busy
        };
        assert_eq!(defer_new(room, 1.0), None, "a worker is free");
        let marked_elsewhere = Backlog {
            in_backlog: false,
            ..busy
        };
        assert_eq!(defer_new(marked_elsewhere, 1.0), None);
        let huge = Backlog {
            backlog: 1_000_000,
            ..busy
        };
        assert_eq!(
            defer_new(huge, 1.0),
            Some(SECOND * 30),
            "never longer than 30 s"
        );
    }

    #[test]
    fn resyncs_draw_on_the_resync_share_and_the_rest_is_user_work() {
        assert_eq!(PassKind::Resync.priority(), Priority::Resync);
        assert_eq!(PassKind::Apply.priority(), Priority::User);
        assert_eq!(PassKind::Delete.priority(), Priority::User);
    }
}
