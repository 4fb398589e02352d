//! End-to-end: the operator binary against a real kube-apiserver and the EventBridge emulator,
//! one test per promise of the reconcile semantics.

use crate::support;

use std::time::Duration;

use eventbridge_partner_operator::error::Error;
use eventbridge_partner_operator::reconcile::shell::{remove_finalizer, write_status};
use eventbridge_partner_operator::resources::FINALIZER;
use eventbridge_partner_operator::resources::{DeletionPolicy, PartnerEventSourceStatus};
use kube::ResourceExt;
use support::repo::{read, sorted_files};
use support::scenario::{CUSTOMER, Scenario, condition_is};

const SOURCE: &str = "aws.partner/acme.com/customer-4711/orders";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_becomes_ready_with_the_emulators_arn() {
    let s = Scenario::start("example").await;
    let _operator = s.launch().start();
    let example = s.example();
    s.create(&example).await;
    let obj = s.wait_ready("customer-4711-orders").await;

    let source = s
        .emulator
        .source(SOURCE)
        .expect("the source exists in the emulator");
    let status = obj.status.as_ref().unwrap();
    assert_eq!(status.arn.as_deref(), Some(source.arn.as_str()));
    assert_eq!(
        source.arn,
        format!("arn:aws:events:eu-west-1::event-source/{SOURCE}")
    );
    assert_eq!(source.account, CUSTOMER);
    assert_eq!(status.state.as_deref(), Some("PENDING"));
    assert_eq!(status.observed_generation, obj.metadata.generation);
    // One AWS call makes it Ready; the times come with the next look.
    let looked = s.wait_looked_at("customer-4711-orders").await;
    let times = looked.status.as_ref().unwrap();
    assert!(times.creation_time.is_some() && times.expiration_time.is_some());
    assert!(condition_is(&obj, "Activated", "False", Some("Pending")));
    assert!(
        obj.finalizers()
            .iter()
            .any(|f| f == "eventbridgepartner.dev/finalizer")
    );
    s.wait_event(&s.namespace, "customer-4711-orders", "Created")
        .await;

    // kubectl shows the printer columns, and the ARN at -o wide.
    let out = s.kubectl(&["get", "pes", "-n", &s.namespace], None);
    let table = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "SOURCE", "ACCOUNT", "STATE", "READY", "AGE"],
        "{table}"
    );
    let row = table.lines().nth(1).unwrap_or_default();
    for cell in ["customer-4711-orders", SOURCE, CUSTOMER, "PENDING", "True"] {
        assert!(row.contains(cell), "{cell} missing in {row}");
    }
    let out = s.kubectl(
        &[
            "get",
            "partnereventsources",
            "-o",
            "wide",
            "-n",
            &s.namespace,
        ],
        None,
    );
    let wide = String::from_utf8_lossy(&out.stdout);
    assert!(
        wide.lines().next().unwrap_or_default().ends_with("ARN"),
        "{wide}"
    );
    assert!(wide.contains(&source.arn), "{wide}");
    // The category works too.
    let out = s.kubectl(&["get", "eventbridge", "-n", &s.namespace], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("customer-4711-orders"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_example_is_rejected_by_the_api_server_naming_the_field() {
    let s = Scenario::start("invalid").await;
    let files = sorted_files("examples/invalid");
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let manifest =
            read(&file).replace("namespace: tenants", &format!("namespace: {}", s.namespace));
        let out = s.kubectl(&["apply", "-f", "-"], Some(&manifest));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", file.display());
        let field = if file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("name")
        {
            "spec.name"
        } else {
            "spec.account"
        };
        assert!(stderr.contains(field), "{}: {stderr}", file.display());
        assert!(
            stderr.contains("should match") || stderr.contains("Invalid value"),
            "{}: {stderr}",
            file.display()
        );
    }
    // Nothing was stored, so nothing can reach AWS.
    let list = s.api().list(&Default::default()).await.unwrap();
    assert!(list.items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_account_and_region_cannot_change() {
    let s = Scenario::start("immutable").await;
    let mut obj = s.object("orders", SOURCE, CUSTOMER);
    obj.spec.region = Some("eu-west-1".into());
    s.create(&obj).await;
    let cases = [
        (
            r#"{"spec":{"name":"aws.partner/acme.com/customer-4711/other"}}"#,
            "spec.name is immutable",
        ),
        (
            r#"{"spec":{"account":"210987654321"}}"#,
            "spec.account is immutable",
        ),
        (
            r#"{"spec":{"region":"us-east-1"}}"#,
            "spec.region is immutable",
        ),
        (r#"{"spec":{"region":null}}"#, "spec.region is immutable"),
    ];
    let patch = |body: &str| {
        s.kubectl(
            &[
                "patch",
                "pes",
                "orders",
                "-n",
                &s.namespace,
                "--type=merge",
                "-p",
                body,
            ],
            None,
        )
    };
    for (body, message) in cases {
        let out = patch(body);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{body} was accepted");
        assert!(stderr.contains(message), "{body}: {stderr}");
    }
    // deletionPolicy may change.
    let out = patch(r#"{"spec":{"deletionPolicy":"Retain"}}"#);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_activation_shows_active_and_back() {
    let s = Scenario::start("activation").await;
    let _operator = s.launch().start();
    s.create(&s.object("orders", SOURCE, CUSTOMER)).await;
    s.wait_ready("orders").await;

    // The customer creates the matching partner event bus in their own account.
    let customer = s.aws_as(CUSTOMER).await;
    customer
        .create_event_bus()
        .name(SOURCE)
        .event_source_name(SOURCE)
        .send()
        .await
        .expect("CreateEventBus");
    let obj = s
        .wait(&s.namespace, "orders", "ACTIVE", |o| {
            o.status
                .as_ref()
                .is_some_and(|st| st.state.as_deref() == Some("ACTIVE"))
                && condition_is(o, "Activated", "True", Some("Active"))
        })
        .await;
    assert!(
        obj.status.unwrap().expiration_time.is_none(),
        "an active source does not expire"
    );
    s.wait_event(&s.namespace, "orders", "Activated").await;

    customer
        .deactivate_event_source()
        .name(SOURCE)
        .send()
        .await
        .expect("DeactivateEventSource");
    s.wait(&s.namespace, "orders", "PENDING again", |o| {
        condition_is(o, "Activated", "False", Some("Pending"))
    })
    .await;
    s.wait_event(&s.namespace, "orders", "Deactivated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_modification_three_times_then_success_makes_exactly_one_source() {
    let s = Scenario::start("concurrent").await;
    s.emulator.inject_errors(
        "CreatePartnerEventSource",
        &[
            "ConcurrentModificationException",
            "ConcurrentModificationException",
            "ConcurrentModificationException",
        ],
    );
    let _operator = s.launch().start();
    s.create(&s.object("orders", SOURCE, CUSTOMER)).await;
    s.wait_ready("orders").await;
    let retrying = s.wait_event(&s.namespace, "orders", "Retrying").await;
    assert!(
        retrying
            .note
            .unwrap_or_default()
            .contains("ConcurrentModificationException")
    );
    assert_eq!(
        s.emulator.calls_with_outcome(
            "CreatePartnerEventSource",
            "ConcurrentModificationException"
        ),
        3
    );
    assert_eq!(s.emulator.sources().len(), 1, "exactly one source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_exceeded_and_throttling_retry_then_become_ready() {
    let s = Scenario::start("throttled").await;
    s.emulator.inject_errors(
        "CreatePartnerEventSource",
        &["LimitExceededException", "ThrottlingException"],
    );
    let _operator = s.launch().start();
    s.create(&s.object("orders", SOURCE, CUSTOMER)).await;
    // Retrying is written to status while the errors last...
    let retrying = s
        .wait_reason(&s.namespace, "orders", "False", "Retrying")
        .await;
    let message = &retrying.condition("Ready").unwrap().message;
    assert!(
        message.contains("LimitExceededException") || message.contains("ThrottlingException"),
        "{message}"
    );
    // ...then the object becomes Ready.
    s.wait_ready("orders").await;
    let notes: Vec<String> = s
        .events(&s.namespace, "orders")
        .await
        .into_iter()
        .filter_map(|e| e.note)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("LimitExceededException")),
        "{notes:?}"
    );
    assert_eq!(s.emulator.sources().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_source_is_adopted_for_the_same_account_and_a_conflict_for_another() {
    let s = Scenario::start("adopt").await;
    let other = "aws.partner/acme.com/customer-9/orders";
    let partner = s.aws_as(s.emulator.partner_account()).await;
    let existing = partner
        .create_partner_event_source()
        .name(SOURCE)
        .account(CUSTOMER)
        .send()
        .await
        .expect("create the source before the operator")
        .event_source_arn
        .unwrap();
    partner
        .create_partner_event_source()
        .name(other)
        .account("999999999999")
        .send()
        .await
        .unwrap();

    let before = s.emulator.calls("CreatePartnerEventSource");
    let _operator = s.launch().start();
    s.create(&s.object("mine", SOURCE, CUSTOMER)).await;
    s.create(&s.object("theirs", other, CUSTOMER)).await;

    let mine = s.wait_reason(&s.namespace, "mine", "True", "Adopted").await;
    assert_eq!(mine.status.unwrap().arn.as_deref(), Some(existing.as_str()));
    s.wait_event(&s.namespace, "mine", "Adopted").await;

    let theirs = s
        .wait_reason(&s.namespace, "theirs", "False", "NameConflict")
        .await;
    assert!(
        theirs
            .condition("Ready")
            .unwrap()
            .message
            .contains("999999999999")
    );
    assert_eq!(s.emulator.sources().len(), 2, "nothing new was created");
    // No retry storm: while "mine" is resynced twice (two more account listings), the
    // conflicting object makes no further create call.
    assert_eq!(s.creates_during_two_resyncs().await, 0);
    assert_eq!(
        s.emulator.calls("CreatePartnerEventSource") - before,
        2,
        "one create per object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_in_two_namespaces_has_one_owner_and_the_conflict_never_deletes_it() {
    let s = Scenario::start("conflict").await;
    let second_ns = s.extra_namespace("conflict-b").await;
    let _operator = s.launch().start();
    s.create(&s.object("orders", SOURCE, CUSTOMER)).await;
    s.wait_ready("orders").await;
    let mut newer = s.object("orders", SOURCE, CUSTOMER);
    newer.metadata.namespace = Some(second_ns.clone());
    s.create(&newer).await;

    let loser = s
        .wait_reason(&second_ns, "orders", "False", "NameConflict")
        .await;
    assert!(
        loser
            .condition("Ready")
            .unwrap()
            .message
            .contains(&format!("{}/orders", s.namespace))
    );
    s.wait_event(&second_ns, "orders", "NameConflict").await;

    // Deleting the conflicting object leaves the owner's source alone.
    s.delete(&second_ns, "orders").await;
    s.wait_gone(&second_ns, "orders").await;
    assert_eq!(s.emulator.calls("DeletePartnerEventSource"), 0);
    assert!(s.emulator.source(SOURCE).is_some());
    let owner = s.api().get("orders").await.unwrap();
    assert!(condition_is(&owner, "Ready", "True", None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_policy_removes_the_source_and_retain_keeps_it() {
    let s = Scenario::start("delete").await;
    let _operator = s.launch().start();
    let kept_source = "aws.partner/acme.com/customer-4711/invoices";
    s.create(&s.object("deleted", SOURCE, CUSTOMER)).await;
    let mut retained = s.object("retained", kept_source, CUSTOMER);
    retained.spec.deletion_policy = Some(DeletionPolicy::Retain);
    s.create(&retained).await;
    s.wait_ready("deleted").await;
    s.wait_ready("retained").await;

    s.delete(&s.namespace, "deleted").await;
    s.wait_gone(&s.namespace, "deleted").await;
    assert!(
        s.emulator.source(SOURCE).is_none(),
        "Delete removes the source"
    );

    s.delete(&s.namespace, "retained").await;
    s.wait_gone(&s.namespace, "retained").await;
    assert!(
        s.emulator.source(kept_source).is_some(),
        "Retain keeps the source"
    );
    assert_eq!(s.emulator.calls("DeletePartnerEventSource"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_deleted_out_of_band_is_recreated_with_an_event() {
    let s = Scenario::start("drift").await;
    let _operator = s.launch().start();
    s.create(&s.object("orders", SOURCE, CUSTOMER)).await;
    s.wait_ready("orders").await;
    assert!(s.emulator.delete_out_of_band(SOURCE));
    s.wait_event(&s.namespace, "orders", "Recreated").await;
    s.wait_reason(&s.namespace, "orders", "True", "Recreated")
        .await;
    assert_eq!(s.emulator.sources().len(), 1);
    assert_eq!(
        s.emulator
            .calls_with_outcome("CreatePartnerEventSource", "ok"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_errors_are_reported_without_a_hot_loop() {
    let s = Scenario::start("terminal").await;
    let _operator = s.launch().start();
    s.create(&s.object(
        "healthy",
        "aws.partner/acme.com/customer-5/orders",
        "210987654321",
    ))
    .await;
    s.wait_ready("healthy").await;
    // Every create from now on answers OperationDisabledException.
    s.emulator.inject_errors(
        "CreatePartnerEventSource",
        &["OperationDisabledException"; 20],
    );
    s.create(&s.object("orders", SOURCE, CUSTOMER)).await;
    let obj = s
        .wait_reason(&s.namespace, "orders", "False", "OperationDisabled")
        .await;
    assert!(
        obj.condition("Ready")
            .unwrap()
            .message
            .contains("OperationDisabledException")
    );
    s.wait_event(&s.namespace, "orders", "OperationDisabled")
        .await;
    // No hot loop: while the healthy object is resynced twice, the failing one is not tried
    // again (its requeue is at least a minute away).
    assert_eq!(s.creates_during_two_resyncs().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_killed_mid_way_converges_after_restart_without_duplicates_or_leaks() {
    let s = Scenario::start("restart").await;
    // Slow creates, so that the kill lands while calls are in flight.
    s.emulator
        .set_latency("CreatePartnerEventSource", Duration::from_millis(700));
    let mut operator = s.launch().arg("--concurrency", "2").start();
    let names: Vec<String> = (0..6).map(|i| format!("orders-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        s.create(&s.object(
            name,
            &format!("aws.partner/acme.com/customer-{i}/orders"),
            CUSTOMER,
        ))
        .await;
    }
    s.wait_emulator("a create in flight or done", |e| {
        e.calls("CreatePartnerEventSource") >= 1
    })
    .await;
    operator.kill();

    let _restarted = s.launch().arg("--concurrency", "2").start();
    for name in &names {
        s.wait_ready(name).await;
    }
    let sources = s.emulator.sources();
    assert_eq!(
        sources.len(),
        names.len(),
        "one source per object: {sources:?}"
    );
    for name in &names {
        s.delete(&s.namespace, name).await;
    }
    for name in &names {
        s.wait_gone(&s.namespace, name).await;
    }
    assert!(
        s.emulator.sources().is_empty(),
        "nothing leaked: {:?}",
        s.emulator.sources()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_spreads_the_first_checks_of_ready_objects_instead_of_sweeping_aws() {
    let s = Scenario::start("spread").await;
    let mut operator = s.launch().start();
    let names: Vec<String> = (0..5).map(|i| format!("orders-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let source = format!("aws.partner/acme.com/spread-{i}/orders");
        s.create(&s.object(name, &source, CUSTOMER)).await;
    }
    for name in &names {
        s.wait_looked_at(name).await;
    }
    operator.kill();

    // The next process passes over every object at once, and finds each settled: it schedules
    // the first check somewhere in the last nine tenths of the hour instead of making it now.
    let restarted = s.launch().arg("--resync-interval", "1h").start();
    for name in &names {
        restarted
            .wait_for_log(Duration::from_secs(60), "the first check spread", |l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("next check in AWS not due yet"))
                    && l["span"]["object"].as_str() == Some(name.as_str())
            })
            .await;
    }
    // No pass of the new process went on to AWS. (Its own log: a call the killed process had
    // in flight may still reach the emulator.)
    let passes: Vec<serde_json::Value> = restarted
        .log_lines()
        .into_iter()
        .filter(|l| l["message"] == "reconciled")
        .collect();
    assert!(passes.is_empty(), "passes since the restart: {passes:?}");
    // A change is still acted on at once.
    let mut changed = s.api().get(&names[0]).await.expect("get");
    changed.spec.deletion_policy = Some(DeletionPolicy::Retain);
    s.api()
        .replace(&names[0], &Default::default(), &changed)
        .await
        .expect("update");
    s.wait(
        &s.namespace,
        &names[0],
        "described at its new generation",
        |o| o.status.as_ref().and_then(|st| st.observed_generation) == o.metadata.generation,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_can_neither_strip_the_finalizer_nor_write_the_status_of_the_next_object_of_its_name()
 {
    // No operator: the test plays a pass that still holds a copy of a former object.
    let s = Scenario::start("stale").await;
    let api = s.api();
    let mut obj = s.object("orders", SOURCE, CUSTOMER);
    obj.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
    let former = s.create(&obj).await;
    s.delete(&s.namespace, "orders").await;
    let deleting = api.get("orders").await.expect("get the deleted object");
    remove_finalizer(&api, &deleting)
        .await
        .expect("the object itself loses its finalizer");
    s.wait_gone(&s.namespace, "orders").await;
    let next = s.create(&obj).await;
    assert_ne!(next.uid(), former.uid());

    let refused = |what: &str, result: Result<(), Error>| match result {
        Err(Error::Kube(kube::Error::Api(status))) => status.code,
        other => panic!("expected the API server to refuse {what}, got {other:?}"),
    };
    assert_eq!(
        refused(
            "the finalizer removal",
            remove_finalizer(&api, &former).await
        ),
        422
    );
    let status = PartnerEventSourceStatus {
        arn: Some(format!("arn:aws:events:eu-west-1::event-source/{SOURCE}")),
        ..PartnerEventSourceStatus::default()
    };
    assert_eq!(
        refused(
            "the status write",
            write_status(&former, &api, &status).await
        ),
        422
    );
    let now = api.get("orders").await.expect("get the next object");
    assert_eq!(now.finalizers(), [FINALIZER.to_owned()]);
    assert_eq!(now.status, None);

    // With its own copy, both go through.
    write_status(&next, &api, &status)
        .await
        .expect("write its status");
    remove_finalizer(&api, &next)
        .await
        .expect("remove its finalizer");
    let now = api.get("orders").await.expect("get the next object");
    assert!(now.finalizers().is_empty());
    assert_eq!(now.status.and_then(|st| st.arn), status.arn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_region_overrides_the_operators_region() {
    let s = Scenario::start("region").await;
    let _operator = s.launch().start();
    let mut obj = s.object("orders", SOURCE, CUSTOMER);
    obj.spec.region = Some("us-east-1".into());
    s.create(&obj).await;
    let ready = s.wait_ready("orders").await;
    let source = s.emulator.source(SOURCE).expect("the source exists");
    assert_eq!(source.region, "us-east-1");
    assert_eq!(
        ready.status.and_then(|st| st.arn).as_deref(),
        Some(format!("arn:aws:events:us-east-1::event-source/{SOURCE}").as_str())
    );
}
