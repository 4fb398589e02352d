//! One reconcile pass against the partner API, as straight-line steps in the order of the
//! design's reconcile semantics: [`apply`] for a live object, [`cleanup`] for one being
//! deleted. Each returns an [`Outcome`]; the reconciler writes it to Kubernetes.
//!
//! The AWS calls a pass can make are exactly the paths through these functions:
//! - new object: `Create` (its answer is enough: a new source is `PENDING` for `spec.account`);
//! - `Create` says the source exists: `ListAccounts` (whose is it?), then `Describe` (its ARN);
//! - known object: `ListAccounts`; when the source is gone, the new-object path again, unless
//!   AWS expired it (pending past its expiration time) and `onExpiry` is `Stop`;
//! - `Observe`: `ListAccounts`, and `Describe` the first time for the ARN; never a create;
//! - paused, or expired and left so: nothing;
//! - deletion: `Delete`, or nothing.

use crate::accounts::Access;
use crate::aws::partner_api::{Operation, PartnerApi, SourceAccount};
use crate::error::{AwsError, AwsErrorClass};
use crate::reconcile::outcome::{Note, Origin, Outcome, PassResult, Requeue};
use crate::reconcile::ownership::Ownership;
use crate::reconcile::settings::Settings;
use crate::reconcile::status::{
    Observed, expired, failed, paused, ready, retrying, state_lookup_failed, stuck,
};
use crate::resources::conditions::{EventAction, Reason};
use crate::resources::{DeletionPolicy, OnExpiry, SourceState};

/// Brings the source in AWS in line with a live object: the checks before AWS, then create
/// or look, and report.
pub async fn apply(api: &impl PartnerApi, o: &Observed<'_>, s: &Settings) -> Outcome {
    if let Some(outcome) = held_back(o, s) {
        return outcome;
    }
    if o.observe_only() {
        let Some(region) = o.region else {
            return no_region(o, s);
        };
        return Pass { api, o, s, region }.observe().await;
    }
    if let Ownership::ConflictWith(owner) = o.ownership {
        let message = format!(
            "{owner} already manages partner event source {}; this object is not sent to AWS",
            o.spec.name
        );
        return stuck(
            o,
            Reason::NameConflict,
            EventAction::CheckOwnership,
            &message,
            PassResult::Conflict,
        )
        .requeue(Requeue::After(s.conflict_recheck));
    }
    let Some(region) = o.region else {
        return no_region(o, s);
    };
    let was_expired = o.ready_reason() == Some(Reason::Expired);
    if was_expired && o.on_expiry() == OnExpiry::Stop {
        // Nothing to look at in AWS: the source stays gone until the object is revived
        // (onExpiry: Recreate) or deleted and applied again.
        return expired(o).requeue(Requeue::AwaitChange);
    }
    let pass = Pass { api, o, s, region };
    match (o.known_arn(), was_expired) {
        (Some(arn), false) => pass.check(arn).await,
        (Some(_), true) => pass.create(Origin::Recreated).await,
        (None, _) => pass.create(Origin::Created).await,
    }
}

/// The checks before any AWS call, in the design's order: paused, a valid spec, the partner
/// account's grant and readiness. `None` when the object may go on.
fn held_back(o: &Observed<'_>, s: &Settings) -> Option<Outcome> {
    if o.paused {
        return Some(paused(o));
    }
    if let Err(errors) = o.spec.validate() {
        let message = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let result = PassResult::InvalidSpec;
        return Some(stuck(
            o,
            Reason::InvalidSpec,
            EventAction::Validate,
            &message,
            result,
        ));
    }
    match o.access {
        Access::Granted => None,
        Access::NotPermitted(rule) => {
            let message = format!("{rule}; this object is not sent to AWS");
            let result = PassResult::NotPermitted;
            Some(stuck(
                o,
                Reason::NotPermitted,
                EventAction::CheckGrant,
                &message,
                result,
            ))
        }
        Access::NotReady(why) => Some(account_not_ready(
            o,
            s,
            EventAction::CheckPartnerAccount,
            why,
        )),
    }
}

fn account_not_ready(o: &Observed<'_>, s: &Settings, action: EventAction, why: &str) -> Outcome {
    let reason = Reason::PartnerAccountNotReady;
    stuck(o, reason, action, why, PassResult::Terminal).requeue(Requeue::After(s.conflict_recheck))
}

/// Settles the source in AWS for an object being deleted: delete it when this object owns it
/// and its policy says so, otherwise leave it and let the finalizer go.
pub async fn cleanup(api: &impl PartnerApi, o: &Observed<'_>, s: &Settings) -> Outcome {
    if o.paused {
        // The finalizer stays until the annotation is removed.
        return paused(o);
    }
    if let Access::NotReady(why) = o.access {
        // The source may exist; it can only be deleted with the account's identity.
        return account_not_ready(o, s, EventAction::Delete, why);
    }
    let region = o.region.filter(|_| o.spec.validate().is_ok());
    let (Some(region), None) = (region, left_in_aws(o, s)) else {
        return Outcome::release(PassResult::Released, left_in_aws(o, s));
    };
    match api.delete(region, &o.spec.name, &o.spec.account).await {
        Ok(()) => deleted(o),
        Err(e) if e.class == AwsErrorClass::NotFound => deleted(o),
        Err(e) if e.class == AwsErrorClass::Retryable => {
            retrying(o, s, Reason::Deleting, Operation::Delete, &e.to_string())
        }
        Err(e) => delete_blocked(o, s, &e),
    }
}

/// Why the source must be left in AWS (or was never there), as the Event that says so; `None`
/// when this object owns it and its policy deletes it.
fn left_in_aws(o: &Observed<'_>, s: &Settings) -> Option<Note> {
    let released =
        |message: String| Some(Note::normal(Reason::Released, EventAction::Delete, message));
    if let Access::NotPermitted(_) = o.access {
        return released("outside the partner account's grant, so never sent to AWS".into());
    }
    if o.observe_only() {
        return released(
            "managementPolicy is Observe: left the partner event source in AWS".into(),
        );
    }
    if o.ready_reason() == Some(Reason::Expired) {
        return released("the source had expired in AWS; nothing to delete".into());
    }
    if let Ownership::ConflictWith(owner) = o.ownership {
        return released(format!(
            "{owner} manages the partner event source; left it in AWS"
        ));
    }
    if o.spec.validate().is_err() || o.region.is_none() {
        // Never sent to AWS, so there is nothing there to delete; nothing to tell either.
        return None;
    }
    if o.ready_reason() == Some(Reason::NameConflict) {
        // The name belongs to a source shared with another account: not ours to delete.
        return released("the source in AWS belongs to another account; left it untouched".into());
    }
    if o.spec.deletion_policy.unwrap_or(s.default_deletion_policy) == DeletionPolicy::Retain {
        let message = format!(
            "deletionPolicy is Retain: left partner event source {} in AWS",
            o.spec.name
        );
        return Some(Note::normal(Reason::Retained, EventAction::Delete, message));
    }
    None
}

/// The calls of one apply pass, with the object's arguments and the steps that follow each.
struct Pass<'a, A> {
    api: &'a A,
    o: &'a Observed<'a>,
    s: &'a Settings,
    region: &'a str,
}

/// Who a source is shared with, from `ListPartnerEventSourceAccounts`.
enum Sharing<'l> {
    /// With `spec.account`.
    Ours(&'l SourceAccount),
    /// With nobody: the source does not exist.
    Nobody,
    /// Only with other accounts.
    Others(&'l [SourceAccount]),
}

impl<'a, A: PartnerApi> Pass<'a, A> {
    /// `ListPartnerEventSourceAccounts`, with "no such source" as sharing with nobody.
    async fn list_accounts(&self) -> Result<Vec<SourceAccount>, AwsError> {
        match self.api.list_accounts(self.region, &self.o.spec.name).await {
            Err(e) if e.class == AwsErrorClass::NotFound => Ok(Vec::new()),
            other => other,
        }
    }

    fn sharing<'l>(&self, accounts: &'l [SourceAccount]) -> Sharing<'l> {
        match accounts.iter().find(|a| a.account == self.o.spec.account) {
            Some(entry) => Sharing::Ours(entry),
            None if accounts.is_empty() => Sharing::Nobody,
            None => Sharing::Others(accounts),
        }
    }

    /// A source made Ready before: read its state; recreate it if it vanished.
    async fn check(&self, arn: &str) -> Outcome {
        let (o, s) = (self.o, self.s);
        let accounts = match self.list_accounts().await {
            Ok(accounts) => accounts,
            Err(e) => return state_lookup_failed(o, s, arn, &e),
        };
        // An observed source the object now manages is taken over as it is.
        let origin = match o.ready_reason() == Some(Reason::Observed) {
            true => Origin::Adopted,
            false => Origin::Kept,
        };
        match self.sharing(&accounts) {
            Sharing::Ours(entry) => ready(o, s, arn, Some(entry), origin),
            // Gone while pending past its expiration time: AWS expired it on purpose.
            Sharing::Nobody if o.expired_in_aws() && o.on_expiry() == OnExpiry::Stop => {
                expired(o).requeue(Requeue::AwaitChange)
            }
            Sharing::Nobody => self.create(Origin::Recreated).await,
            Sharing::Others(others) => shared_elsewhere(o, s, others),
        }
    }

    /// `Observe`: report whether the source exists for `spec.account`; never create it.
    async fn observe(&self) -> Outcome {
        let (o, s) = (self.o, self.s);
        let accounts = match (self.list_accounts().await, o.known_arn()) {
            (Ok(accounts), _) => accounts,
            (Err(e), Some(arn)) => return state_lookup_failed(o, s, arn, &e),
            (Err(e), None) => return failed(o, s, Operation::ListAccounts, &e),
        };
        let Sharing::Ours(entry) = self.sharing(&accounts) else {
            let message = format!(
                "partner event source {} does not exist in AWS for account {} \
                 (managementPolicy is Observe: the operator does not create it)",
                o.spec.name, o.spec.account
            );
            return stuck(
                o,
                Reason::NotFound,
                EventAction::Observe,
                &message,
                PassResult::NotFound,
            )
            .requeue(o.resync(s));
        };
        let arn = match o.known_arn() {
            Some(arn) => arn.to_owned(),
            None => match self.api.describe(self.region, &o.spec.name).await {
                Ok(arn) => arn,
                Err(e) => return failed(o, s, Operation::Describe, &e),
            },
        };
        ready(o, s, &arn, Some(entry), Origin::Observed)
    }

    /// `CreatePartnerEventSource`; an existing source is adopted if it is ours.
    async fn create(&self, origin: Origin) -> Outcome {
        let (o, s) = (self.o, self.s);
        let created = self
            .api
            .create(self.region, &o.spec.name, &o.spec.account)
            .await;
        match created {
            // A new source is PENDING for the account it was created for; its creation and
            // expiration times come with the next look.
            Ok(arn) => {
                let entry = SourceAccount {
                    account: o.spec.account.clone(),
                    state: Some(SourceState::Pending),
                    creation_time: None,
                    expiration_time: None,
                };
                ready(o, s, &arn, Some(&entry), origin)
            }
            Err(e) if e.class == AwsErrorClass::AlreadyExists => self.adopt().await,
            Err(e) => failed(o, s, Operation::Create, &e),
        }
    }

    /// The source already exists: adopt it when it is shared with `spec.account`.
    async fn adopt(&self) -> Outcome {
        let (o, s) = (self.o, self.s);
        let accounts = match self.list_accounts().await {
            Ok(accounts) => accounts,
            Err(e) => return failed(o, s, Operation::ListAccounts, &e),
        };
        let entry = match self.sharing(&accounts) {
            Sharing::Ours(entry) => entry,
            Sharing::Nobody => {
                let detail = "the source existed a moment ago and is gone now";
                return retrying(o, s, Reason::Retrying, Operation::ListAccounts, detail);
            }
            Sharing::Others(others) => return shared_elsewhere(o, s, others),
        };
        match self.api.describe(self.region, &o.spec.name).await {
            Ok(arn) => ready(o, s, &arn, Some(entry), Origin::Adopted),
            // Listed a moment ago, gone now: deleted in between. Start over soon.
            Err(e) if e.class == AwsErrorClass::NotFound => {
                retrying(o, s, Reason::Retrying, Operation::Describe, &e.to_string())
            }
            Err(e) => failed(o, s, Operation::Describe, &e),
        }
    }
}

fn no_region(o: &Observed<'_>, s: &Settings) -> Outcome {
    let message = "no AWS region: set spec.region or start the operator with --region";
    Outcome::write(o.not_ready(Reason::NoRegion, message), PassResult::Terminal)
        .notes(vec![Note::warning(
            Reason::NoRegion,
            EventAction::Validate,
            message.into(),
        )])
        .requeue(Requeue::After(s.terminal_requeue))
}

/// The name is taken in AWS by a source shared with other accounts only.
fn shared_elsewhere(o: &Observed<'_>, s: &Settings, others: &[SourceAccount]) -> Outcome {
    let others = others
        .iter()
        .map(|a| a.account.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let message = format!(
        "partner event source {} already exists in AWS for account {others}, not {}; \
         choose another spec.name or delete that source",
        o.spec.name, o.spec.account
    );
    stuck(
        o,
        Reason::NameConflict,
        EventAction::Create,
        &message,
        PassResult::Conflict,
    )
    .requeue(Requeue::After(s.terminal_requeue))
}

fn deleted(o: &Observed<'_>) -> Outcome {
    let note = Note::normal(
        Reason::Deleted,
        EventAction::Delete,
        format!(
            "deleted partner event source {} for account {}",
            o.spec.name, o.spec.account
        ),
    );
    Outcome::release(PassResult::Deleted, Some(note))
}

/// Deletion failed for a reason that needs a person: the finalizer stays.
fn delete_blocked(o: &Observed<'_>, s: &Settings, e: &AwsError) -> Outcome {
    let reason = match e.class {
        AwsErrorClass::Terminal(cause) => cause.into(),
        _ => Reason::Terminal,
    };
    let message = format!(
        "{} failed: {e}; the finalizer stays until this is fixed \
         (or set spec.deletionPolicy to Retain to leave the source in AWS)",
        Operation::Delete.name()
    );
    Outcome::write(o.not_ready(reason, &message), PassResult::Terminal)
        .notes(vec![Note::warning(reason, EventAction::Delete, message)])
        .requeue(Requeue::After(s.terminal_requeue))
}

#[cfg(test)]
mod tests;
