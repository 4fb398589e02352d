//! The operator's vocabulary in one place, for both resources: condition types, condition
//! statuses, every reason it writes into a condition or an Event, and the Events' actions.
//! Each word is a type here and a string only at the Kubernetes boundary.

use std::fmt;

/// Condition type: the source exists in AWS for `spec.account` (PartnerEventSource), or the
/// account's identity works (PartnerAccount).
pub const READY: &str = "Ready";
/// Condition type: the customer created the matching event bus (state `ACTIVE`).
pub const ACTIVATED: &str = "Activated";
/// Condition type: the paused annotation stops every AWS call for the object.
pub const PAUSED: &str = "Paused";
/// Condition type (PartnerAccount): the account may serve objects that name no account.
pub const DEFAULT: &str = "Default";

/// Defines a closed set of words: the enum with a doc comment per word, the string each is
/// stored as, and the reverse lookup for what is read back from the cluster.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $word:ident,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$doc])* $word,)+
        }

        impl $name {
            /// Every word, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$word,)+];

            /// The word as Kubernetes stores it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$word => stringify!($word),)+
                }
            }

            /// The word a stored string names; `None` for a string outside the vocabulary
            /// (written by someone else, or by a later version).
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $(stringify!($word) => Some($name::$word),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }
    };
}

vocabulary! {
    /// A condition's `status`.
    ConditionStatus {
        /// The condition holds.
        True,
        /// The condition does not hold.
        False,
        /// Not known yet.
        Unknown,
    }
}

vocabulary! {
    /// A reason, as written into a condition's `reason` or an Event's `reason`.
    Reason {
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
        /// PartnerAccount `Ready`: STS answered for the account's identity.
        IdentityReady,
        /// PartnerAccount `Ready`: the account's role could not be assumed or proven.
        AssumeRoleFailed,
        /// PartnerAccount `Default=False`: more than one account is marked default.
        AmbiguousDefault,
    }
}

vocabulary! {
    /// What the operator did, as an Event's `action`.
    EventAction {
        /// Created a source (or is creating it).
        Create,
        /// Took over a source that already existed.
        Adopt,
        /// Looked at a source without changing it.
        Observe,
        /// Read one source.
        Describe,
        /// Listed a source's accounts and their states.
        ListAccounts,
        /// Listed the partner's sources.
        ListSources,
        /// Deleted a source, or settled an object's deletion.
        Delete,
        /// Stopped AWS calls for a paused object.
        Pause,
        /// Checked the spec against the resource's rules, before any AWS call.
        Validate,
        /// Checked which object owns the source name, before any AWS call.
        CheckOwnership,
        /// Checked the partner account's grant, before any AWS call.
        CheckGrant,
        /// Checked the object's partner account, before any AWS call.
        CheckPartnerAccount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_itself_and_nothing_else_parses() {
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(*reason));
        }
        for status in ConditionStatus::ALL {
            assert_eq!(ConditionStatus::parse(status.as_str()), Some(*status));
        }
        for action in EventAction::ALL {
            assert_eq!(EventAction::parse(action.as_str()), Some(*action));
        }
        for stranger in ["", "ready", "CREATED", "Created ", "SomethingNew"] {
            assert_eq!(Reason::parse(stranger), None, "{stranger:?}");
        }
        assert_eq!(ConditionStatus::parse("true"), None);
    }

    #[test]
    fn stored_strings_compare_with_the_words() {
        let (stored_true, stored_false) = (String::from("True"), String::from("False"));
        assert!(stored_true == ConditionStatus::True);
        assert!(stored_false != ConditionStatus::True);
        assert!(*"Adopted" == Reason::Adopted);
    }
}
