//! End-to-end: bad input that got past the schema, and odd input that is valid.
//!
//! The schema is the first gate, but objects can be stored without it: written while an older,
//! looser CRD was installed, or by a client that bypassed it. To make such objects here, the
//! test applies a relaxed copy of the real CRD (same name and group, the patterns, lengths and
//! CEL rules removed), creates invalid objects, and restores the real CRD before the operator
//! starts. The operator must then report each as `Ready=False, reason=InvalidSpec`, call AWS
//! for none of them, and stay up.
//!
//! The two tests change or lean on the cluster-wide CRD, so they take turns.

use crate::support;

use std::time::Duration;

use eventbridge_partner_operator::resources::PartnerEventSource;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::Value;
use support::command::run_with_input;
use support::controlplane::ControlPlane;
use support::repo::{crd_path, read};
use support::scenario::{CUSTOMER, Scenario, TIMEOUT, condition_is};
use tokio::sync::Mutex;

/// Held by each test for its whole run: one of them swaps the CRD's schema.
static CRD_TURN: Mutex<()> = Mutex::const_new(());

/// This suite's own control plane: the relaxed CRD must not admit other suites' objects.
fn control_plane() -> &'static ControlPlane {
    ControlPlane::of_suite("bad_input")
}

/// The partner-source operations of the EventBridge API: none may be called for an invalid
/// object.
const SOURCE_OPERATIONS: &[&str] = &[
    "CreatePartnerEventSource",
    "DescribePartnerEventSource",
    "DeletePartnerEventSource",
    "ListPartnerEventSourceAccounts",
    "ListPartnerEventSources",
];

/// The real CRD with every check on `spec` removed: no pattern, no length, no CEL rule.
fn relaxed_crd() -> String {
    let mut crd: Value = serde_yaml::from_str(&read(crd_path())).expect("the CRD parses");
    let versions = crd["spec"]["versions"]
        .as_array_mut()
        .expect("the CRD has versions");
    for version in versions {
        let spec = &mut version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        strip_checks(spec);
    }
    serde_json::to_string(&crd).expect("the CRD serializes")
}

fn strip_checks(schema: &mut Value) {
    if let Some(object) = schema.as_object_mut() {
        for key in [
            "pattern",
            "maxLength",
            "minLength",
            "enum",
            "x-kubernetes-validations",
        ] {
            object.remove(key);
        }
        for child in object.values_mut() {
            strip_checks(child);
        }
    }
}

/// The relaxed CRD while it lives; the real one again when dropped (also when a test fails).
struct RelaxedCrd {
    cp: &'static ControlPlane,
}

impl RelaxedCrd {
    fn apply(cp: &'static ControlPlane) -> RelaxedCrd {
        apply_crd(cp, &relaxed_crd());
        RelaxedCrd { cp }
    }
}

impl Drop for RelaxedCrd {
    fn drop(&mut self) {
        apply_crd(self.cp, &read(crd_path()));
    }
}

fn apply_crd(cp: &ControlPlane, manifest: &str) {
    run_with_input(
        cp.kubectl().args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=tests",
            "-f",
            "-",
        ]),
        manifest,
    );
}

/// Waits until the API server's answer to a dry-run create of `probe` is `accepted` (a CRD's
/// new schema reaches the API server's handlers a moment after the update returns).
async fn wait_for_schema(
    api: &Api<PartnerEventSource>,
    probe: &PartnerEventSource,
    accepted: bool,
) {
    let params = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let answer = api.create(&params, probe).await;
        match (&answer, accepted) {
            (Ok(_), true) => return,
            (Err(kube::Error::Api(status)), false) if status.code == 422 => return,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CRD's schema did not {} within {TIMEOUT:?}: last answer {answer:?}",
            if accepted { "relax" } else { "tighten again" }
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn delete_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(name, &DeleteParams::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_stored_past_the_schema_end_invalid_spec_without_any_aws_call() {
    let _turn = CRD_TURN.lock().await;
    let s = Scenario::start_on(control_plane(), "bad-input").await;
    let long_name = format!("aws.partner/acme.com/{}", "a".repeat(236));
    assert_eq!(long_name.chars().count(), 257);
    let mut unicode_region = s.object(
        "unicode-region",
        "aws.partner/acme.com/bad-input/region",
        CUSTOMER,
    );
    unicode_region.spec.region = Some("eu-west-١".to_owned());
    let invalid = vec![
        // The case the schema and the controller once disagreed on: Unicode digits.
        s.object(
            "arabic-indic-account",
            "aws.partner/acme.com/bad-input/arabic",
            "١٢٣٤٥٦٧٨٩٠١٢",
        ),
        s.object(
            "fullwidth-account",
            "aws.partner/acme.com/bad-input/fullwidth",
            "１２３４５６７８９０１２",
        ),
        s.object(
            "short-account",
            "aws.partner/acme.com/bad-input/short",
            "12345",
        ),
        s.object("no-prefix", "acme.com/bad-input/orders", CUSTOMER),
        s.object("empty-segment", "aws.partner//orders", CUSTOMER),
        s.object("too-long", &long_name, CUSTOMER),
        s.object("non-ascii-name", "aws.partner/acme.com/ördérs", CUSTOMER),
        s.object("empty-name", "", CUSTOMER),
        unicode_region,
    ];

    {
        let _relaxed = RelaxedCrd::apply(s.cp);
        wait_for_schema(&s.api(), &invalid[0], true).await;
        for obj in &invalid {
            s.create(obj).await;
        }
        // `_relaxed` restores the real CRD here.
    }
    wait_for_schema(&s.api(), &invalid[0], false).await;

    let mut operator = s.launch().start();
    for obj in &invalid {
        let name = obj.name_any();
        let seen = s
            .wait_reason(&s.namespace, &name, "False", "InvalidSpec")
            .await;
        let ready = seen.condition("Ready").expect("a Ready condition");
        assert!(
            ready.message.contains("spec."),
            "{name}: the message names the field: {}",
            ready.message
        );
    }
    // Every invalid object was looked at and refused before any AWS call.
    for op in SOURCE_OPERATIONS {
        assert_eq!(s.emulator.calls(op), 0, "{op} was called");
    }
    assert!(s.emulator.sources().is_empty());
    assert_eq!(operator.exited(), None, "the operator is still running");
    let log = operator.log();
    assert!(!log.contains("panicked"), "the operator panicked:\n{log}");

    for obj in &invalid {
        s.delete(&s.namespace, &obj.name_any()).await;
        s.wait_gone(&s.namespace, &obj.name_any()).await;
    }
    // Their finalizer (if the operator added one) came off without a call to AWS either.
    for op in SOURCE_OPERATIONS {
        assert_eq!(s.emulator.calls(op), 0, "{op} was called for a deletion");
    }
    operator.kill();
    delete_namespace(&s.client, &s.namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_but_valid_objects_behave() {
    let _turn = CRD_TURN.lock().await;
    let s = Scenario::start_on(control_plane(), "odd-input").await;
    let other_ns = s.extra_namespace("odd-input-b").await;
    let mut operator = s.launch().start();

    // The longest name EventBridge allows, and an account of leading zeros.
    let longest = format!("aws.partner/acme.com/{}", "b".repeat(235));
    assert_eq!(longest.chars().count(), 256);
    s.create(&s.object("longest-name", &longest, "000000000001"))
        .await;
    let ready = s.wait_ready("longest-name").await;
    let source = s.emulator.source(&longest).expect("created in EventBridge");
    assert_eq!(source.account, "000000000001");
    assert_eq!(
        ready.status.as_ref().and_then(|st| st.arn.as_deref()),
        Some(source.arn.as_str())
    );

    // Many objects, one name: exactly one owns it, the rest are NameConflict, one source.
    let shared = "aws.partner/acme.com/odd-input/shared";
    let mut claimants = Vec::new();
    for i in 0..6 {
        let ns = if i % 2 == 0 {
            s.namespace.clone()
        } else {
            other_ns.clone()
        };
        let mut obj = s.object(&format!("claimant-{i}"), shared, CUSTOMER);
        obj.metadata.namespace = Some(ns.clone());
        s.create(&obj).await;
        claimants.push((ns, format!("claimant-{i}")));
    }
    let mut owners = Vec::new();
    for (ns, name) in &claimants {
        let settled = s
            .wait(ns, name, "Ready=True or NameConflict", |o| {
                condition_is(o, "Ready", "True", None)
                    || condition_is(o, "Ready", "False", Some("NameConflict"))
            })
            .await;
        if condition_is(&settled, "Ready", "True", None) {
            owners.push((ns.clone(), name.clone()));
        }
    }
    assert_eq!(owners.len(), 1, "exactly one owner: {owners:?}");
    let matching: Vec<_> = s
        .emulator
        .sources()
        .into_iter()
        .filter(|src| src.name == shared)
        .collect();
    assert_eq!(matching.len(), 1, "{matching:?}");

    // Deleting the others leaves the owner's source in place; deleting the owner removes it.
    for (ns, name) in claimants.iter().filter(|c| !owners.contains(c)) {
        s.delete(ns, name).await;
        s.wait_gone(ns, name).await;
    }
    assert!(
        s.emulator.source(shared).is_some(),
        "a non-owner's deletion deleted the owner's source"
    );
    let (owner_ns, owner) = &owners[0];
    s.delete(owner_ns, owner).await;
    s.wait_gone(owner_ns, owner).await;
    s.delete(&s.namespace, "longest-name").await;
    s.wait_gone(&s.namespace, "longest-name").await;
    s.wait_emulator("every source deleted", |e| e.sources().is_empty())
        .await;

    assert_eq!(operator.exited(), None, "the operator is still running");
    assert!(!operator.log().contains("panicked"));
    operator.kill();
    delete_namespace(&s.client, &other_ns).await;
    delete_namespace(&s.client, &s.namespace).await;
}
