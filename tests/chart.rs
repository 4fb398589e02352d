//! The install paths: the Helm chart, the rendered manifest for `kubectl apply`, the
//! Dockerfile and the Argo CD Application, checked with the real tools (helm, kubeconform,
//! hadolint, pinned and installed by `hack/tools.sh`) and against a real API server.

mod kubeschemas;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Deserialize as _;
use serde_json::{Value, json};
use support::controlplane::ControlPlane;

const CHART: &str = "charts/eventbridge-partner-operator";
const CRD_FILE: &str = "partnereventsources.eventbridgepartner.dev.yaml";
const SERVICE_MONITOR_CRD: &str = "monitoring.coreos.com_servicemonitors.yaml";
const BINARY: &str = "eventbridge-partner-operator";
const IMAGE_BINARY_PATH: &str = "/usr/local/bin/eventbridge-partner-operator";
const DEFAULT_LEASE: &str = "eventbridge-partner-operator";

/// The values files under the chart's `ci/` directory that the tests must find there.
const CI_VALUES: [&str; 4] = [
    "default-values.yaml",
    "single-namespace-values.yaml",
    "everything-on-values.yaml",
    "irsa-values.yaml",
];

// ---------------------------------------------------------------------------------------
// Tools and rendering.

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join(CHART)
}

fn ci_values(name: &str) -> PathBuf {
    chart().join("ci").join(name)
}

/// The dir `hack/tools.sh` installs helm, kubeconform and hadolint into (run once per
/// test process; the script skips what is already installed at its pinned version).
fn tools() -> &'static Path {
    support::tools::bin_dir_holding(&["helm", "kubeconform", "hadolint"])
}

/// The dir holding CRDs of other projects that hack/tools.sh generates (ServiceMonitor).
fn generated_crds() -> PathBuf {
    tools()
        .parent()
        .expect("the tools bin dir has a parent")
        .join("crds")
}

/// `helm` with its config, cache and data dirs inside the target dir.
fn helm() -> Command {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    let mut command = Command::new(tools().join("helm"));
    command
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(Stdio::null());
    command
}

fn output_of(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// Runs `command`, panics with its stderr unless it succeeds, returns its stdout.
fn run(command: &mut Command) -> String {
    let output = output_of(command);
    stdout_of_success(command, output)
}

/// The stdout of `command`'s `output`; panics with its stdout and stderr unless it
/// succeeded.
fn stdout_of_success(command: &Command, output: Output) -> String {
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs `command` with `input` on stdin; like [`run`].
fn run_with_input(command: &mut Command, input: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("writing stdin");
    let output = child.wait_with_output().expect("waiting for the command");
    stdout_of_success(command, output)
}

/// A `helm template` invocation of the chart.
struct Render<'a> {
    release: &'a str,
    namespace: &'a str,
    values: Vec<PathBuf>,
    set: Vec<&'a str>,
    include_crds: bool,
}

impl<'a> Render<'a> {
    fn new() -> Render<'a> {
        Render {
            release: "ebpo",
            namespace: "operators",
            values: Vec::new(),
            set: Vec::new(),
            include_crds: false,
        }
    }

    fn release(mut self, release: &'a str, namespace: &'a str) -> Self {
        self.release = release;
        self.namespace = namespace;
        self
    }

    fn values(mut self, file: PathBuf) -> Self {
        self.values.push(file);
        self
    }

    fn set(mut self, assignment: &'a str) -> Self {
        self.set.push(assignment);
        self
    }

    fn with_crds(mut self) -> Self {
        self.include_crds = true;
        self
    }

    fn command(&self) -> Command {
        let mut command = helm();
        command
            .arg("template")
            .arg(self.release)
            .arg(chart())
            .arg("--namespace")
            .arg(self.namespace);
        for file in &self.values {
            command.arg("--values").arg(file);
        }
        for assignment in &self.set {
            command.arg("--set").arg(assignment);
        }
        if self.include_crds {
            command.arg("--include-crds");
        }
        command
    }

    fn text(&self) -> String {
        run(&mut self.command())
    }

    fn docs(&self) -> Vec<Value> {
        parse_docs(&self.text())
    }
}

/// The documents of a multi-document YAML stream, empty ones left out.
fn parse_docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| {
            let value = serde_yaml::Value::deserialize(doc).expect("valid YAML");
            serde_json::to_value(value).expect("YAML that maps to JSON")
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'d>(docs: &'d [Value], wanted: &str) -> Vec<&'d Value> {
    docs.iter().filter(|doc| kind(doc) == wanted).collect()
}

fn one_of_kind<'d>(docs: &'d [Value], wanted: &str) -> &'d Value {
    let found = of_kind(docs, wanted);
    assert_eq!(
        found.len(),
        1,
        "expected one {wanted}, found {}",
        found.len()
    );
    found[0]
}

fn container(docs: &[Value]) -> &Value {
    let containers = &one_of_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers.as_array().map(Vec::len),
        Some(1),
        "one container"
    );
    &containers[0]
}

fn env(container: &Value) -> BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .expect("the container has env")
        .iter()
        .map(|var| {
            let name = var["name"].as_str().expect("env var name").to_owned();
            let value = match var.get("value") {
                Some(value) => value.clone(),
                None => var["valueFrom"].clone(),
            };
            (name, value)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The chart itself.

#[test]
fn ci_values_files_are_all_there() {
    let mut found: Vec<String> = std::fs::read_dir(chart().join("ci"))
        .expect("the chart has a ci/ dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
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
    let generated = root().join("crds").join(CRD_FILE);
    let in_chart = chart().join("crds").join(CRD_FILE);
    let generated = std::fs::read(&generated)
        .unwrap_or_else(|e| panic!("reading {}: {e}", generated.display()));
    let copy =
        std::fs::read(&in_chart).unwrap_or_else(|e| panic!("reading {}: {e}", in_chart.display()));
    assert!(
        generated == copy,
        "{} differs from crds/{CRD_FILE}; copy it: cp crds/{CRD_FILE} {CHART}/crds/",
        in_chart.display()
    );
    let entries: Vec<_> = std::fs::read_dir(chart().join("crds"))
        .expect("the chart has a crds/ dir")
        .map(|entry| entry.expect("dir entry").file_name())
        .collect();
    assert_eq!(entries, [CRD_FILE], "the chart ships exactly the one CRD");
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart_yaml: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(chart().join("Chart.yaml")).expect("reading Chart.yaml"),
    )
    .expect("Chart.yaml is YAML");
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
// RBAC: exactly the operator's contract, read from the rendered objects.

/// One thing a ServiceAccount may do: in a namespace, or cluster-wide (`scope` "*").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    scope: String,
    group: String,
    resource: String,
    name: Option<String>,
    verb: String,
}

fn grant(scope: &str, group: &str, resource: &str, name: Option<&str>, verb: &str) -> Grant {
    Grant {
        scope: scope.into(),
        group: group.into(),
        resource: resource.into(),
        name: name.map(Into::into),
        verb: verb.into(),
    }
}

/// Everything the rendered RBAC objects grant ServiceAccount `namespace/name`.
fn grants(docs: &[Value], namespace: &str, service_account: &str) -> BTreeSet<Grant> {
    let role = |kind_: &str, role_name: &str, role_namespace: Option<&str>| -> &Value {
        docs.iter()
            .find(|doc| {
                kind(doc) == kind_
                    && name(doc) == role_name
                    && (kind_ == "ClusterRole"
                        || doc["metadata"]["namespace"].as_str() == role_namespace)
            })
            .unwrap_or_else(|| {
                panic!("a binding refers to {kind_} {role_name}, which the chart does not render")
            })
    };
    let mut out = BTreeSet::new();
    for binding in docs
        .iter()
        .filter(|doc| matches!(kind(doc), "RoleBinding" | "ClusterRoleBinding"))
    {
        let binds_us = binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|subject| {
                subject["kind"] == "ServiceAccount"
                    && subject["name"] == service_account
                    && subject["namespace"] == namespace
            });
        if !binds_us {
            continue;
        }
        let binding_namespace = binding["metadata"]["namespace"].as_str();
        let scope = match kind(binding) {
            "ClusterRoleBinding" => "*".to_owned(),
            _ => binding_namespace
                .expect("a RoleBinding has a namespace")
                .to_owned(),
        };
        let role_ref = &binding["roleRef"];
        let rules = &role(
            role_ref["kind"].as_str().expect("roleRef.kind"),
            role_ref["name"].as_str().expect("roleRef.name"),
            binding_namespace,
        )["rules"];
        for rule in rules.as_array().expect("rules") {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_str().expect("a string").to_owned())
                    .collect()
            };
            assert!(
                rule.get("nonResourceURLs").is_none(),
                "no non-resource URLs: {rule}"
            );
            let names: Vec<Option<String>> = match strings("resourceNames") {
                names if names.is_empty() => vec![None],
                names => names.into_iter().map(Some).collect(),
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for resource_name in &names {
                        for verb in strings("verbs") {
                            assert!(
                                group != "*" && resource != "*" && verb != "*",
                                "no wildcards: {rule}"
                            );
                            out.insert(Grant {
                                scope: scope.clone(),
                                group: group.clone(),
                                resource: resource.clone(),
                                name: resource_name.clone(),
                                verb,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The operator's documented needs: PartnerEventSources and Events in `watch_scope`, its
/// Lease in the release namespace.
fn contract(watch_scope: &str, release_namespace: &str, lease: &str) -> BTreeSet<Grant> {
    let pes = "eventbridgepartner.dev";
    let mut expected = BTreeSet::new();
    for verb in ["get", "list", "watch", "patch"] {
        expected.insert(grant(watch_scope, pes, "partnereventsources", None, verb));
    }
    for verb in ["get", "patch"] {
        expected.insert(grant(
            watch_scope,
            pes,
            "partnereventsources/status",
            None,
            verb,
        ));
    }
    expected.insert(grant(
        watch_scope,
        pes,
        "partnereventsources/finalizers",
        None,
        "update",
    ));
    for verb in ["create", "patch"] {
        expected.insert(grant(watch_scope, "events.k8s.io", "events", None, verb));
    }
    let coordination = "coordination.k8s.io";
    // A Lease that does not exist yet cannot be named in a rule, so create is unnamed.
    expected.insert(grant(
        release_namespace,
        coordination,
        "leases",
        None,
        "create",
    ));
    for verb in ["get", "update", "patch"] {
        expected.insert(grant(
            release_namespace,
            coordination,
            "leases",
            Some(lease),
            verb,
        ));
    }
    expected
}

fn service_account_name(docs: &[Value]) -> String {
    name(one_of_kind(docs, "ServiceAccount")).to_owned()
}

#[test]
fn rbac_watching_all_namespaces_grants_exactly_the_contract() {
    let docs = Render::new().release("ebpo", "operators").docs();
    let account = service_account_name(&docs);
    assert_eq!(
        grants(&docs, "operators", &account),
        contract("*", "operators", DEFAULT_LEASE)
    );
    let kinds: BTreeSet<&str> = docs.iter().map(kind).collect();
    assert!(kinds.contains("ClusterRole") && kinds.contains("ClusterRoleBinding"));
}

#[test]
fn rbac_watching_one_namespace_grants_exactly_the_contract_there() {
    let docs = Render::new()
        .release("ebpo", "operators")
        .values(ci_values("single-namespace-values.yaml"))
        .docs();
    let account = service_account_name(&docs);
    assert_eq!(
        grants(&docs, "operators", &account),
        contract("tenants", "operators", DEFAULT_LEASE)
    );
    for doc in &docs {
        assert!(
            !matches!(kind(doc), "ClusterRole" | "ClusterRoleBinding"),
            "no cluster-wide RBAC when watching one namespace: {}",
            name(doc)
        );
    }
}

#[test]
fn rbac_follows_the_lease_name_and_leader_election() {
    let docs = Render::new()
        .values(ci_values("everything-on-values.yaml"))
        .docs();
    let account = service_account_name(&docs);
    assert_eq!(
        grants(&docs, "operators", &account),
        contract("*", "operators", "partner-operator-leader")
    );

    let docs = Render::new().set("leaderElection.enabled=false").docs();
    let account = service_account_name(&docs);
    let without_leases: BTreeSet<Grant> = contract("*", "operators", DEFAULT_LEASE)
        .into_iter()
        .filter(|g| g.resource != "leases")
        .collect();
    assert_eq!(grants(&docs, "operators", &account), without_leases);

    let docs = Render::new().set("rbac.create=false").docs();
    assert!(
        docs.iter().all(|doc| !kind(doc).contains("Role")),
        "rbac.create=false renders no RBAC"
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
    let defaults = env(container(&Render::new().docs()));
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
    for optional in ["ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy"] {
        assert_eq!(
            count(&defaults, optional),
            0,
            "{optional} is off by default"
        );
        assert_eq!(count(&everything, optional), 1, "{optional} when enabled");
    }
    let monitor = one_of_kind(&everything, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], json!("http"));
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], json!("/metrics"));
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
    for crd_file in [
        root().join("crds").join(CRD_FILE),
        generated_crds().join(SERVICE_MONITOR_CRD),
    ] {
        let text = std::fs::read_to_string(&crd_file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", crd_file.display()));
        for crd in parse_docs(&text) {
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
    let mut command = Command::new(tools().join("kubeconform"));
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

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the scratch dir");
    dir.join(name)
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
    let testdata = root().join("examples/argocd/testdata");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&testdata)
        .expect("examples/argocd/testdata")
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    fixtures.sort();
    files.extend(fixtures);
    let docs: Vec<Value> = files
        .iter()
        .flat_map(|file| parse_docs(&std::fs::read_to_string(file).expect("reading a manifest")))
        .collect();
    kubeconform(&files, &docs);
}

#[test]
fn invalid_examples_fail_kubeconform_strict() {
    // The schemas made from the CRD reject what the API server rejects, so a chart or
    // example mistake in a custom resource is caught offline too.
    let dir = root().join("examples/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/invalid")
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let docs = parse_docs(&std::fs::read_to_string(&file).expect("reading an example"));
        let (_, report) = kubeconform_report(std::slice::from_ref(&file), &docs);
        assert_eq!(
            report["summary"]["invalid"],
            docs.len(),
            "{} should be invalid:\n{report:#}",
            file.display()
        );
    }
}

/// Creates namespace `name` unless it exists.
fn ensure_namespace(control_plane: &ControlPlane, name: &str) {
    run_with_input(
        control_plane.kubectl().args(["apply", "-f", "-"]),
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"),
    );
}

/// Applies the CRDs the chart's objects need (the operator's and the ServiceMonitor's)
/// and waits until the API server serves them.
fn ensure_crds(control_plane: &ControlPlane) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for file in [
            root().join("crds").join(CRD_FILE),
            generated_crds().join(SERVICE_MONITOR_CRD),
        ] {
            run(control_plane
                .kubectl()
                .args(["apply", "--server-side", "--field-manager=chart-test", "-f"])
                .arg(&file));
        }
        run(control_plane.kubectl().args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/partnereventsources.eventbridgepartner.dev",
            "crd/servicemonitors.monitoring.coreos.com",
        ]));
    });
}

#[test]
fn rendered_chart_passes_server_side_dry_run_with_strict_field_validation() {
    let control_plane = ControlPlane::shared();
    ensure_crds(control_plane);
    for (index, values) in CI_VALUES.iter().enumerate() {
        let namespace = format!("dry-run-{index}");
        ensure_namespace(control_plane, &namespace);
        let text = Render::new()
            .release("ebpo", &namespace)
            .values(ci_values(values))
            .text();
        for doc in parse_docs(&text) {
            if let Some(watched) = doc["metadata"]["namespace"].as_str() {
                ensure_namespace(control_plane, watched);
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

/// `kubectl apply --server-side` of `manifest`, given on stdin.
fn apply_from_stdin(control_plane: &ControlPlane, manifest: &str) {
    run_with_input(
        control_plane.kubectl().args([
            "apply",
            "--server-side",
            "--field-manager=chart-test",
            "-f",
            "-",
        ]),
        manifest,
    );
}

#[test]
fn operator_pods_meet_the_restricted_pod_security_standard() {
    // The test control plane runs no controllers, so no Deployment ever makes a pod; a
    // server-side dry run of the pod template itself goes through the API server's
    // PodSecurity admission in a namespace that enforces the Restricted profile.
    let control_plane = ControlPlane::shared();
    let namespace = "restricted";
    apply_from_stdin(
        control_plane,
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n  labels:\n    \
             pod-security.kubernetes.io/enforce: restricted\n    \
             pod-security.kubernetes.io/enforce-version: latest\n"
        ),
    );
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
        apply_from_stdin(control_plane, &account.to_string());
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
// The chart installed in a real control plane: what its ServiceAccount may do.

/// `kubectl auth can-i` as the given kubeconfig; true for "yes".
fn can_i(control_plane: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> bool {
    let output = output_of(
        Command::new(control_plane.bin_dir().join("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["auth", "can-i"])
            .args(args),
    );
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // An unknown resource type is answered "no" with a warning: that would prove nothing.
    assert!(
        !stderr.contains("doesn't have a resource type"),
        "kubectl auth can-i {args:?}: {stderr}"
    );
    match answer.as_str() {
        "yes" => true,
        "no" => false,
        _ => panic!(
            "kubectl auth can-i {args:?}: {answer}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// The `kubectl auth can-i` arguments that ask for one grant, in namespace `namespace`
/// (ignored for cluster-wide list and watch, which are asked across all namespaces too).
fn can_i_args(grant: &Grant, namespace: &str) -> Vec<String> {
    let (resource, subresource) = match grant.resource.split_once('/') {
        Some((resource, subresource)) => (resource, Some(subresource)),
        None => (grant.resource.as_str(), None),
    };
    let mut target = format!("{resource}.{}", grant.group);
    if let Some(name) = &grant.name {
        target = format!("{target}/{name}");
    }
    let mut args = vec![grant.verb.clone(), target, "-n".into(), namespace.into()];
    if let Some(subresource) = subresource {
        args.push(format!("--subresource={subresource}"));
    }
    args
}

/// Installs the chart as `release` in `namespace` with `values`, and returns the rendered
/// objects and a kubeconfig acting as the chart's ServiceAccount.
async fn install(
    control_plane: &ControlPlane,
    release: &str,
    namespace: &str,
    values: &Path,
) -> (Vec<Value>, PathBuf) {
    let docs = Render::new()
        .release(release, namespace)
        .values(values.to_owned())
        .docs();
    for doc in &docs {
        if let Some(other) = doc["metadata"]["namespace"].as_str()
            && other != namespace
        {
            ensure_namespace(control_plane, other);
        }
    }
    run(helm()
        .arg("--kubeconfig")
        .arg(control_plane.kubeconfig())
        .args(["install", release])
        .arg(chart())
        .args(["--namespace", namespace, "--create-namespace", "--values"])
        .arg(values));
    let status = run(helm()
        .arg("--kubeconfig")
        .arg(control_plane.kubeconfig())
        .args(["status", release, "--namespace", namespace, "-o", "json"]));
    let status: Value = serde_json::from_str(&status).expect("helm status JSON");
    assert_eq!(status["info"]["status"], json!("deployed"));
    let account = service_account_name(&docs);
    let kubeconfig = control_plane
        .service_account_kubeconfig(namespace, &account)
        .await;
    (docs, kubeconfig)
}

/// Asserts that the ServiceAccount may do everything in `granted` and none of `denied`.
fn assert_rights(
    control_plane: &ControlPlane,
    kubeconfig: &Path,
    granted: &BTreeSet<Grant>,
    namespace_for_cluster_scope: &str,
    denied: &[Vec<&str>],
) {
    let mut wrong = Vec::new();
    for grant in granted {
        let namespace = match grant.scope.as_str() {
            "*" => namespace_for_cluster_scope,
            scope => scope,
        };
        let args = can_i_args(grant, namespace);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if !can_i(control_plane, kubeconfig, &args) {
            wrong.push(format!("denied but granted: {args:?}"));
        }
        if grant.scope == "*" && grant.name.is_none() && !grant.resource.contains('/') {
            let across = [grant.verb.as_str(), args[1], "--all-namespaces"];
            if !can_i(control_plane, kubeconfig, &across) {
                wrong.push(format!("denied but granted: {across:?}"));
            }
        }
    }
    for args in denied {
        if can_i(control_plane, kubeconfig, args) {
            wrong.push(format!("allowed but not granted: {args:?}"));
        }
        // The same question as cluster admin is a "yes", so the "no" above comes from
        // RBAC and not from a question that cannot be granted at all.
        if !can_i(control_plane, control_plane.kubeconfig(), args) {
            wrong.push(format!("not even cluster admin may: {args:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Installs the chart (see [`install`]) as `release` in `release_namespace` with the ci
/// values file `values`, asserts that its RBAC grants the ServiceAccount exactly the
/// contract for `watch_scope`, and checks those rights and the `denied` ones on the API
/// server (see [`assert_rights`]).
async fn install_and_assert_contract(
    control_plane: &ControlPlane,
    release: &str,
    release_namespace: &str,
    values: &str,
    watch_scope: &str,
    namespace_for_cluster_scope: &str,
    denied: &[Vec<&str>],
) {
    let (docs, kubeconfig) = install(
        control_plane,
        release,
        release_namespace,
        &ci_values(values),
    )
    .await;
    let account = service_account_name(&docs);
    let granted = grants(&docs, release_namespace, &account);
    assert_eq!(
        granted,
        contract(watch_scope, release_namespace, DEFAULT_LEASE)
    );
    assert_rights(
        control_plane,
        &kubeconfig,
        &granted,
        namespace_for_cluster_scope,
        denied,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_chart_grants_its_service_account_exactly_the_contract() {
    let control_plane = tokio::task::spawn_blocking(ControlPlane::shared)
        .await
        .expect("the control plane starts");

    // Watching every namespace.
    let (release_namespace, tenant) = ("ebpo-cluster", "tenant-a");
    ensure_namespace(control_plane, tenant);
    let pes = "partnereventsources.eventbridgepartner.dev";
    let lease_by_name = format!("leases.coordination.k8s.io/{DEFAULT_LEASE}");
    let denied: Vec<Vec<&str>> = vec![
        vec!["create", pes, "-n", tenant],
        vec!["update", pes, "-n", tenant],
        vec!["delete", pes, "-n", tenant],
        vec!["deletecollection", pes, "-n", tenant],
        vec!["update", pes, "-n", tenant, "--subresource=status"],
        vec!["list", "secrets", "--all-namespaces"],
        vec!["get", "secrets", "-n", release_namespace],
        vec!["list", "configmaps", "-n", release_namespace],
        vec!["get", "pods", "-n", release_namespace],
        vec!["create", "events", "-n", tenant],
        vec!["list", "events.events.k8s.io", "-n", tenant],
        vec!["delete", "events.events.k8s.io", "-n", tenant],
        vec!["create", "leases.coordination.k8s.io", "-n", tenant],
        vec!["get", &lease_by_name, "-n", tenant],
        vec![
            "get",
            "leases.coordination.k8s.io/another-lease",
            "-n",
            release_namespace,
        ],
        vec![
            "update",
            "leases.coordination.k8s.io/another-lease",
            "-n",
            release_namespace,
        ],
        vec![
            "list",
            "leases.coordination.k8s.io",
            "-n",
            release_namespace,
        ],
        vec!["delete", &lease_by_name, "-n", release_namespace],
        vec!["create", "customresourcedefinitions.apiextensions.k8s.io"],
        vec![
            "create",
            "serviceaccounts",
            "--subresource=token",
            "-n",
            release_namespace,
        ],
        vec!["*", "*", "--all-namespaces"],
    ];
    install_and_assert_contract(
        control_plane,
        "cluster-wide",
        release_namespace,
        "default-values.yaml",
        "*",
        tenant,
        &denied,
    )
    .await;

    // Watching one namespace.
    let (release_namespace, watched) = ("ebpo-single", "tenants");
    let denied: Vec<Vec<&str>> = vec![
        vec!["list", pes, "--all-namespaces"],
        vec!["get", pes, "-n", tenant],
        vec!["watch", pes, "-n", release_namespace],
        vec!["patch", pes, "-n", tenant, "--subresource=status"],
        vec!["create", "events.events.k8s.io", "-n", tenant],
        vec!["delete", pes, "-n", watched],
        vec!["list", "secrets", "-n", watched],
        vec!["create", "leases.coordination.k8s.io", "-n", watched],
    ];
    install_and_assert_contract(
        control_plane,
        "single",
        release_namespace,
        "single-namespace-values.yaml",
        watched,
        watched,
        &denied,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// The image and the rendered kubectl-apply manifest.

/// The instructions of the Dockerfile's last stage, as (instruction, rest of the line),
/// continuation lines joined.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let instructions: Vec<(String, String)> = logical
        .into_iter()
        .map(|line| {
            let (instruction, rest) = line.split_once(' ').unwrap_or((&line, ""));
            (instruction.to_uppercase(), rest.trim().to_owned())
        })
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|(instruction, _)| instruction == "FROM")
        .expect("a FROM");
    instructions[last_from..].to_vec()
}

fn dockerfile() -> String {
    std::fs::read_to_string(root().join("Dockerfile")).expect("reading the Dockerfile")
}

#[test]
fn dockerfile_matches_the_chart() {
    let text = dockerfile();
    let stage = final_stage(&text);
    let get = |wanted: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(instruction, _)| instruction == wanted)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    let exec_form = |wanted: &str| -> Vec<String> {
        let found = get(wanted);
        assert_eq!(found.len(), 1, "one {wanted} in the final stage");
        serde_json::from_str(found[0])
            .unwrap_or_else(|e| panic!("{wanted} in exec (JSON) form: {e}"))
    };
    let entrypoint = exec_form("ENTRYPOINT");
    let cmd = exec_form("CMD");
    assert_eq!(entrypoint, [IMAGE_BINARY_PATH]);
    assert_eq!(cmd, ["run"]);
    assert!(
        get("COPY")
            .iter()
            .any(|copy| copy.starts_with("--from=") && copy.ends_with(IMAGE_BINARY_PATH)),
        "the final stage copies the binary to {IMAGE_BINARY_PATH}"
    );
    assert_eq!(get("USER"), ["65532:65532"]);
    assert!(get("FROM")[0].contains(":nonroot"), "a non-root base image");
    assert!(
        text.contains(&format!("cargo build --locked --release --bin {BINARY}")),
        "the builder builds the release binary from the locked dependencies"
    );

    // The chart relies on the image: no command (so the ENTRYPOINT runs), the same args,
    // the same user, the port the image exposes.
    for values in CI_VALUES {
        let docs = Render::new().values(ci_values(values)).docs();
        let container = container(&docs);
        assert!(
            container.get("command").is_none(),
            "{values}: keep the ENTRYPOINT"
        );
        assert_eq!(container["args"], json!(cmd), "{values}");
        assert_eq!(container["securityContext"]["runAsUser"], json!(65532));
        assert_eq!(container["securityContext"]["runAsGroup"], json!(65532));
    }
    let defaults = Render::new().docs();
    let port = container(&defaults)["ports"][0]["containerPort"].clone();
    assert_eq!(get("EXPOSE"), [port.to_string()]);

    let ignored = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    for dir in ["target/", ".cache/", ".git/"] {
        assert!(
            ignored.lines().any(|line| line.trim() == dir),
            ".dockerignore leaves out {dir}"
        );
    }
}

#[test]
fn builder_image_is_at_least_the_minimum_rust_version() {
    let text = dockerfile();
    let builder = text
        .lines()
        .find_map(|line| line.strip_prefix("FROM rust:"))
        .expect("a rust builder stage");
    let tag = builder.split_whitespace().next().expect("a tag");
    let version = |v: &str| -> (u32, u32) {
        let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    assert!(
        version(tag) >= version(env!("CARGO_PKG_RUST_VERSION")),
        "builder rust:{tag} is older than rust-version {}",
        env!("CARGO_PKG_RUST_VERSION")
    );
}

#[test]
fn hadolint_accepts_the_dockerfile() {
    let output = output_of(
        Command::new(tools().join("hadolint"))
            .arg("--no-color")
            .arg(root().join("Dockerfile")),
    );
    assert!(
        output.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn deploy_manifest_is_the_rendered_chart() {
    let rendered = run(Command::new("bash")
        .arg(root().join("hack/render-deploy.sh"))
        .arg("--stdout")
        .stdin(Stdio::null()));
    let committed = std::fs::read_to_string(root().join("deploy/operator.yaml"))
        .expect("reading deploy/operator.yaml");
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

// ---------------------------------------------------------------------------------------
// The Argo CD Application.

#[test]
fn argocd_application_installs_the_chart_before_the_sources() {
    let path = root().join("examples/argocd/application.yaml");
    let apps = parse_docs(&std::fs::read_to_string(&path).expect("reading application.yaml"));
    let wave = |app: &Value| -> i64 {
        app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
            .as_str()
            .expect("a sync wave")
            .parse()
            .expect("a numeric sync wave")
    };
    let (operator, sources): (Vec<&Value>, Vec<&Value>) = apps
        .iter()
        .inspect(|app| assert_eq!(kind(app), "Application"))
        .partition(|app| app["spec"]["source"]["path"] == CHART);
    assert_eq!((operator.len(), sources.len()), (1, 1));
    let (operator, sources) = (operator[0], sources[0]);
    assert!(
        wave(operator) < wave(sources),
        "the CRD lands before the objects"
    );
    for app in [operator, sources] {
        let options = &app["spec"]["syncPolicy"]["syncOptions"];
        assert!(
            options
                .as_array()
                .expect("syncOptions")
                .contains(&json!("ServerSideApply=true")),
            "{}: ServerSideApply=true",
            name(app)
        );
    }

    // The values the Application passes are values the chart accepts.
    let values = scratch("argocd-values.yaml");
    std::fs::write(
        &values,
        serde_yaml::to_string(&operator["spec"]["source"]["helm"]["valuesObject"])
            .expect("values to YAML"),
    )
    .expect("writing the values");
    let docs = Render::new()
        .release(
            "eventbridge-partner-operator",
            "eventbridge-partner-operator",
        )
        .values(values)
        .docs();
    assert_eq!(
        one_of_kind(&docs, "ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        operator["spec"]["source"]["helm"]["valuesObject"]["serviceAccount"]["irsaRoleArn"]
    );
}
