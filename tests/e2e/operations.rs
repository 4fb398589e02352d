//! End-to-end: what a platform team runs for years — leader election, metrics and health,
//! quiet resyncs, one AWS rate limiter, graceful shutdown, and logs.

use crate::support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use eventbridge_partner_emulator::{Config as EmulatorConfig, Emulator};
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::Api;
use support::controlplane::{ControlPlane, Stop};
use support::http::get;
use support::operator::{Launch, OperatorProcess, PARTNER_SECRET_ACCESS_KEY};
use support::repo::crd_paths;
use support::scenario::{CUSTOMER, Scenario, TIMEOUT};

/// The value of one sample line of a Prometheus text page, 0 when absent.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn source(i: usize) -> String {
    format!("aws.partner/acme.com/customer-{i}/orders")
}

/// How to launch one replica of an operator that elects a leader through a Lease of its own.
fn elected(s: &Scenario, lease_duration: &str) -> Launch {
    s.launch()
        .arg("--leader-election", "true")
        .arg("--lease-name", &s.namespace)
        .arg("--lease-namespace", &s.namespace)
        .arg("--lease-duration", lease_duration)
}

/// Who holds the scenario's Lease (named after its namespace), if anyone.
async fn lease_holder(s: &Scenario) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), &s.namespace);
    let lease = leases.get(&s.namespace).await.expect("the Lease exists");
    lease.spec.and_then(|spec| spec.holder_identity)
}

/// Waits until the process logs that it leads.
async fn wait_leading(op: &OperatorProcess, timeout: Duration) {
    op.wait_for_log(timeout, "that it leads", |l| l["message"] == "leading")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_a_standby_takes_over_after_sigkill() {
    let s = Scenario::start("leader").await;
    let lease_duration = Duration::from_secs(6);
    let launch = elected(&s, "6s");
    let first = launch.clone().arg("--identity", "replica-a").start();
    wait_leading(&first, TIMEOUT).await;
    let second = launch.clone().arg("--identity", "replica-b").start();
    // The standby is up and ready, but does not lead.
    let standby_addr = second.http_addr().await;
    let deadline = Instant::now() + TIMEOUT;
    while get(standby_addr, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "standby never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sample(
            &get(standby_addr, "/metrics").await.1,
            "eventbridge_partner_operator_leader"
        ) == 0.0
    );

    s.create(&s.object("first", &source(1), CUSTOMER)).await;
    s.wait_ready("first").await;
    let reconciled = |op: &OperatorProcess| {
        op.log_lines()
            .iter()
            .filter(|l| l["message"] == "reconciled")
            .count()
    };
    // The status is written before the pass logs its line: wait for the line.
    first
        .wait_for_log(TIMEOUT, "a reconcile", |l| l["message"] == "reconciled")
        .await;
    assert_eq!(reconciled(&second), 0, "the standby must not reconcile");
    assert_eq!(lease_holder(&s).await.as_deref(), Some("replica-a"));

    // The leader dies without a chance to release the Lease.
    let mut first = first;
    first.kill();
    let killed = Instant::now();
    // The standby must take over once the lease expires: allow the lease duration plus the
    // renewal period it may have just missed, and a margin for a busy machine.
    wait_leading(&second, lease_duration * 2 + Duration::from_secs(10)).await;
    println!(
        "standby took over {:?} after SIGKILL (lease duration {lease_duration:?})",
        killed.elapsed()
    );
    s.create(&s.object("second", &source(2), CUSTOMER)).await;
    s.wait_ready("second").await;
    second
        .wait_for_log(TIMEOUT, "a reconcile", |l| l["message"] == "reconciled")
        .await;
    assert!(
        sample(
            &get(standby_addr, "/metrics").await.1,
            "eventbridge_partner_operator_leader"
        ) == 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_releases_the_lease_and_exits_cleanly() {
    let s = Scenario::start("shutdown").await;
    let launch = elected(&s, "10s");
    let mut leader = launch.clone().arg("--identity", "replica-a").start();
    wait_leading(&leader, TIMEOUT).await;

    // A create that is in flight when SIGTERM arrives.
    s.emulator
        .set_latency("CreatePartnerEventSource", Duration::from_secs(2));
    s.create(&s.object("orders", &source(1), CUSTOMER)).await;
    s.wait_emulator("a create in flight", |e| {
        e.calls("CreatePartnerEventSource") >= 1
    })
    .await;
    let status = leader
        .terminate(Duration::from_secs(30))
        .await
        .expect("exits within the grace period");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        leader.log()
    );
    let log = leader.log();
    assert!(log.contains("released the leader lease"), "{log}");

    // The in-flight create finished before exit: its result is in the status.
    let obj = s.api().get("orders").await.unwrap();
    assert!(
        support::scenario::condition_is(&obj, "Ready", "True", None),
        "{obj:?}"
    );
    // The Lease no longer names the old leader, well before its 10 s would have run out.
    assert_ne!(
        lease_holder(&s).await.as_deref(),
        Some("replica-a"),
        "lease not released"
    );

    // A new replica takes over and adds no second source.
    let standby = launch.clone().arg("--identity", "replica-b").start();
    wait_leading(&standby, TIMEOUT).await;
    s.create(&s.object("more", &source(2), CUSTOMER)).await;
    s.emulator
        .set_latency("CreatePartnerEventSource", Duration::ZERO);
    s.wait_ready("more").await;
    assert_eq!(s.emulator.sources().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints_report_and_move() {
    let s = Scenario::start("metrics").await;
    s.emulator
        .inject_errors("CreatePartnerEventSource", &["ThrottlingException"]);
    let operator = s.launch().start();
    let addr = operator.http_addr().await;
    assert_eq!(get(addr, "/healthz").await.0, 200);
    let deadline = Instant::now() + TIMEOUT;
    while get(addr, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = get(addr, "/metrics").await.1;
    assert_eq!(
        sample(&before, "eventbridge_partner_operator_leader"),
        1.0,
        "{before}"
    );

    s.create(&s.object("orders", &source(1), CUSTOMER)).await;
    s.wait_ready("orders").await;
    // The status is written before the pass is counted: wait for the count.
    let ready = r#"eventbridge_partner_operator_reconciles_total{result="ready"}"#;
    let page = metrics_when(addr, |page| sample(page, ready) >= 1.0).await;
    for (series, at_least) in [
        (
            r#"eventbridge_partner_operator_reconciles_total{result="ready"}"#,
            1.0,
        ),
        (
            r#"eventbridge_partner_operator_reconciles_total{result="retrying"}"#,
            1.0,
        ),
        (
            r#"eventbridge_partner_operator_aws_requests_total{operation="CreatePartnerEventSource",outcome="success"}"#,
            1.0,
        ),
        (
            r#"eventbridge_partner_operator_aws_requests_total{operation="CreatePartnerEventSource",outcome="ThrottlingException"}"#,
            1.0,
        ),
        (
            r#"eventbridge_partner_operator_aws_request_duration_seconds_count{operation="CreatePartnerEventSource"}"#,
            2.0,
        ),
        (
            "eventbridge_partner_operator_reconcile_duration_seconds_count",
            2.0,
        ),
        (r#"eventbridge_partner_operator_objects{ready="True"}"#, 1.0),
        (
            r#"eventbridge_partner_operator_objects_by_state{state="PENDING"}"#,
            1.0,
        ),
    ] {
        assert!(
            sample(&page, series) >= at_least,
            "{series} < {at_least} in\n{page}"
        );
        assert!(
            sample(&page, series) > sample(&before, series),
            "{series} did not move"
        );
    }
    // The state gauge follows activation.
    s.emulator.activate(&source(1));
    let active = r#"eventbridge_partner_operator_objects_by_state{state="ACTIVE"}"#;
    metrics_when(addr, |page| sample(page, active) == 1.0).await;
}

/// Scrapes `/metrics` until `ready` holds for the page, and returns that page.
async fn metrics_when(addr: SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let page = get(addr, "/metrics").await.1;
        if ready(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never got there:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resyncs_of_unchanged_objects_write_nothing() {
    let s = Scenario::start("quiet").await;
    let _operator = s.launch().arg("--resync-interval", "1s").start();
    let names = ["a", "b", "c"];
    for (i, name) in names.iter().enumerate() {
        s.create(&s.object(name, &source(i), CUSTOMER)).await;
    }
    let mut versions = HashMap::new();
    for name in names {
        // The first resync adds the creation and expiration times; from then on nothing
        // changes.
        let obj = s.wait_looked_at(name).await;
        versions.insert(name, obj.resource_version());
    }
    // Every object is looked at again in AWS at least three more times...
    let listed = s.emulator.calls("ListPartnerEventSourceAccounts");
    s.wait_emulator("three more resyncs of each object", |e| {
        e.calls("ListPartnerEventSourceAccounts") >= listed + 3 * names.len() as u64
    })
    .await;
    // ...and not one of those passes wrote to the API server.
    for name in names {
        let now = s.api().get(name).await.unwrap();
        assert_eq!(
            now.resource_version(),
            versions[name],
            "{name} was written during resync"
        );
    }
    println!(
        "{} account listings across resyncs, 0 writes",
        s.emulator.calls("ListPartnerEventSourceAccounts") - listed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rate_limiter_keeps_200_objects_within_the_aws_quota() {
    let s = Scenario::start("ratelimit").await;
    let rate = 25.0;
    for operation in [
        "CreatePartnerEventSource",
        "ListPartnerEventSourceAccounts",
        "DescribePartnerEventSource",
    ] {
        s.emulator.set_quota(operation, rate, 25);
    }
    let _operator = s
        .launch()
        .arg("--aws-rps", "25")
        .arg("--aws-burst", "25")
        .arg("--concurrency", "16")
        .arg("--resync-interval", "10m")
        .start();
    let count = 200;
    for i in 0..count {
        s.create(&s.object(&format!("orders-{i}"), &source(i), CUSTOMER))
            .await;
    }
    s.wait_emulator("200 sources", |e| e.sources().len() == count)
        .await;
    for i in 0..count {
        s.wait_ready(&format!("orders-{i}")).await;
    }
    let throttled: u64 = ["CreatePartnerEventSource", "ListPartnerEventSourceAccounts"]
        .iter()
        .map(|op| s.emulator.calls_with_outcome(op, "ThrottlingException"))
        .sum();
    let calls = s.emulator.calls("CreatePartnerEventSource")
        + s.emulator.calls("ListPartnerEventSourceAccounts");
    println!("{count} objects: {calls} EventBridge calls, {throttled} ThrottlingException answers");
    assert!(
        throttled * 100 <= calls,
        "{throttled} of {calls} calls throttled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_with_object_identity_request_ids_and_no_credentials() {
    let s = Scenario::start("logs").await;
    s.emulator.inject_errors(
        "CreatePartnerEventSource",
        &["ConcurrentModificationException"],
    );
    let operator = s.launch().start();
    s.create(&s.object("orders", &source(1), CUSTOMER)).await;
    s.wait_ready("orders").await;
    // The status is written before the pass logs its line: wait for the line.
    operator
        .wait_for_log(TIMEOUT, "the Ready pass", |l| {
            l["message"] == "reconciled" && l["result"] == "ready"
        })
        .await;
    let lines = operator.log_lines();
    assert!(!lines.is_empty());
    assert_eq!(
        lines.len(),
        operator.log().lines().count(),
        "every line is JSON"
    );

    let reconciled: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "reconciled")
        .collect();
    assert!(!reconciled.is_empty());
    for line in &reconciled {
        let span = &line["span"];
        assert_eq!(span["namespace"], s.namespace.as_str(), "{line}");
        assert_eq!(span["object"], "orders", "{line}");
        assert!(
            span["generation"].as_i64().is_some_and(|g| g >= 1),
            "{line}"
        );
    }
    let failure = lines
        .iter()
        .find(|l| l["code"] == "ConcurrentModificationException")
        .unwrap_or_else(|| panic!("no AWS error line in\n{}", operator.log()));
    let request_id = failure["request_id"].as_str().unwrap_or("-");
    assert!(request_id != "-" && !request_id.is_empty(), "{failure}");
    assert_eq!(failure["span"]["object"], "orders");

    assert!(
        !operator.log().contains(PARTNER_SECRET_ACCESS_KEY),
        "the secret key reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_objects_become_ready_while_resyncs_outgrow_the_budget() {
    let s = Scenario::start("starve").await;
    // 5 calls/s in all, 1/s of it for resyncs, and 40 Ready objects that want a resync every
    // second: 40 calls/s of background demand, eight times the whole budget.
    let operator = s
        .launch()
        .arg("--aws-rps", "5")
        .arg("--aws-burst", "5")
        .arg("--resync-budget", "0.2")
        .arg("--resync-interval", "1s")
        .arg("--concurrency", "8")
        .start();
    let settled = 40;
    for i in 0..settled {
        s.create(&s.object(&format!("old-{i}"), &source(i), CUSTOMER))
            .await;
    }
    for i in 0..settled {
        s.wait_ready(&format!("old-{i}")).await;
    }
    // The operator says that the interval stretched: 40 objects at 1 resync/s.
    let addr = operator.http_addr().await;
    // The budget is keyed by the AWS account STS reports for the operator: the emulator's
    // partner account.
    let interval = r#"eventbridge_partner_operator_resync_interval_seconds{account="111111111111",region="eu-west-1"}"#;
    metrics_when(addr, |page| sample(page, interval) >= 40.0).await;

    // New objects are served before the resyncs: each becomes Ready well within the timeout
    // (starved, they would wait behind every resync indefinitely).
    let fresh = 10;
    for i in 0..fresh {
        s.create(&s.object(&format!("new-{i}"), &source(1000 + i), CUSTOMER))
            .await;
    }
    for i in 0..fresh {
        s.wait_ready(&format!("new-{i}")).await;
    }
    // Background work stayed within its share: far fewer listings than the 40/s asked for.
    let listed = s.emulator.calls("ListPartnerEventSourceAccounts");
    println!(
        "{settled} settled objects and {fresh} new ones: {listed} account listings, effective resync interval {}s",
        sample(&get(addr, "/metrics").await.1, interval)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_confirm_its_lease_exits_instead_of_running_on() {
    // A control plane of its own, to take away from the leader.
    let cp = ControlPlane::dedicated();
    cp.install_crds(&crd_paths());
    cp.ensure_namespace("lease-lost");
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("start the emulator");
    let mut leader = Launch::new(cp.kubeconfig(), &emulator.endpoint_url(), "lease-lost")
        .arg("--leader-election", "true")
        .arg("--lease-name", "lease-lost")
        .arg("--lease-namespace", "lease-lost")
        .arg("--lease-duration", "6s")
        .start();
    leader
        .wait_for_log(TIMEOUT, "leading", |l| l["message"] == "leading")
        .await;

    // With the API server gone, the Lease cannot be renewed: once it has run out, a standby
    // elsewhere may lead, so this replica must stop at once rather than reconcile on.
    cp.stop(Stop::Graceful);
    let status = leader
        .wait_exited(TIMEOUT, "the API server went away")
        .await;
    assert!(!status.success(), "{status}");
    assert!(
        leader
            .log()
            .contains("lost the leader lease; exiting at once"),
        "{}",
        leader.log()
    );
}
