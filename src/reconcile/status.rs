//! Pure pieces that turn what a pass learned into the object's status, its conditions and its
//! Events. Nothing here does I/O or reads a clock: the time comes in with [`Observed`].

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::accounts::Access;
use crate::aws::partner_api::{Operation, SourceAccount};
use crate::error::{AwsError, AwsErrorClass};
use crate::reconcile::backoff::retry_delay;
use crate::reconcile::outcome::{Note, Origin, Outcome, PassResult, Requeue};
use crate::reconcile::ownership::Ownership;
use crate::reconcile::settings::Settings;
use crate::resources::conditions::{
    ACTIVATED, ConditionStatus, EventAction, PAUSED, READY, Reason,
};
use crate::resources::{
    ManagementPolicy, OnExpiry, PAUSED_ANNOTATION, PartnerEventSourceSpec,
    PartnerEventSourceStatus, SourceState,
};

/// What a pass knows about the object before it talks to AWS.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The object's spec.
    pub spec: &'a PartnerEventSourceSpec,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The status as last written.
    pub status: Option<&'a PartnerEventSourceStatus>,
    /// Who owns the source name in the cluster.
    pub ownership: &'a Ownership,
    /// The region to use: `spec.region`, else the operator's.
    pub region: Option<&'a str>,
    /// Transient failures in a row before this pass.
    pub failures: u32,
    /// A random number in `[0, 1)` for jitter.
    pub jitter: f64,
    /// The paused annotation is set.
    pub paused: bool,
    /// What the object's partner account allows.
    pub access: &'a Access,
    /// The partner account to record in the status (empty: the operator's own identity).
    pub partner_account: Option<&'a str>,
    /// The current time.
    pub now: Timestamp,
}

impl Observed<'_> {
    /// The ARN the status already records.
    pub fn known_arn(&self) -> Option<&str> {
        self.status.and_then(|st| st.arn.as_deref())
    }

    /// The `Ready` condition the status already records.
    fn ready_condition(&self) -> Option<&Condition> {
        self.status
            .and_then(|st| st.conditions.iter().find(|c| c.type_ == READY))
    }

    /// The `Ready` reason the status already records; `None` without a `Ready` condition or
    /// for a reason outside the operator's vocabulary.
    pub fn ready_reason(&self) -> Option<Reason> {
        self.ready_condition()
            .and_then(|c| Reason::parse(&c.reason))
    }

    /// The status as it stands, with the generation this pass looked at (and, once the paused
    /// annotation is gone, `Paused=False`).
    fn base_status(&self) -> PartnerEventSourceStatus {
        let mut status = self.status.cloned().unwrap_or_default();
        status.observed_generation = self.generation;
        if status.partner_account.is_none() {
            status.partner_account = self.partner_account.map(str::to_owned);
        }
        let was_paused = status
            .conditions
            .iter()
            .any(|c| c.type_ == PAUSED && c.status == ConditionStatus::True);
        if was_paused && !self.paused {
            let message = "the paused annotation was removed; AWS calls go on";
            self.set_condition(
                &mut status,
                PAUSED,
                ConditionStatus::False,
                Reason::Resumed,
                message,
            );
        }
        status
    }

    /// The policy for a source AWS expired.
    pub fn on_expiry(&self) -> OnExpiry {
        self.spec.on_expiry.unwrap_or_default()
    }

    /// Whether the operator only reports on this source.
    pub fn observe_only(&self) -> bool {
        self.spec.management_policy == Some(ManagementPolicy::Observe)
    }

    /// Whether the source, last seen pending, has passed the expiration time last read: AWS
    /// deleted it on purpose because no one activated it.
    pub fn expired_in_aws(&self) -> bool {
        let Some(st) = self.status else {
            return false;
        };
        st.state == Some(SourceState::Pending)
            && st.expiration_time.as_ref().is_some_and(|t| t.0 <= self.now)
    }

    /// The current status with `Ready=False` for the given reason; what AWS told us before
    /// (ARN, state, times) stays, because it is still the best knowledge there is.
    pub fn not_ready(&self, reason: Reason, message: &str) -> PartnerEventSourceStatus {
        let mut status = self.base_status();
        self.set_condition(&mut status, READY, ConditionStatus::False, reason, message);
        status
    }

    /// Sets a condition, keeping `lastTransitionTime` when the status value does not change so
    /// that an unchanged object produces an identical status (and no write).
    fn set_condition(
        &self,
        status: &mut PartnerEventSourceStatus,
        type_: &str,
        value: ConditionStatus,
        reason: Reason,
        message: &str,
    ) {
        let previous = status.conditions.iter().find(|c| c.type_ == type_);
        let transition = match previous {
            Some(p) if p.status == value => p.last_transition_time.clone(),
            _ => Time(seconds(self.now)),
        };
        let condition = Condition {
            type_: type_.to_owned(),
            status: value.as_str().to_owned(),
            reason: reason.as_str().to_owned(),
            message: truncate(message, 32 * 1024),
            observed_generation: self.generation,
            last_transition_time: transition,
        };
        match status.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(slot) => *slot = condition,
            None => status.conditions.push(condition),
        }
    }

    /// A Warning about a state the object enters, published once: not again while the status
    /// already reports that reason for this generation.
    pub fn warn_on_entry(&self, reason: Reason, action: EventAction, message: &str) -> Vec<Note> {
        let reported = self.ready_reason() == Some(reason)
            && self.status.and_then(|st| st.observed_generation) == self.generation;
        if reported {
            vec![]
        } else {
            vec![Note::warning(reason, action, message.to_owned())]
        }
    }

    /// The next retry after one more transient failure, and the count it makes.
    pub fn backoff(&self, s: &Settings) -> (Requeue, u32) {
        let delay = retry_delay(self.failures, self.jitter, s.backoff_base, s.backoff_cap);
        (Requeue::After(delay), self.failures.saturating_add(1))
    }

    /// The resync of a Ready object, spread so that objects created together do not all hit
    /// AWS at once.
    pub fn resync(&self, s: &Settings) -> Requeue {
        Requeue::After(s.resync.mul_f64(0.9 + 0.2 * self.jitter.clamp(0.0, 1.0)))
    }
}

/// The status that says a new object was seen and its source is on the way
/// (`Ready=False, reason=Creating`), for an object that will be created and whose status does
/// not describe this generation yet; `None` otherwise.
pub fn creating(o: &Observed<'_>) -> Option<PartnerEventSourceStatus> {
    let described = o
        .status
        .is_some_and(|st| st.observed_generation == o.generation);
    let will_create = o.spec.validate().is_ok()
        && *o.access == Access::Granted
        && !o.paused
        && !o.observe_only()
        && *o.ownership == Ownership::Owner
        && o.region.is_some()
        && o.known_arn().is_none();
    if described || !will_create {
        return None;
    }
    let message = format!(
        "creating partner event source {} for account {}",
        o.spec.name, o.spec.account
    );
    Some(o.not_ready(Reason::Creating, &message))
}

/// Whether a pass over this (live) object is background work: the periodic check of an object
/// whose status already describes its generation and that is not in the middle of something
/// (creating, retrying), and that will call AWS (valid, owner).
pub fn is_resync(o: &Observed<'_>) -> bool {
    let described = o
        .status
        .is_some_and(|st| st.observed_generation == o.generation);
    // A reason outside the vocabulary (another writer's) still describes a settled object.
    let settled = o.ready_condition().is_some()
        && !matches!(
            o.ready_reason(),
            Some(Reason::Creating | Reason::Retrying | Reason::Deleting)
        );
    let calls_aws = !o.paused
        && *o.access == Access::Granted
        && o.spec.validate().is_ok()
        && (o.observe_only() || *o.ownership == Ownership::Owner);
    described && settled && calls_aws
}

/// The paused annotation is set: `Paused=True`, nothing else changes, no AWS call, and the
/// next pass comes with the annotation's removal.
pub fn paused(o: &Observed<'_>) -> Outcome {
    let mut status = o.status.cloned().unwrap_or_default();
    let message = format!("{PAUSED_ANNOTATION} is \"true\": no AWS calls until it is removed");
    o.set_condition(
        &mut status,
        PAUSED,
        ConditionStatus::True,
        Reason::Paused,
        &message,
    );
    let first = o
        .status
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == PAUSED))
        .is_none_or(|c| c.status != ConditionStatus::True);
    let notes = match first {
        true => vec![Note::normal(Reason::Paused, EventAction::Pause, message)],
        false => vec![],
    };
    Outcome::write(status, PassResult::Paused).notes(notes)
}

/// AWS expired the source because its customer never activated it, and `onExpiry` is `Stop`:
/// `Ready=False, reason=Expired`, a Warning once, and nothing is created.
pub fn expired(o: &Observed<'_>) -> Outcome {
    let message = format!(
        "AWS deleted partner event source {} because account {} never activated it (no one \
         is listening); set spec.onExpiry: Recreate to create it again, or delete this object",
        o.spec.name, o.spec.account
    );
    let mut outcome = stuck(
        o,
        Reason::Expired,
        EventAction::Observe,
        &message,
        PassResult::Expired,
    );
    if let Some(status) = outcome.status.as_mut() {
        status.state = None;
    }
    outcome
}

/// `Ready=False`, reported once as a Warning, for a state that needs a person or a change.
pub fn stuck(
    o: &Observed<'_>,
    reason: Reason,
    action: EventAction,
    message: &str,
    result: PassResult,
) -> Outcome {
    Outcome::write(o.not_ready(reason, message), result)
        .notes(o.warn_on_entry(reason, action, message))
}

/// A transient failure: `Ready=False, reason=Retrying` (or the given reason while deleting),
/// a Warning, and the next retry with backoff.
pub fn retrying(
    o: &Observed<'_>,
    s: &Settings,
    reason: Reason,
    operation: Operation,
    detail: &str,
) -> Outcome {
    let (requeue, failures) = o.backoff(s);
    let message = format!(
        "{} failed: {detail}; retrying (attempt {failures})",
        operation.name()
    );
    let note = Note::warning(Reason::Retrying, operation.action(), message.clone());
    Outcome::write(o.not_ready(reason, &message), PassResult::Retrying)
        .notes(vec![note])
        .backoff((requeue, failures))
}

/// A failed call: transient errors retry, terminal ones wait for a person.
pub fn failed(o: &Observed<'_>, s: &Settings, operation: Operation, e: &AwsError) -> Outcome {
    match e.class {
        AwsErrorClass::Terminal(cause) => {
            let message = format!("{} failed: {e}", operation.name());
            stuck(
                o,
                cause.into(),
                operation.action(),
                &message,
                PassResult::Terminal,
            )
            .requeue(Requeue::After(s.terminal_requeue))
        }
        _ => retrying(o, s, Reason::Retrying, operation, &e.to_string()),
    }
}

/// The source exists for `spec.account`: `Ready=True`, the ARN, the account's state and
/// times, the `Activated` condition, and Events for what changed.
pub fn ready(
    o: &Observed<'_>,
    s: &Settings,
    arn: &str,
    entry: Option<&SourceAccount>,
    origin: Origin,
) -> Outcome {
    let mut notes: Vec<Note> = origin_note(o, arn, origin).into_iter().collect();
    let reason = ready_reason(o, origin);
    let mut status = o.base_status();
    status.arn = Some(arn.to_owned());
    status.state = entry.and_then(|e| e.state.clone());
    status.creation_time = entry.and_then(|e| e.creation_time).map(Time);
    status.expiration_time = entry.and_then(|e| e.expiration_time).map(Time);
    let message = format!(
        "partner event source exists in AWS for account {}",
        o.spec.account
    );
    o.set_condition(&mut status, READY, ConditionStatus::True, reason, &message);
    let expires = status.expiration_time.as_ref().map(|t| t.0);
    let (value, act_reason, act_message) = activation(o, status.state.as_ref(), expires);
    notes.extend(activation_change(o, status.state.as_ref(), &act_message));
    notes.extend(expiring_soon(o, act_reason, &act_message));
    o.set_condition(&mut status, ACTIVATED, value, act_reason, &act_message);
    let requeue = next_look(o, s, status.state.as_ref(), expires);
    Outcome::write(status, PassResult::Ready)
        .notes(notes)
        .requeue(requeue)
}

/// How far ahead of `expirationTime` a pending source is reported as expiring soon.
pub const EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(24);

/// The resync, or earlier when a pending source reaches its expiry warning or its expiry, so
/// that both are seen when they happen rather than up to a resync later.
fn next_look(
    o: &Observed<'_>,
    s: &Settings,
    state: Option<&SourceState>,
    expires: Option<Timestamp>,
) -> Requeue {
    let resync = o.resync(s);
    let (Some(SourceState::Pending), Some(expires), Requeue::After(resync)) =
        (state, expires, resync)
    else {
        return resync;
    };
    let until = |t: Timestamp| Duration::try_from(t.duration_since(o.now)).ok();
    let warn_at = until(expires - EXPIRY_WARNING).filter(|d| !d.is_zero());
    let expiry = until(expires).map(|d| d + Duration::from_secs(30));
    let soonest = [Some(resync), warn_at, expiry].into_iter().flatten().min();
    Requeue::After(soonest.unwrap_or(resync))
}

/// The Warning when a pending source enters its last day.
fn expiring_soon(o: &Observed<'_>, reason: Reason, message: &str) -> Option<Note> {
    let before = o
        .status
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == ACTIVATED))
        .and_then(|c| Reason::parse(&c.reason));
    (reason == Reason::ExpiringSoon && before != Some(reason))
        .then(|| Note::warning(reason, EventAction::Observe, message.to_owned()))
}

/// A known source whose state could not be read: the ARN and `Ready` stay (a failed lookup
/// never hides what is known), and the lookup is retried soon.
pub fn state_lookup_failed(o: &Observed<'_>, s: &Settings, arn: &str, e: &AwsError) -> Outcome {
    let mut status = o.base_status();
    status.arn = Some(arn.to_owned());
    let is_true = status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == ConditionStatus::True);
    if !is_true {
        let message = format!("partner event source {arn} exists in AWS");
        o.set_condition(
            &mut status,
            READY,
            ConditionStatus::True,
            Reason::Created,
            &message,
        );
    }
    let note = Note::warning(
        Reason::StateLookupFailed,
        Operation::ListAccounts.action(),
        format!("{} failed: {e}", Operation::ListAccounts.name()),
    );
    Outcome::write(status, PassResult::Ready)
        .notes(vec![note])
        .backoff(o.backoff(s))
}

/// The `Ready` reason for a source of this origin; a source only looked at keeps the reason
/// it was made Ready with.
fn ready_reason(o: &Observed<'_>, origin: Origin) -> Reason {
    match origin {
        Origin::Created => Reason::Created,
        Origin::Recreated => Reason::Recreated,
        Origin::Adopted => Reason::Adopted,
        Origin::Observed => Reason::Observed,
        Origin::Kept => match o.ready_reason() {
            Some(Reason::Adopted) => Reason::Adopted,
            Some(Reason::Recreated) => Reason::Recreated,
            _ => Reason::Created,
        },
    }
}

fn origin_note(o: &Observed<'_>, arn: &str, origin: Origin) -> Option<Note> {
    let (name, account) = (&o.spec.name, &o.spec.account);
    let (reason, action, message) = match origin {
        Origin::Kept | Origin::Observed => return None,
        Origin::Created => (
            Reason::Created,
            EventAction::Create,
            format!("created partner event source {arn} for account {account}"),
        ),
        Origin::Recreated => (
            Reason::Recreated,
            EventAction::Create,
            format!(
                "partner event source {name} was missing in AWS (deleted or expired out of band); \
                 created it again for account {account}"
            ),
        ),
        Origin::Adopted => (
            Reason::Adopted,
            EventAction::Adopt,
            format!("partner event source {arn} already existed for account {account}; adopted it"),
        ),
    };
    Some(Note::normal(reason, action, message))
}

/// The `Activated` condition for a state: its status, reason and message.
fn activation(
    o: &Observed<'_>,
    state: Option<&SourceState>,
    expires: Option<Timestamp>,
) -> (ConditionStatus, Reason, String) {
    let spec = o.spec;
    let account = &spec.account;
    match state {
        Some(SourceState::Pending)
            if expires.is_some_and(|t| t.duration_since(o.now) <= EXPIRY_WARNING) =>
        {
            (
                ConditionStatus::False,
                Reason::ExpiringSoon,
                format!(
                    "AWS expires this source at {} unless account {account} creates an event \
                     bus named {}",
                    expires.map(|t| t.to_string()).unwrap_or_default(),
                    spec.name
                ),
            )
        }
        Some(SourceState::Active) => (
            ConditionStatus::True,
            Reason::Active,
            format!("account {account} created the matching event bus"),
        ),
        Some(SourceState::Pending) => (
            ConditionStatus::False,
            Reason::Pending,
            format!(
                "waiting for account {account} to create an event bus named {}",
                spec.name
            ),
        ),
        Some(SourceState::Deleted) => (
            ConditionStatus::False,
            Reason::Deleted,
            "the source was deleted under the customer's event bus".to_owned(),
        ),
        _ => (
            ConditionStatus::Unknown,
            Reason::Unknown,
            "state not known yet".to_owned(),
        ),
    }
}

/// An Event when a known source's customer activated or deactivated it.
fn activation_change(
    o: &Observed<'_>,
    state: Option<&SourceState>,
    activated_message: &str,
) -> Option<Note> {
    o.known_arn()?;
    let previous = o.status.and_then(|st| st.state.as_ref());
    match (previous, state) {
        (p, s) if p == s => None,
        (_, Some(SourceState::Active)) => Some(Note::normal(
            Reason::Activated,
            EventAction::Observe,
            activated_message.to_owned(),
        )),
        (Some(SourceState::Active), Some(SourceState::Pending)) => Some(Note::normal(
            Reason::Deactivated,
            EventAction::Observe,
            format!("account {} deactivated the event source", o.spec.account),
        )),
        _ => None,
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
