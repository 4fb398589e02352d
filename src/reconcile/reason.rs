//! The operator's vocabulary in one place: condition types, and every reason it writes into a
//! condition or an Event.

use std::fmt;

use crate::error::TerminalCause;

/// Condition type: the source exists in AWS for `spec.account`.
pub const READY: &str = "Ready";
/// Condition type: the customer created the matching event bus (state `ACTIVE`).
pub const ACTIVATED: &str = "Activated";
/// Condition type: the paused annotation stops every AWS call for the object.
pub const PAUSED: &str = "Paused";

/// A reason, as written into a condition's `reason` or an Event's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `Ready`: the object was seen; its source is being created.
    Creating,
    /// `Ready`: the operator created the source.
    Created,
    /// `Ready`: the source already existed for `spec.account` and was taken over.
    Adopted,
    /// `Ready`: the source had vanished from AWS (deleted or expired out of band) and was
    /// created again.
    Recreated,
    /// `Ready`: AWS expired the source because its customer never activated it.
    Expired,
    /// `Ready` (`Observe`): the source exists for `spec.account`.
    Observed,
    /// `Ready` (`Observe`): the source does not exist for `spec.account`.
    NotFound,
    /// `Ready`: outside the partner account's grant; never sent to AWS.
    NotPermitted,
    /// `Ready`: the partner account cannot be used (missing, ambiguous, role not assumable).
    PartnerAccountNotReady,
    /// `Ready`: a transient AWS error; the operator retries with backoff.
    Retrying,
    /// `Ready`: the spec breaks a rule; nothing is sent to AWS until it is fixed.
    InvalidSpec,
    /// `Ready`: another object, or another AWS account, holds the source name.
    NameConflict,
    /// `Ready`: neither the object nor the operator names a region.
    NoRegion,
    /// `Ready`: deletion in AWS is in progress or retrying.
    Deleting,
    /// `Ready`: the partner API is disabled for the operator's account.
    OperationDisabled,
    /// `Ready`: the credentials lack permission.
    AccessDenied,
    /// `Ready`: the credentials are missing, unknown or expired.
    InvalidCredentials,
    /// `Ready`: AWS rejected the request itself.
    InvalidRequest,
    /// `Ready`: any other error AWS does not expect to go away by itself.
    Terminal,
    /// `Activated`: the customer's matching event bus exists.
    Active,
    /// `Activated`: the customer has not created (or has deactivated) the matching bus.
    Pending,
    /// `Activated`: the source was deleted under the customer's bus. Also the Event of a
    /// source the operator deleted.
    Deleted,
    /// `Activated`: the state is not known yet.
    Unknown,
    /// `Activated`: pending, and AWS expires the source within a day. Also its Warning.
    ExpiringSoon,
    /// `Paused`: the paused annotation is set.
    Paused,
    /// `Paused`: the annotation was removed; AWS calls go on.
    Resumed,
    /// Event: the customer activated the source.
    Activated,
    /// Event: the customer deactivated the source.
    Deactivated,
    /// Event: the state lookup of a known source failed; its ARN is kept.
    StateLookupFailed,
    /// Event: the finalizer was dropped without touching AWS (another owner).
    Released,
    /// Event: `deletionPolicy: Retain` left the source in AWS.
    Retained,
}

impl Reason {
    /// The reason as Kubernetes stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Creating => "Creating",
            Reason::Created => "Created",
            Reason::Adopted => "Adopted",
            Reason::Recreated => "Recreated",
            Reason::Expired => "Expired",
            Reason::Observed => "Observed",
            Reason::NotFound => "NotFound",
            Reason::NotPermitted => "NotPermitted",
            Reason::PartnerAccountNotReady => "PartnerAccountNotReady",
            Reason::Retrying => "Retrying",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::NameConflict => "NameConflict",
            Reason::NoRegion => "NoRegion",
            Reason::Deleting => "Deleting",
            Reason::OperationDisabled => "OperationDisabled",
            Reason::AccessDenied => "AccessDenied",
            Reason::InvalidCredentials => "InvalidCredentials",
            Reason::InvalidRequest => "InvalidRequest",
            Reason::Terminal => "Terminal",
            Reason::Active => "Active",
            Reason::Pending => "Pending",
            Reason::Deleted => "Deleted",
            Reason::Unknown => "Unknown",
            Reason::ExpiringSoon => "ExpiringSoon",
            Reason::Paused => "Paused",
            Reason::Resumed => "Resumed",
            Reason::Activated => "Activated",
            Reason::Deactivated => "Deactivated",
            Reason::StateLookupFailed => "StateLookupFailed",
            Reason::Released => "Released",
            Reason::Retained => "Retained",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<TerminalCause> for Reason {
    fn from(cause: TerminalCause) -> Self {
        match cause {
            TerminalCause::OperationDisabled => Reason::OperationDisabled,
            TerminalCause::AccessDenied => Reason::AccessDenied,
            TerminalCause::InvalidCredentials => Reason::InvalidCredentials,
            TerminalCause::InvalidRequest => Reason::InvalidRequest,
            TerminalCause::Other => Reason::Terminal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_causes_map_to_the_reasons_a_person_acts_on() {
        let cases = [
            (TerminalCause::OperationDisabled, "OperationDisabled"),
            (TerminalCause::AccessDenied, "AccessDenied"),
            (TerminalCause::InvalidCredentials, "InvalidCredentials"),
            (TerminalCause::InvalidRequest, "InvalidRequest"),
            (TerminalCause::Other, "Terminal"),
        ];
        for (cause, reason) in cases {
            assert_eq!(Reason::from(cause).as_str(), reason);
        }
    }
}
