//! End-to-end: PartnerAccounts and tenant isolation against the real API server and the
//! emulator's STS — which identity creates a source, and who may ask for which.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use eventbridge_partner_emulator::Role;
use eventbridge_partner_operator::resources::PartnerAccountRef;
use eventbridge_partner_operator::resources::{PartnerAccount, PartnerAccountSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::Value;
use support::operator::PARTNER_SECRET_ACCESS_KEY;
use support::scenario::{CUSTOMER, Scenario, TIMEOUT, condition_is, unique};

const PROD_ACCOUNT: &str = "222222222222";
const TEST_ACCOUNT: &str = "333333333333";

fn role(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

fn account_spec(role_arn: Option<String>, prefix: &str) -> PartnerAccountSpec {
    PartnerAccountSpec {
        role_arn,
        external_id: None,
        session_name: None,
        session_tags: BTreeMap::new(),
        source_prefixes: vec![prefix.to_owned()],
        namespace_selector: None,
        customer_accounts: None,
        region: None,
        aws_rps: None,
        default: false,
    }
}

/// Creates a PartnerAccount and deletes it when dropped.
struct AccountGuard {
    api: Api<PartnerAccount>,
    name: String,
}

impl Drop for AccountGuard {
    fn drop(&mut self) {
        let (api, name) = (self.api.clone(), self.name.clone());
        // Cluster-scoped: remove it so that nothing outlives the test.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .map(|rt| rt.block_on(api.delete(&name, &DeleteParams::default())))
        })
        .join();
    }
}

async fn partner_account(s: &Scenario, prefix: &str, spec: PartnerAccountSpec) -> AccountGuard {
    let api: Api<PartnerAccount> = Api::all(s.client.clone());
    let name = unique(prefix);
    let mut account = PartnerAccount::new(&name, spec);
    // Only this scenario's operator (its --selector) looks at it.
    account.metadata.labels = Some([("e2e".to_owned(), s.selector.clone())].into());
    api.create(&PostParams::default(), &account)
        .await
        .expect("create the PartnerAccount");
    AccountGuard { api, name }
}

async fn wait_account(s: &Scenario, name: &str, status: &str, reason: &str) -> PartnerAccount {
    let api: Api<PartnerAccount> = Api::all(s.client.clone());
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let now = api.get(name).await.expect("get the PartnerAccount");
        let ready = now
            .status
            .as_ref()
            .and_then(|st| st.conditions.iter().find(|c| c.type_ == "Ready"));
        if ready.is_some_and(|c| c.status == status && c.reason == reason) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "PartnerAccount {name} never Ready={status} ({reason}): {:?}",
            now.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn source(prefix: &str, customer: &str) -> String {
    format!("{prefix}{customer}/orders")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_and_test_accounts_create_their_sources_as_themselves() {
    let s = Scenario::start("accounts").await;
    let prod_role = role(PROD_ACCOUNT, "eventbridge-partner");
    let test_role = role(TEST_ACCOUNT, "eventbridge-partner-test");
    s.emulator
        .add_role(Role::new(&prod_role).with_external_id("prod-external-id-7Hq2"));
    s.emulator.add_role(Role::new(&test_role));
    let mut prod_spec = account_spec(Some(prod_role), "aws.partner/acme.com/");
    prod_spec.external_id = Some("prod-external-id-7Hq2".into());
    let prod = partner_account(&s, "prod", prod_spec).await;
    let test = partner_account(
        &s,
        "test",
        account_spec(Some(test_role), "aws.partner/acme.com.test/"),
    )
    .await;
    let operator = s.launch().start();
    let ready = wait_account(&s, &prod.name, "True", "IdentityReady").await;
    let who = ready.status.unwrap().caller_identity.unwrap();
    assert_eq!(who.account, PROD_ACCOUNT);
    assert!(
        who.arn.contains("assumed-role/eventbridge-partner/"),
        "{}",
        who.arn
    );
    wait_account(&s, &test.name, "True", "IdentityReady").await;

    for (name, prefix, account) in [
        ("prod-orders", "aws.partner/acme.com/", &prod.name),
        ("test-orders", "aws.partner/acme.com.test/", &test.name),
    ] {
        let mut obj = s.object(name, &source(prefix, "customer-1"), CUSTOMER);
        obj.spec.partner_account_ref = Some(PartnerAccountRef {
            name: account.clone(),
        });
        s.create(&obj).await;
    }
    let prod_obj = s.wait_ready("prod-orders").await;
    let test_obj = s.wait_ready("test-orders").await;
    assert_eq!(
        prod_obj.status.unwrap().partner_account.as_deref(),
        Some(prod.name.as_str())
    );
    assert_eq!(
        test_obj.status.unwrap().partner_account.as_deref(),
        Some(test.name.as_str())
    );
    let owner = |name: &str| {
        s.emulator
            .source(name)
            .map(|src| src.partner_account)
            .unwrap_or_default()
    };
    assert_eq!(
        owner(&source("aws.partner/acme.com/", "customer-1")),
        PROD_ACCOUNT
    );
    assert_eq!(
        owner(&source("aws.partner/acme.com.test/", "customer-1")),
        TEST_ACCOUNT
    );
    let log = operator.log();
    assert!(
        !log.contains("prod-external-id-7Hq2"),
        "the external id reached the log"
    );
    assert!(!log.contains(PARTNER_SECRET_ACCESS_KEY));
    for session in s.emulator.sessions() {
        assert!(
            !log.contains(&session.access_key_id),
            "temporary credentials in the log"
        );
    }
}

/// The grant policy and binding of the chart, as `kubectl apply` of deploy/ installs them,
/// except that the binding matches `namespace` alone: the other tests of this binary share
/// the API server, and the policy must judge none of their objects.
fn admission_policy(namespace: &str) -> String {
    let manifest = support::repo::read("deploy/operator.yaml");
    manifest
        .split("\n---")
        .filter(|doc| doc.contains("kind: ValidatingAdmissionPolicy"))
        .map(|doc| {
            if doc.contains("kind: ValidatingAdmissionPolicyBinding") {
                format!(
                    "{}\n  matchResources:\n    namespaceSelector:\n      matchLabels:\n        kubernetes.io/metadata.name: {namespace}\n",
                    doc.trim_end()
                )
            } else {
                doc.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_outside_the_grant_is_refused_at_admission_and_by_the_controller() {
    let s = Scenario::start("grant").await;
    let mut spec = account_spec(None, "aws.partner/acme.com/");
    spec.namespace_selector = Some(LabelSelector {
        match_labels: Some([("eventbridge.acme.com/tenant".to_owned(), "yes".to_owned())].into()),
        match_expressions: None,
    });
    let account = partner_account(&s, "grant", spec).await;
    let policy = admission_policy(&s.namespace);
    let applied = s.kubectl(&["apply", "--server-side", "-f", "-"], Some(&policy));
    assert!(applied.status.success(), "{applied:?}");

    let manifest = format!(
        "apiVersion: eventbridgepartner.dev/v1alpha1\nkind: PartnerEventSource\nmetadata:\n  name: orders\n  namespace: {ns}\n  labels: {{e2e: {sel}}}\nspec:\n  name: aws.partner/acme.com/customer-9/orders\n  account: \"{CUSTOMER}\"\n  partnerAccountRef: {{name: {pa}}}\n",
        ns = s.namespace,
        sel = s.selector,
        pa = account.name
    );
    // The policy takes a moment to be enforced after it is created, and until the API server
    // has listed its params (PartnerAccounts) it refuses everything as "not yet synced":
    // wait for the refusal the policy itself gives.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let refusal = loop {
        let out = s.kubectl(&["apply", "-f", "-", "--dry-run=server"], Some(&manifest));
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() && !stderr.contains("not yet synced") {
            break stderr;
        }
        assert!(tokio::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("kubectl apply refused at admission: {}", refusal.trim());
    assert!(refusal.contains("namespaceSelector"), "{refusal}");
    assert!(refusal.contains(&account.name), "{refusal}");

    // With the policy gone, the controller still refuses: no AWS call at all.
    let _ = s.kubectl(&["delete", "-f", "-"], Some(&policy));
    let _operator = s.launch().start();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let out = s.kubectl(&["apply", "-f", "-"], Some(&manifest));
        if out.status.success() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still refused: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let obj = s
        .wait_reason(&s.namespace, "orders", "False", "NotPermitted")
        .await;
    let message = &obj.condition("Ready").unwrap().message;
    assert!(message.contains("namespaceSelector"), "{message}");
    let calls: u64 = [
        "CreatePartnerEventSource",
        "ListPartnerEventSourceAccounts",
        "DescribePartnerEventSource",
        "DeletePartnerEventSource",
    ]
    .iter()
    .map(|op| s.emulator.calls(op))
    .sum();
    assert_eq!(calls, 0, "nothing outside the grant reaches AWS");
    s.delete(&s.namespace, "orders").await;
    s.wait_gone(&s.namespace, "orders").await;
    assert_eq!(s.emulator.calls("DeletePartnerEventSource"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_be_assumed_is_reported_on_the_account_and_its_sources() {
    let s = Scenario::start("norole").await;
    let locked = role(PROD_ACCOUNT, "locked");
    s.emulator.add_role(Role::new(&locked).not_assumable());
    let account = partner_account(
        &s,
        "locked",
        account_spec(Some(locked), "aws.partner/acme.com/"),
    )
    .await;
    // The sentinel below names no PartnerAccount: it uses the operator's own identity beside
    // the locked account only with --own-identity fallback.
    let _operator = s
        .launch()
        .arg("--resync-interval", "1s")
        .arg("--own-identity", "fallback")
        .start();
    let failed = wait_account(&s, &account.name, "False", "AssumeRoleFailed").await;
    let message = failed.status.unwrap().conditions[0].message.clone();
    assert!(message.contains("AccessDenied"), "{message}");

    let mut obj = s.object(
        "orders",
        &source("aws.partner/acme.com/", "customer-2"),
        CUSTOMER,
    );
    obj.spec.partner_account_ref = Some(PartnerAccountRef {
        name: account.name.clone(),
    });
    s.create(&obj).await;
    s.wait_reason(&s.namespace, "orders", "False", "PartnerAccountNotReady")
        .await;
    // No hot loop: while a sentinel object resyncs twice, the role is tried at most once more.
    let assumed = s.emulator.calls("AssumeRole");
    s.create(&s.object("sentinel", "aws.partner/acme.com/sentinel/orders", CUSTOMER))
        .await;
    s.wait_ready("sentinel").await;
    let listed = s.emulator.calls("ListPartnerEventSourceAccounts");
    s.wait_emulator("two resyncs of the sentinel", |e| {
        e.calls("ListPartnerEventSourceAccounts") >= listed + 2
    })
    .await;
    assert!(s.emulator.calls("AssumeRole") <= assumed + 1);
    assert_eq!(
        s.emulator.calls("CreatePartnerEventSource"),
        1,
        "only the sentinel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_credentials_are_refreshed_before_they_expire() {
    let s = Scenario::start("refresh").await;
    let short = role(PROD_ACCOUNT, "short");
    s.emulator
        .add_role(Role::new(&short).with_max_session_duration(Duration::from_secs(15)));
    let account = partner_account(
        &s,
        "short",
        account_spec(Some(short), "aws.partner/acme.com/"),
    )
    .await;
    let operator = s.launch().arg("--resync-interval", "1s").start();
    wait_account(&s, &account.name, "True", "IdentityReady").await;
    let mut obj = s.object(
        "orders",
        &source("aws.partner/acme.com/", "customer-3"),
        CUSTOMER,
    );
    obj.spec.partner_account_ref = Some(PartnerAccountRef {
        name: account.name.clone(),
    });
    s.create(&obj).await;
    s.wait_ready("orders").await;
    // Resyncs every second across three credential lifetimes: every call is signed with live
    // credentials, so new sessions were issued before the old ones expired.
    s.wait_emulator("three sessions of the short role", |e| {
        e.sessions()
            .iter()
            .filter(|x| x.role_arn.ends_with("/short"))
            .count()
            >= 4
    })
    .await;
    let expired: u64 = [
        "CreatePartnerEventSource",
        "ListPartnerEventSourceAccounts",
        "DescribePartnerEventSource",
    ]
    .iter()
    .map(|op| s.emulator.calls_with_outcome(op, "ExpiredTokenException"))
    .sum();
    assert_eq!(expired, 0, "a call went out with expired credentials");
    let obj = s.api().get("orders").await.unwrap();
    assert!(condition_is(&obj, "Ready", "True", None));
    let log = operator.log();
    for session in s.emulator.sessions() {
        assert!(
            !log.contains(&session.access_key_id),
            "temporary credentials in the log"
        );
    }
    let lines: Vec<Value> = operator.log_lines();
    assert!(!lines.is_empty());
}

/// A PartnerAccount that is not marked default, and the example (which names none), for an
/// operator started with `extra` flags.
async fn unnamed_object_beside_an_account(
    name: &str,
    extra: &[(&str, &str)],
) -> (Scenario, AccountGuard, support::operator::OperatorProcess) {
    let s = Scenario::start(name).await;
    let prod_role = role(PROD_ACCOUNT, "eventbridge-partner");
    s.emulator.add_role(Role::new(&prod_role));
    let prod = partner_account(
        &s,
        "prod",
        account_spec(Some(prod_role), "aws.partner/acme.com/"),
    )
    .await;
    let mut launch = s.launch();
    for (flag, value) in extra {
        launch = launch.arg(flag, value);
    }
    let operator = launch.start();
    wait_account(&s, &prod.name, "True", "IdentityReady").await;
    s.create(&s.example()).await;
    (s, prod, operator)
}

/// EventBridge calls the emulator answered, STS aside.
fn eventbridge_calls(s: &Scenario) -> u64 {
    [
        "CreatePartnerEventSource",
        "DescribePartnerEventSource",
        "ListPartnerEventSourceAccounts",
        "ListPartnerEventSources",
        "DeletePartnerEventSource",
    ]
    .iter()
    .map(|op| s.emulator.calls(op))
    .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_naming_no_account_while_accounts_exist_and_none_is_default_makes_no_aws_call() {
    let (s, _prod, operator) = unnamed_object_beside_an_account("unnamed", &[]).await;
    let obj = s
        .wait_reason(
            &s.namespace,
            "customer-4711-orders",
            "False",
            "PartnerAccountNotReady",
        )
        .await;
    let ready = obj.condition("Ready").unwrap();
    assert!(
        ready
            .message
            .contains("no PartnerAccount is named and none is marked default")
            && ready.message.contains("set spec.partnerAccountRef")
            && ready.message.contains("--own-identity fallback"),
        "{}",
        ready.message
    );
    operator
        .wait_for_log(TIMEOUT, "the pass over the object", |l| {
            l["message"] == "reconciled" && l["span"]["object"] == "customer-4711-orders"
        })
        .await;
    assert_eq!(
        eventbridge_calls(&s),
        0,
        "no EventBridge call for the object"
    );
    assert!(
        s.emulator.sources().is_empty(),
        "{:?}",
        s.emulator.sources()
    );
    println!("Ready=False PartnerAccountNotReady: {}", ready.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_own_identity_fallback_an_object_naming_no_account_is_created_as_the_operator() {
    let (s, _prod, _operator) =
        unnamed_object_beside_an_account("fallback", &[("--own-identity", "fallback")]).await;
    let obj = s.wait_ready("customer-4711-orders").await;
    assert_eq!(obj.condition("Ready").unwrap().reason, "Created");
    let source = s
        .emulator
        .source("aws.partner/acme.com/customer-4711/orders")
        .expect("the source exists");
    assert_eq!(
        source.partner_account,
        s.emulator.partner_account(),
        "created with the operator's own identity, not the PartnerAccount's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_partner_account_ref_refuses_an_object_that_names_none_at_admission() {
    let s = Scenario::start("requireref").await;
    let docs = support::chart::Render::new()
        .set("admissionPolicy.requirePartnerAccountRef=true")
        .docs();
    // The chart's policy and binding, the binding narrowed to this test's namespace so that
    // the other tests sharing the API server are not judged by it.
    let mut policy: Vec<Value> = docs
        .into_iter()
        .filter(|d| {
            d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-require-partner-account"))
        })
        .collect();
    assert_eq!(policy.len(), 2, "a policy and its binding: {policy:?}");
    for doc in &mut policy {
        if doc["kind"] == "ValidatingAdmissionPolicyBinding" {
            doc["spec"]["matchResources"] = serde_json::json!({
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": s.namespace}}
            });
        }
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": policy}).to_string();
    let applied = s.kubectl(&["apply", "--server-side", "-f", "-"], Some(&list));
    assert!(applied.status.success(), "{applied:?}");

    let manifest = |reference: &str| {
        format!(
            "apiVersion: eventbridgepartner.dev/v1alpha1\nkind: PartnerEventSource\nmetadata:\n  name: orders\n  namespace: {ns}\nspec:\n  name: aws.partner/acme.com/customer-9/orders\n  account: \"{CUSTOMER}\"\n{reference}",
            ns = s.namespace,
        )
    };
    // A new policy is enforced a moment after it is created: wait for its refusal.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let refusal = loop {
        let out = s.kubectl(
            &["apply", "-f", "-", "--dry-run=server"],
            Some(&manifest("")),
        );
        if !out.status.success() {
            break String::from_utf8_lossy(&out.stderr).to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("kubectl apply refused at admission: {}", refusal.trim());
    assert!(
        refusal.contains("spec.partnerAccountRef is required"),
        "{refusal}"
    );
    let named = s.kubectl(
        &["apply", "-f", "-", "--dry-run=server"],
        Some(&manifest("  partnerAccountRef: {name: acme-prod}\n")),
    );
    assert!(
        named.status.success(),
        "an object naming its account is admitted: {named:?}"
    );
    let _ = s.kubectl(&["delete", "-f", "-"], Some(&list));
}
