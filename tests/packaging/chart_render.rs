//! The Helm chart as `helm template` renders it, checked with the pinned helm (installed
//! by `hack/tools.sh`): lint with every ci values file, the values schema, the CRD and app
//! version it ships, the Deployment's hardening and environment, and the optional parts.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};
use support::chart::{
    BINARY, CI_VALUES, DEFAULT_LEASE, Render, chart, ci_values, container, env, helm, name,
    of_kind, one_of_kind,
};
use support::command::{output_of, run};
use support::repo::{crd_paths, read, sorted_files};

// ---------------------------------------------------------------------------------------
// The chart itself.

#[test]
fn ci_values_files_are_all_there() {
    let found: Vec<String> = sorted_files(chart().join("ci"))
        .iter()
        .map(|path| {
            path.file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut expected: Vec<String> = CI_VALUES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "tests cover exactly these values files");
}

#[test]
fn helm_lint_is_clean_with_every_values_file() {
    for values in CI_VALUES {
        let output = run(helm()
            .arg("lint")
            .arg("--strict")
            .arg(chart())
            .arg("--values")
            .arg(ci_values(values)));
        for line in output.lines() {
            assert!(
                !line.contains("[WARNING]") && !line.contains("[ERROR]"),
                "helm lint with {values}: {line}"
            );
        }
        assert!(output.contains("0 chart(s) failed"), "{output}");
    }
}

#[test]
fn chart_crd_is_the_generated_crd() {
    // The chart renders its CRDs from files/crds/ (templates/crds.yaml) so that `helm
    // upgrade` applies them; Helm's crds/ dir, which upgrades never touch, is gone.
    let mut shipped = Vec::new();
    for generated_path in crd_paths() {
        let file = generated_path.file_name().expect("a file name").to_owned();
        let in_chart = chart().join("files/crds").join(&file);
        let generated = std::fs::read(&generated_path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", generated_path.display()));
        let copy = std::fs::read(&in_chart)
            .unwrap_or_else(|e| panic!("reading {}: {e}", in_chart.display()));
        assert!(
            generated == copy,
            "{} differs from {}; copy it (make crds)",
            in_chart.display(),
            generated_path.display()
        );
        shipped.push(file);
    }
    let mut entries: Vec<_> = std::fs::read_dir(chart().join("files/crds"))
        .expect("the chart has a files/crds/ dir")
        .map(|entry| entry.expect("dir entry").file_name())
        .collect();
    entries.sort();
    shipped.sort();
    assert_eq!(
        entries, shipped,
        "the chart ships exactly the generated CRDs"
    );
    assert!(
        !chart().join("crds").exists(),
        "Helm installs crds/ once and never upgrades it: the CRDs live in files/crds/"
    );

    // Rendered: every generated CRD, kept on uninstall; none with crds.install=false.
    let docs = Render::new().docs();
    let rendered = of_kind(&docs, "CustomResourceDefinition");
    assert_eq!(rendered.len(), crd_paths().len());
    for path in crd_paths() {
        let generated: Value =
            serde_yaml::from_str(&read(&path)).expect("the generated CRD is YAML");
        let name = &generated["metadata"]["name"];
        let crd = rendered
            .iter()
            .find(|d| &d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not rendered"));
        assert_eq!(crd["spec"], generated["spec"]);
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            json!("keep")
        );
    }
    let docs = Render::new().set("crds.install=false").docs();
    assert!(of_kind(&docs, "CustomResourceDefinition").is_empty());
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart_yaml: serde_yaml::Value =
        serde_yaml::from_str(&read(chart().join("Chart.yaml"))).expect("Chart.yaml is YAML");
    assert_eq!(
        chart_yaml["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion must be the crate version"
    );
    assert_eq!(chart_yaml["name"].as_str(), Some(BINARY));
    let image = container(&Render::new().docs())["image"]
        .as_str()
        .expect("an image")
        .to_owned();
    assert!(
        image.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
        "the default image tag is the appVersion: {image}"
    );
}

#[test]
fn values_schema_rejects_wrong_types() {
    // (--set assignment, what the error must name)
    let cases = [
        ("replicas=abc", "/replicas"),
        ("replicas=-1", "/replicas"),
        ("aws.rps=fast", "/aws/rps"),
        ("aws.burst=1.5", "/aws/burst"),
        ("aws.region=Europe", "/aws/region"),
        ("operator.concurrency=many", "/operator/concurrency"),
        (
            "operator.defaultDeletionPolicy=Sometimes",
            "/operator/defaultDeletionPolicy",
        ),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("operator.resyncInterval=soon", "/operator/resyncInterval"),
        ("leaderElection.enabled=yes", "/leaderElection/enabled"),
        (
            "serviceAccount.irsaRoleArn=my-role",
            "/serviceAccount/irsaRoleArn",
        ),
        ("watchNamespace=Not_A_Namespace", "/watchNamespace"),
        ("networkPolicy.enabled=1", "/networkPolicy/enabled"),
        (
            "podDisruptionBudget.maxUnavailable=half",
            "/podDisruptionBudget/maxUnavailable",
        ),
        ("replica=2", "replica"),
    ];
    for (assignment, field) in cases {
        let output = output_of(&mut Render::new().set(assignment).command());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "helm template --set {assignment} should fail"
        );
        assert!(
            stderr.contains("values don't meet the specifications of the schema")
                && stderr.contains(field),
            "helm template --set {assignment}: the error should name {field}:\n{stderr}"
        );
    }
}

#[test]
fn several_replicas_need_leader_election() {
    let output = output_of(
        &mut Render::new()
            .set("replicas=2")
            .set("leaderElection.enabled=false")
            .command(),
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("leaderElection.enabled"));
    // Two replicas with leader election are fine.
    assert_eq!(
        one_of_kind(&Render::new().set("replicas=2").docs(), "Deployment")["spec"]["replicas"],
        json!(2)
    );
}

// ---------------------------------------------------------------------------------------
// The Deployment and the other objects.

#[test]
fn deployment_is_hardened() {
    for values in CI_VALUES {
        let docs = Render::new().values(ci_values(values)).docs();
        let deployment = one_of_kind(&docs, "Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        let security = &pod["securityContext"];
        assert_eq!(security["runAsNonRoot"], json!(true), "{values}");
        assert_eq!(security["runAsUser"], json!(65532), "{values}");
        assert_eq!(
            security["seccompProfile"]["type"],
            json!("RuntimeDefault"),
            "{values}"
        );

        let container = container(&docs);
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], json!(true), "{values}");
        assert_eq!(
            security["allowPrivilegeEscalation"],
            json!(false),
            "{values}"
        );
        assert_eq!(security["runAsNonRoot"], json!(true), "{values}");
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{values}");
        assert!(security["capabilities"].get("add").is_none(), "{values}");
        assert_eq!(
            security["seccompProfile"]["type"],
            json!("RuntimeDefault"),
            "{values}"
        );

        for section in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    !container["resources"][section][resource].is_null(),
                    "{values}: resources.{section}.{resource}"
                );
            }
        }
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"],
            json!("/healthz")
        );
        assert_eq!(container["livenessProbe"]["httpGet"]["port"], json!("http"));
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"],
            json!("/readyz")
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["port"],
            json!("http")
        );
        assert_eq!(container["ports"][0]["name"], json!("http"));
        // A pod that exits at start-up shows the reason in `kubectl describe pod`.
        assert_eq!(
            container["terminationMessagePolicy"],
            json!("FallbackToLogsOnError"),
            "{values}"
        );

        // The Service and the pods agree on the selector.
        let service = one_of_kind(&docs, "Service");
        assert_eq!(
            service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"],
            "{values}"
        );
        assert_eq!(service["spec"]["ports"][0]["targetPort"], json!("http"));
    }
}

#[test]
fn deployment_env_follows_the_values() {
    let rendered = Render::new().docs();
    let mut defaults = env(container(&rendered));
    // RBAC_NAME names the roles the chart made, so that a missing permission is named with
    // the role that grants it.
    let rbac_name = defaults.remove("RBAC_NAME").expect("RBAC_NAME is set");
    let role_names: Vec<&Value> = of_kind(&rendered, "ClusterRole")
        .into_iter()
        .map(|r| &r["metadata"]["name"])
        .collect();
    let partner_accounts_role = json!(format!("{}-partner-accounts", rbac_name.as_str().unwrap()));
    assert!(
        role_names.contains(&&rbac_name) && role_names.contains(&&partner_accounts_role),
        "RBAC_NAME {rbac_name} names the chart's ClusterRoles {role_names:?}"
    );
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let expected: BTreeMap<String, Value> = [
        ("AWS_RPS", json!("5")),
        ("AWS_BURST", json!("10")),
        ("CONCURRENCY", json!("4")),
        ("RESYNC_INTERVAL", json!("5m")),
        ("DEFAULT_DELETION_POLICY", json!("Delete")),
        ("LOG_FORMAT", json!("json")),
        ("SHUTDOWN_TIMEOUT", json!("20s")),
        ("HTTP_ADDR", json!("0.0.0.0:8080")),
        ("LEADER_ELECTION", json!("true")),
        ("LEASE_NAME", json!(DEFAULT_LEASE)),
        ("LEASE_DURATION", json!("15s")),
        ("POD_NAME", field("metadata.name")),
        ("POD_NAMESPACE", field("metadata.namespace")),
        ("OWN_IDENTITY", json!("no-accounts")),
        ("PREFLIGHT_TIMEOUT", json!("30s")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(
        defaults, expected,
        "AWS_REGION, AWS_ENDPOINT_URL, WATCH_NAMESPACE and LABEL_SELECTOR only when set"
    );

    let docs = Render::new()
        .values(ci_values("everything-on-values.yaml"))
        .docs();
    let container = container(&docs);
    let all = env(container);
    for (name, value) in [
        ("AWS_REGION", "us-east-1"),
        (
            "AWS_ENDPOINT_URL",
            "http://eventbridge-emulator.testing.svc:4010",
        ),
        ("AWS_RPS", "2.5"),
        ("OWN_IDENTITY", "fallback"),
        ("PREFLIGHT_TIMEOUT", "45s"),
        ("AWS_BURST", "5"),
        ("CONCURRENCY", "8"),
        ("RESYNC_INTERVAL", "10m"),
        ("HTTP_ADDR", "0.0.0.0:9090"),
        ("LEASE_NAME", "partner-operator-leader"),
        ("LEASE_DURATION", "20s"),
        ("LABEL_SELECTOR", "partner-account=prod"),
        ("SHUTDOWN_TIMEOUT", "40s"),
        ("RUST_LOG", "info,eventbridge_partner_operator=debug"),
    ] {
        assert_eq!(all.get(name), Some(&json!(value)), "{name}");
    }
    assert_eq!(container["ports"][0]["containerPort"], json!(9090));
    assert_eq!(
        container["image"],
        json!(
            "registry.example.com/platform/eventbridge-partner-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        )
    );
    let single = env(self::container(
        &Render::new()
            .values(ci_values("single-namespace-values.yaml"))
            .docs(),
    ));
    assert_eq!(single["WATCH_NAMESPACE"], json!("tenants"));
    assert_eq!(single["DEFAULT_DELETION_POLICY"], json!("Retain"));
}

#[test]
fn operator_knows_every_setting_the_chart_passes() {
    // `run --help` lists each setting's environment variable as `[env: NAME=...]`.
    let help = run(
        Command::new(env!("CARGO_BIN_EXE_eventbridge-partner-operator"))
            .args(["run", "--help"])
            .env_clear(),
    );
    let mut names = BTreeSet::new();
    for values in CI_VALUES {
        names.extend(env(container(&Render::new().values(ci_values(values)).docs())).into_keys());
    }
    // Read by the logging setup rather than by the command line.
    let outside_cli = ["RUST_LOG"];
    let unknown: Vec<&String> = names
        .iter()
        .filter(|name| !outside_cli.contains(&name.as_str()))
        .filter(|name| !help.contains(&format!("[env: {name}=")))
        .collect();
    assert!(
        unknown.is_empty(),
        "the chart sets environment variables `eventbridge-partner-operator run` does not read: {unknown:?}\n{help}"
    );
}

#[test]
fn irsa_role_becomes_the_service_account_annotation() {
    let docs = Render::new().values(ci_values("irsa-values.yaml")).docs();
    let account = one_of_kind(&docs, "ServiceAccount");
    assert_eq!(name(account), "eventbridge-partner-operator");
    assert_eq!(
        account["metadata"]["annotations"],
        json!({
            "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/eventbridge-partner-operator",
            "eks.amazonaws.com/sts-regional-endpoints": "true",
        })
    );
    let pod = &one_of_kind(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["serviceAccountName"],
        json!("eventbridge-partner-operator")
    );
    // Without a role ARN the ServiceAccount carries no annotations at all (EKS Pod Identity
    // needs none).
    let docs = Render::new().docs();
    assert!(
        one_of_kind(&docs, "ServiceAccount")["metadata"]
            .get("annotations")
            .is_none()
    );
}

#[test]
fn optional_parts_are_off_by_default() {
    let count = |docs: &[Value], wanted: &str| of_kind(docs, wanted).len();
    let defaults = Render::new().docs();
    let everything = Render::new()
        .values(ci_values("everything-on-values.yaml"))
        .docs();
    for optional in [
        "ServiceMonitor",
        "PrometheusRule",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ] {
        assert_eq!(
            count(&defaults, optional),
            0,
            "{optional} is off by default"
        );
        assert_eq!(count(&everything, optional), 1, "{optional} when enabled");
    }
    let policies = |docs: &[Value]| -> Vec<String> {
        of_kind(docs, "ValidatingAdmissionPolicy")
            .into_iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        !policies(&defaults)
            .iter()
            .any(|n| n.ends_with("-require-partner-account")),
        "requirePartnerAccountRef is off by default: {:?}",
        policies(&defaults)
    );
    assert!(
        policies(&everything)
            .iter()
            .any(|n| n.ends_with("-require-partner-account")),
        "{:?}",
        policies(&everything)
    );
    let monitor = one_of_kind(&everything, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], json!("http"));
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], json!("/metrics"));
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], json!(true));
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        json!("prometheus")
    );

    let pod = &one_of_kind(&everything, "Deployment")["spec"]["template"]["spec"];
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], json!("kubernetes.io/hostname"));
    assert_eq!(
        spread["labelSelector"]["matchLabels"],
        one_of_kind(&everything, "Deployment")["spec"]["selector"]["matchLabels"]
    );

    let policy = one_of_kind(&everything, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["ingress"][0]["ports"][0]["port"],
        json!("http")
    );
}
