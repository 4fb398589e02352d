//! The Argo CD health check for PartnerEventSource (`examples/argocd/health.lua`), run on
//! two Lua 5.1 interpreters against recorded objects: gopher-lua (`glua`), the VM Argo CD
//! embeds, and Debian's `lua5.1`, whose debug hooks also show that every outcome line of
//! the script runs for some case. The cases are `examples/argocd/health_test.yaml`, in the
//! format Argo CD uses for the health checks it ships.
//!
//! The same cases, and objects in every state the operator writes, taken from the real API
//! server (the CRD installed, the status written through the status subresource, read back
//! with `kubectl get -o json`), also go through Argo CD's own Go code (`tests/argocd`, built
//! by `hack/argocd-health.sh`), which must agree with the expected verdicts and with the
//! Lua interpreters.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;
use serde_json::Value;
use support::command::{run, run_with_input};
use support::controlplane::ControlPlane;
use support::repo::{crd_path, read, root};

const HEALTH_KEY: &str = "resource.customizations.health.eventbridgepartner.dev_PartnerEventSource";

fn argocd_dir() -> PathBuf {
    root().join("examples/argocd")
}

/// The dir `hack/tools.sh` installs glua into (it also makes sure lua5.1 is there).
fn tools() -> &'static Path {
    support::tools::bin_dir_holding(&["glua"])
}

/// The interpreters the script must agree on: (name, program).
fn interpreters() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("gopher-lua", tools().join("glua")),
        ("lua5.1", PathBuf::from("lua5.1")),
    ]
}

#[derive(Deserialize)]
struct HealthTests {
    tests: Vec<HealthTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTest {
    input_path: String,
    health_status: HealthStatus,
}

#[derive(Deserialize, Debug, PartialEq)]
struct HealthStatus {
    status: String,
    message: String,
}

fn yaml_to_json(text: &str) -> Value {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).expect("valid YAML");
    serde_json::to_value(yaml).expect("YAML that maps to JSON")
}

/// A Lua string literal holding `s` byte for byte.
fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for byte in s.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
    out
}

/// `value` as a Lua table constructor, the way Argo CD hands an object to a health check:
/// objects become tables keyed by field name, arrays become sequences from 1, null fields
/// are absent.
fn lua_value(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_value).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// What one interpreter made of every case.
struct Run {
    /// (status, message, globals the script leaked, deletionMessage or "") per case, in
    /// order.
    results: Vec<(String, String, String, String)>,
    /// Lines of the script that ran, when the interpreter has debug hooks.
    covered: Option<Vec<usize>>,
}

/// Runs `script` once per object, each in a fresh environment with only `obj` and the
/// standard functions a health check may use (as in Argo CD, where `obj` is the live
/// object and the returned table is the verdict). Argo CD opens only Lua's base, table and
/// (a safe part of the) os libraries for a custom check, so `string` and `math` are absent
/// here too.
fn run_health(interpreter: &Path, script: &Path, objects: &[Value]) -> Run {
    let cases: Vec<String> = objects.iter().map(lua_value).collect();
    let runner = format!(
        r#"
local path = {path}
local cases = {{
{cases}
}}
local allowed = {{ obj = true, ipairs = true, pairs = true, next = true, type = true,
  tostring = true, tonumber = true, table = true }}
local covered = {{}}
local hooks = debug ~= nil and debug.sethook ~= nil
if hooks then
  debug.sethook(function(_, line)
    local info = debug.getinfo(2, "S")
    if info ~= nil and info.source == "@" .. path then
      covered[line] = true
    end
  end, "l")
end
for i, case in ipairs(cases) do
  local chunk = assert(loadfile(path))
  local env = {{ obj = case, ipairs = ipairs, pairs = pairs, next = next, type = type,
    tostring = tostring, tonumber = tonumber, table = table }}
  setfenv(chunk, env)
  local hs = chunk()
  local leaked = {{}}
  for key in pairs(env) do
    if not allowed[key] then
      table.insert(leaked, key)
    end
  end
  local message = string.gsub(tostring(hs.message), "[\t\n]", " ")
  local deletion = ""
  if hs.deletionMessage ~= nil then
    deletion = string.gsub(tostring(hs.deletionMessage), "[\t\n]", " ")
  end
  io.write("RESULT\t", tostring(hs.status), "\t", message, "\t", table.concat(leaked, ","),
    "\t", deletion, "\n")
end
if hooks then
  debug.sethook()
  local lines = {{}}
  for line in pairs(covered) do
    table.insert(lines, line)
  end
  table.sort(lines)
  io.write("COVERED\t", table.concat(lines, ","), "\n")
end
"#,
        path = lua_string(&script.display().to_string()),
        cases = cases.join(",\n"),
    );
    // Tests run in parallel: each run gets its own file.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let runner_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "argocd-health-{}-{}.lua",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&runner_path, runner).expect("writing the Lua runner");
    let stdout = run(Command::new(interpreter)
        .arg(&runner_path)
        .stdin(Stdio::null()));
    let _ = std::fs::remove_file(&runner_path);

    let mut results = Vec::new();
    let mut covered = None;
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["RESULT", status, message, leaked, deletion] => results.push((
                status.to_string(),
                message.to_string(),
                leaked.to_string(),
                deletion.to_string(),
            )),
            ["COVERED", lines] => {
                covered = Some(
                    lines
                        .split(',')
                        .filter(|l| !l.is_empty())
                        .map(|l| l.parse().expect("a line number"))
                        .collect(),
                )
            }
            _ => panic!("unexpected output from {}: {line}", interpreter.display()),
        }
    }
    Run { results, covered }
}

/// The lines that decide an outcome: each assignment to the verdict and each `return`.
fn outcome_lines(script: &str) -> Vec<(usize, String)> {
    script
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim();
            line.starts_with("hs.status =")
                || line.starts_with("hs.message =")
                || line.starts_with("hs.deletionMessage =")
                || line.starts_with("return ")
        })
        .map(|(index, line)| (index + 1, line.trim().to_owned()))
        .collect()
}

fn cases() -> (Vec<Value>, Vec<HealthStatus>, Vec<String>) {
    let dir = argocd_dir();
    let tests: HealthTests =
        serde_yaml::from_str(&read(dir.join("health_test.yaml"))).expect("health_test.yaml");
    let mut objects = Vec::new();
    let mut expected = Vec::new();
    let mut names = Vec::new();
    for test in tests.tests {
        objects.push(yaml_to_json(&read(dir.join(&test.input_path))));
        expected.push(test.health_status);
        names.push(test.input_path);
    }
    (objects, expected, names)
}

#[test]
fn every_recorded_object_gets_the_expected_health() {
    let (objects, expected, names) = cases();
    assert!(!objects.is_empty());
    let script = argocd_dir().join("health.lua");
    for (interpreter_name, interpreter) in interpreters() {
        let run = run_health(&interpreter, &script, &objects);
        assert_eq!(
            run.results.len(),
            objects.len(),
            "{interpreter_name}: one result per case"
        );
        let mut wrong = Vec::new();
        for (((name, want), (status, message, leaked, deletion)), object) in
            names.iter().zip(&expected).zip(&run.results).zip(&objects)
        {
            // Argo CD 3.6 and later show a terminating object's deletionMessage instead of
            // its message; the script sets it to the same text, and only then.
            let terminating = !object["metadata"]["deletionTimestamp"].is_null();
            let want_deletion = if terminating { message.as_str() } else { "" };
            if deletion != want_deletion {
                wrong.push(format!(
                    "{name}: deletionMessage {deletion:?}, expected {want_deletion:?}"
                ));
            }
            let got = HealthStatus {
                status: status.clone(),
                message: message.clone(),
            };
            if &got != want {
                wrong.push(format!("{name}: expected {want:?}, got {got:?}"));
            }
            if !leaked.is_empty() {
                wrong.push(format!("{name}: the script set globals: {leaked}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{interpreter_name}:\n{}",
            wrong.join("\n")
        );
    }
}

#[test]
fn every_outcome_of_the_script_is_exercised() {
    tools();
    let (objects, expected, _) = cases();
    let script_path = argocd_dir().join("health.lua");
    let script = read(&script_path);
    let run = run_health(Path::new("lua5.1"), &script_path, &objects);
    let covered = run.covered.expect("lua5.1 has debug hooks");
    let missed: Vec<String> = outcome_lines(&script)
        .into_iter()
        .filter(|(line, _)| !covered.contains(line))
        .map(|(line, text)| format!("health.lua:{line}: {text}"))
        .collect();
    assert!(missed.is_empty(), "no case reaches:\n{}", missed.join("\n"));

    // Every status Argo CD knows that the script can return is tested, and each Ready
    // reason the operator writes appears in some case.
    for status in ["Healthy", "Progressing", "Degraded", "Suspended"] {
        assert!(
            expected.iter().any(|e| e.status == status),
            "no case expects {status}"
        );
    }
    let reasons: Vec<&str> = objects
        .iter()
        .flat_map(|o| o["status"]["conditions"].as_array().into_iter().flatten())
        .filter(|c| c["type"] == "Ready")
        .filter_map(|c| c["reason"].as_str())
        .collect();
    for reason in [
        "Created",
        "Adopted",
        "Recreated",
        "Retrying",
        "Deleting",
        "InvalidSpec",
        "NameConflict",
        "NoRegion",
        "OperationDisabled",
        "AccessDenied",
        "InvalidCredentials",
        "InvalidRequest",
        "Terminal",
        "Creating",
        "Expired",
        "Observed",
        "NotFound",
        "NotPermitted",
        "PartnerAccountNotReady",
    ] {
        assert!(
            reasons.contains(&reason),
            "no case has Ready reason {reason}"
        );
    }
    // The Paused condition, both ways.
    let paused: Vec<&str> = objects
        .iter()
        .flat_map(|o| o["status"]["conditions"].as_array().into_iter().flatten())
        .filter(|c| c["type"] == "Paused")
        .filter_map(|c| c["status"].as_str())
        .collect();
    for status in ["True", "False"] {
        assert!(
            paused.contains(&status),
            "no case has a Paused condition with status {status}"
        );
    }
}

#[test]
fn argocd_cm_embeds_the_script_verbatim() {
    let configmap = yaml_to_json(&read(argocd_dir().join("argocd-cm.yaml")));
    assert_eq!(configmap["kind"], "ConfigMap");
    assert_eq!(configmap["metadata"]["name"], "argocd-cm");
    let embedded = configmap["data"][HEALTH_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("argocd-cm.yaml has no {HEALTH_KEY}"));
    assert!(
        embedded == read(argocd_dir().join("health.lua")),
        "argocd-cm.yaml's {HEALTH_KEY} differs from health.lua"
    );
}

#[test]
fn every_script_in_argocd_cm_runs() {
    // The Application health check that lets sync waves wait for a child Application.
    let configmap = yaml_to_json(&read(argocd_dir().join("argocd-cm.yaml")));
    let data = configmap["data"].as_object().expect("data");
    let application = data["resource.customizations.health.argoproj.io_Application"]
        .as_str()
        .expect("the Application health check");
    let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "argocd-application-health-{}.lua",
        std::process::id()
    ));
    std::fs::write(&script, application).expect("writing the script");
    let objects = [
        serde_json::json!({"status": {"health": {"status": "Healthy", "message": "all good"}}}),
        serde_json::json!({"status": {"health": {"status": "Degraded"}}}),
        serde_json::json!({"metadata": {"name": "new"}}),
    ];
    for (name, interpreter) in interpreters() {
        let run = run_health(&interpreter, &script, &objects);
        let verdicts: Vec<(&str, &str)> = run
            .results
            .iter()
            .map(|(status, message, _, _)| (status.as_str(), message.as_str()))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("Healthy", "all good"),
                ("Degraded", ""),
                ("Progressing", "")
            ],
            "{name}"
        );
    }
    let _ = std::fs::remove_file(&script);
    for key in data.keys() {
        assert!(key.starts_with("resource.customizations.health."), "{key}");
    }
}

#[test]
fn lua_literals_round_trip_awkward_strings() {
    tools();
    let value =
        serde_json::json!({"a": "quote \" backslash \\ tab \t newline \n é", "n": [1, 2.5]});
    let script = format!(
        "local v = {}\nio.write(v.a, \"|\", v.n[1] + v.n[2])",
        lua_value(&value)
    );
    let output = Command::new("lua5.1")
        .args(["-e", &script])
        .output()
        .expect("running lua5.1");
    assert_eq!(
        String::from_utf8(output.stdout).expect("UTF-8"),
        "quote \" backslash \\ tab \t newline \n é|3.5"
    );
}

// Argo CD's own health assessment: tests/argocd, a Go module that depends on a pinned Argo
// CD release, reads argocd-cm.yaml through Argo CD's settings manager and assesses each
// object with the call the application controller makes (gitops-engine's
// health.GetResourceHealth with the Lua overrides from util/lua).

/// The program `hack/argocd-health.sh build` makes. CI builds it before the tests (.ci/run),
/// so there a missing program is an error; elsewhere the first test that needs it builds it
/// (minutes, the first time).
fn argocd_health() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let script = root().join("hack/argocd-health.sh");
        let bin_dir = run(Command::new("bash")
            .arg(&script)
            .arg("bin-dir")
            .stdin(Stdio::null()));
        let program = PathBuf::from(bin_dir.trim()).join("argocd-health");
        if program.is_file() {
            return program;
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing: CI must build it before the tests (.ci/run runs \
             hack/argocd-health.sh build)",
            program.display()
        );
        let output = Command::new("bash")
            .arg(&script)
            .arg("build")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("running hack/argocd-health.sh");
        assert!(
            output.status.success(),
            "hack/argocd-health.sh build failed ({}); its output is above",
            output.status
        );
        assert!(program.is_file(), "{} was not built", program.display());
        program
    })
}

/// What Argo CD's code made of one object.
#[derive(Deserialize, Debug)]
struct ArgoVerdict {
    name: String,
    status: String,
    message: String,
    error: Option<String>,
}

/// Argo CD's verdict on each of `objects`, in order, with the health checks of
/// `examples/argocd/argocd-cm.yaml`.
fn argocd_verdicts(objects: &[Value]) -> Vec<ArgoVerdict> {
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let stdout = run_with_input(
        Command::new(argocd_health())
            .arg("--argocd-cm")
            .arg(argocd_dir().join("argocd-cm.yaml")),
        &list.to_string(),
    );
    let verdicts: Vec<ArgoVerdict> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("argocd-health printed no verdicts ({e}):\n{stdout}"));
    assert_eq!(verdicts.len(), objects.len(), "one verdict per object");
    verdicts
}

#[test]
fn argo_cd_gives_every_recorded_object_the_expected_health() {
    let (objects, expected, names) = cases();
    let verdicts = argocd_verdicts(&objects);
    let wrong: Vec<String> = names
        .iter()
        .zip(&expected)
        .zip(&verdicts)
        .filter(|((_, want), got)| {
            got.error.is_some() || got.status != want.status || got.message != want.message
        })
        .map(|((name, want), got)| format!("{name}: expected {want:?}, Argo CD said {got:?}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A state the operator leaves an object in, written through the status subresource of
/// the real API server.
struct State {
    name: &'static str,
    /// The eventbridgepartner.dev/paused annotation.
    paused: bool,
    /// `spec.managementPolicy: Observe`.
    observe: bool,
    /// `status` as the operator writes it; `None` for an object it has not seen yet.
    status: Option<Value>,
    /// What happens after the status is written.
    then: Then,
    expected: (&'static str, String),
}

enum Then {
    Nothing,
    /// Deleted while it holds the operator's finalizer.
    Delete,
    /// Its spec changes, so metadata.generation moves past status.observedGeneration.
    ChangeSpec,
}

const FINALIZER: &str = "eventbridgepartner.dev/finalizer";
const ACCOUNT: &str = "123456789012";

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    serde_json::json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-20T09:14:05Z",
        "observedGeneration": 1,
    })
}

/// A status with the given conditions, as of generation 1.
fn status_with(conditions: Vec<Value>) -> Option<Value> {
    Some(serde_json::json!({"observedGeneration": 1, "conditions": conditions}))
}

/// The Ready=False status for `reason`, and the verdict the health check gives it.
fn not_ready(
    name: &'static str,
    reason: &str,
    message: &str,
    verdict: &'static str,
    then: Then,
) -> State {
    State {
        name,
        paused: false,
        observe: false,
        status: status_with(vec![condition("Ready", "False", reason, message)]),
        then,
        expected: (verdict, message.to_string()),
    }
}

fn ready(name: &'static str, reason: &str) -> State {
    let message = format!("partner event source exists in AWS for account {ACCOUNT}");
    State {
        name,
        paused: false,
        observe: false,
        status: Some(serde_json::json!({
            "arn": format!("arn:aws:events:eu-west-1::event-source/aws.partner/acme.com/{name}/orders"),
            "state": "PENDING",
            "creationTime": "2026-11-20T09:14:05Z",
            "expirationTime": "2026-12-04T09:14:05Z",
            "observedGeneration": 1,
            "conditions": [condition("Ready", "True", reason, &message)],
        })),
        then: Then::Nothing,
        expected: ("Healthy", message),
    }
}

/// Every state the operator produces, with the verdict the health check should give it.
fn operator_states() -> Vec<State> {
    let paused_message =
        "eventbridgepartner.dev/paused is \"true\": no AWS calls until it is removed";
    let ready_message = format!("partner event source exists in AWS for account {ACCOUNT}");
    vec![
        State {
            name: "new",
            paused: false,
            observe: false,
            status: None,
            then: Then::Nothing,
            expected: (
                "Progressing",
                "Waiting for the operator to report status".into(),
            ),
        },
        not_ready(
            "creating",
            "Creating",
            "creating partner event source aws.partner/acme.com/creating/orders for account 123456789012",
            "Progressing",
            Then::Nothing,
        ),
        not_ready(
            "retrying",
            "Retrying",
            "CreatePartnerEventSource failed: ThrottlingException: Rate exceeded; retrying (attempt 3)",
            "Progressing",
            Then::Nothing,
        ),
        not_ready(
            "deleting",
            "Deleting",
            "DeletePartnerEventSource failed: InternalException: An internal error occurred; retrying (attempt 2)",
            "Progressing",
            Then::Delete,
        ),
        ready("created", "Created"),
        ready("adopted", "Adopted"),
        ready("recreated", "Recreated"),
        State {
            observe: true,
            ..ready("observed", "Observed")
        },
        State {
            expected: (
                "Degraded",
                "AWS expired the partner event source because its customer never activated it; \
                 set spec.onExpiry: Recreate to create it again, or delete the object"
                    .into(),
            ),
            ..not_ready(
                "expired",
                "Expired",
                "AWS deleted partner event source aws.partner/acme.com/expired/orders because \
                 account 123456789012 never activated it (no one is listening); set \
                 spec.onExpiry: Recreate to create it again, or delete this object",
                "Degraded",
                Then::Nothing,
            )
        },
        State {
            observe: true,
            ..not_ready(
                "not-found",
                "NotFound",
                "partner event source aws.partner/acme.com/not-found/orders does not exist in AWS for \
                 account 123456789012 (managementPolicy is Observe: the operator does not create it)",
                "Degraded",
                Then::Nothing,
            )
        },
        not_ready(
            "name-conflict",
            "NameConflict",
            "team-b/orders already manages partner event source \
             aws.partner/acme.com/name-conflict/orders; this object is not sent to AWS",
            "Degraded",
            Then::Nothing,
        ),
        not_ready(
            "invalid-spec",
            "InvalidSpec",
            "spec.account must be 12 digits, got \"12345\"",
            "Degraded",
            Then::Nothing,
        ),
        not_ready(
            "access-denied",
            "AccessDenied",
            "CreatePartnerEventSource failed: AccessDeniedException: not authorized to perform: \
             events:CreatePartnerEventSource",
            "Degraded",
            Then::Nothing,
        ),
        not_ready(
            "not-permitted",
            "NotPermitted",
            "PartnerAccount acme-prod grants no source names under \
             aws.partner/acme.com/not-permitted/; this object is not sent to AWS",
            "Degraded",
            Then::Nothing,
        ),
        not_ready(
            "partner-account-not-ready",
            "PartnerAccountNotReady",
            "PartnerAccount acme-prod does not exist",
            "Degraded",
            Then::Nothing,
        ),
        State {
            name: "paused",
            paused: true,
            observe: false,
            status: status_with(vec![
                condition("Ready", "True", "Created", &ready_message),
                condition("Paused", "True", "Paused", paused_message),
            ]),
            then: Then::Nothing,
            expected: ("Suspended", paused_message.into()),
        },
        State {
            name: "generation-behind",
            paused: false,
            observe: false,
            status: status_with(vec![condition("Ready", "True", "Created", &ready_message)]),
            then: Then::ChangeSpec,
            expected: (
                "Progressing",
                "Waiting for the operator to observe generation 2".into(),
            ),
        },
    ]
}

fn manifest(namespace: &str, state: &State, deletion_policy: &str) -> String {
    let mut metadata = serde_json::json!({
        "name": state.name,
        "namespace": namespace,
        "finalizers": [FINALIZER],
    });
    if state.paused {
        metadata["annotations"] = serde_json::json!({"eventbridgepartner.dev/paused": "true"});
    }
    serde_json::json!({
        "apiVersion": "eventbridgepartner.dev/v1alpha1",
        "kind": "PartnerEventSource",
        "metadata": metadata,
        "spec": {
            "name": format!("aws.partner/acme.com/{}/orders", state.name),
            "account": ACCOUNT,
            "region": "eu-west-1",
            "deletionPolicy": deletion_policy,
            "managementPolicy": if state.observe { "Observe" } else { "Manage" },
        },
    })
    .to_string()
}

#[test]
fn argo_cd_and_gopher_lua_agree_on_objects_from_the_api_server() {
    // Built first: a missing program fails here, before the control plane starts.
    argocd_health();
    let control_plane = ControlPlane::shared();
    control_plane.install_crds(&[crd_path()]);
    let namespace = "argocd-health";
    control_plane.ensure_namespace(namespace);

    let states = operator_states();
    let write_status = |name: &str, status: &Value| {
        run(control_plane.kubectl().args([
            "patch",
            "partnereventsources",
            name,
            "--namespace",
            namespace,
            "--subresource=status",
            "--type=merge",
            "--patch",
            &serde_json::json!({ "status": status }).to_string(),
        ]));
    };
    for state in &states {
        control_plane.apply(&manifest(namespace, state, "Delete"));
        match (&state.then, &state.status) {
            (Then::Delete, Some(status)) => {
                // The finalizer keeps it, terminating. The API server moves a custom
                // resource's generation on when it marks it deleted, and the operator's
                // Deleting status describes that generation.
                run(control_plane.kubectl().args([
                    "delete",
                    "partnereventsources",
                    state.name,
                    "--namespace",
                    namespace,
                    "--wait=false",
                ]));
                let generation: i64 = run(control_plane.kubectl().args([
                    "get",
                    "partnereventsources",
                    state.name,
                    "--namespace",
                    namespace,
                    "--output=jsonpath={.metadata.generation}",
                ]))
                .trim()
                .parse()
                .expect("a generation");
                let mut status = status.clone();
                status["observedGeneration"] = generation.into();
                for condition in status["conditions"].as_array_mut().into_iter().flatten() {
                    condition["observedGeneration"] = generation.into();
                }
                write_status(state.name, &status);
            }
            (Then::Delete, None) => unreachable!("a deleted state has a status"),
            (Then::Nothing, status) => status.iter().for_each(|s| write_status(state.name, s)),
            (Then::ChangeSpec, status) => {
                status.iter().for_each(|s| write_status(state.name, s));
                control_plane.apply(&manifest(namespace, state, "Retain"));
            }
        }
    }

    let list: Value = serde_json::from_str(&run(control_plane.kubectl().args([
        "get",
        "partnereventsources",
        "--namespace",
        namespace,
        "--output=json",
    ])))
    .expect("kubectl get -o json prints JSON");
    let items = list["items"].as_array().expect("a List");
    // In the order of `states`, each as the API server stores and serves it.
    let objects: Vec<Value> = states
        .iter()
        .map(|state| {
            items
                .iter()
                .find(|item| item["metadata"]["name"] == state.name)
                .unwrap_or_else(|| panic!("the API server has no object {}", state.name))
                .clone()
        })
        .collect();
    for (state, object) in states.iter().zip(&objects) {
        let metadata = &object["metadata"];
        match state.then {
            Then::Delete => {
                assert!(
                    metadata["deletionTimestamp"].is_string(),
                    "{}: not terminating: {metadata}",
                    state.name
                );
                assert_eq!(
                    object["status"]["observedGeneration"], metadata["generation"],
                    "{}",
                    state.name
                );
            }
            Then::ChangeSpec => assert_eq!(metadata["generation"], 2, "{}", state.name),
            Then::Nothing => assert_eq!(metadata["generation"], 1, "{}", state.name),
        }
        assert_eq!(
            object.get("status").is_some(),
            state.status.is_some(),
            "{}: status as written: {object}",
            state.name
        );
    }

    let argo = argocd_verdicts(&objects);
    let mut wrong = Vec::new();
    for (state, got) in states.iter().zip(&argo) {
        assert_eq!(got.name, state.name);
        let (status, message) = &state.expected;
        if got.error.is_some() || got.status != *status || got.message != *message {
            wrong.push(format!(
                "{}: expected ({status}, {message}), Argo CD said {got:?}",
                state.name
            ));
        }
    }
    // The Lua interpreters of the existing harness give the verdict Argo CD shows: the
    // deletionMessage of a terminating object, the message of any other.
    let script = argocd_dir().join("health.lua");
    for (interpreter_name, interpreter) in interpreters() {
        let lua = run_health(&interpreter, &script, &objects);
        assert_eq!(lua.results.len(), objects.len(), "{interpreter_name}");
        for ((state, got), (status, message, leaked, deletion)) in
            states.iter().zip(&argo).zip(&lua.results)
        {
            let shown = if deletion.is_empty() {
                message
            } else {
                deletion
            };
            if (status, shown) != (&got.status, &got.message) || !leaked.is_empty() {
                wrong.push(format!(
                    "{}: {interpreter_name} said ({status}, {shown}, leaked: {leaked:?}), \
                     Argo CD ({}, {})",
                    state.name, got.status, got.message
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
