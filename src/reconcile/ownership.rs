//! Who owns a source name in the cluster: among the valid objects that ask for one
//! `spec.name`, the oldest. Pure logic over plain values.

use k8s_openapi::jiff::Timestamp;

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
    /// The object manages its source (`managementPolicy: Manage`); an `Observe` one only
    /// reports, so it claims nothing either.
    pub manages: bool,
    /// The partner account the object acts for: names are unique per partner account.
    pub partner_account: String,
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
        .filter(|c| {
            c.valid
                && c.manages
                && c.source_name == me.source_name
                && c.partner_account == me.partner_account
        })
        .chain(std::iter::once(me))
        .min_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    match oldest {
        Some(o) if (o.namespace.as_str(), o.name.as_str()) != (&me.namespace, &me.name) => {
            Ownership::ConflictWith(format!("{}/{}", o.namespace, o.name))
        }
        _ => Ownership::Owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "aws.partner/acme.com/customer-4711/orders";

    /// A valid, managing claim on NAME by `namespace/orders`, made at `second`.
    fn claim(namespace: &str, second: i64) -> Claim {
        Claim {
            namespace: namespace.into(),
            name: "orders".into(),
            created: Some(Timestamp::from_second(second).unwrap()),
            source_name: NAME.into(),
            holds_source: false,
            valid: true,
            manages: true,
            partner_account: String::new(),
        }
    }

    #[test]
    fn the_older_of_two_objects_with_one_name_owns_it() {
        let older = claim("team-b", 100);
        let newer = claim("team-a", 200);
        let unrelated = Claim {
            name: "x".into(),
            source_name: "aws.partner/acme.com/other/orders".into(),
            ..claim("team-c", 1)
        };
        let all = [older.clone(), newer.clone(), unrelated];
        assert_eq!(ownership(&older, &all), Ownership::Owner);
        assert_eq!(
            ownership(&newer, &all),
            Ownership::ConflictWith("team-b/orders".into())
        );
        // Same creation second: namespace then name break the tie, the same way everywhere.
        let twin = claim("team-a", 100);
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
        let broken_but_older = Claim {
            valid: false,
            ..claim("team-a", 1)
        };
        let valid = claim("team-b", 2);
        assert_eq!(
            ownership(&valid, &[broken_but_older, valid.clone()]),
            Ownership::Owner
        );
    }

    #[test]
    fn within_one_second_the_object_that_manages_the_source_keeps_it() {
        let ready = Claim {
            holds_source: true,
            ..claim("team-z", 100)
        };
        let newcomer = claim("team-a", 100);
        let all = [ready.clone(), newcomer.clone()];
        assert_eq!(ownership(&ready, &all), Ownership::Owner);
        assert_eq!(
            ownership(&newcomer, &all),
            Ownership::ConflictWith("team-z/orders".into())
        );
        // An older object still wins over one that holds the source.
        let older = claim("team-y", 99);
        assert_eq!(
            ownership(&ready, &[older.clone(), ready.clone()]),
            Ownership::ConflictWith("team-y/orders".into())
        );
    }

    #[test]
    fn an_observing_object_claims_no_name() {
        let observer = Claim {
            manages: false,
            ..claim("team-a", 1)
        };
        let manager = claim("team-b", 2);
        assert_eq!(
            ownership(&manager, &[observer, manager.clone()]),
            Ownership::Owner
        );
    }

    #[test]
    fn names_are_unique_per_partner_account() {
        let claim = |ns: &str, second: i64, account: &str| Claim {
            partner_account: account.into(),
            ..claim(ns, second)
        };
        let prod = claim("team-a", 1, "prod");
        let test = claim("team-b", 2, "test");
        assert_eq!(
            ownership(&test, &[prod.clone(), test.clone()]),
            Ownership::Owner
        );
        let late = claim("team-c", 3, "prod");
        assert_eq!(
            ownership(&late, &[prod, test, late.clone()]),
            Ownership::ConflictWith("team-a/orders".into())
        );
    }
}
