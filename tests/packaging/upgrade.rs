//! Upgrades from the chart and the kubectl manifest as they were at commit 0b73c28 (the last
//! commit whose chart installed its CRD from Helm's `crds/` dir, which `helm upgrade` never
//! touches) to the working tree, against the real API server with the operator running and
//! objects reconciled through the emulator:
//!
//! - `kubectl apply --server-side` of the old `crds/` file and `deploy/operator.yaml`, then of
//!   the new `deploy/operator.yaml` (which carries the CRDs now);
//! - `helm install` of the old chart, then `helm upgrade --take-ownership` to the working tree,
//!   then `helm upgrade` to a later chart that adds a spec field and a kind, then
//!   `helm uninstall`.
//!
//! Before each upgrade the objects and their sources are as the operator of 0b73c28 left them:
//! objects with its finalizer, sources created in the emulator with the partner's credentials.
//! (The working tree's operator cannot stand in for the old one: it needs the new CRDs.) Each
//! step checks that the API server serves the new CRDs (their schema, fields added since
//! 0b73c28 accepted under strict field validation, new kinds established) and that every
//! object keeps its uid and every source stays in the emulator, never deleted; after the
//! upgrade the working tree's operator takes the objects over (Ready) without deleting or
//! recreating a source.

use crate::support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use eventbridge_partner_emulator::{Config as EmulatorConfig, Emulator};
use serde_json::{Value, json};

use support::command::{output_with_input, run, run_with_input};
use support::controlplane::ControlPlane;
use support::operator::{
    Launch, OperatorProcess, PARTNER_ACCESS_KEY_ID, PARTNER_SECRET_ACCESS_KEY,
};
use support::podman::TempDir;
use support::repo::root;
use support::scenario::sdk_client;

/// The last commit before the CRDs became templates.
const OLD: &str = "0b73c28";
const CHART: &str = "charts/eventbridge-partner-operator";
const CRD: &str = "partnereventsources.eventbridgepartner.dev";
const CUSTOMER: &str = "123456789012";
const OBJECTS: usize = 3;
/// The finalizer the operator of 0b73c28 puts on every object before its first AWS call.
const FINALIZER: &str = "eventbridgepartner.dev/finalizer";

fn output(command: &mut Command) -> (bool, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn helm(cp: &ControlPlane) -> Command {
    let mut command = support::tools::tool("helm");
    command.arg("--kubeconfig").arg(cp.kubeconfig());
    command
}

/// charts/, crds/ and deploy/ as they were at commit `OLD`, extracted once per test process.
fn old_tree() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("upgrade-{OLD}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the old tree dir");
        let archive = Command::new("git")
            .current_dir(root())
            .args([
                "archive",
                "--format=tar",
                OLD,
                "charts/",
                "crds/",
                "deploy/",
            ])
            .output()
            .expect("running git archive");
        assert!(
            archive.status.success(),
            "git archive {OLD} failed (a clone without that commit?): {}",
            String::from_utf8_lossy(&archive.stderr)
        );
        run_with_tar(&dir, &archive.stdout);
        dir
    })
}

fn run_with_tar(dir: &Path, tar: &[u8]) {
    let mut child = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("running tar");
    child.stdin.take().unwrap().write_all(tar).unwrap();
    assert!(child.wait().unwrap().success(), "tar -x failed");
}

/// Every CustomResourceDefinition in the YAML files of `dir`.
fn crds_in(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut crds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).expect("YAML");
            if value["kind"] == "CustomResourceDefinition" {
                crds.push(value);
            }
        }
    }
    crds
}

/// The spec properties of a CRD's first version.
fn spec_properties(crd: &Value) -> BTreeMap<String, Value> {
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        .as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default()
}

/// What the working tree's CRDs add to those of `OLD`: new kinds (CRD names) and, per kind,
/// new spec fields.
struct Added {
    kinds: Vec<String>,
    fields: Vec<(Value, String, Value)>,
}

fn added_since_old() -> Added {
    let old = crds_in(&old_tree().join(CHART).join("crds"));
    let new = crds_in(&root().join(CHART).join("files/crds"));
    let mut added = Added {
        kinds: Vec::new(),
        fields: Vec::new(),
    };
    for crd in &new {
        let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
        match old
            .iter()
            .find(|o| o["metadata"]["name"] == crd["metadata"]["name"])
        {
            None => added.kinds.push(name),
            Some(before) => {
                let before = spec_properties(before);
                for (field, schema) in spec_properties(crd) {
                    if !before.contains_key(&field) {
                        added.fields.push((crd.clone(), field, schema));
                    }
                }
            }
        }
    }
    added
}

/// A value the schema of a field accepts, when the schema says one (a default or an enum).
fn sample(schema: &Value) -> Option<Value> {
    if let Some(default) = schema.get("default") {
        return Some(default.clone());
    }
    schema["enum"].as_array().and_then(|e| e.first()).cloned()
}

fn object(namespace: &str, name: &str, selector: Option<&str>) -> Value {
    let mut obj = json!({
        "apiVersion": "eventbridgepartner.dev/v1alpha1",
        "kind": "PartnerEventSource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "name": format!("aws.partner/acme.com/{namespace}-{name}/orders"),
            "account": CUSTOMER,
            "region": "eu-west-1",
        },
    });
    if let Some(selector) = selector {
        obj["metadata"]["labels"] = json!({"e2e": selector});
    }
    obj
}

/// Server-side apply with strict field validation: an unknown field fails.
fn apply_strict(cp: &ControlPlane, obj: &Value) {
    run_with_input(
        cp.kubectl().args([
            "apply",
            "--server-side",
            "--field-manager=upgrade-test",
            "--validate=strict",
            "-f",
            "-",
        ]),
        &obj.to_string(),
    );
}

fn wait_established(cp: &ControlPlane, crds: &[String]) {
    let mut command = cp.kubectl();
    command.args(["wait", "--for=condition=Established", "--timeout=60s"]);
    for crd in crds {
        command.arg(format!("crd/{crd}"));
    }
    run(&mut command);
}

/// Waits until the API server enforces the grant policy the install brought. The policy's
/// params are PartnerAccounts, whose CRD the same install may have just created: until the
/// API server has seen the policy and its binding, it admits everything, and then, until it
/// has listed the PartnerAccounts, it refuses every PartnerEventSource ("paramKind ... not yet
/// synced"; the policy fails closed). A write in either window says nothing about upgrades, so
/// this waits for the policy's own refusal of an object outside a probe PartnerAccount's grant.
fn wait_admission_ready(cp: &ControlPlane, namespace: &str) {
    const ACCOUNT: &str = "upgrade-admission-probe";
    let account = json!({
        "apiVersion": "eventbridgepartner.dev/v1alpha1",
        "kind": "PartnerAccount",
        "metadata": {"name": ACCOUNT},
        "spec": {"sourcePrefixes": ["aws.partner/admission-probe.example/"]},
    });
    run_with_input(
        cp.kubectl().args(["apply", "--server-side", "-f", "-"]),
        &account.to_string(),
    );
    let mut probe = object(namespace, "admission-probe", None);
    probe["spec"]["partnerAccountRef"] = json!({"name": ACCOUNT});
    let probe = probe.to_string();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = output_with_input(
            cp.kubectl()
                .args(["apply", "--server-side", "--dry-run=server", "-f", "-"]),
            &probe,
        );
        let text = String::from_utf8_lossy(&out.stderr);
        if text.contains(&format!(
            "is outside PartnerAccount {ACCOUNT} sourcePrefixes"
        )) {
            break;
        }
        let settling = out.status.success()
            || text.contains("not yet synced")
            || text.contains("failed to find resource referenced by paramKind");
        assert!(
            settling && Instant::now() < deadline,
            "the grant policy never refused an object outside {ACCOUNT}'s grant:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    run(cp.kubectl().args(["delete", "partneraccount", ACCOUNT]));
}

fn crd_names(dir: &Path) -> Vec<String> {
    crds_in(dir)
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn get_json(cp: &ControlPlane, args: &[&str]) -> Value {
    let text = run(cp.kubectl().args(["get"]).args(args).args(["-o", "json"]));
    serde_json::from_str(&text).expect("kubectl JSON")
}

/// An EventBridge client acting as the partner, as the operator does.
fn partner(emulator: &Emulator) -> aws_sdk_eventbridge::Client {
    sdk_client(emulator, PARTNER_ACCESS_KEY_ID, PARTNER_SECRET_ACCESS_KEY)
}

/// One upgrade path's world: a namespace of objects that the operator reconciles.
struct Objects {
    namespace: String,
    selector: String,
    /// name -> uid
    uids: BTreeMap<String, String>,
    /// DeletePartnerEventSource calls the emulator had served when the objects were Ready.
    deletes_before: u64,
}

impl Objects {
    /// The objects and their sources as the operator of 0b73c28 left them: each object
    /// carries its finalizer, each source exists in EventBridge for the object's account.
    fn create(cp: &ControlPlane, namespace: &str, emulator: &Emulator) -> Objects {
        run(cp.kubectl().args(["create", "namespace", namespace]));
        let selector = namespace.to_owned();
        let client = partner(emulator);
        for i in 0..OBJECTS {
            let mut obj = object(namespace, &format!("source-{i}"), Some(&selector));
            obj["metadata"]["finalizers"] = json!([FINALIZER]);
            apply_strict(cp, &obj);
            let source = obj["spec"]["name"].as_str().unwrap().to_owned();
            tokio::runtime::Handle::current()
                .block_on(
                    client
                        .create_partner_event_source()
                        .name(&source)
                        .account(CUSTOMER)
                        .send(),
                )
                .unwrap_or_else(|e| panic!("creating {source} in the emulator: {e:?}"));
        }
        let mut objects = Objects {
            namespace: namespace.to_owned(),
            selector,
            uids: BTreeMap::new(),
            deletes_before: 0,
        };
        objects.uids = objects.current_uids(cp);
        objects.deletes_before = emulator.calls("DeletePartnerEventSource");
        assert_eq!(objects.uids.len(), OBJECTS);
        objects
    }

    fn wait_ready(&self, cp: &ControlPlane) {
        run(cp.kubectl().args([
            "wait",
            "--for=condition=Ready",
            "--timeout=120s",
            "-n",
            &self.namespace,
            "partnereventsources",
            "-l",
            &format!("e2e={}", self.selector),
        ]));
    }

    fn current_uids(&self, cp: &ControlPlane) -> BTreeMap<String, String> {
        let list = get_json(
            cp,
            &[
                "partnereventsources",
                "-n",
                &self.namespace,
                "-l",
                &format!("e2e={}", self.selector),
            ],
        );
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["metadata"]["name"].as_str().unwrap().to_owned(),
                    o["metadata"]["uid"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn source_names(&self) -> Vec<String> {
        self.uids
            .keys()
            .map(|name| format!("aws.partner/acme.com/{}-{name}/orders", self.namespace))
            .collect()
    }

    /// Every object is still there with its uid and not being deleted (and Ready, when
    /// `operator` runs), and every source is in the emulator; nothing was deleted in AWS.
    fn assert_kept(&self, cp: &ControlPlane, emulator: &Emulator, operator: bool, step: &str) {
        assert_eq!(
            self.current_uids(cp),
            self.uids,
            "{step}: the objects in {} are the same objects",
            self.namespace
        );
        let list = get_json(cp, &["partnereventsources", "-n", &self.namespace]);
        for obj in list["items"].as_array().unwrap() {
            assert!(
                obj["metadata"]["deletionTimestamp"].is_null(),
                "{step}: nothing deletes {}",
                obj["metadata"]["name"]
            );
        }
        if operator {
            self.wait_ready(cp);
        }
        for source in self.source_names() {
            assert!(
                emulator.source(&source).is_some(),
                "{step}: the source {source} is still in EventBridge"
            );
        }
        assert_eq!(
            emulator.calls("DeletePartnerEventSource"),
            self.deletes_before,
            "{step}: nothing was deleted in EventBridge"
        );
        eprintln!(
            "upgrade test: {step}: {} objects kept (same uids{}), {} sources kept",
            self.uids.len(),
            if operator { ", Ready" } else { "" },
            self.uids.len()
        );
    }

    /// Deletes the objects (the operator deletes their sources) and waits until they are gone.
    fn delete(&self, cp: &ControlPlane) {
        run(cp.kubectl().args([
            "delete",
            "partnereventsources",
            "--all",
            "-n",
            &self.namespace,
            "--wait=true",
            "--timeout=120s",
        ]));
    }
}

/// The API server serves the working tree's CRDs: their schemas, the fields added since
/// `OLD` (exercised with a value their schema gives), and the kinds added since.
fn assert_serves_working_tree_crds(cp: &ControlPlane, namespace: &str, step: &str) {
    let working = crds_in(&root().join(CHART).join("files/crds"));
    let names: Vec<String> = working
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    wait_established(cp, &names);
    wait_admission_ready(cp, namespace);
    for crd in &working {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let served = get_json(cp, &["crd", name]);
        for (index, version) in crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_eq!(
                served["spec"]["versions"][index]["schema"], version["schema"],
                "{step}: the served schema of {name} {} is the working tree's",
                version["name"]
            );
        }
    }
    let added = added_since_old();
    for kind in &added.kinds {
        eprintln!("upgrade test: {step}: kind added since {OLD} is served: {kind}");
    }
    for (i, (crd, field, schema)) in added.fields.iter().enumerate() {
        let Some(value) = sample(schema) else {
            eprintln!(
                "upgrade test: {step}: field spec.{field} added since {OLD} is in the served schema (no default or enum to try)"
            );
            continue;
        };
        if crd["metadata"]["name"] != CRD {
            continue;
        }
        let mut obj = object(namespace, &format!("new-field-{i}"), None);
        obj["spec"][field.as_str()] = value.clone();
        apply_strict(cp, &obj);
        eprintln!(
            "upgrade test: {step}: field spec.{field} added since {OLD} is accepted ({value})"
        );
    }
    if added.kinds.is_empty() && added.fields.is_empty() {
        eprintln!("upgrade test: {step}: no kind or spec field added since {OLD} yet");
    }
}

fn start_operator(cp: &ControlPlane, emulator: &Emulator, selector: &str) -> OperatorProcess {
    Launch::new(cp.kubeconfig(), &emulator.endpoint_url(), selector).start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_from_0b73c28_with_kubectl_and_helm_keeps_every_object_and_source() {
    let started = Instant::now();
    // A control plane of this suite's own: it replaces and deletes the CRDs.
    let cp = ControlPlane::of_suite("upgrade");
    let old = old_tree();
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("start the emulator");

    tokio::task::block_in_place(|| {
        // --- kubectl apply: the old CRD file and manifest, then the new manifest ---
        let step_started = Instant::now();
        run(cp
            .kubectl()
            .args(["apply", "--server-side", "-f"])
            .arg(old.join("crds").join(format!("{CRD}.yaml"))));
        wait_established(cp, &[CRD.to_owned()]);
        run(cp
            .kubectl()
            .args(["apply", "--server-side", "-f"])
            .arg(old.join("deploy/operator.yaml")));
        let objects = Objects::create(cp, "upgrade-kubectl", &emulator);
        run(cp
            .kubectl()
            .args(["apply", "--server-side", "-f"])
            .arg(root().join("deploy/operator.yaml")));
        let crd = get_json(cp, &["crd", CRD]);
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/part-of"], "eventbridge-partner-operator",
            "deploy/operator.yaml applied the CRD"
        );
        assert_serves_working_tree_crds(cp, &objects.namespace, "kubectl apply");
        objects.assert_kept(
            cp,
            &emulator,
            false,
            "kubectl apply of deploy/operator.yaml",
        );
        let mut operator = start_operator(cp, &emulator, "upgrade-kubectl");
        objects.assert_kept(cp, &emulator, true, "the new operator took over (kubectl)");
        eprintln!(
            "upgrade test: kubectl path took {:.1}s",
            step_started.elapsed().as_secs_f64()
        );

        // Back to a cluster without the CRD for the Helm path, and without the grant policy
        // deploy/operator.yaml installed, whose params would be gone with the CRDs.
        objects.delete(cp);
        operator.kill();
        run(cp.kubectl().args([
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            "eventbridge-partner-operator-grant",
        ]));
        for crd in crd_names(&root().join(CHART).join("files/crds")) {
            run(cp
                .kubectl()
                .args(["delete", "crd", &crd, "--wait=true", "--timeout=60s"]));
        }

        // --- Helm: install the old chart, upgrade to the working tree, then to a later one ---
        let step_started = Instant::now();
        let release_ns = "upgrade-helm-release";
        run(helm(cp)
            .args(["install", "ebpo"])
            .arg(old.join(CHART))
            .args(["--namespace", release_ns, "--create-namespace"])
            .args(["--set", "aws.region=eu-west-1"]));
        wait_established(cp, &[CRD.to_owned()]);
        let objects = Objects::create(cp, "upgrade-helm", &emulator);

        // A CRD Helm created from crds/ has no release: without --take-ownership Helm refuses
        // the upgrade and changes nothing; with it, the first upgrade takes the CRD over.
        let (ok, text) = output(
            helm(cp)
                .args(["upgrade", "ebpo"])
                .arg(root().join(CHART))
                .args(["--namespace", release_ns])
                .args(["--set", "aws.region=eu-west-1"]),
        );
        assert!(
            !ok && text.contains("invalid ownership metadata"),
            "helm upgrade without --take-ownership:\n{text}"
        );
        objects.assert_kept(cp, &emulator, false, "a refused helm upgrade");
        let (ok, text) = output(
            helm(cp)
                .args(["upgrade", "ebpo"])
                .arg(root().join(CHART))
                .args(["--namespace", release_ns, "--take-ownership"])
                .args(["--set", "aws.region=eu-west-1"]),
        );
        assert!(
            ok,
            "helm upgrade --take-ownership to the working tree:\n{text}"
        );
        let crd = get_json(cp, &["crd", CRD]);
        let annotations = &crd["metadata"]["annotations"];
        assert_eq!(annotations["meta.helm.sh/release-name"], "ebpo", "{crd}");
        assert_eq!(annotations["helm.sh/resource-policy"], "keep", "{crd}");
        assert_serves_working_tree_crds(cp, &objects.namespace, "helm upgrade");
        objects.assert_kept(cp, &emulator, false, "helm upgrade to the working tree");
        let _operator = start_operator(cp, &emulator, "upgrade-helm");
        objects.assert_kept(cp, &emulator, true, "the new operator took over (helm)");

        // A later chart that adds a spec field and a kind: plain `helm upgrade` brings both.
        let later = TempDir::new("upgrade-later-chart");
        later_chart(later.path());
        run(helm(cp)
            .args(["upgrade", "ebpo"])
            .arg(later.path())
            .args(["--namespace", release_ns])
            .args(["--set", "aws.region=eu-west-1"]));
        wait_established(cp, &[CRD.to_owned(), PROBE_CRD.to_owned()]);
        let mut obj = object(&objects.namespace, "later-field", None);
        obj["spec"]["upgradeProbe"] = json!("added by a later chart");
        apply_strict(cp, &obj);
        apply_strict(
            cp,
            &json!({
                "apiVersion": "upgrade-probe.eventbridgepartner.dev/v1alpha1",
                "kind": "UpgradeProbe",
                "metadata": {"name": "later-kind", "namespace": objects.namespace},
                "spec": {"note": "a kind added by a later chart"},
            }),
        );
        eprintln!(
            "upgrade test: helm upgrade to a later chart: new field spec.upgradeProbe and new kind UpgradeProbe accepted"
        );
        objects.assert_kept(cp, &emulator, true, "helm upgrade to a later chart");

        // Uninstall keeps the CRDs, so the objects and their sources stay.
        run(helm(cp).args(["uninstall", "ebpo", "--namespace", release_ns, "--wait"]));
        get_json(cp, &["crd", CRD]);
        get_json(cp, &["crd", PROBE_CRD]);
        objects.assert_kept(cp, &emulator, true, "helm uninstall");
        eprintln!(
            "upgrade test: helm path took {:.1}s",
            step_started.elapsed().as_secs_f64()
        );
    });
    eprintln!("upgrade test: took {:.1}s", started.elapsed().as_secs_f64());
    emulator.shutdown().await;
}

const PROBE_CRD: &str = "upgradeprobes.upgrade-probe.eventbridgepartner.dev";

/// Copies the working tree's chart to `dir` as a later version whose PartnerEventSource CRD
/// has an extra spec field and which ships an extra CRD.
fn later_chart(dir: &Path) {
    run(Command::new("cp")
        .arg("-R")
        .arg(root().join(CHART).join("."))
        .arg(dir));
    let chart_yaml = dir.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("version:") {
                "version: 99.0.0".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&chart_yaml, text + "\n").unwrap();

    let crd_file = dir.join("files/crds").join(format!("{CRD}.yaml"));
    let mut crd: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&crd_file).unwrap()).expect("the CRD");
    for version in crd["spec"]["versions"].as_array_mut().unwrap() {
        version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["upgradeProbe"] =
            json!({"type": "string", "description": "A field a later version adds."});
    }
    std::fs::write(&crd_file, serde_yaml::to_string(&crd).unwrap()).unwrap();

    let probe = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": PROBE_CRD},
        "spec": {
            "group": "upgrade-probe.eventbridgepartner.dev",
            "names": {"kind": "UpgradeProbe", "plural": "upgradeprobes", "singular": "upgradeprobe"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": {"note": {"type": "string"}}}},
                }},
            }],
        },
    });
    std::fs::write(
        dir.join("files/crds").join(format!("{PROBE_CRD}.yaml")),
        serde_yaml::to_string(&probe).unwrap(),
    )
    .unwrap();
}
