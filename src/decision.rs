//! The reconcile decision: a pure function over plain values.
//!
//! One reconcile pass is a short conversation with EventBridge. [`decide`] looks at what is
//! known — the spec, who owns the source name in the cluster, the current status, and every AWS
//! answer received so far in this pass — and returns either the next call to make or the final
//! [`Outcome`]: the status to write, the Events to publish, when to look again, and whether the
//! finalizer may go. The reconciler performs calls and outcomes; it never decides.
//!
//! Because nothing here does I/O or reads a clock, every case of the design's reconcile
//! semantics is a plain unit test at the bottom of this file.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::error::{AwsError, AwsErrorClass};
use crate::resource::{DeletionPolicy, PartnerEventSourceSpec, PartnerEventSourceStatus};

/// Condition type: the source exists in AWS for `spec.account`.
pub const READY: &str = "Ready";
/// Condition type: the customer created the matching event bus (state `ACTIVE`).
pub const ACTIVATED: &str = "Activated";

/// `Ready` reasons.
pub mod reason {
    /// The operator created the source.
    pub const CREATED: &str = "Created";
    /// The source already existed for `spec.account` and was taken over.
    pub const ADOPTED: &str = "Adopted";
    /// The source had vanished from AWS (deleted or expired out of band) and was created again.
    pub const RECREATED: &str = "Recreated";
    /// A transient AWS error; the operator retries with backoff.
    pub const RETRYING: &str = "Retrying";
    /// The spec breaks a rule; nothing is sent to AWS until it is fixed.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Another object, or another AWS account, holds the source name.
    pub const NAME_CONFLICT: &str = "NameConflict";
    /// Neither the object nor the operator names a region.
    pub const NO_REGION: &str = "NoRegion";
    /// Deletion in AWS is in progress or retrying.
    pub const DELETING: &str = "Deleting";
    /// `Activated`: the customer's matching event bus exists.
    pub const ACTIVE: &str = "Active";
    /// `Activated`: the customer has not created (or has deactivated) the matching bus.
    pub const PENDING: &str = "Pending";
    /// `Activated`: the source was deleted under the customer's bus.
    pub const DELETED: &str = "Deleted";
    /// `Activated`: the state is not known yet.
    pub const UNKNOWN: &str = "Unknown";
}

/// Settings the decision depends on, from the operator's configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Deletion policy for objects that do not set one.
    pub default_deletion_policy: DeletionPolicy,
    /// How often a Ready object is checked again for drift and activation.
    pub resync: Duration,
    /// How long to wait after a terminal error before looking again.
    pub terminal_requeue: Duration,
    /// How often an object that lost a name conflict checks whether the owner is gone.
    pub conflict_recheck: Duration,
    /// Delay after the first transient failure; doubles with each further one.
    pub backoff_base: Duration,
    /// Longest delay between retries.
    pub backoff_cap: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_deletion_policy: DeletionPolicy::Delete,
            resync: Duration::from_secs(300),
            terminal_requeue: Duration::from_secs(600),
            conflict_recheck: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
        }
    }
}

/// What the cluster says about the objects that share this object's `spec.name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// This object is the oldest with its name: it manages the source.
    Owner,
    /// An older object (`namespace/name`) manages the source.
    ConflictWith(String),
}

/// One object's claim on a source name, as seen in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
    /// `spec.name`.
    pub source_name: String,
    /// The object already manages the source (its status carries the ARN).
    pub holds_source: bool,
    /// The object's spec is valid; an invalid one never reaches AWS, so it claims nothing.
    pub valid: bool,
}

impl Claim {
    fn sort_key(&self) -> (bool, Option<Timestamp>, bool, &str, &str) {
        // Objects without a creation time (never the case for stored objects) sort last.
        (
            self.created.is_none(),
            self.created,
            !self.holds_source,
            &self.namespace,
            &self.name,
        )
    }
}

/// Decides who owns `me.source_name`: the oldest claim wins. Creation times have one-second
/// precision, so within a second the object that already manages the source keeps it, and
/// only then namespace and name decide, the same way in every replica and every pass.
pub fn ownership<'a>(me: &'a Claim, all: impl IntoIterator<Item = &'a Claim>) -> Ownership {
    let oldest = all
        .into_iter()
        .filter(|c| c.valid && c.source_name == me.source_name)
        .chain(std::iter::once(me))
        .min_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    match oldest {
        Some(o) if (o.namespace.as_str(), o.name.as_str()) != (&me.namespace, &me.name) => {
            Ownership::ConflictWith(format!("{}/{}", o.namespace, o.name))
        }
        _ => Ownership::Owner,
    }
}

/// One account a source is shared with, from `ListPartnerEventSourceAccounts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceAccount {
    /// The customer account.
    pub account: String,
    /// `PENDING`, `ACTIVE` or `DELETED`.
    pub state: Option<String>,
    /// When the source was created.
    pub creation_time: Option<Timestamp>,
    /// When a pending source expires.
    pub expiration_time: Option<Timestamp>,
}

/// An EventBridge call the decision can ask for. The arguments always come from the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsCall {
    /// `CreatePartnerEventSource(spec.name, spec.account)`.
    Create,
    /// `ListPartnerEventSourceAccounts(spec.name)`, all pages.
    ListAccounts,
    /// `DescribePartnerEventSource(spec.name)`.
    Describe,
    /// `DeletePartnerEventSource(spec.name, spec.account)`.
    Delete,
}

impl AwsCall {
    /// The EventBridge operation name.
    pub fn operation(self) -> &'static str {
        match self {
            AwsCall::Create => "CreatePartnerEventSource",
            AwsCall::ListAccounts => "ListPartnerEventSourceAccounts",
            AwsCall::Describe => "DescribePartnerEventSource",
            AwsCall::Delete => "DeletePartnerEventSource",
        }
    }
}

/// What EventBridge answered to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The ARN of the new source, or why it failed.
    Create(Result<String, AwsError>),
    /// Every account the source is shared with.
    ListAccounts(Result<Vec<SourceAccount>, AwsError>),
    /// The ARN of the existing source.
    Describe(Result<String, AwsError>),
    /// Deletion done, or why it failed.
    Delete(Result<(), AwsError>),
}

/// Everything the decision looks at.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// The object's spec.
    pub spec: &'a PartnerEventSourceSpec,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The object carries a deletion timestamp.
    pub deleting: bool,
    /// Who owns the source name in the cluster.
    pub ownership: &'a Ownership,
    /// The region to use: `spec.region`, else the operator's.
    pub region: Option<&'a str>,
    /// The status as last written.
    pub status: Option<&'a PartnerEventSourceStatus>,
    /// AWS answers received so far in this pass, in order.
    pub answers: &'a [Answer],
    /// Transient failures in a row before this pass.
    pub failures: u32,
    /// A random number in `[0, 1)` for jitter.
    pub jitter: f64,
    /// The current time.
    pub now: Timestamp,
}

/// The next thing the reconciler must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Make this EventBridge call and decide again with its answer appended.
    Call(AwsCall),
    /// The pass is over.
    Done(Outcome),
}

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
        }
    }
}

/// A Kubernetes Event to publish about the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Warning rather than Normal.
    pub warning: bool,
    /// Short PascalCase reason.
    pub reason: &'static str,
    /// What the operator did, PascalCase.
    pub action: &'static str,
    /// Human-readable detail.
    pub message: String,
}

/// The end of a pass.
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

/// Delay before retry number `failures + 1`: exponential from `base`, capped at `cap`, with
/// jitter that keeps it within the upper half so delays still grow from one failure to the next.
pub fn retry_delay(failures: u32, jitter: f64, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(failures.min(31)));
    let full = exp.min(cap);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Decides the next step of a reconcile pass.
pub fn decide(facts: &Facts<'_>, settings: &Settings) -> Step {
    if facts.deleting {
        decide_delete(facts, settings)
    } else {
        decide_apply(facts, settings)
    }
}

fn decide_apply(f: &Facts<'_>, s: &Settings) -> Step {
    if let Err(errors) = f.spec.validate() {
        let message = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let notes = warn_on_entry(f, reason::INVALID_SPEC, "Validate", &message);
        return done(
            not_ready(f, reason::INVALID_SPEC, &message),
            notes,
            Requeue::AwaitChange,
            0,
            PassResult::InvalidSpec,
        );
    }
    if let Ownership::ConflictWith(owner) = f.ownership {
        let message = format!(
            "{owner} already manages partner event source {}; this object is not sent to AWS",
            f.spec.name
        );
        let notes = warn_on_entry(f, reason::NAME_CONFLICT, "CheckOwnership", &message);
        return done(
            not_ready(f, reason::NAME_CONFLICT, &message),
            notes,
            Requeue::After(s.conflict_recheck),
            0,
            PassResult::Conflict,
        );
    }
    if f.region.is_none() {
        let message = "no AWS region: set spec.region or start the operator with --region";
        return done(
            not_ready(f, reason::NO_REGION, message),
            vec![warning(reason::NO_REGION, "Validate", message.into())],
            Requeue::After(s.terminal_requeue),
            0,
            PassResult::Terminal,
        );
    }

    let known_arn = f.status.and_then(|st| st.arn.as_deref());
    let Some(last) = f.answers.last() else {
        // A source we created before is checked with a read; only an unknown one is created.
        return Step::Call(if known_arn.is_some() {
            AwsCall::ListAccounts
        } else {
            AwsCall::Create
        });
    };
    match last {
        Answer::Create(Ok(_)) => Step::Call(AwsCall::ListAccounts),
        Answer::Create(Err(e)) => match e.class {
            AwsErrorClass::AlreadyExists => Step::Call(AwsCall::ListAccounts),
            _ => failed(f, s, AwsCall::Create, e),
        },
        Answer::ListAccounts(Ok(accounts)) => {
            match accounts.iter().find(|a| a.account == f.spec.account) {
                Some(entry) => match arn_in_hand(f) {
                    Some(arn) => ready(f, s, arn, Some(entry)),
                    None => Step::Call(AwsCall::Describe),
                },
                None if accounts.is_empty() => after_not_found(f, s),
                None => {
                    let others = accounts
                        .iter()
                        .map(|a| a.account.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let message = format!(
                        "partner event source {} already exists in AWS for account {others}, not {}; \
                     choose another spec.name or delete that source",
                        f.spec.name, f.spec.account
                    );
                    let notes = warn_on_entry(f, reason::NAME_CONFLICT, "Create", &message);
                    done(
                        not_ready(f, reason::NAME_CONFLICT, &message),
                        notes,
                        Requeue::After(s.terminal_requeue),
                        0,
                        PassResult::Conflict,
                    )
                }
            }
        }
        Answer::ListAccounts(Err(e)) => match e.class {
            AwsErrorClass::NotFound => after_not_found(f, s),
            _ => match arn_in_hand(f) {
                // The source exists as far as we know; a failed state lookup must not
                // hide its ARN or flip Ready. Keep what we have and look again soon.
                Some(arn) => {
                    let mut status = base_status(f);
                    status.arn = Some(arn.to_owned());
                    keep_ready_condition(f, &mut status, arn);
                    let (requeue, failures) = backoff(f, s);
                    done(
                        status,
                        vec![warning(
                            "StateLookupFailed",
                            "ListAccounts",
                            format!("{} failed: {e}", AwsCall::ListAccounts.operation()),
                        )],
                        requeue,
                        failures,
                        PassResult::Ready,
                    )
                }
                None => failed(f, s, AwsCall::ListAccounts, e),
            },
        },
        Answer::Describe(Ok(arn)) => {
            let entry = f.answers.iter().rev().find_map(|a| match a {
                Answer::ListAccounts(Ok(list)) => list.iter().find(|x| x.account == f.spec.account),
                _ => None,
            });
            ready(f, s, arn, entry)
        }
        Answer::Describe(Err(e)) => match e.class {
            // Listed a moment ago, gone now: deleted in between. Start over soon.
            AwsErrorClass::NotFound => retrying(f, s, AwsCall::Describe, e),
            _ => failed(f, s, AwsCall::Describe, e),
        },
        Answer::Delete(_) => unreachable_answer(f, s),
    }
}

/// The source is not shared with anyone (or does not exist).
fn after_not_found(f: &Facts<'_>, s: &Settings) -> Step {
    let created = f.answers.iter().find_map(|a| match a {
        Answer::Create(Ok(arn)) => Some(arn.as_str()),
        _ => None,
    });
    let tried_create = f.answers.iter().any(|a| matches!(a, Answer::Create(_)));
    match (created, tried_create) {
        // Just created and not listed yet: EventBridge is eventually consistent. The ARN is
        // known, so the object is Ready; the state follows on a quick re-check.
        (Some(arn), _) => {
            let mut outcome = match ready(f, s, arn, None) {
                Step::Done(o) => o,
                step => return step,
            };
            outcome.requeue = Requeue::After(s.backoff_base.max(Duration::from_secs(5)));
            Step::Done(outcome)
        }
        // AlreadyExists, then not found: deleted in between. Try again shortly.
        (None, true) => {
            let e = AwsError {
                class: AwsErrorClass::Retryable,
                code: "ResourceNotFoundException".into(),
                message: "the source existed a moment ago and is gone now".into(),
                request_id: None,
            };
            retrying(f, s, AwsCall::ListAccounts, &e)
        }
        // The source we knew is gone from AWS: recreate it.
        (None, false) => Step::Call(AwsCall::Create),
    }
}

/// The ARN known in this pass: from a create or describe answer, or from the status when this
/// pass did not need to create (a known source being re-checked).
fn arn_in_hand<'a>(f: &'a Facts<'_>) -> Option<&'a str> {
    let from_answers = f.answers.iter().rev().find_map(|a| match a {
        Answer::Create(Ok(arn)) | Answer::Describe(Ok(arn)) => Some(arn.as_str()),
        _ => None,
    });
    let adopting = f
        .answers
        .iter()
        .any(|a| matches!(a, Answer::Create(Err(e)) if e.class == AwsErrorClass::AlreadyExists));
    match from_answers {
        Some(arn) => Some(arn),
        // A source found by AlreadyExists must be described: the status ARN may be stale.
        None if adopting => None,
        None => f.status.and_then(|st| st.arn.as_deref()),
    }
}

fn ready(f: &Facts<'_>, s: &Settings, arn: &str, entry: Option<&SourceAccount>) -> Step {
    let created = f.answers.iter().any(|a| matches!(a, Answer::Create(Ok(_))));
    let adopted = f
        .answers
        .iter()
        .any(|a| matches!(a, Answer::Create(Err(e)) if e.class == AwsErrorClass::AlreadyExists));
    let was_known = f.status.and_then(|st| st.arn.as_deref()).is_some();
    let previous_state = f.status.and_then(|st| st.state.clone());

    let mut notes = Vec::new();
    let ready_reason = if created && was_known {
        notes.push(normal(
            reason::RECREATED,
            "Create",
            format!(
                "partner event source {} was missing in AWS (deleted or expired out of band); created it again for account {}",
                f.spec.name, f.spec.account
            ),
        ));
        reason::RECREATED
    } else if created {
        notes.push(normal(
            reason::CREATED,
            "Create",
            format!(
                "created partner event source {arn} for account {}",
                f.spec.account
            ),
        ));
        reason::CREATED
    } else if adopted {
        notes.push(normal(
            reason::ADOPTED,
            "Adopt",
            format!(
                "partner event source {arn} already existed for account {}; adopted it",
                f.spec.account
            ),
        ));
        reason::ADOPTED
    } else {
        match self::ready_reason(f) {
            Some(r @ (reason::CREATED | reason::ADOPTED | reason::RECREATED)) => r,
            _ => reason::CREATED,
        }
    };

    let mut status = base_status(f);
    status.arn = Some(arn.to_owned());
    match entry {
        Some(e) => {
            status.state = e.state.clone();
            status.creation_time = e.creation_time.map(Time);
            status.expiration_time = e.expiration_time.map(Time);
        }
        None => {
            status.state = None;
            status.creation_time = None;
            status.expiration_time = None;
        }
    }
    let message = format!(
        "partner event source exists in AWS for account {}",
        f.spec.account
    );
    set_condition(f, &mut status, READY, "True", ready_reason, &message);

    let (activated, act_reason, act_message) = match status.state.as_deref() {
        Some("ACTIVE") => (
            "True",
            reason::ACTIVE,
            format!("account {} created the matching event bus", f.spec.account),
        ),
        Some("PENDING") => (
            "False",
            reason::PENDING,
            format!(
                "waiting for account {} to create an event bus named {}",
                f.spec.account, f.spec.name
            ),
        ),
        Some("DELETED") => (
            "False",
            reason::DELETED,
            "the source was deleted under the customer's event bus".to_owned(),
        ),
        _ => ("Unknown", reason::UNKNOWN, "state not known yet".to_owned()),
    };
    if was_known && previous_state.as_deref() != status.state.as_deref() {
        match status.state.as_deref() {
            Some("ACTIVE") => notes.push(normal("Activated", "Observe", act_message.clone())),
            Some("PENDING") if previous_state.as_deref() == Some("ACTIVE") => notes.push(normal(
                "Deactivated",
                "Observe",
                format!("account {} deactivated the event source", f.spec.account),
            )),
            _ => {}
        }
    }
    set_condition(
        f,
        &mut status,
        ACTIVATED,
        activated,
        act_reason,
        &act_message,
    );

    // Spread resyncs so that objects created together do not all hit AWS at once.
    let resync = s.resync.mul_f64(0.9 + 0.2 * f.jitter.clamp(0.0, 1.0));
    done(status, notes, Requeue::After(resync), 0, PassResult::Ready)
}

fn decide_delete(f: &Facts<'_>, s: &Settings) -> Step {
    let policy = f.spec.deletion_policy.unwrap_or(s.default_deletion_policy);
    let release = |note: Option<Note>| {
        Step::Done(Outcome {
            status: None,
            notes: note.into_iter().collect(),
            requeue: Requeue::AwaitChange,
            release: true,
            failures: 0,
            result: PassResult::Released,
        })
    };
    if let Ownership::ConflictWith(owner) = f.ownership {
        return release(Some(normal(
            "Released",
            "Delete",
            format!("{owner} manages the partner event source; left it in AWS"),
        )));
    }
    if f.spec.validate().is_err() || f.region.is_none() {
        // Never sent to AWS, so there is nothing there to delete.
        return release(None);
    }
    if ready_reason(f) == Some(reason::NAME_CONFLICT) {
        // The name belongs to a source shared with another account: not ours to delete.
        return release(Some(normal(
            "Released",
            "Delete",
            "the source in AWS belongs to another account; left it untouched".into(),
        )));
    }
    if policy == DeletionPolicy::Retain {
        return release(Some(normal(
            "Retained",
            "Delete",
            format!(
                "deletionPolicy is Retain: left partner event source {} in AWS",
                f.spec.name
            ),
        )));
    }
    match f.answers.last() {
        None => Step::Call(AwsCall::Delete),
        Some(Answer::Delete(Ok(()))) => deleted(f),
        Some(Answer::Delete(Err(e))) => match e.class {
            AwsErrorClass::NotFound => deleted(f),
            AwsErrorClass::Retryable => {
                let (requeue, failures) = backoff(f, s);
                let message = format!(
                    "{} failed: {e}; retrying (attempt {failures})",
                    AwsCall::Delete.operation()
                );
                done(
                    not_ready(f, reason::DELETING, &message),
                    vec![warning(reason::RETRYING, "Delete", message)],
                    requeue,
                    failures,
                    PassResult::Retrying,
                )
            }
            _ => {
                let cause = terminal_reason(e);
                let message = format!(
                    "{} failed: {e}; the finalizer stays until this is fixed \
                     (or set spec.deletionPolicy to Retain to leave the source in AWS)",
                    AwsCall::Delete.operation()
                );
                done(
                    not_ready(f, cause, &message),
                    vec![warning(cause, "Delete", message)],
                    Requeue::After(s.terminal_requeue),
                    0,
                    PassResult::Terminal,
                )
            }
        },
        Some(_) => unreachable_answer(f, s),
    }
}

fn deleted(f: &Facts<'_>) -> Step {
    Step::Done(Outcome {
        status: None,
        notes: vec![normal(
            "Deleted",
            "Delete",
            format!(
                "deleted partner event source {} for account {}",
                f.spec.name, f.spec.account
            ),
        )],
        requeue: Requeue::AwaitChange,
        release: true,
        failures: 0,
        result: PassResult::Deleted,
    })
}

/// An answer to a call this branch never asks for: a bug in the reconciler. Report it as a
/// retryable problem rather than panicking in a controller.
fn unreachable_answer(f: &Facts<'_>, s: &Settings) -> Step {
    let e = AwsError {
        class: AwsErrorClass::Retryable,
        code: "UnexpectedAnswer".into(),
        message: "the reconciler recorded an answer to a call it was not asked to make".into(),
        request_id: None,
    };
    retrying(f, s, AwsCall::ListAccounts, &e)
}

/// A failed call: retry transient errors, stop on terminal ones.
fn failed(f: &Facts<'_>, s: &Settings, call: AwsCall, e: &AwsError) -> Step {
    match e.class {
        AwsErrorClass::Terminal(_) => {
            let cause = terminal_reason(e);
            let message = format!("{} failed: {e}", call.operation());
            let notes = warn_on_entry(f, cause, call_action(call), &message);
            done(
                not_ready(f, cause, &message),
                notes,
                Requeue::After(s.terminal_requeue),
                0,
                PassResult::Terminal,
            )
        }
        _ => retrying(f, s, call, e),
    }
}

fn retrying(f: &Facts<'_>, s: &Settings, call: AwsCall, e: &AwsError) -> Step {
    let (requeue, failures) = backoff(f, s);
    let message = format!(
        "{} failed: {e}; retrying (attempt {failures})",
        call.operation()
    );
    done(
        not_ready(f, reason::RETRYING, &message),
        vec![warning(
            reason::RETRYING,
            call_action(call),
            message.clone(),
        )],
        requeue,
        failures,
        PassResult::Retrying,
    )
}

fn backoff(f: &Facts<'_>, s: &Settings) -> (Requeue, u32) {
    let delay = retry_delay(f.failures, f.jitter, s.backoff_base, s.backoff_cap);
    (Requeue::After(delay), f.failures.saturating_add(1))
}

fn terminal_reason(e: &AwsError) -> &'static str {
    match e.class {
        AwsErrorClass::Terminal(cause) => cause.reason(),
        _ => reason::RETRYING,
    }
}

fn call_action(call: AwsCall) -> &'static str {
    match call {
        AwsCall::Create => "Create",
        AwsCall::ListAccounts => "ListAccounts",
        AwsCall::Describe => "Describe",
        AwsCall::Delete => "Delete",
    }
}

fn ready_reason<'a>(f: &'a Facts<'_>) -> Option<&'a str> {
    f.status
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == READY))
        .map(|c| c.reason.as_str())
}

/// The status as it stands, with the generation this pass looked at.
fn base_status(f: &Facts<'_>) -> PartnerEventSourceStatus {
    let mut status = f.status.cloned().unwrap_or_default();
    status.observed_generation = f.generation;
    status
}

/// The current status with `Ready=False` for the given reason; what AWS told us before
/// (ARN, state, times) stays, because it is still the best knowledge there is.
fn not_ready(f: &Facts<'_>, reason: &str, message: &str) -> PartnerEventSourceStatus {
    let mut status = base_status(f);
    set_condition(f, &mut status, READY, "False", reason, message);
    status
}

fn keep_ready_condition(f: &Facts<'_>, status: &mut PartnerEventSourceStatus, arn: &str) {
    let is_true = status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == "True");
    if !is_true {
        let message = format!("partner event source {arn} exists in AWS");
        set_condition(f, status, READY, "True", reason::CREATED, &message);
    }
}

/// Sets a condition, keeping `lastTransitionTime` when the status value does not change so
/// that an unchanged object produces an identical status (and no write).
fn set_condition(
    f: &Facts<'_>,
    status: &mut PartnerEventSourceStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
) {
    let previous = status.conditions.iter().find(|c| c.type_ == type_);
    let transition = match previous {
        Some(p) if p.status == value => p.last_transition_time.clone(),
        _ => Time(seconds(f.now)),
    };
    let condition = Condition {
        type_: type_.to_owned(),
        status: value.to_owned(),
        reason: reason.to_owned(),
        message: truncate(message, 32 * 1024),
        observed_generation: f.generation,
        last_transition_time: transition,
    };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(slot) => *slot = condition,
        None => status.conditions.push(condition),
    }
}

/// Kubernetes stores condition times with second precision; compare like with like.
fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

fn done(
    status: PartnerEventSourceStatus,
    notes: Vec<Note>,
    requeue: Requeue,
    failures: u32,
    result: PassResult,
) -> Step {
    Step::Done(Outcome {
        status: Some(status),
        notes,
        requeue,
        release: false,
        failures,
        result,
    })
}

/// A Warning about a state the object enters, published once: not again while the status
/// already reports that reason for this generation.
fn warn_on_entry(
    f: &Facts<'_>,
    reason: &'static str,
    action: &'static str,
    message: &str,
) -> Vec<Note> {
    let reported = ready_reason(f) == Some(reason)
        && f.status.and_then(|st| st.observed_generation) == f.generation;
    if reported {
        vec![]
    } else {
        vec![warning(reason, action, message.to_owned())]
    }
}

fn warning(reason: &'static str, action: &'static str, message: String) -> Note {
    Note {
        warning: true,
        reason,
        action,
        message,
    }
}

fn normal(reason: &'static str, action: &'static str, message: String) -> Note {
    Note {
        warning: false,
        reason,
        action,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "aws.partner/acme.com/customer-4711/orders";
    const ACCOUNT: &str = "123456789012";
    const ARN: &str =
        "arn:aws:events:eu-west-1::event-source/aws.partner/acme.com/customer-4711/orders";

    fn spec() -> PartnerEventSourceSpec {
        PartnerEventSourceSpec {
            name: NAME.into(),
            account: ACCOUNT.into(),
            region: None,
            deletion_policy: None,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn aws_error(code: &str, class: AwsErrorClass) -> AwsError {
        AwsError {
            class,
            code: code.into(),
            message: format!("{code} message"),
            request_id: Some("req-1".into()),
        }
    }

    fn err(code: &str) -> AwsError {
        aws_error(code, crate::error::classify(code, Some(400)))
    }

    fn pending() -> SourceAccount {
        SourceAccount {
            account: ACCOUNT.into(),
            state: Some("PENDING".into()),
            creation_time: Some(now()),
            expiration_time: Some(Timestamp::from_second(1_800_000_000 + 14 * 86_400).unwrap()),
        }
    }

    /// One object as the reconciler would see it.
    struct Case {
        spec: PartnerEventSourceSpec,
        deleting: bool,
        ownership: Ownership,
        region: Option<&'static str>,
        status: Option<PartnerEventSourceStatus>,
        failures: u32,
        jitter: f64,
    }

    impl Case {
        fn new() -> Case {
            Case {
                spec: spec(),
                deleting: false,
                ownership: Ownership::Owner,
                region: Some("eu-west-1"),
                status: None,
                failures: 0,
                jitter: 0.5,
            }
        }

        /// Runs a whole pass, answering each call with `aws`; returns the calls made and the
        /// outcome.
        fn run(&self, mut aws: impl FnMut(AwsCall) -> Answer) -> (Vec<AwsCall>, Outcome) {
            let settings = Settings::default();
            let mut answers = Vec::new();
            let mut calls = Vec::new();
            loop {
                let facts = Facts {
                    spec: &self.spec,
                    generation: Some(1),
                    deleting: self.deleting,
                    ownership: &self.ownership,
                    region: self.region,
                    status: self.status.as_ref(),
                    answers: &answers,
                    failures: self.failures,
                    jitter: self.jitter,
                    now: now(),
                };
                match decide(&facts, &settings) {
                    Step::Call(call) => {
                        assert!(calls.len() < 8, "no pass needs this many calls: {calls:?}");
                        calls.push(call);
                        answers.push(aws(call));
                    }
                    Step::Done(outcome) => return (calls, outcome),
                }
            }
        }
    }

    fn condition<'a>(outcome: &'a Outcome, type_: &str) -> &'a Condition {
        outcome
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
            .unwrap_or_else(|| panic!("no {type_} condition in {outcome:?}"))
    }

    fn no_aws(call: AwsCall) -> Answer {
        panic!("{call:?} must not be called")
    }

    /// A healthy AWS in which the source does not exist yet.
    fn fresh_aws(call: AwsCall) -> Answer {
        match call {
            AwsCall::Create => Answer::Create(Ok(ARN.into())),
            AwsCall::ListAccounts => Answer::ListAccounts(Ok(vec![pending()])),
            AwsCall::Describe => Answer::Describe(Ok(ARN.into())),
            AwsCall::Delete => Answer::Delete(Ok(())),
        }
    }

    #[test]
    fn create_succeeds_and_status_carries_arn_state_and_times() {
        let (calls, outcome) = Case::new().run(fresh_aws);
        assert_eq!(calls, [AwsCall::Create, AwsCall::ListAccounts]);
        assert_eq!(outcome.result, PassResult::Ready);
        let status = outcome.status.as_ref().unwrap();
        assert_eq!(status.arn.as_deref(), Some(ARN));
        assert_eq!(status.state.as_deref(), Some("PENDING"));
        assert_eq!(status.creation_time, Some(Time(now())));
        assert!(status.expiration_time.is_some());
        assert_eq!(status.observed_generation, Some(1));
        let ready = condition(&outcome, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Created")
        );
        let activated = condition(&outcome, ACTIVATED);
        assert_eq!(
            (activated.status.as_str(), activated.reason.as_str()),
            ("False", "Pending")
        );
        assert_eq!(outcome.notes.len(), 1);
        assert_eq!(outcome.notes[0].reason, "Created");
        assert!(!outcome.notes[0].warning);
        // Requeued at the resync interval (with at most 10% jitter) to catch drift.
        let Requeue::After(d) = outcome.requeue else {
            panic!("{outcome:?}")
        };
        assert!(
            d >= Duration::from_secs(270) && d <= Duration::from_secs(330),
            "{d:?}"
        );
        assert_eq!(outcome.failures, 0);
    }

    #[test]
    fn already_exists_for_the_same_account_is_adopted_with_the_described_arn() {
        let described = "arn:aws:events:eu-west-1::event-source/described";
        let (calls, outcome) = Case::new().run(|call| match call {
            AwsCall::Create => Answer::Create(Err(err("ResourceAlreadyExistsException"))),
            AwsCall::Describe => Answer::Describe(Ok(described.into())),
            other => fresh_aws(other),
        });
        assert_eq!(
            calls,
            [AwsCall::Create, AwsCall::ListAccounts, AwsCall::Describe]
        );
        assert_eq!(outcome.result, PassResult::Ready);
        assert_eq!(
            outcome.status.as_ref().unwrap().arn.as_deref(),
            Some(described)
        );
        assert_eq!(condition(&outcome, READY).reason, "Adopted");
        assert_eq!(outcome.notes[0].reason, "Adopted");
    }

    #[test]
    fn already_exists_for_another_account_is_a_name_conflict_without_retry_storm() {
        let (calls, outcome) = Case::new().run(|call| match call {
            AwsCall::Create => Answer::Create(Err(err("ResourceAlreadyExistsException"))),
            AwsCall::ListAccounts => Answer::ListAccounts(Ok(vec![SourceAccount {
                account: "999999999999".into(),
                ..pending()
            }])),
            other => no_aws(other),
        });
        assert_eq!(calls, [AwsCall::Create, AwsCall::ListAccounts]);
        assert_eq!(outcome.result, PassResult::Conflict);
        let ready = condition(&outcome, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "NameConflict")
        );
        assert!(ready.message.contains("999999999999"), "{}", ready.message);
        assert_eq!(
            outcome.requeue,
            Requeue::After(Settings::default().terminal_requeue)
        );
        assert_eq!(outcome.failures, 0);
        assert!(outcome.status.as_ref().unwrap().arn.is_none());
    }

    #[test]
    fn transient_errors_retry_with_growing_capped_jittered_delay() {
        for code in [
            "ConcurrentModificationException",
            "LimitExceededException",
            "ThrottlingException",
            "InternalException",
        ] {
            let mut delays = Vec::new();
            for failures in 0..12 {
                let mut case = Case::new();
                case.failures = failures;
                let (calls, outcome) = case.run(|call| match call {
                    AwsCall::Create => Answer::Create(Err(err(code))),
                    other => no_aws(other),
                });
                assert_eq!(calls, [AwsCall::Create]);
                assert_eq!(outcome.result, PassResult::Retrying, "{code}");
                assert_eq!(outcome.failures, failures + 1);
                let ready = condition(&outcome, READY);
                assert_eq!(
                    (ready.status.as_str(), ready.reason.as_str()),
                    ("False", "Retrying")
                );
                assert!(ready.message.contains(code), "{}", ready.message);
                assert!(outcome.notes[0].warning && outcome.notes[0].reason == "Retrying");
                let Requeue::After(d) = outcome.requeue else {
                    panic!()
                };
                delays.push(d);
            }
            assert!(
                delays.windows(2).all(|w| w[0] <= w[1]),
                "{code}: {delays:?}"
            );
            assert!(delays[0] < Duration::from_secs(2), "{delays:?}");
            assert!(*delays.last().unwrap() <= Settings::default().backoff_cap);
            assert!(delays[11] == delays[10], "capped: {delays:?}");
        }
    }

    #[test]
    fn timeouts_and_connection_errors_retry() {
        for code in ["Timeout", "ConnectionError"] {
            let (_, outcome) = Case::new().run(|call| match call {
                AwsCall::Create => Answer::Create(Err(aws_error(code, AwsErrorClass::Retryable))),
                other => no_aws(other),
            });
            assert_eq!(outcome.result, PassResult::Retrying, "{code}");
        }
    }

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
    fn terminal_errors_give_an_actionable_reason_and_a_slow_requeue() {
        let cases = [
            ("OperationDisabledException", "OperationDisabled"),
            ("AccessDeniedException", "AccessDenied"),
            ("ValidationException", "InvalidRequest"),
            ("UnrecognizedClientException", "InvalidCredentials"),
        ];
        for (code, reason) in cases {
            let (calls, outcome) = Case::new().run(|call| match call {
                AwsCall::Create => Answer::Create(Err(err(code))),
                other => no_aws(other),
            });
            assert_eq!(calls, [AwsCall::Create]);
            assert_eq!(outcome.result, PassResult::Terminal, "{code}");
            let ready = condition(&outcome, READY);
            assert_eq!(
                (ready.status.as_str(), ready.reason.as_str()),
                ("False", reason)
            );
            assert!(ready.message.contains(code));
            assert_eq!(
                outcome.requeue,
                Requeue::After(Settings::default().terminal_requeue)
            );
            assert_eq!(outcome.failures, 0, "terminal errors do not grow a backoff");
        }
        // Reported once: the same terminal error on the next pass adds no second Event.
        let (_, first) = Case::new().run(|_| Answer::Create(Err(err("AccessDeniedException"))));
        let mut again = Case::new();
        again.status = first.status.clone();
        let (_, second) = again.run(|_| Answer::Create(Err(err("AccessDeniedException"))));
        assert!(second.notes.is_empty());
        assert_eq!(second.status, first.status);
    }

    #[test]
    fn invalid_spec_is_reported_without_any_aws_call() {
        let mut case = Case::new();
        case.spec.name = "acme.com/orders".into();
        case.spec.account = "12345678901".into();
        let (calls, outcome) = case.run(no_aws);
        assert!(calls.is_empty());
        assert_eq!(outcome.result, PassResult::InvalidSpec);
        assert_eq!(outcome.requeue, Requeue::AwaitChange, "no retry loop");
        let ready = condition(&outcome, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(ready.message.contains("spec.name") && ready.message.contains("spec.account"));
        assert_eq!(outcome.notes[0].reason, "InvalidSpec");
    }

    #[test]
    fn a_missing_region_is_terminal_without_aws_calls() {
        let mut case = Case::new();
        case.region = None;
        let (calls, outcome) = case.run(no_aws);
        assert!(calls.is_empty());
        assert_eq!(condition(&outcome, READY).reason, "NoRegion");
    }

    #[test]
    fn the_older_of_two_objects_with_one_name_owns_it() {
        let claim = |ns: &str, name: &str, second: i64| Claim {
            namespace: ns.into(),
            name: name.into(),
            created: Some(Timestamp::from_second(second).unwrap()),
            source_name: NAME.into(),
            holds_source: false,
            valid: true,
        };
        let older = claim("team-b", "orders", 100);
        let newer = claim("team-a", "orders", 200);
        let unrelated = Claim {
            source_name: "aws.partner/acme.com/other/orders".into(),
            ..claim("team-c", "x", 1)
        };
        let all = [older.clone(), newer.clone(), unrelated];
        assert_eq!(ownership(&older, &all), Ownership::Owner);
        assert_eq!(
            ownership(&newer, &all),
            Ownership::ConflictWith("team-b/orders".into())
        );
        // Same creation second: namespace then name break the tie, the same way everywhere.
        let twin = claim("team-a", "orders", 100);
        assert_eq!(
            ownership(&twin, &[older.clone(), twin.clone()]),
            Ownership::Owner
        );
        assert_eq!(
            ownership(&older, &[older.clone(), twin.clone()]),
            Ownership::ConflictWith("team-a/orders".into())
        );
        assert_eq!(ownership(&older, std::iter::empty()), Ownership::Owner);
    }

    #[test]
    fn an_object_with_an_invalid_spec_claims_no_name() {
        let claim = |ns: &str, second: i64, valid: bool| Claim {
            namespace: ns.into(),
            name: "orders".into(),
            created: Some(Timestamp::from_second(second).unwrap()),
            source_name: NAME.into(),
            holds_source: false,
            valid,
        };
        let broken_but_older = claim("team-a", 1, false);
        let valid = claim("team-b", 2, true);
        assert_eq!(
            ownership(&valid, &[broken_but_older, valid.clone()]),
            Ownership::Owner
        );
    }

    #[test]
    fn within_one_second_the_object_that_manages_the_source_keeps_it() {
        let claim = |ns: &str, holds_source: bool| Claim {
            namespace: ns.into(),
            name: "orders".into(),
            created: Some(Timestamp::from_second(100).unwrap()),
            source_name: NAME.into(),
            holds_source,
            valid: true,
        };
        let ready = claim("team-z", true);
        let newcomer = claim("team-a", false);
        let all = [ready.clone(), newcomer.clone()];
        assert_eq!(ownership(&ready, &all), Ownership::Owner);
        assert_eq!(
            ownership(&newcomer, &all),
            Ownership::ConflictWith("team-z/orders".into())
        );
        // An older object still wins over one that holds the source.
        let older = Claim {
            created: Some(Timestamp::from_second(99).unwrap()),
            ..claim("team-y", false)
        };
        assert_eq!(
            ownership(&ready, &[older.clone(), ready.clone()]),
            Ownership::ConflictWith("team-y/orders".into())
        );
    }

    #[test]
    fn the_non_owner_gets_name_conflict_and_never_reaches_aws() {
        let mut case = Case::new();
        case.ownership = Ownership::ConflictWith("team-b/orders".into());
        let (calls, outcome) = case.run(no_aws);
        assert!(calls.is_empty());
        assert_eq!(outcome.result, PassResult::Conflict);
        let ready = condition(&outcome, READY);
        assert_eq!(ready.reason, "NameConflict");
        assert!(ready.message.contains("team-b/orders"));
        assert_eq!(
            outcome.requeue,
            Requeue::After(Settings::default().conflict_recheck)
        );
    }

    fn ready_status() -> PartnerEventSourceStatus {
        Case::new().run(fresh_aws).1.status.unwrap()
    }

    #[test]
    fn resync_of_a_ready_object_reads_instead_of_creating_and_writes_nothing_new() {
        let status = ready_status();
        let mut case = Case::new();
        case.status = Some(status.clone());
        let (calls, outcome) = case.run(fresh_aws);
        assert_eq!(calls, [AwsCall::ListAccounts]);
        assert_eq!(
            outcome.status.as_ref(),
            Some(&status),
            "unchanged status, so no write"
        );
        assert!(outcome.notes.is_empty());
    }

    #[test]
    fn a_source_deleted_out_of_band_is_recreated_with_an_event() {
        let mut case = Case::new();
        case.status = Some(ready_status());
        let mut listed = 0;
        let (calls, outcome) = case.run(|call| match call {
            AwsCall::ListAccounts if listed == 0 => {
                listed += 1;
                Answer::ListAccounts(Err(err("ResourceNotFoundException")))
            }
            other => fresh_aws(other),
        });
        assert_eq!(
            calls,
            [
                AwsCall::ListAccounts,
                AwsCall::Create,
                AwsCall::ListAccounts
            ]
        );
        assert_eq!(outcome.result, PassResult::Ready);
        assert_eq!(outcome.notes[0].reason, "Recreated");
        assert_eq!(condition(&outcome, READY).reason, "Recreated");
    }

    #[test]
    fn a_failed_state_lookup_never_hides_a_known_arn() {
        let mut case = Case::new();
        case.status = Some(ready_status());
        let (calls, outcome) = case.run(|call| match call {
            AwsCall::ListAccounts => Answer::ListAccounts(Err(err("ThrottlingException"))),
            other => no_aws(other),
        });
        assert_eq!(calls, [AwsCall::ListAccounts]);
        let status = outcome.status.as_ref().unwrap();
        assert_eq!(status.arn.as_deref(), Some(ARN));
        assert_eq!(
            status.state.as_deref(),
            Some("PENDING"),
            "last known state stays"
        );
        assert_eq!(condition(&outcome, READY).status, "True");
        assert_eq!(outcome.failures, 1);
        assert!(matches!(outcome.requeue, Requeue::After(d) if d < Duration::from_secs(2)));
    }

    #[test]
    fn activation_flips_the_activated_condition_both_ways() {
        let mut case = Case::new();
        case.status = Some(ready_status());
        let active = |call| match call {
            AwsCall::ListAccounts => Answer::ListAccounts(Ok(vec![SourceAccount {
                state: Some("ACTIVE".into()),
                expiration_time: None,
                ..pending()
            }])),
            other => no_aws(other),
        };
        let (_, outcome) = case.run(active);
        let activated = condition(&outcome, ACTIVATED);
        assert_eq!(
            (activated.status.as_str(), activated.reason.as_str()),
            ("True", "Active")
        );
        assert_eq!(
            outcome.status.as_ref().unwrap().state.as_deref(),
            Some("ACTIVE")
        );
        assert_eq!(outcome.status.as_ref().unwrap().expiration_time, None);
        assert_eq!(outcome.notes[0].reason, "Activated");

        case.status = outcome.status.clone();
        let (_, back) = case.run(fresh_aws);
        let activated = condition(&back, ACTIVATED);
        assert_eq!(
            (activated.status.as_str(), activated.reason.as_str()),
            ("False", "Pending")
        );
        assert_eq!(back.notes[0].reason, "Deactivated");
    }

    #[test]
    fn a_source_created_but_not_yet_listed_is_ready_with_its_arn() {
        let (calls, outcome) = Case::new().run(|call| match call {
            AwsCall::ListAccounts => Answer::ListAccounts(Err(err("ResourceNotFoundException"))),
            other => fresh_aws(other),
        });
        assert_eq!(calls, [AwsCall::Create, AwsCall::ListAccounts]);
        assert_eq!(outcome.status.as_ref().unwrap().arn.as_deref(), Some(ARN));
        assert_eq!(condition(&outcome, READY).status, "True");
        assert_eq!(condition(&outcome, ACTIVATED).status, "Unknown");
        assert!(matches!(outcome.requeue, Requeue::After(d) if d <= Duration::from_secs(5)));
    }

    fn deleting(policy: Option<DeletionPolicy>) -> Case {
        let mut case = Case::new();
        case.deleting = true;
        case.spec.deletion_policy = policy;
        case.status = Some(ready_status());
        case
    }

    #[test]
    fn delete_policy_deletes_the_source_then_releases_the_finalizer() {
        for policy in [None, Some(DeletionPolicy::Delete)] {
            let (calls, outcome) = deleting(policy).run(fresh_aws);
            assert_eq!(calls, [AwsCall::Delete]);
            assert!(outcome.release);
            assert_eq!(outcome.result, PassResult::Deleted);
            assert_eq!(outcome.notes[0].reason, "Deleted");
        }
        // Already gone counts as deleted.
        let (_, outcome) =
            deleting(None).run(|_| Answer::Delete(Err(err("ResourceNotFoundException"))));
        assert!(outcome.release);
    }

    #[test]
    fn delete_retries_transient_errors_and_keeps_the_finalizer() {
        let (_, outcome) =
            deleting(None).run(|_| Answer::Delete(Err(err("ConcurrentModificationException"))));
        assert!(!outcome.release);
        assert_eq!(outcome.result, PassResult::Retrying);
        assert_eq!(outcome.failures, 1);
        assert_eq!(condition(&outcome, READY).reason, "Deleting");
        let (_, outcome) =
            deleting(None).run(|_| Answer::Delete(Err(err("OperationDisabledException"))));
        assert!(!outcome.release);
        assert_eq!(outcome.result, PassResult::Terminal);
        assert!(condition(&outcome, READY).message.contains("Retain"));
    }

    #[test]
    fn retain_policy_releases_without_touching_aws() {
        let (calls, outcome) = deleting(Some(DeletionPolicy::Retain)).run(no_aws);
        assert!(calls.is_empty());
        assert!(outcome.release);
        assert_eq!(outcome.notes[0].reason, "Retained");
    }

    #[test]
    fn the_default_deletion_policy_comes_from_settings() {
        let case = deleting(None);
        let settings = Settings {
            default_deletion_policy: DeletionPolicy::Retain,
            ..Settings::default()
        };
        let facts = Facts {
            spec: &case.spec,
            generation: Some(1),
            deleting: true,
            ownership: &case.ownership,
            region: case.region,
            status: case.status.as_ref(),
            answers: &[],
            failures: 0,
            jitter: 0.5,
            now: now(),
        };
        let Step::Done(outcome) = decide(&facts, &settings) else {
            panic!("must not call AWS")
        };
        assert!(outcome.release);
    }

    #[test]
    fn deleting_a_conflicting_object_never_deletes_the_owners_source() {
        let mut case = deleting(None);
        case.ownership = Ownership::ConflictWith("team-b/orders".into());
        let (calls, outcome) = case.run(no_aws);
        assert!(calls.is_empty());
        assert!(outcome.release);
        assert_eq!(outcome.result, PassResult::Released);

        // Nor one that lost to another AWS account.
        let mut case = deleting(None);
        let (_, conflict) = Case::new().run(|call| match call {
            AwsCall::Create => Answer::Create(Err(err("ResourceAlreadyExistsException"))),
            _ => Answer::ListAccounts(Ok(vec![SourceAccount {
                account: "999999999999".into(),
                ..pending()
            }])),
        });
        case.status = conflict.status;
        let (calls, outcome) = case.run(no_aws);
        assert!(calls.is_empty() && outcome.release);
    }

    #[test]
    fn deleting_an_invalid_object_needs_no_aws_call() {
        let mut case = deleting(None);
        case.spec.account = "abc".into();
        let (calls, outcome) = case.run(no_aws);
        assert!(calls.is_empty() && outcome.release);
    }

    #[test]
    fn an_unchanged_condition_keeps_its_transition_time() {
        let status = ready_status();
        let mut case = Case::new();
        case.status = Some(status.clone());
        let (_, later) = case.run(fresh_aws);
        let before = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            condition(&later, READY).last_transition_time,
            before.last_transition_time
        );
    }
}
