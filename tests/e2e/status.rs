//! End-to-end: `eventbridge-partner-operator status` (and the same binary as the kubectl
//! plugin `kubectl eventbridge status`) against the real API server and the emulator: a Ready
//! source, one deleted out of band, one outside its PartnerAccount's grant, the listing of what
//! is not Ready, and bad input.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use eventbridge_partner_operator::resources::{
    PartnerAccount, PartnerAccountRef, PartnerAccountSpec, PartnerEventSource,
};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::Value;
use support::operator::{PARTNER_ACCESS_KEY_ID, PARTNER_SECRET_ACCESS_KEY};
use support::scenario::{CUSTOMER, Scenario, sdk_client, unique};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_eventbridge-partner-operator");

/// The scenario's shard, as `status` is told to see it.
fn selector(s: &Scenario) -> String {
    format!("e2e={}", s.selector)
}

/// A command for `program` with the scenario's kubeconfig and the emulator's partner
/// credentials, and nothing from the test process's own AWS setup.
fn command(s: &Scenario, program: &Path) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key == "WATCH_NAMESPACE" || key == "LABEL_SELECTOR" {
            command.env_remove(key);
        }
    }
    command
        .env("KUBECONFIG", s.cp.kubeconfig())
        .env("AWS_ACCESS_KEY_ID", PARTNER_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", PARTNER_SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", s.emulator.endpoint_url())
        .env("AWS_REGION", "eu-west-1");
    command
}

/// Runs `status` with `args`, in the scenario's shard. Awaited, so that the emulator in the
/// test's runtime keeps serving meanwhile.
async fn status(s: &Scenario, args: &[&str]) -> Output {
    command(s, Path::new(BIN))
        .arg("status")
        .args(args)
        .args(["--selector", &selector(s)])
        .output()
        .await
        .expect("run status")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// The object's `namespace/name`.
fn object_ref(s: &Scenario, name: &str) -> String {
    format!("{}/{name}", s.namespace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_source_is_healthy_and_one_deleted_out_of_band_is_flagged() {
    let s = Scenario::start("status-ready").await;
    let example = s.example();
    let name = example.name_any();
    let mut operator = s.launch().start();
    s.create(&example).await;
    s.wait_looked_at(&name).await;
    let target = object_ref(&s, &name);

    let out = status(&s, &[&target]).await;
    let text = stdout(&out);
    println!("status of a Ready source:\n{text}");
    assert_eq!(code(&out), Some(0), "{text}\n{}", stderr(&out));
    for expected in [
        &format!("PartnerEventSource {target}"),
        "Ready=True Created",
        "what to do: re-checked every resync interval",
        "Created: created partner event source",
        "the operator's own identity",
        "the status agrees with AWS",
        "Verdict: healthy",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }

    let out = status(&s, &[&target, "-o", "json"]).await;
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("status -o json is JSON");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["aws"]["checked"], "true");
    assert_eq!(report["aws"]["accounts"][0]["account"], CUSTOMER);
    assert_eq!(report["differences"], Value::Array(vec![]));

    // The same binary as the kubectl plugin, found on PATH as kubectl-eventbridge.
    let plugins = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("plugins"));
    std::fs::create_dir_all(&plugins).expect("a dir for the plugin");
    std::os::unix::fs::symlink(BIN, plugins.join("kubectl-eventbridge")).expect("link the plugin");
    let path = format!(
        "{}:{}:{}",
        plugins.display(),
        s.cp.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = command(&s, &s.cp.bin_dir().join("kubectl"))
        .env("PATH", path)
        .args([
            "eventbridge",
            "status",
            &target,
            "--selector",
            &selector(&s),
        ])
        .output()
        .await
        .expect("run kubectl eventbridge");
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Verdict: healthy"),
        "{}",
        stdout(&out)
    );
    std::fs::remove_dir_all(&plugins).expect("remove the plugin dir");

    // Out of band: the operator is stopped, and the partner deletes the source itself.
    operator.kill();
    sdk_client(
        &s.emulator,
        PARTNER_ACCESS_KEY_ID,
        PARTNER_SECRET_ACCESS_KEY,
    )
    .delete_partner_event_source()
    .name(&example.spec.name)
    .account(&example.spec.account)
    .send()
    .await
    .expect("delete the source in the emulator");
    let out = status(&s, &[&target]).await;
    let text = stdout(&out);
    println!("status of a source deleted out of band:\n{text}");
    assert_eq!(code(&out), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("DIFFERENCE: source missing in AWS"), "{text}");
    assert!(text.contains("Verdict: needs attention"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_outside_the_grant_is_explained_and_listed_as_not_ready() {
    let s = Scenario::start("status-grant").await;
    let accounts: Api<PartnerAccount> = Api::all(s.client.clone());
    let account_name = unique("status-acme");
    let mut account = PartnerAccount::new(
        &account_name,
        PartnerAccountSpec {
            role_arn: None,
            external_id: None,
            session_name: None,
            session_tags: BTreeMap::new(),
            source_prefixes: vec!["aws.partner/acme.com/tenant-a/".into()],
            namespace_selector: None,
            customer_accounts: None,
            region: None,
            aws_rps: None,
            default: false,
        },
    );
    account.metadata.labels = Some([("e2e".to_owned(), s.selector.clone())].into());
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("create the PartnerAccount");
    let with_ref = |name: &str, source: &str| {
        let mut obj: PartnerEventSource = s.object(name, source, CUSTOMER);
        obj.spec.partner_account_ref = Some(PartnerAccountRef {
            name: account_name.clone(),
        });
        obj
    };
    let _operator = s.launch().start();
    s.create(&with_ref("allowed", "aws.partner/acme.com/tenant-a/orders"))
        .await;
    s.create(&with_ref("denied", "aws.partner/acme.com/tenant-b/orders"))
        .await;
    s.wait_ready("allowed").await;
    s.wait_reason(&s.namespace, "denied", "False", "NotPermitted")
        .await;

    let out = status(&s, &[&object_ref(&s, "denied")]).await;
    let text = stdout(&out);
    println!("status of an object outside its grant:\n{text}");
    assert_eq!(code(&out), Some(1), "{text}\n{}", stderr(&out));
    for expected in [
        "Ready=False NotPermitted",
        "what to do: never sent to AWS",
        &format!("PartnerAccount {account_name} (recorded in the status)"),
        "not permitted:",
        "sourcePrefixes",
        "(no source of this name)",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }

    let out = status(&s, &["--all-namespaces", "--not-ready"]).await;
    let text = stdout(&out);
    println!("status --all-namespaces --not-ready:\n{text}");
    assert_eq!(code(&out), Some(1), "{text}\n{}", stderr(&out));
    let listed: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, [object_ref(&s, "denied")], "{text}");

    let out = status(&s, &["--all-namespaces", "-o", "json"]).await;
    let rows: Value = serde_json::from_slice(&out.stdout).expect("JSON rows");
    let objects: Vec<&str> = rows
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["object"].as_str().unwrap_or_default())
        .collect();
    let (allowed, denied) = (object_ref(&s, "allowed"), object_ref(&s, "denied"));
    assert_eq!(objects, [allowed.as_str(), denied.as_str()]);

    for name in ["allowed", "denied"] {
        s.delete(&s.namespace, name).await;
        s.wait_gone(&s.namespace, name).await;
    }
    let _ = accounts
        .delete(&account_name, &DeleteParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_naming_it_and_status_writes_nothing() {
    let s = Scenario::start("status-input").await;
    // No operator: whatever changes now, status changed it.
    let created = s
        .create(&s.object("quiet", "aws.partner/acme.com/quiet/orders", CUSTOMER))
        .await;
    for (args, says) in [
        (vec!["no-slash".to_owned()], "NAMESPACE/NAME"),
        (vec![format!("{}/UPPER", s.namespace)], "name \"UPPER\""),
        (vec!["--not-ready".to_owned()], "--all-namespaces"),
        (vec![object_ref(&s, "missing")], "not found"),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = status(&s, &args).await;
        assert_eq!(code(&out), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?} printed {}", stdout(&out));
    }
    let out = status(&s, &[&object_ref(&s, "quiet"), "--no-aws"]).await;
    let text = stdout(&out);
    assert_eq!(code(&out), Some(1), "no status yet is not healthy: {text}");
    assert!(text.contains("(none yet"), "{text}");
    assert!(text.contains("not checked: --no-aws"), "{text}");

    let now = s.api().get("quiet").await.expect("get the object");
    assert_eq!(
        now.resource_version(),
        created.resource_version(),
        "status changed the object"
    );
    let calls: u64 = [
        "CreatePartnerEventSource",
        "DeletePartnerEventSource",
        "DescribePartnerEventSource",
        "ListPartnerEventSourceAccounts",
    ]
    .iter()
    .map(|op| s.emulator.calls(op))
    .sum();
    assert_eq!(calls, 0, "bad input and --no-aws reach no AWS API");
    s.delete(&s.namespace, "quiet").await;
}
