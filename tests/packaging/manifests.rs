//! The manifests checked against the schemas of the Kubernetes release the project
//! targets: kubeconform -strict offline (with schemas made from the real API server and the
//! CRDs), and the real API server itself (server-side dry run with strict field validation,
//! the Restricted pod security standard). Also: the committed kubectl-apply manifest
//! (`deploy/operator.yaml`) is what the chart renders.

use crate::kubeschemas;
use crate::support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};
use support::chart::{
    CI_VALUES, DEFAULT_LEASE, Render, chart_crds, ci_values, kind, name, one_of_kind, parse_docs,
    scratch, service_account_name,
};
use support::command::{output_of, run, run_with_input};
use support::controlplane::ControlPlane;
use support::rbac::{contract, grants};
use support::repo::{read, root, sorted_files};
use support::tools::tool;

// ---------------------------------------------------------------------------------------
// Schema validation: kubeconform -strict offline, and the real API server.

/// Where kubeconform finds schemas: built-in kinds cached per Kubernetes version, custom
/// resources from the CRDs as they are now.
struct Schemas {
    built_in: PathBuf,
    custom: PathBuf,
}

/// Writes the schemas of every kind in `docs` that is not there yet (fetching the API
/// server's OpenAPI document only when a built-in kind is missing) and returns the dirs.
fn schemas_for(docs: &[Value]) -> Schemas {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());

    let control_plane = ControlPlane::shared();
    let version: Value = serde_json::from_str(&run(control_plane
        .kubectl()
        .args(["get", "--raw", "/version"])))
    .expect("/version is JSON");
    let version = version["gitVersion"]
        .as_str()
        .expect("gitVersion")
        .to_owned();
    // Bump the suffix when the conversion in tests/kubeschemas changes.
    let base = root().join("target/kubeconform-schemas");
    let built_in = base.join(format!("{version}-strict-1"));
    // Made afresh for each run of kubeconform (the CRDs change with the code), and
    // removed after it.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let custom = base.join(format!(
        "crds-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));

    let openapi = OnceLock::new();
    let openapi = || {
        openapi.get_or_init(|| {
            let document = run(control_plane
                .kubectl()
                .args(["get", "--raw", "/openapi/v2"]));
            kubeschemas::OpenApi::new(
                serde_json::from_str(&document).expect("the OpenAPI document is JSON"),
            )
            .expect("an OpenAPI v2 document")
        })
    };

    let _ = std::fs::remove_dir_all(&custom);
    let mut custom_kinds = BTreeSet::new();
    for crd_file in chart_crds() {
        for crd in parse_docs(&read(&crd_file)) {
            for (api_version, kind_, schema) in
                kubeschemas::crd_schemas(&crd, openapi()).expect("a CRD schema")
            {
                kubeschemas::write(&custom, &api_version, &kind_, &schema).expect("writing");
                custom_kinds.insert((api_version, kind_));
            }
        }
    }

    for doc in docs {
        let api_version = doc["apiVersion"].as_str().expect("apiVersion").to_owned();
        let kind_ = kind(doc).to_owned();
        if custom_kinds.contains(&(api_version.clone(), kind_.clone())) {
            continue;
        }
        if built_in
            .join(kubeschemas::relative_path(&api_version, &kind_))
            .is_file()
        {
            continue;
        }
        let schema = openapi()
            .kind_schema(&api_version, &kind_)
            .unwrap_or_else(|| panic!("the API server serves no {api_version} {kind_}"));
        kubeschemas::write(&built_in, &api_version, &kind_, &schema).expect("writing");
    }
    Schemas { built_in, custom }
}

/// kubeconform -strict over `files`, which hold `docs`, with the schemas made for them:
/// the process output and its JSON report.
fn kubeconform_report(files: &[PathBuf], docs: &[Value]) -> (Output, Value) {
    let schemas = schemas_for(docs);
    let mut command = tool("kubeconform");
    command
        .args(["-strict", "-summary", "-output", "json"])
        .arg("-schema-location")
        .arg(kubeschemas::location_template(&schemas.custom))
        .arg("-schema-location")
        .arg(kubeschemas::location_template(&schemas.built_in))
        .args(files);
    let output = output_of(&mut command);
    let _ = std::fs::remove_dir_all(&schemas.custom);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("kubeconform output is not JSON ({e}):\n{stdout}"));
    (output, report)
}

/// Runs kubeconform -strict over `files`, which hold `docs`, and asserts all are valid.
fn kubeconform(files: &[PathBuf], docs: &[Value]) {
    let (output, report) = kubeconform_report(files, docs);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = &report["summary"];
    assert!(
        output.status.success()
            && summary["invalid"] == 0
            && summary["errors"] == 0
            && summary["skipped"] == 0
            && summary["valid"] == docs.len(),
        "kubeconform -strict over {files:?} (expected {} valid):\n{stdout}{}",
        docs.len(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn rendered_chart_passes_kubeconform_strict() {
    let mut files = Vec::new();
    let mut all = Vec::new();
    for values in CI_VALUES {
        let text = Render::new().values(ci_values(values)).with_crds().text();
        let file = scratch(&format!("kubeconform-{values}"));
        std::fs::write(&file, &text).expect("writing the rendered chart");
        let docs = parse_docs(&text);
        assert!(
            docs.iter()
                .any(|doc| kind(doc) == "CustomResourceDefinition"),
            "--include-crds renders the CRD"
        );
        all.extend(docs);
        files.push(file);
    }
    kubeconform(&files, &all);
}

#[test]
fn other_manifests_pass_kubeconform_strict() {
    // The kubectl-apply manifest, the Argo CD ConfigMap snippet, and the recorded
    // PartnerEventSource objects the Argo CD health check is tested with (so they stay
    // true to the CRD).
    let mut files = vec![
        root().join("deploy/operator.yaml"),
        root().join("examples/argocd/argocd-cm.yaml"),
        root().join("examples/namespace.yaml"),
        root().join("examples/partnereventsource.yaml"),
    ];
    files.extend(sorted_files("examples/argocd/testdata"));
    let docs: Vec<Value> = files
        .iter()
        .flat_map(|file| parse_docs(&read(file)))
        .collect();
    kubeconform(&files, &docs);
}

#[test]
fn invalid_examples_fail_kubeconform_strict() {
    // The schemas made from the CRD reject what the API server rejects, so a chart or
    // example mistake in a custom resource is caught offline too.
    let files = sorted_files("examples/invalid");
    assert!(!files.is_empty());
    for file in files {
        let docs = parse_docs(&read(&file));
        let (_, report) = kubeconform_report(std::slice::from_ref(&file), &docs);
        assert_eq!(
            report["summary"]["invalid"],
            docs.len(),
            "{} should be invalid:\n{report:#}",
            file.display()
        );
    }
}

#[test]
fn rendered_chart_passes_server_side_dry_run_with_strict_field_validation() {
    let control_plane = ControlPlane::shared();
    control_plane.install_crds(&chart_crds());
    for (index, values) in CI_VALUES.iter().enumerate() {
        let namespace = format!("dry-run-{index}");
        control_plane.ensure_namespace(&namespace);
        let text = Render::new()
            .release("ebpo", &namespace)
            .values(ci_values(values))
            .text();
        for doc in parse_docs(&text) {
            if let Some(watched) = doc["metadata"]["namespace"].as_str() {
                control_plane.ensure_namespace(watched);
            }
        }
        run_with_input(
            control_plane.kubectl().args([
                "apply",
                "--server-side",
                "--dry-run=server",
                "--validate=strict",
                "--field-manager=chart-test",
                "-f",
                "-",
            ]),
            &text,
        );
    }
}

#[test]
fn operator_pods_meet_the_restricted_pod_security_standard() {
    // The test control plane runs no controllers, so no Deployment ever makes a pod; a
    // server-side dry run of the pod template itself goes through the API server's
    // PodSecurity admission in a namespace that enforces the Restricted profile.
    let control_plane = ControlPlane::shared();
    let namespace = "restricted";
    control_plane.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n  labels:\n    \
             pod-security.kubernetes.io/enforce: restricted\n    \
             pod-security.kubernetes.io/enforce-version: latest\n"
    ));
    for values in CI_VALUES {
        let docs = Render::new()
            .release("ebpo", namespace)
            .values(ci_values(values))
            .docs();
        // Admission needs the pod's ServiceAccount to exist.
        let account = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service_account_name(&docs), "namespace": namespace},
        });
        control_plane.apply(&account.to_string());
        let template = &one_of_kind(&docs, "Deployment")["spec"]["template"];
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "operator-pod",
                "namespace": namespace,
                "labels": template["metadata"]["labels"],
            },
            "spec": template["spec"],
        });
        let output = run_with_input(
            control_plane.kubectl().args([
                "create",
                "--dry-run=server",
                "--validate=strict",
                "-o",
                "name",
                "-f",
                "-",
            ]),
            &pod.to_string(),
        );
        assert_eq!(output.trim(), "pod/operator-pod", "{values}");
    }
}

// ---------------------------------------------------------------------------------------
// The rendered kubectl-apply manifest.

#[test]
fn deploy_manifest_is_the_rendered_chart() {
    let rendered = run(Command::new("bash")
        .arg(root().join("hack/render-deploy.sh"))
        .arg("--stdout")
        .stdin(Stdio::null()));
    let committed = read("deploy/operator.yaml");
    assert!(
        rendered == committed,
        "deploy/operator.yaml is not what the chart renders; run hack/render-deploy.sh"
    );
    let docs = parse_docs(&committed);
    assert_eq!(
        kind(&docs[0]),
        "Namespace",
        "the manifest creates its namespace first"
    );
    let namespace = name(&docs[0]).to_owned();
    for doc in &docs[1..] {
        if let Some(ns) = doc["metadata"]["namespace"].as_str() {
            assert_eq!(ns, namespace, "{} {}", kind(doc), name(doc));
        }
    }
    let account = service_account_name(&docs);
    assert_eq!(
        grants(&docs, &namespace, &account),
        contract("*", &namespace, DEFAULT_LEASE)
    );
}
