//! End-to-end: the operator against a flaky Kubernetes API. A fault proxy between the operator
//! binary and the real API server fails its status writes and finalizer patches with 409, 429
//! and 500, breaks its watches, and answers resumed watches with 410 Gone; every object still
//! ends Ready (or gone), and each source is created (and deleted) in AWS exactly once.
//!
//! Each test waits on conditions (the objects, the emulator, the proxy's counts), never on
//! time; the proxy's draws are seeded.

use crate::support;

use std::time::Duration;

use eventbridge_partner_emulator::ChangeKind;
use eventbridge_partner_operator::resources::FINALIZER;
use eventbridge_partner_operator::resources::PartnerEventSource;
use kube::ResourceExt;
use support::kube_faults::{ERROR_CODES, KubeFaultProxy, KubeFaults};
use support::operator::{Launch, OperatorProcess};
use support::scenario::{CUSTOMER, Scenario, condition_is};

/// How long an object may take to settle under faults: each failed write adds the operator's
/// per-object backoff, each broken watch the watcher's.
const FAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the proxy may take to see what a test waits for.
const STATS_TIMEOUT: Duration = Duration::from_secs(60);

/// Successful calls of a partner-API operation.
fn successful(s: &Scenario, operation: &str) -> u64 {
    s.emulator.calls_with_outcome(operation, "ok")
}

/// How many times the emulator's history shows each source of `names` changed by `kind`.
fn changes(s: &Scenario, kind: ChangeKind, names: &[String]) -> Vec<usize> {
    let history = s.emulator.changes();
    names
        .iter()
        .map(|name| {
            history
                .iter()
                .filter(|c| c.kind == kind && c.name == source(name))
                .count()
        })
        .collect()
}

fn source(name: &str) -> String {
    format!("aws.partner/acme.com/{name}/orders")
}

/// A scenario whose operator reaches the API server only through a fault proxy, with
/// `faults` in force from its first request.
async fn start(name: &str, faults: &KubeFaults) -> (Scenario, KubeFaultProxy, OperatorProcess) {
    let s = Scenario::start(name).await;
    let proxy = KubeFaultProxy::start(s.cp.kubeconfig(), s.cp.bin_dir());
    proxy.set(faults);
    let operator = Launch::new(proxy.kubeconfig(), &s.emulator.endpoint_url(), &s.selector).start();
    (s, proxy, operator)
}

/// Creates objects `<prefix>-<i>` for `range`, each with a source of its own; returns their
/// names.
async fn create_batch(s: &Scenario, prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let mut names = Vec::new();
    for i in range {
        let name = format!("{prefix}-{i}");
        s.create(&s.object(&name, &source(&name), CUSTOMER)).await;
        names.push(name);
    }
    names
}

/// Waits until every object is Ready with an ARN in its status, and checks that the ARN is
/// the one of its source in the emulator.
async fn wait_all_ready_with_arn(s: &Scenario, names: &[String]) {
    for name in names {
        let ready_with_arn = |o: &PartnerEventSource| {
            condition_is(o, "Ready", "True", None)
                && o.status.as_ref().is_some_and(|st| st.arn.is_some())
        };
        let obj = s
            .wait_within(
                FAULT_TIMEOUT,
                &s.namespace,
                name,
                "Ready with its ARN",
                ready_with_arn,
            )
            .await;
        let emulated = s
            .emulator
            .source(&source(name))
            .unwrap_or_else(|| panic!("no source in the emulator for {name}"));
        assert_eq!(
            obj.status.and_then(|st| st.arn).as_deref(),
            Some(emulated.arn.as_str()),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_failing_half_the_time_still_end_ready_with_one_create_per_source() {
    let faults = KubeFaults::seeded(11).status_writes(0.5, &ERROR_CODES, 3);
    let (s, proxy, _operator) = start("kf-status", &faults).await;
    let names = create_batch(&s, "orders", 0..10).await;

    wait_all_ready_with_arn(&s, &names).await;
    let stats = proxy.stats();
    println!(
        "status writes: {} seen, {} failed ({:?}); CreatePartnerEventSource: {} calls, {} ok",
        stats.requests.status_write,
        stats.injected.status_write,
        stats.injected_by_code,
        s.emulator.calls("CreatePartnerEventSource"),
        successful(&s, "CreatePartnerEventSource"),
    );
    assert!(stats.injected.status_write > 0, "{stats:?}");
    // A status write lost after a create must not create the source again.
    assert_eq!(
        successful(&s, "CreatePartnerEventSource"),
        names.len() as u64
    );
    assert_eq!(s.emulator.sources().len(), names.len());
    // And once Ready, nothing is created any more, whatever the resyncs' writes meet.
    assert_eq!(s.creates_during_two_resyncs().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_finalizer_patches_hold_back_creates_and_deletes_happen_once_each() {
    // Every finalizer patch fails at first: nothing may reach AWS.
    let (s, proxy, _operator) = start(
        "kf-finalizer",
        &KubeFaults::seeded(12).finalizer_patches(1.0, &ERROR_CODES, 0),
    )
    .await;
    let names = create_batch(&s, "orders", 0..8).await;
    let refused = proxy
        .wait_for_stats(
            "twice as many refused finalizer patches as objects",
            STATS_TIMEOUT,
            |st| st.injected.finalizer_patch >= 2 * names.len() as u64,
        )
        .await;
    assert_eq!(
        refused.injected.finalizer_patch, refused.requests.finalizer_patch,
        "every finalizer patch so far was refused: {refused:?}"
    );
    assert_eq!(
        s.emulator.calls("CreatePartnerEventSource"),
        0,
        "a source was created before its object had the finalizer"
    );
    for name in &names {
        let obj = s.api().get(name).await.expect("get the object");
        assert!(
            obj.finalizers().is_empty(),
            "{name}: {:?}",
            obj.finalizers()
        );
    }

    // Half of them fail from now on, additions and removals alike.
    proxy.set(&KubeFaults::seeded(13).finalizer_patches(0.5, &ERROR_CODES, 2));
    wait_all_ready_with_arn(&s, &names).await;
    for name in &names {
        let obj = s.api().get(name).await.expect("get the object");
        assert!(
            obj.finalizers().iter().any(|f| f == FINALIZER),
            "{name}: {:?}",
            obj.finalizers()
        );
    }
    assert_eq!(
        successful(&s, "CreatePartnerEventSource"),
        names.len() as u64
    );

    let before_deletion = proxy.stats();
    for name in &names {
        s.delete(&s.namespace, name).await;
    }
    for name in &names {
        s.wait_gone_within(FAULT_TIMEOUT, &s.namespace, name).await;
    }
    let stats = proxy.stats();
    let deletes = s.emulator.calls("DeletePartnerEventSource");
    println!(
        "finalizer patches: {} seen, {} failed ({:?}); DeletePartnerEventSource: {deletes} calls, {} ok",
        stats.requests.finalizer_patch,
        stats.injected.finalizer_patch,
        stats.injected_by_code,
        successful(&s, "DeletePartnerEventSource"),
    );
    assert!(
        stats.injected.finalizer_patch > refused.injected.finalizer_patch,
        "no finalizer patch failed after the first phase: {stats:?}"
    );
    // Each source was deleted exactly once. DeletePartnerEventSource is idempotent in AWS (a
    // missing source is no error), and a cleanup whose finalizer removal was refused runs
    // again, delete included: so a source sees one call, plus one per refused removal.
    assert_eq!(
        changes(&s, ChangeKind::Deleted, &names),
        vec![1; names.len()]
    );
    assert!(
        s.emulator.sources().is_empty(),
        "{:?}",
        s.emulator.sources()
    );
    let refused_removals =
        stats.injected.finalizer_patch - before_deletion.injected.finalizer_patch;
    assert!(
        deletes <= names.len() as u64 + refused_removals,
        "{deletes} deletes for {} objects and {refused_removals} refused finalizer removals",
        names.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_created_across_watch_breaks_each_become_ready_once() {
    let faults =
        KubeFaults::seeded(14).watch_breaks(Duration::from_secs(1)..=Duration::from_secs(3));
    let (s, proxy, _operator) = start("kf-breaks", &faults).await;

    let mut names = Vec::new();
    for batch in 0..3 {
        // Each batch arrives after the operator's watch broke twice more.
        let breaks = proxy.stats().injected.watch_break;
        proxy
            .wait_for_stats("two more watch breaks", STATS_TIMEOUT, |st| {
                st.injected.watch_break >= breaks + 2
            })
            .await;
        let batch = create_batch(&s, "orders", batch * 4..batch * 4 + 4).await;
        wait_all_ready_with_arn(&s, &batch).await;
        names.extend(batch);
    }

    let stats = proxy.stats();
    println!(
        "watches: {} started, {} broken, {} resumed",
        stats.requests.watch, stats.injected.watch_break, stats.requests.resumed_watch
    );
    assert!(
        stats.requests.resumed_watch > 0,
        "the watch never resumed: {stats:?}"
    );
    assert_eq!(
        successful(&s, "CreatePartnerEventSource"),
        names.len() as u64
    );
    assert_eq!(s.emulator.sources().len(), names.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_410_gone_on_resume_the_operator_relists_and_objects_created_later_become_ready() {
    let faults = KubeFaults::seeded(15)
        .watch_breaks(Duration::from_secs(1)..=Duration::from_secs(3))
        .gone_on_resume(1.0);
    let (s, proxy, _operator) = start("kf-gone", &faults).await;
    let mut names = create_batch(&s, "orders", 0..4).await;
    wait_all_ready_with_arn(&s, &names).await;

    for batch in 1..3 {
        // A resumed watch gets 410 Gone, and the operator lists again: only then come the
        // next objects, which it can only learn of from that list or the watch after it.
        let before = proxy.stats();
        proxy
            .wait_for_stats("a 410 Gone and a list after it", STATS_TIMEOUT, |st| {
                st.injected.watch_gone > before.injected.watch_gone
                    && st.requests.list > before.requests.list
            })
            .await;
        let batch = create_batch(&s, "orders", batch * 4..batch * 4 + 4).await;
        wait_all_ready_with_arn(&s, &batch).await;
        names.extend(batch);
    }

    let stats = proxy.stats();
    println!(
        "watches: {} started, {} broken, {} resumed, {} answered 410; {} lists",
        stats.requests.watch,
        stats.injected.watch_break,
        stats.requests.resumed_watch,
        stats.injected.watch_gone,
        stats.requests.list
    );
    assert!(stats.injected.watch_gone >= 2, "{stats:?}");
    assert_eq!(
        successful(&s, "CreatePartnerEventSource"),
        names.len() as u64
    );
    assert_eq!(s.emulator.sources().len(), names.len());
}
