//! End-to-end: the partner event source lifecycle as AWS defines it — expiry of sources no one
//! activates, the customer deleting its bus — and the two ways to hold the operator back:
//! `managementPolicy: Observe` and the paused annotation.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::scenario::{CUSTOMER, Scenario, condition_is};

const PENDING_FOR: Duration = Duration::from_secs(8);

fn source(name: &str) -> String {
    format!("aws.partner/acme.com/{name}/orders")
}

fn successful_creates(s: &Scenario) -> u64 {
    s.emulator
        .calls_with_outcome("CreatePartnerEventSource", "ok")
}

/// An ACTIVE source never expires: its resyncs show that time passes for the operator.
async fn sentinel(s: &Scenario) -> String {
    s.create(&s.object("sentinel", &source("sentinel"), CUSTOMER))
        .await;
    s.wait_ready("sentinel").await;
    assert!(s.emulator.activate(&source("sentinel")));
    s.wait(&s.namespace, "sentinel", "ACTIVE", |o| {
        o.status.as_ref().and_then(|st| st.state.as_deref()) == Some("ACTIVE")
    })
    .await;
    "sentinel".into()
}

async fn patch_spec(s: &Scenario, name: &str, spec: serde_json::Value) {
    s.api()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .expect("patch the spec");
}

async fn set_paused(s: &Scenario, name: &str, paused: bool) {
    let value = if paused { json!("true") } else { json!(null) };
    s.api()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"eventbridgepartner.dev/paused": value}}
            })),
        )
        .await
        .expect("patch the annotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_aws_expires_is_reported_expired_and_not_created_again() {
    let s = Scenario::start("expiry").await;
    s.emulator.set_pending_expiration(PENDING_FOR);
    let _operator = s.launch().arg("--resync-interval", "1s").start();
    sentinel(&s).await;
    s.create(&s.object("orders", &source("orders"), CUSTOMER))
        .await;
    s.wait_looked_at("orders").await;

    let obj = s
        .wait_reason(&s.namespace, "orders", "False", "Expired")
        .await;
    let message = &obj.condition("Ready").unwrap().message;
    assert!(message.contains("onExpiry: Recreate"), "{message}");
    s.wait_event(&s.namespace, "orders", "Expired").await;
    assert!(s.emulator.source(&source("orders")).is_none());
    // Two more resyncs of the sentinel later, the expired source was still not created again.
    let creates = successful_creates(&s);
    let listed = s.emulator.calls("ListPartnerEventSourceAccounts");
    s.wait_emulator("two more resyncs", |e| {
        e.calls("ListPartnerEventSourceAccounts") >= listed + 2
    })
    .await;
    assert_eq!(
        successful_creates(&s),
        creates,
        "an expired source is not recreated"
    );
    assert_eq!(creates, 2, "the sentinel and the expired source, once each");

    // Revived by onExpiry: Recreate.
    patch_spec(&s, "orders", json!({"onExpiry": "Recreate"})).await;
    s.wait_reason(&s.namespace, "orders", "True", "Recreated")
        .await;
    assert!(s.emulator.source(&source("orders")).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_expiry_recreate_creates_the_expired_source_again() {
    let s = Scenario::start("recreate").await;
    s.emulator.set_pending_expiration(PENDING_FOR);
    let _operator = s.launch().arg("--resync-interval", "1s").start();
    let mut obj = s.object("orders", &source("orders"), CUSTOMER);
    obj.spec.on_expiry = Some(eventbridge_partner_operator::resources::OnExpiry::Recreate);
    s.create(&obj).await;
    s.wait_looked_at("orders").await;
    s.wait_emulator("the source expired and was created again", |e| {
        e.calls_with_outcome("CreatePartnerEventSource", "ok") >= 2
    })
    .await;
    s.wait_reason(&s.namespace, "orders", "True", "Recreated")
        .await;
    s.wait_event(&s.namespace, "orders", "Recreated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_deleting_its_bus_shows_pending_and_then_expired() {
    let s = Scenario::start("bus").await;
    s.emulator.set_deactivated_expiration(PENDING_FOR);
    let _operator = s.launch().arg("--resync-interval", "1s").start();
    s.create(&s.object("orders", &source("orders"), CUSTOMER))
        .await;
    s.wait_ready("orders").await;
    assert!(s.emulator.activate(&source("orders")));
    s.wait(&s.namespace, "orders", "Activated", |o| {
        condition_is(o, "Activated", "True", Some("Active"))
    })
    .await;

    assert!(s.emulator.delete_bus(&source("orders")));
    let pending = s
        .wait(&s.namespace, "orders", "PENDING again", |o| {
            o.status.as_ref().and_then(|st| st.state.as_deref()) == Some("PENDING")
        })
        .await;
    assert!(condition_is(&pending, "Ready", "True", None));
    assert!(
        pending
            .status
            .as_ref()
            .is_some_and(|st| st.expiration_time.is_some()),
        "a new expiration time"
    );
    s.wait_reason(&s.namespace, "orders", "False", "Expired")
        .await;
    assert_eq!(successful_creates(&s), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_reports_existing_and_missing_sources_without_a_mutating_call() {
    use eventbridge_partner_operator::resources::ManagementPolicy;
    let s = Scenario::start("observe").await;
    let aws = s.aws_as(s.emulator.partner_account()).await;
    aws.create_partner_event_source()
        .name(source("existing"))
        .account(CUSTOMER)
        .send()
        .await
        .expect("a source made before the operator");
    let creates_before = s.emulator.calls("CreatePartnerEventSource");
    let _operator = s.launch().start();
    for (name, source_name) in [
        ("existing", source("existing")),
        ("missing", source("missing")),
    ] {
        let mut obj = s.object(name, &source_name, CUSTOMER);
        obj.spec.management_policy = Some(ManagementPolicy::Observe);
        s.create(&obj).await;
    }
    let existing = s
        .wait_reason(&s.namespace, "existing", "True", "Observed")
        .await;
    assert!(existing.status.as_ref().unwrap().arn.is_some());
    s.wait_reason(&s.namespace, "missing", "False", "NotFound")
        .await;

    for name in ["existing", "missing"] {
        s.delete(&s.namespace, name).await;
        s.wait_gone(&s.namespace, name).await;
    }
    assert_eq!(s.emulator.calls("CreatePartnerEventSource"), creates_before);
    assert_eq!(s.emulator.calls("DeletePartnerEventSource"), 0);
    assert!(s.emulator.source(&source("existing")).is_some());
    assert!(s.emulator.source(&source("missing")).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_then_manage_takes_over_without_a_create() {
    use eventbridge_partner_operator::resources::ManagementPolicy;
    let s = Scenario::start("takeover").await;
    let aws = s.aws_as(s.emulator.partner_account()).await;
    aws.create_partner_event_source()
        .name(source("orders"))
        .account(CUSTOMER)
        .send()
        .await
        .expect("a source made before the operator");
    let _operator = s.launch().start();
    let mut obj = s.object("orders", &source("orders"), CUSTOMER);
    obj.spec.management_policy = Some(ManagementPolicy::Observe);
    s.create(&obj).await;
    s.wait_reason(&s.namespace, "orders", "True", "Observed")
        .await;
    patch_spec(&s, "orders", json!({"managementPolicy": "Manage"})).await;
    s.wait_reason(&s.namespace, "orders", "True", "Adopted")
        .await;
    assert_eq!(
        s.emulator.calls("CreatePartnerEventSource"),
        1,
        "only the one made before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_object_makes_no_aws_call_and_keeps_its_finalizer_until_unpaused() {
    let s = Scenario::start("pause").await;
    let operator = s.launch().arg("--resync-interval", "1s").start();
    s.create(&s.object("orders", &source("orders"), CUSTOMER))
        .await;
    s.wait_looked_at("orders").await;

    set_paused(&s, "orders", true).await;
    s.wait(&s.namespace, "orders", "Paused", |o| {
        condition_is(o, "Paused", "True", Some("Paused"))
    })
    .await;
    // Deleting it while paused: the finalizer holds it, and AWS hears nothing.
    s.delete(&s.namespace, "orders").await;
    let held = s
        .wait(&s.namespace, "orders", "being deleted", |o| {
            o.metadata.deletion_timestamp.is_some()
        })
        .await;
    assert!(!held.metadata.finalizers.unwrap_or_default().is_empty());
    operator
        .wait_for_log(
            support::scenario::TIMEOUT,
            "the paused deletion pass",
            |l| {
                l["message"] == "reconciled"
                    && l["result"] == "paused"
                    && l["span"]["object"] == "orders"
            },
        )
        .await;
    // A second object's resyncs show time passing for the operator meanwhile.
    s.create(&s.object("other", &source("other"), CUSTOMER))
        .await;
    s.wait_ready("other").await;
    let listed = s.emulator.calls("ListPartnerEventSourceAccounts");
    s.wait_emulator("two resyncs of the other object", |e| {
        e.calls("ListPartnerEventSourceAccounts") >= listed + 2
    })
    .await;
    // Every pass over the paused object since the pause made no AWS call.
    let lines = operator.log_lines();
    let passes: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "reconciled" && l["span"]["object"] == "orders")
        .skip_while(|l| l["result"] != "paused")
        .collect();
    assert!(passes.len() >= 2, "the pause and the deletion: {passes:?}");
    for pass in &passes {
        assert_eq!(pass["result"], "paused", "{pass}");
        assert_eq!(pass["aws_calls"], 0, "{pass}");
    }
    assert_eq!(s.emulator.calls("DeletePartnerEventSource"), 0);
    assert!(s.emulator.source(&source("orders")).is_some());

    set_paused(&s, "orders", false).await;
    s.wait_gone(&s.namespace, "orders").await;
    assert!(s.emulator.source(&source("orders")).is_none());
}

/// The value of one sample line of a Prometheus text page, 0 when absent.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_in_its_last_day_warns_and_is_counted() {
    let s = Scenario::start("soon").await;
    // AWS's real period is 7 days; 23 hours puts a new source in its last day at once.
    s.emulator
        .set_pending_expiration(Duration::from_secs(23 * 3600));
    let operator = s.launch().arg("--resync-interval", "1s").start();
    s.create(&s.object("orders", &source("orders"), CUSTOMER))
        .await;
    s.wait(&s.namespace, "orders", "ExpiringSoon", |o| {
        condition_is(o, "Activated", "False", Some("ExpiringSoon"))
    })
    .await;
    let event = s.wait_event(&s.namespace, "orders", "ExpiringSoon").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let addr = operator.http_addr().await;
    let series = "eventbridge_partner_operator_sources_expiring_soon";
    let deadline = tokio::time::Instant::now() + support::scenario::TIMEOUT;
    loop {
        let page = metrics(addr).await;
        if sample(&page, series) == 1.0 {
            assert_eq!(
                sample(
                    &page,
                    r#"eventbridge_partner_operator_objects_by_state{state="PENDING"}"#
                ),
                1.0
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gauge never 1:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
