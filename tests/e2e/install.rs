//! End-to-end: `helm install` into the real API server, then the operator binary runs with a
//! token of the chart's ServiceAccount (TokenRequest) — not as an administrator — and does its
//! whole job within the RBAC the chart grants; what the chart does not grant is denied.

use crate::support;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams};
use support::chart::{chart, helm};
use support::command::run;
use support::controlplane::{ControlPlane, client_for};
use support::scenario::{Scenario, unique};

fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 403)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_does_its_job_as_the_charts_service_account_and_nothing_more() {
    // A control plane of this suite's own: the chart's ValidatingAdmissionPolicy judges the
    // PartnerEventSources of every namespace, the other suites' too.
    let s = Scenario::start_on(ControlPlane::of_suite("install"), "serviceaccount").await;
    let release_ns = unique("ebpo-release");
    run(helm()
        .arg("--kubeconfig")
        .arg(s.cp.kubeconfig())
        .args(["install", "ebpo"])
        .arg(chart())
        .args(["--namespace", &release_ns, "--create-namespace"])
        .args(["--set", &format!("labelSelector=e2e={}", s.selector)])
        .args(["--set", "aws.region=eu-west-1"]));

    // The chart's ServiceAccount, and a kubeconfig holding a token of it.
    let accounts: Api<ServiceAccount> = Api::namespaced(s.client.clone(), &release_ns);
    let account = accounts
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|a| a.metadata.name)
        .find(|n| n != "default")
        .expect("the chart creates a ServiceAccount");
    let kubeconfig = s.cp.service_account_kubeconfig(&release_ns, &account).await;

    // The operator, as that ServiceAccount, with leader election in the release namespace as
    // the chart's Deployment runs it.
    let operator =
        support::operator::Launch::new(&kubeconfig, &s.emulator.endpoint_url(), &s.selector)
            .arg("--leader-election", "true")
            .arg("--lease-namespace", &release_ns)
            .start();
    operator
        .wait_for_log(support::scenario::TIMEOUT, "that it leads", |l| {
            l["message"] == "leading"
        })
        .await;

    s.create(&s.example()).await;
    let obj = s.wait_ready("customer-4711-orders").await;
    println!(
        "as system:serviceaccount:{release_ns}:{account}: customer-4711-orders is Ready, ARN {}",
        obj.status.and_then(|st| st.arn).unwrap_or_default()
    );
    s.wait_event(&s.namespace, "customer-4711-orders", "Created")
        .await;
    // Deletion exercises the finalizer and the Delete policy.
    s.delete(&s.namespace, "customer-4711-orders").await;
    s.wait_gone(&s.namespace, "customer-4711-orders").await;
    assert!(s.emulator.sources().is_empty());
    let log = operator.log();
    assert!(
        !log.contains("Forbidden") && !log.contains("forbidden"),
        "an API call was refused:\n{log}"
    );

    // What the chart does not grant is denied to the same identity.
    let as_operator = client_for(&kubeconfig).await;
    let secrets: Api<Secret> = Api::namespaced(as_operator.clone(), &release_ns);
    let denied = secrets
        .list(&ListParams::default())
        .await
        .expect_err("listing Secrets must be denied");
    assert!(is_forbidden(&denied), "{denied}");
    println!("denied as the ServiceAccount: list secrets -> {denied}");
    s.create(&s.object(
        "kept",
        "aws.partner/acme.com/customer-1/orders",
        "123456789012",
    ))
    .await;
    let objects = s.api_in(&s.namespace);
    let mine: Api<eventbridge_partner_operator::resources::PartnerEventSource> =
        Api::namespaced(as_operator, &s.namespace);
    let denied = mine
        .delete("kept", &DeleteParams::default())
        .await
        .expect_err("deleting objects must be denied");
    assert!(is_forbidden(&denied), "{denied}");
    println!("denied as the ServiceAccount: delete partnereventsources -> {denied}");
    assert!(objects.get_opt("kept").await.unwrap().is_some());
}
