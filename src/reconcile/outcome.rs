//! What a pass ends with, as plain values: the status to write, the Events to publish, when to
//! look again, whether the finalizer may go, and how the pass ended for metrics and logs.

use std::time::Duration;

use crate::resources::PartnerEventSourceStatus;
use crate::resources::conditions::{EventAction, Reason};

/// When to look at the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// After this delay.
    After(Duration),
    /// Only when the object changes.
    AwaitChange,
}

/// How a pass ended, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassResult {
    /// The source exists for `spec.account`.
    Ready,
    /// A transient error; retrying.
    Retrying,
    /// A terminal error; waiting for a person.
    Terminal,
    /// Another object or account holds the name.
    Conflict,
    /// The spec is invalid.
    InvalidSpec,
    /// Cleanup finished: the source was deleted.
    Deleted,
    /// Cleanup finished without touching AWS (Retain, conflict, never created).
    Released,
    /// AWS expired the source; nothing is created.
    Expired,
    /// `Observe`: the source does not exist.
    NotFound,
    /// The paused annotation stops all AWS calls.
    Paused,
    /// Outside the partner account's grant.
    NotPermitted,
}

impl PassResult {
    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PassResult::Ready => "ready",
            PassResult::Retrying => "retrying",
            PassResult::Terminal => "terminal",
            PassResult::Conflict => "conflict",
            PassResult::InvalidSpec => "invalid_spec",
            PassResult::Deleted => "deleted",
            PassResult::Released => "released",
            PassResult::Expired => "expired",
            PassResult::NotFound => "not_found",
            PassResult::Paused => "paused",
            PassResult::NotPermitted => "not_permitted",
        }
    }
}

/// A Kubernetes Event to publish about the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Warning rather than Normal.
    pub warning: bool,
    /// Why.
    pub reason: Reason,
    /// What the operator did.
    pub action: EventAction,
    /// Human-readable detail.
    pub message: String,
}

impl Note {
    /// A Warning Event.
    pub fn warning(reason: Reason, action: EventAction, message: String) -> Note {
        Note {
            warning: true,
            reason,
            action,
            message,
        }
    }

    /// A Normal Event.
    pub fn normal(reason: Reason, action: EventAction, message: String) -> Note {
        Note {
            warning: false,
            reason,
            action,
            message,
        }
    }
}

/// The end of a pass: what to write, what to tell, when to look again.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The status the object should have; `None` leaves it untouched.
    pub status: Option<PartnerEventSourceStatus>,
    /// Events to publish.
    pub notes: Vec<Note>,
    /// When to look again.
    pub requeue: Requeue,
    /// Cleanup is finished: the finalizer may be removed.
    pub release: bool,
    /// Transient failures in a row after this pass (0 after success).
    pub failures: u32,
    /// How the pass ended.
    pub result: PassResult,
}

impl Outcome {
    /// A pass that ends by writing `status`; no Events, no failures, no requeue until changed.
    pub fn write(status: PartnerEventSourceStatus, result: PassResult) -> Outcome {
        Outcome {
            status: Some(status),
            notes: Vec::new(),
            requeue: Requeue::AwaitChange,
            release: false,
            failures: 0,
            result,
        }
    }

    /// A finished cleanup: the finalizer may go; the status is left as it is.
    pub fn release(result: PassResult, note: Option<Note>) -> Outcome {
        Outcome {
            status: None,
            notes: note.into_iter().collect(),
            requeue: Requeue::AwaitChange,
            release: true,
            failures: 0,
            result,
        }
    }

    /// With these Events.
    pub fn notes(mut self, notes: Vec<Note>) -> Outcome {
        self.notes = notes;
        self
    }

    /// Looking again as said.
    pub fn requeue(mut self, requeue: Requeue) -> Outcome {
        self.requeue = requeue;
        self
    }

    /// Backing off: `requeue` after this many failures in a row.
    pub fn backoff(mut self, (requeue, failures): (Requeue, u32)) -> Outcome {
        self.requeue = requeue;
        self.failures = failures;
        self
    }
}

/// How a Ready source came to be, for its reason and Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// This pass created it.
    Created,
    /// This pass created it again after it vanished.
    Recreated,
    /// This pass found it already there for `spec.account`.
    Adopted,
    /// It was known before this pass; the pass only looked.
    Kept,
    /// `Observe`: it exists; the operator only reports it.
    Observed,
}
