//! The Argo CD health check for PartnerEventSource (`examples/argocd/health.lua`), run on
//! two Lua 5.1 interpreters against recorded objects: gopher-lua (`glua`), the VM Argo CD
//! embeds, and Debian's `lua5.1`, whose debug hooks also show that every outcome line of
//! the script runs for some case. The cases are `examples/argocd/health_test.yaml`, in the
//! format Argo CD uses for the health checks it ships.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;
use serde_json::Value;
use support::command::run;
use support::repo::{read, root};

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
    /// (status, message, globals the script leaked) per case, in order.
    results: Vec<(String, String, String)>,
    /// Lines of the script that ran, when the interpreter has debug hooks.
    covered: Option<Vec<usize>>,
}

/// Runs `script` once per object, each in a fresh environment with only `obj` and the
/// standard functions a health check may use (as in Argo CD, where `obj` is the live
/// object and the returned table is the verdict).
fn run_health(interpreter: &Path, script: &Path, objects: &[Value]) -> Run {
    let cases: Vec<String> = objects.iter().map(lua_value).collect();
    let runner = format!(
        r#"
local path = {path}
local cases = {{
{cases}
}}
local allowed = {{ obj = true, ipairs = true, pairs = true, next = true, type = true,
  tostring = true, tonumber = true, string = true, table = true, math = true }}
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
    tostring = tostring, tonumber = tonumber, string = string, table = table, math = math }}
  setfenv(chunk, env)
  local hs = chunk()
  local leaked = {{}}
  for key in pairs(env) do
    if not allowed[key] then
      table.insert(leaked, key)
    end
  end
  local message = string.gsub(tostring(hs.message), "[\t\n]", " ")
  io.write("RESULT\t", tostring(hs.status), "\t", message, "\t", table.concat(leaked, ","), "\n")
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
            ["RESULT", status, message, leaked] => {
                results.push((status.to_string(), message.to_string(), leaked.to_string()))
            }
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
        for ((name, want), (status, message, leaked)) in
            names.iter().zip(&expected).zip(&run.results)
        {
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
    for status in ["Healthy", "Progressing", "Degraded"] {
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
    ] {
        assert!(
            reasons.contains(&reason),
            "no case has Ready reason {reason}"
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
            .map(|(status, message, _)| (status.as_str(), message.as_str()))
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
