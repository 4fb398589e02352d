//! The Helm chart as the tests see it: the pinned helm with its own home, `helm template`
//! of the chart with chosen values, and helpers to pick objects and fields out of the
//! rendered YAML documents.

// Each test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize as _;
use serde_json::Value;

use super::command::run;
use super::repo::{crd_path, root};
use super::tools::tool;

/// The chart, relative to the repository root.
pub const CHART: &str = "charts/eventbridge-partner-operator";
/// The operator's binary, which is also the chart's name.
pub const BINARY: &str = "eventbridge-partner-operator";
/// The Lease the chart names when its values do not.
pub const DEFAULT_LEASE: &str = "eventbridge-partner-operator";
/// The ServiceMonitor and PrometheusRule CRDs that `hack/tools.sh` generates (see
/// [`generated_crds`]).
const MONITORING_CRDS: [&str; 2] = [
    "monitoring.coreos.com_servicemonitors.yaml",
    "monitoring.coreos.com_prometheusrules.yaml",
];

/// The values files under the chart's `ci/` directory that the tests must find there.
pub const CI_VALUES: [&str; 4] = [
    "default-values.yaml",
    "single-namespace-values.yaml",
    "everything-on-values.yaml",
    "irsa-values.yaml",
];

/// The chart's directory.
pub fn chart() -> PathBuf {
    root().join(CHART)
}

/// A values file under the chart's `ci/` directory.
pub fn ci_values(name: &str) -> PathBuf {
    chart().join("ci").join(name)
}

/// The dir holding CRDs of other projects that hack/tools.sh generates (the Prometheus
/// Operator's ServiceMonitor and PrometheusRule).
pub fn generated_crds() -> PathBuf {
    super::tools::bin_dir()
        .parent()
        .expect("the tools bin dir has a parent")
        .join("crds")
}

/// The CRDs the chart's objects need: the operator's, the ServiceMonitor's and the
/// PrometheusRule's.
pub fn chart_crds() -> [PathBuf; 3] {
    let [monitor, rule] = MONITORING_CRDS.map(|file| generated_crds().join(file));
    [crd_path(), monitor, rule]
}

/// `helm` (pinned, from `hack/tools.sh`) with its config, cache and data dirs inside the
/// target dir.
pub fn helm() -> Command {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    let mut command = tool("helm");
    command
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(Stdio::null());
    command
}

/// A `helm template` invocation of the chart.
pub struct Render<'a> {
    release: &'a str,
    namespace: &'a str,
    values: Vec<PathBuf>,
    set: Vec<&'a str>,
    include_crds: bool,
}

impl<'a> Render<'a> {
    /// Release `ebpo` in namespace `operators`, default values, no CRDs.
    pub fn new() -> Render<'a> {
        Render {
            release: "ebpo",
            namespace: "operators",
            values: Vec::new(),
            set: Vec::new(),
            include_crds: false,
        }
    }

    /// The release name and namespace.
    pub fn release(mut self, release: &'a str, namespace: &'a str) -> Self {
        self.release = release;
        self.namespace = namespace;
        self
    }

    /// Adds a values file (`--values`).
    pub fn values(mut self, file: PathBuf) -> Self {
        self.values.push(file);
        self
    }

    /// Adds an assignment (`--set`).
    pub fn set(mut self, assignment: &'a str) -> Self {
        self.set.push(assignment);
        self
    }

    /// Renders the chart's CRDs too (`--include-crds`).
    pub fn with_crds(mut self) -> Self {
        self.include_crds = true;
        self
    }

    /// The `helm template` command, to run by hand (e.g. to see it fail).
    pub fn command(&self) -> Command {
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

    /// The rendered YAML; panics unless helm succeeds.
    pub fn text(&self) -> String {
        run(&mut self.command())
    }

    /// The rendered objects.
    pub fn docs(&self) -> Vec<Value> {
        parse_docs(&self.text())
    }
}

/// The documents of a multi-document YAML stream, empty ones left out.
pub fn parse_docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| {
            let value = serde_yaml::Value::deserialize(doc).expect("valid YAML");
            serde_json::to_value(value).expect("YAML that maps to JSON")
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// An object's `kind`, empty when it has none.
pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

/// An object's `metadata.name`, empty when it has none.
pub fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// The objects of kind `wanted`.
pub fn of_kind<'d>(docs: &'d [Value], wanted: &str) -> Vec<&'d Value> {
    docs.iter().filter(|doc| kind(doc) == wanted).collect()
}

/// The one object of kind `wanted`; panics unless there is exactly one.
pub fn one_of_kind<'d>(docs: &'d [Value], wanted: &str) -> &'d Value {
    let found = of_kind(docs, wanted);
    assert_eq!(
        found.len(),
        1,
        "expected one {wanted}, found {}",
        found.len()
    );
    found[0]
}

/// The one container of the one Deployment.
pub fn container(docs: &[Value]) -> &Value {
    let containers = &one_of_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers.as_array().map(Vec::len),
        Some(1),
        "one container"
    );
    &containers[0]
}

/// A container's environment: each variable's `value`, or its `valueFrom`.
pub fn env(container: &Value) -> BTreeMap<String, Value> {
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

/// The name of the one ServiceAccount in `docs`.
pub fn service_account_name(docs: &[Value]) -> String {
    name(one_of_kind(docs, "ServiceAccount")).to_owned()
}

/// A scratch file `name` in a dir of this test process's own.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the scratch dir");
    dir.join(name)
}
