//! End-to-end: `eventbridge-partner-operator import` against the EventBridge emulator, its
//! output applied to a real kube-apiserver, and the operator adopting what was imported.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use eventbridge_partner_emulator::{Config as EmulatorConfig, Emulator, OUTCOME_OK};
use eventbridge_partner_operator::resources::{DeletionPolicy, PartnerEventSource};
use serde::Deserialize;
use support::operator::{PARTNER_ACCESS_KEY_ID, PARTNER_SECRET_ACCESS_KEY};
use support::scenario::{CUSTOMER, Scenario, sdk_client, unique};
use tokio::process::Command;

const PREFIX: &str = "aws.partner/acme.com/";

/// Runs the operator binary's `import` against `endpoint` as the emulator's partner, with
/// nothing from the test process's own AWS or namespace setup. Awaited, so that an emulator
/// in the test's runtime keeps serving meanwhile.
async fn import(endpoint: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventbridge-partner-operator"));
    command.arg("import").args(args).args([
        "--aws-endpoint-url",
        endpoint,
        "--region",
        "eu-west-1",
    ]);
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key == "WATCH_NAMESPACE" {
            command.env_remove(key);
        }
    }
    command
        .env("AWS_ACCESS_KEY_ID", PARTNER_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", PARTNER_SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .expect("run the operator binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The objects of a multi-document YAML stream.
fn objects(yaml: &str) -> Vec<PartnerEventSource> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| PartnerEventSource::deserialize(doc).expect("a PartnerEventSource"))
        .collect()
}

/// Whether `name` is a DNS label: what Kubernetes accepts anywhere a name goes.
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// An EventBridge client acting as the emulator's partner account.
fn partner(emulator: &Emulator) -> aws_sdk_eventbridge::Client {
    sdk_client(emulator, emulator.partner_account(), "secret")
}

/// Creates sources in the emulator directly, as the partner's scripts did before the
/// operator.
async fn create_sources(client: &aws_sdk_eventbridge::Client, sources: &[(String, String)]) {
    for (name, account) in sources {
        client
            .create_partner_event_source()
            .name(name)
            .account(account)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e:?}"));
    }
}

/// 50 sources of acme.com: mostly plain names, two whose names differ only in case and
/// punctuation (so their object names need the hash), one too long for a plain name; each
/// offered to its own customer account.
fn acme_sources() -> Vec<(String, String)> {
    let mut names: Vec<String> = (0..47)
        .map(|i| format!("{PREFIX}customer-{i:02}/orders"))
        .collect();
    names.push(format!("{PREFIX}Customer_00/Orders"));
    names.push(format!("{PREFIX}customer.00/orders"));
    names.push(format!(
        "{PREFIX}{}/orders",
        "very-long-customer-name".repeat(4)
    ));
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name, format!("{}", 200_000_000_000u64 + i as u64)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_sources_are_adopted_without_a_create_or_a_delete() {
    let s = Scenario::start("import").await;
    let client = partner(&s.emulator);
    let acme = acme_sources();
    assert_eq!(acme.len(), 50);
    create_sources(&client, &acme).await;
    // Other partners' sources, one whose partner name merely starts like acme.com's.
    let others = [
        ("aws.partner/other.example/customer-1/orders", CUSTOMER),
        ("aws.partner/other.example/customer-2/orders", CUSTOMER),
        ("aws.partner/acme.community/customer-1/orders", CUSTOMER),
    ]
    .map(|(n, a)| (n.to_owned(), a.to_owned()));
    create_sources(&client, &others).await;
    let created_before = s
        .emulator
        .calls_with_outcome("CreatePartnerEventSource", OUTCOME_OK);

    let out = import(
        &s.emulator.endpoint_url(),
        &["--prefix", PREFIX, "--namespace", &s.namespace],
    )
    .await;
    assert!(
        out.status.success(),
        "import failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains(
            "# Imported by `eventbridge-partner-operator import --prefix aws.partner/acme.com/`"
        ),
        "{yaml}"
    );
    let imported = objects(&yaml);
    let pairs: BTreeSet<(String, String)> = imported
        .iter()
        .map(|o| (o.spec.name.clone(), o.spec.account.clone()))
        .collect();
    assert_eq!(pairs, acme.iter().cloned().collect(), "{yaml}");
    let names: BTreeSet<String> = imported
        .iter()
        .map(|o| o.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names.len(), 50, "{names:?}");
    assert!(names.iter().all(|n| is_dns_label(n)), "{names:?}");
    for o in &imported {
        assert_eq!(o.metadata.namespace.as_deref(), Some(s.namespace.as_str()));
        assert_eq!(o.spec.deletion_policy, Some(DeletionPolicy::Retain));
        assert_eq!(o.spec.region.as_deref(), Some("eu-west-1"));
    }
    // The same listing gives the same output.
    let again = import(
        &s.emulator.endpoint_url(),
        &["--prefix", PREFIX, "--namespace", &s.namespace],
    )
    .await;
    assert_eq!(text(&again.stdout), yaml);

    // Applied as written, then labelled for this scenario's operator.
    let applied = s.kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let label = format!("e2e={}", s.selector);
    let labelled = s.kubectl(
        &["label", "pes", "--all", "-n", &s.namespace, label.as_str()],
        None,
    );
    assert!(labelled.status.success(), "{}", text(&labelled.stderr));

    let _operator = s.launch().start();
    for name in &names {
        s.wait_reason(&s.namespace, name, "True", "Adopted").await;
    }
    assert_eq!(
        s.emulator
            .calls_with_outcome("CreatePartnerEventSource", OUTCOME_OK),
        created_before,
        "a create succeeded"
    );
    assert_eq!(s.emulator.calls("DeletePartnerEventSource"), 0);

    // Retain: deleting the objects leaves every source in AWS.
    let deleted = s.kubectl(&["delete", "pes", "--all", "-n", &s.namespace], None);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    for name in &names {
        s.wait_gone(&s.namespace, name).await;
    }
    assert_eq!(s.emulator.calls("DeletePartnerEventSource"), 0);
    assert_eq!(s.emulator.sources().len(), acme.len() + others.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_writes_one_valid_file_per_object() {
    let s = Scenario::start("import-output").await;
    let sources: Vec<(String, String)> = ["c1/orders", "C1/Orders", "c2/invoices"]
        .iter()
        .map(|rest| (format!("{PREFIX}{rest}"), CUSTOMER.to_owned()))
        .collect();
    create_sources(&partner(&s.emulator), &sources).await;
    let dir = std::env::temp_dir().join(unique("import-output"));
    let out_dir = dir.join("manifests");

    let out = import(
        &s.emulator.endpoint_url(),
        &[
            "--prefix",
            PREFIX,
            "--namespace",
            &s.namespace,
            "--output",
            out_dir.to_str().expect("a UTF-8 temp path"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let files = yaml_files(&out_dir);
    assert_eq!(files.len(), 3, "{files:?}");
    let mut seen = BTreeSet::new();
    for file in &files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a file name");
        assert!(is_dns_label(stem), "{stem}");
        let objects = objects(&std::fs::read_to_string(file).expect("read a manifest"));
        assert_eq!(objects.len(), 1, "{}", file.display());
        assert_eq!(objects[0].metadata.name.as_deref(), Some(stem));
        seen.insert(objects[0].spec.name.clone());
    }
    assert_eq!(seen, sources.iter().map(|(n, _)| n.clone()).collect());
    assert!(files.iter().any(|f| f.ends_with("c2-invoices.yaml")));

    // The API server takes them as they are.
    let dry_run = s.kubectl(
        &[
            "apply",
            "--dry-run=server",
            "-f",
            out_dir.to_str().expect("a UTF-8 temp path"),
        ],
        None,
    );
    assert!(dry_run.status.success(), "{}", text(&dry_run.stderr));
    std::fs::remove_dir_all(&dir).expect("remove the output");
}

#[tokio::test]
async fn a_bad_prefix_exits_2_naming_the_flag_and_writes_nothing() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("start the emulator");
    let dir = std::env::temp_dir().join(unique("import-bad-prefix"));
    for prefix in ["aws.partner/acme.com", "acme.com/", "aws.partner//x"] {
        let out = import(
            &emulator.endpoint_url(),
            &[
                "--prefix",
                prefix,
                "--output",
                dir.to_str().expect("a UTF-8 temp path"),
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(2), "{prefix}: {out:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("--prefix"), "{prefix}: {stderr}");
        assert!(stderr.contains(prefix), "{prefix}: {stderr}");
        assert!(out.stdout.is_empty(), "{prefix}");
        assert!(!dir.exists(), "{prefix}: {} was made", dir.display());
    }
    assert_eq!(emulator.calls("ListPartnerEventSources"), 0);
}

#[tokio::test]
async fn a_failed_listing_writes_nothing() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("start the emulator");
    let sources: Vec<(String, String)> = (0..3)
        .map(|i| (format!("{PREFIX}c{i}/orders"), CUSTOMER.to_owned()))
        .collect();
    create_sources(&partner(&emulator), &sources).await;
    let dir = std::env::temp_dir().join(unique("import-failed"));
    for output in [None, Some(&dir)] {
        // The sources are listed, then one of their account listings is refused.
        emulator.inject_errors("ListPartnerEventSourceAccounts", &["AccessDeniedException"]);
        let mut args = vec!["--prefix", PREFIX];
        if let Some(dir) = output {
            args.extend(["--output", dir.to_str().expect("a UTF-8 temp path")]);
        }
        let out = import(&emulator.endpoint_url(), &args).await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("ListPartnerEventSourceAccounts failed: AccessDeniedException"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert!(!dir.exists());
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "yaml")),
        "{files:?}"
    );
    files
}
