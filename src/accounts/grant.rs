//! Which PartnerAccount an object acts with, and whether that account's grant permits it: pure
//! functions over plain values (the resources and namespace labels), tested here.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

use crate::resources::{PartnerAccountSpec, PartnerEventSourceSpec};

/// Whether the object's partner account lets it reach AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// The grant permits it and the account's identity works.
    Granted,
    /// Outside the partner account's grant: the rule broken.
    NotPermitted(String),
    /// The partner account cannot be used now: why.
    NotReady(String),
}

/// Which identity an object acts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The operator's own credentials: no partner account applies.
    Operator,
    /// This partner account.
    Account(String),
    /// The object names a partner account that does not exist.
    Missing(String),
    /// No reference, and more than one partner account says it is the default.
    AmbiguousDefault(Vec<String>),
    /// No reference and no default, while partner accounts exist: the operator's own identity
    /// stands in only with `--own-identity fallback`, so the object acts with none.
    Unnamed,
}

/// When an object that names no PartnerAccount, and finds no default one, may act with the
/// operator's own identity (`--own-identity`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OwnIdentity {
    /// Only while no PartnerAccount exists (in the operator's shard): a single-account
    /// install works without any, and once grants exist nothing bypasses them.
    #[default]
    NoAccounts,
    /// Always: such objects are created with the operator's own credentials, outside every
    /// grant (the behaviour before PartnerAccounts refused it).
    Fallback,
}

/// The identity an object acts with: the one recorded at its first pass (kept, so that marking
/// another default later moves no object), else its reference, else the single default, else
/// the operator's own when `own` allows it.
pub fn resolve<'a>(
    recorded: Option<&str>,
    reference: Option<&str>,
    accounts: impl IntoIterator<Item = (&'a str, &'a PartnerAccountSpec)>,
    own: OwnIdentity,
) -> Resolution {
    let accounts: Vec<_> = accounts.into_iter().collect();
    let wanted = match (recorded, reference) {
        (Some(""), None) => return Resolution::Operator,
        (Some(name), _) if !name.is_empty() => Some(name),
        (_, reference) => reference,
    };
    if let Some(name) = wanted {
        return match accounts.iter().any(|(n, _)| *n == name) {
            true => Resolution::Account(name.to_owned()),
            false => Resolution::Missing(name.to_owned()),
        };
    }
    let mut defaults: Vec<String> = accounts
        .iter()
        .filter(|(_, spec)| spec.default)
        .map(|(n, _)| (*n).to_owned())
        .collect();
    defaults.sort();
    match defaults.len() {
        0 if accounts.is_empty() || own == OwnIdentity::Fallback => Resolution::Operator,
        0 => Resolution::Unnamed,
        1 => Resolution::Account(defaults.remove(0)),
        _ => Resolution::AmbiguousDefault(defaults),
    }
}

/// Checks an object against a partner account's grant; the error names the rule broken.
pub fn permits(
    grant: &PartnerAccountSpec,
    account_name: &str,
    namespace_labels: &BTreeMap<String, String>,
    spec: &PartnerEventSourceSpec,
) -> Result<(), String> {
    if !grant
        .source_prefixes
        .iter()
        .any(|p| spec.name.starts_with(p.as_str()))
    {
        return Err(format!(
            "spec.name {} is outside PartnerAccount {account_name}'s sourcePrefixes ({})",
            spec.name,
            grant.source_prefixes.join(", ")
        ));
    }
    if let Some(allowed) = &grant.customer_accounts
        && !allowed.contains(&spec.account)
    {
        return Err(format!(
            "spec.account {} is not in PartnerAccount {account_name}'s customerAccounts",
            spec.account
        ));
    }
    if let Some(selector) = &grant.namespace_selector
        && !selects(selector, namespace_labels)
    {
        return Err(format!(
            "this namespace does not match PartnerAccount {account_name}'s namespaceSelector"
        ));
    }
    Ok(())
}

/// Whether a label selector selects a set of labels, with Kubernetes semantics (kube's
/// [`Selector`]: every `matchLabels` pair and every `matchExpressions` requirement must hold).
/// A selector Kubernetes would reject (an operator it does not define) selects nothing, so a
/// broken grant never widens access.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    Selector::try_from(selector.clone()).is_ok_and(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn grant(prefixes: &[&str]) -> PartnerAccountSpec {
        PartnerAccountSpec {
            role_arn: None,
            external_id: None,
            session_name: None,
            session_tags: BTreeMap::new(),
            source_prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            namespace_selector: None,
            customer_accounts: None,
            region: None,
            aws_rps: None,
            default: false,
        }
    }

    fn source(name: &str, account: &str) -> PartnerEventSourceSpec {
        PartnerEventSourceSpec {
            name: name.into(),
            account: account.into(),
            region: None,
            deletion_policy: None,
            on_expiry: None,
            management_policy: None,
            partner_account_ref: None,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_object_resolves_to_its_record_then_its_reference_then_the_default() {
        let prod = PartnerAccountSpec {
            default: true,
            ..grant(&["aws.partner/acme.com/"])
        };
        let test = grant(&["aws.partner/acme.com.test/"]);
        let all = [("prod", &prod), ("test", &test)];
        assert_eq!(
            resolve(None, None, all, OwnIdentity::NoAccounts),
            Resolution::Account("prod".into())
        );
        assert_eq!(
            resolve(None, Some("test"), all, OwnIdentity::NoAccounts),
            Resolution::Account("test".into())
        );
        assert_eq!(
            resolve(None, Some("gone"), all, OwnIdentity::NoAccounts),
            Resolution::Missing("gone".into())
        );
        // Recorded at the first pass and kept: a later default moves nothing.
        assert_eq!(
            resolve(Some(""), None, all, OwnIdentity::NoAccounts),
            Resolution::Operator
        );
        assert_eq!(
            resolve(Some("test"), None, all, OwnIdentity::NoAccounts),
            Resolution::Account("test".into())
        );
        assert_eq!(
            resolve(None, None, [], OwnIdentity::NoAccounts),
            Resolution::Operator
        );
    }

    #[test]
    fn the_operators_own_identity_stands_in_only_while_no_partner_account_exists() {
        let test = grant(&["aws.partner/acme.com.test/"]);
        let accounts = [("test", &test)];
        assert_eq!(
            resolve(None, None, [], OwnIdentity::NoAccounts),
            Resolution::Operator,
            "a single-account install needs no PartnerAccount"
        );
        assert_eq!(
            resolve(None, None, accounts, OwnIdentity::NoAccounts),
            Resolution::Unnamed,
            "accounts exist and none is default: no silent fall-back"
        );
        assert_eq!(
            resolve(None, None, accounts, OwnIdentity::Fallback),
            Resolution::Operator,
            "--own-identity fallback"
        );
        assert_eq!(
            resolve(Some(""), None, accounts, OwnIdentity::NoAccounts),
            Resolution::Operator,
            "an object created with the operator's identity keeps it, so it can be deleted"
        );
    }

    #[test]
    fn two_defaults_are_used_by_nobody() {
        let a = PartnerAccountSpec {
            default: true,
            ..grant(&["aws.partner/a/"])
        };
        let b = a.clone();
        assert_eq!(
            resolve(None, None, [("b", &b), ("a", &a)], OwnIdentity::NoAccounts),
            Resolution::AmbiguousDefault(vec!["a".into(), "b".into()])
        );
        // A reference still works.
        assert_eq!(
            resolve(
                None,
                Some("a"),
                [("b", &b), ("a", &a)],
                OwnIdentity::NoAccounts
            ),
            Resolution::Account("a".into())
        );
    }

    #[test]
    fn the_grant_limits_prefixes_customer_accounts_and_namespaces() {
        let mut g = grant(&["aws.partner/acme.com/", "aws.partner/acme.com.test/"]);
        let ns = labels(&[("team", "orders")]);
        let ok = source("aws.partner/acme.com/c1/orders", "123456789012");
        assert_eq!(permits(&g, "prod", &ns, &ok), Ok(()));
        let test = source("aws.partner/acme.com.test/c1/orders", "123456789012");
        assert_eq!(permits(&g, "prod", &ns, &test), Ok(()));

        let other = source("aws.partner/evil.com/c1/orders", "123456789012");
        let err = permits(&g, "prod", &ns, &other).unwrap_err();
        assert!(
            err.contains("sourcePrefixes") && err.contains("prod"),
            "{err}"
        );

        g.customer_accounts = Some(vec!["111111111111".into()]);
        let err = permits(&g, "prod", &ns, &ok).unwrap_err();
        assert!(err.contains("customerAccounts"), "{err}");

        g.customer_accounts = None;
        g.namespace_selector = Some(LabelSelector {
            match_labels: Some([("team".to_owned(), "payments".to_owned())].into()),
            match_expressions: None,
        });
        let err = permits(&g, "prod", &ns, &ok).unwrap_err();
        assert!(err.contains("namespaceSelector"), "{err}");
        assert_eq!(
            permits(&g, "prod", &labels(&[("team", "payments")]), &ok),
            Ok(())
        );
    }

    #[test]
    fn label_selectors_follow_kubernetes_semantics() {
        let requirement = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        };
        let selector = |reqs: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: None,
            match_expressions: Some(reqs),
        };
        let ns = labels(&[("tier", "prod"), ("team", "a")]);
        assert!(selects(&LabelSelector::default(), &ns), "empty selects all");
        assert!(selects(
            &selector(vec![requirement("tier", "In", &["prod", "stage"])]),
            &ns
        ));
        assert!(!selects(
            &selector(vec![requirement("tier", "NotIn", &["prod"])]),
            &ns
        ));
        assert!(selects(
            &selector(vec![requirement("gone", "NotIn", &["x"])]),
            &ns
        ));
        assert!(selects(
            &selector(vec![requirement("team", "Exists", &[])]),
            &ns
        ));
        assert!(!selects(
            &selector(vec![requirement("team", "DoesNotExist", &[])]),
            &ns
        ));
        assert!(!selects(
            &selector(vec![requirement("team", "Near", &[])]),
            &ns
        ));
    }
}
