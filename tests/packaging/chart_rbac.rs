//! The chart's RBAC is exactly the operator's contract: read from the rendered objects for
//! each way of running it, and, with the chart installed by helm in the real API server,
//! asked of the API server as the chart's ServiceAccount (`kubectl auth can-i`).

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::chart::{
    DEFAULT_LEASE, Render, chart, ci_values, helm, kind, name, service_account_name,
};
use support::command::{output_of, run};
use support::controlplane::ControlPlane;
use support::rbac::{Grant, contract, grants};

// ---------------------------------------------------------------------------------------
// RBAC: exactly the operator's contract, read from the rendered objects.

#[test]
fn rbac_watching_all_namespaces_grants_exactly_the_contract() {
    let docs = Render::new().release("ebpo", "operators").docs();
    let account = service_account_name(&docs);
    assert_eq!(
        grants(&docs, "operators", &account),
        contract("*", "operators", DEFAULT_LEASE)
    );
    let kinds: BTreeSet<&str> = docs.iter().map(kind).collect();
    assert!(kinds.contains("ClusterRole") && kinds.contains("ClusterRoleBinding"));
}

#[test]
fn rbac_watching_one_namespace_grants_exactly_the_contract_there() {
    let docs = Render::new()
        .release("ebpo", "operators")
        .values(ci_values("single-namespace-values.yaml"))
        .docs();
    let account = service_account_name(&docs);
    assert_eq!(
        grants(&docs, "operators", &account),
        contract("tenants", "operators", DEFAULT_LEASE)
    );
    // Cluster-wide only for what is cluster-scoped: PartnerAccounts and namespace labels.
    for doc in &docs {
        if matches!(kind(doc), "ClusterRole" | "ClusterRoleBinding") {
            assert!(
                name(doc).ends_with("-partner-accounts"),
                "no other cluster-wide RBAC when watching one namespace: {}",
                name(doc)
            );
        }
    }
}

#[test]
fn rbac_follows_the_lease_name_and_leader_election() {
    let docs = Render::new()
        .values(ci_values("everything-on-values.yaml"))
        .docs();
    let account = service_account_name(&docs);
    assert_eq!(
        grants(&docs, "operators", &account),
        contract("*", "operators", "partner-operator-leader")
    );

    let docs = Render::new().set("leaderElection.enabled=false").docs();
    let account = service_account_name(&docs);
    let without_leases: BTreeSet<Grant> = contract("*", "operators", DEFAULT_LEASE)
        .into_iter()
        .filter(|g| g.resource != "leases")
        .collect();
    assert_eq!(grants(&docs, "operators", &account), without_leases);

    let docs = Render::new().set("rbac.create=false").docs();
    assert!(
        docs.iter().all(|doc| !kind(doc).contains("Role")),
        "rbac.create=false renders no RBAC"
    );
}

// ---------------------------------------------------------------------------------------
// The chart installed in a real control plane: what its ServiceAccount may do.

/// `kubectl auth can-i` as the given kubeconfig; true for "yes".
fn can_i(control_plane: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> bool {
    let output = output_of(
        Command::new(control_plane.bin_dir().join("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["auth", "can-i"])
            .args(args),
    );
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // An unknown resource type is answered "no" with a warning: that would prove nothing.
    assert!(
        !stderr.contains("doesn't have a resource type"),
        "kubectl auth can-i {args:?}: {stderr}"
    );
    match answer.as_str() {
        "yes" => true,
        "no" => false,
        _ => panic!(
            "kubectl auth can-i {args:?}: {answer}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// The `kubectl auth can-i` arguments that ask for one grant, in namespace `namespace`
/// (ignored for cluster-wide list and watch, which are asked across all namespaces too).
fn can_i_args(grant: &Grant, namespace: &str) -> Vec<String> {
    let (resource, subresource) = match grant.resource.split_once('/') {
        Some((resource, subresource)) => (resource, Some(subresource)),
        None => (grant.resource.as_str(), None),
    };
    let mut target = format!("{resource}.{}", grant.group);
    if let Some(name) = &grant.name {
        target = format!("{target}/{name}");
    }
    let mut args = vec![grant.verb.clone(), target, "-n".into(), namespace.into()];
    if let Some(subresource) = subresource {
        args.push(format!("--subresource={subresource}"));
    }
    args
}

/// Installs the chart as `release` in `namespace` with `values`, and returns the rendered
/// objects and a kubeconfig acting as the chart's ServiceAccount.
async fn install(
    control_plane: &ControlPlane,
    release: &str,
    namespace: &str,
    values: &Path,
) -> (Vec<Value>, PathBuf) {
    let docs = Render::new()
        .release(release, namespace)
        .values(values.to_owned())
        .docs();
    for doc in &docs {
        if let Some(other) = doc["metadata"]["namespace"].as_str()
            && other != namespace
        {
            control_plane.ensure_namespace(other);
        }
    }
    run(helm()
        .arg("--kubeconfig")
        .arg(control_plane.kubeconfig())
        .args(["install", release])
        .arg(chart())
        .args(["--namespace", namespace, "--create-namespace", "--values"])
        .arg(values));
    let status = run(helm()
        .arg("--kubeconfig")
        .arg(control_plane.kubeconfig())
        .args(["status", release, "--namespace", namespace, "-o", "json"]));
    let status: Value = serde_json::from_str(&status).expect("helm status JSON");
    assert_eq!(status["info"]["status"], json!("deployed"));
    let account = service_account_name(&docs);
    let kubeconfig = control_plane
        .service_account_kubeconfig(namespace, &account)
        .await;
    (docs, kubeconfig)
}

/// Asserts that the ServiceAccount may do everything in `granted` and none of `denied`.
fn assert_rights(
    control_plane: &ControlPlane,
    kubeconfig: &Path,
    granted: &BTreeSet<Grant>,
    namespace_for_cluster_scope: &str,
    denied: &[Vec<&str>],
) {
    let mut wrong = Vec::new();
    for grant in granted {
        let namespace = match grant.scope.as_str() {
            "*" => namespace_for_cluster_scope,
            scope => scope,
        };
        let args = can_i_args(grant, namespace);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if !can_i(control_plane, kubeconfig, &args) {
            wrong.push(format!("denied but granted: {args:?}"));
        }
        if grant.scope == "*" && grant.name.is_none() && !grant.resource.contains('/') {
            let across = [grant.verb.as_str(), args[1], "--all-namespaces"];
            if !can_i(control_plane, kubeconfig, &across) {
                wrong.push(format!("denied but granted: {across:?}"));
            }
        }
    }
    for args in denied {
        if can_i(control_plane, kubeconfig, args) {
            wrong.push(format!("allowed but not granted: {args:?}"));
        }
        // The same question as cluster admin is a "yes", so the "no" above comes from
        // RBAC and not from a question that cannot be granted at all.
        if !can_i(control_plane, control_plane.kubeconfig(), args) {
            wrong.push(format!("not even cluster admin may: {args:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Installs the chart (see [`install`]) as `release` in `release_namespace` with the ci
/// values file `values`, asserts that its RBAC grants the ServiceAccount exactly the
/// contract for `watch_scope`, and checks those rights and the `denied` ones on the API
/// server (see [`assert_rights`]).
async fn install_and_assert_contract(
    control_plane: &ControlPlane,
    release: &str,
    release_namespace: &str,
    values: &str,
    watch_scope: &str,
    namespace_for_cluster_scope: &str,
    denied: &[Vec<&str>],
) {
    let (docs, kubeconfig) = install(
        control_plane,
        release,
        release_namespace,
        &ci_values(values),
    )
    .await;
    let account = service_account_name(&docs);
    let granted = grants(&docs, release_namespace, &account);
    assert_eq!(
        granted,
        contract(watch_scope, release_namespace, DEFAULT_LEASE)
    );
    assert_rights(
        control_plane,
        &kubeconfig,
        &granted,
        namespace_for_cluster_scope,
        denied,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_chart_grants_its_service_account_exactly_the_contract() {
    // A control plane of this suite's own: the chart installs its CRDs and a
    // ValidatingAdmissionPolicy that judges every namespace.
    let control_plane = tokio::task::spawn_blocking(|| ControlPlane::of_suite("chart_rbac"))
        .await
        .expect("the control plane starts");

    // Watching every namespace.
    let (release_namespace, tenant) = ("ebpo-cluster", "tenant-a");
    control_plane.ensure_namespace(tenant);
    let pes = "partnereventsources.eventbridgepartner.dev";
    let lease_by_name = format!("leases.coordination.k8s.io/{DEFAULT_LEASE}");
    let denied: Vec<Vec<&str>> = vec![
        vec!["create", pes, "-n", tenant],
        vec!["update", pes, "-n", tenant],
        vec!["delete", pes, "-n", tenant],
        vec!["deletecollection", pes, "-n", tenant],
        vec!["update", pes, "-n", tenant, "--subresource=status"],
        vec!["list", "secrets", "--all-namespaces"],
        vec!["get", "secrets", "-n", release_namespace],
        vec!["list", "configmaps", "-n", release_namespace],
        vec!["get", "pods", "-n", release_namespace],
        vec!["create", "events", "-n", tenant],
        vec!["list", "events.events.k8s.io", "-n", tenant],
        vec!["delete", "events.events.k8s.io", "-n", tenant],
        vec!["create", "leases.coordination.k8s.io", "-n", tenant],
        vec!["get", &lease_by_name, "-n", tenant],
        vec![
            "get",
            "leases.coordination.k8s.io/another-lease",
            "-n",
            release_namespace,
        ],
        vec![
            "update",
            "leases.coordination.k8s.io/another-lease",
            "-n",
            release_namespace,
        ],
        vec![
            "list",
            "leases.coordination.k8s.io",
            "-n",
            release_namespace,
        ],
        vec!["delete", &lease_by_name, "-n", release_namespace],
        vec!["create", "customresourcedefinitions.apiextensions.k8s.io"],
        vec![
            "create",
            "serviceaccounts",
            "--subresource=token",
            "-n",
            release_namespace,
        ],
        vec!["*", "*", "--all-namespaces"],
    ];
    install_and_assert_contract(
        control_plane,
        "cluster-wide",
        release_namespace,
        "default-values.yaml",
        "*",
        tenant,
        &denied,
    )
    .await;

    // Watching one namespace.
    let (release_namespace, watched) = ("ebpo-single", "tenants");
    let denied: Vec<Vec<&str>> = vec![
        vec!["list", pes, "--all-namespaces"],
        vec!["get", pes, "-n", tenant],
        vec!["watch", pes, "-n", release_namespace],
        vec!["patch", pes, "-n", tenant, "--subresource=status"],
        vec!["create", "events.events.k8s.io", "-n", tenant],
        vec!["delete", pes, "-n", watched],
        vec!["list", "secrets", "-n", watched],
        vec!["create", "leases.coordination.k8s.io", "-n", watched],
    ];
    install_and_assert_contract(
        control_plane,
        "single",
        release_namespace,
        "single-namespace-values.yaml",
        watched,
        watched,
        &denied,
    )
    .await;
}
