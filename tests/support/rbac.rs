//! The RBAC contract of the operator (what its ServiceAccount needs, and nothing more) and
//! what rendered RBAC objects grant a ServiceAccount, to compare the two.

// Each test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;

use super::chart::{kind, name};

/// One thing a ServiceAccount may do: in a namespace, or cluster-wide (`scope` "*").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub scope: String,
    pub group: String,
    pub resource: String,
    pub name: Option<String>,
    pub verb: String,
}

/// A [`Grant`] from borrowed parts.
pub fn grant(scope: &str, group: &str, resource: &str, name: Option<&str>, verb: &str) -> Grant {
    Grant {
        scope: scope.into(),
        group: group.into(),
        resource: resource.into(),
        name: name.map(Into::into),
        verb: verb.into(),
    }
}

/// Everything the rendered RBAC objects grant ServiceAccount `namespace/name`.
pub fn grants(docs: &[Value], namespace: &str, service_account: &str) -> BTreeSet<Grant> {
    let role = |kind_: &str, role_name: &str, role_namespace: Option<&str>| -> &Value {
        docs.iter()
            .find(|doc| {
                kind(doc) == kind_
                    && name(doc) == role_name
                    && (kind_ == "ClusterRole"
                        || doc["metadata"]["namespace"].as_str() == role_namespace)
            })
            .unwrap_or_else(|| {
                panic!("a binding refers to {kind_} {role_name}, which the chart does not render")
            })
    };
    let mut out = BTreeSet::new();
    for binding in docs
        .iter()
        .filter(|doc| matches!(kind(doc), "RoleBinding" | "ClusterRoleBinding"))
    {
        let binds_us = binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|subject| {
                subject["kind"] == "ServiceAccount"
                    && subject["name"] == service_account
                    && subject["namespace"] == namespace
            });
        if !binds_us {
            continue;
        }
        let binding_namespace = binding["metadata"]["namespace"].as_str();
        let scope = match kind(binding) {
            "ClusterRoleBinding" => "*".to_owned(),
            _ => binding_namespace
                .expect("a RoleBinding has a namespace")
                .to_owned(),
        };
        let role_ref = &binding["roleRef"];
        let rules = &role(
            role_ref["kind"].as_str().expect("roleRef.kind"),
            role_ref["name"].as_str().expect("roleRef.name"),
            binding_namespace,
        )["rules"];
        for rule in rules.as_array().expect("rules") {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_str().expect("a string").to_owned())
                    .collect()
            };
            assert!(
                rule.get("nonResourceURLs").is_none(),
                "no non-resource URLs: {rule}"
            );
            let names: Vec<Option<String>> = match strings("resourceNames") {
                names if names.is_empty() => vec![None],
                names => names.into_iter().map(Some).collect(),
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for resource_name in &names {
                        for verb in strings("verbs") {
                            assert!(
                                group != "*" && resource != "*" && verb != "*",
                                "no wildcards: {rule}"
                            );
                            out.insert(Grant {
                                scope: scope.clone(),
                                group: group.clone(),
                                resource: resource.clone(),
                                name: resource_name.clone(),
                                verb,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The operator's documented needs: PartnerEventSources and Events in `watch_scope`,
/// PartnerAccounts (read, status write) and namespaces (read) cluster-wide, its
/// Lease in the release namespace.
pub fn contract(watch_scope: &str, release_namespace: &str, lease: &str) -> BTreeSet<Grant> {
    let pes = "eventbridgepartner.dev";
    let mut expected = BTreeSet::new();
    for verb in ["get", "list", "watch", "patch"] {
        expected.insert(grant(watch_scope, pes, "partnereventsources", None, verb));
    }
    for verb in ["get", "patch"] {
        expected.insert(grant(
            watch_scope,
            pes,
            "partnereventsources/status",
            None,
            verb,
        ));
    }
    expected.insert(grant(
        watch_scope,
        pes,
        "partnereventsources/finalizers",
        None,
        "update",
    ));
    for verb in ["create", "patch"] {
        expected.insert(grant(watch_scope, "events.k8s.io", "events", None, verb));
    }
    // PartnerAccounts are cluster-scoped and grants select namespaces: read both everywhere,
    // and write PartnerAccount status.
    for verb in ["get", "list", "watch"] {
        expected.insert(grant("*", pes, "partneraccounts", None, verb));
        expected.insert(grant("*", "", "namespaces", None, verb));
    }
    for verb in ["get", "patch"] {
        expected.insert(grant("*", pes, "partneraccounts/status", None, verb));
    }
    let coordination = "coordination.k8s.io";
    // A Lease that does not exist yet cannot be named in a rule, so create is unnamed.
    expected.insert(grant(
        release_namespace,
        coordination,
        "leases",
        None,
        "create",
    ));
    for verb in ["get", "update", "patch"] {
        expected.insert(grant(
            release_namespace,
            coordination,
            "leases",
            Some(lease),
            verb,
        ));
    }
    expected
}
