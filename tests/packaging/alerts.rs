//! The alerts: the chart's PrometheusRule and `deploy/prometheus-rules.yaml` hold the same
//! rules, promtool accepts them and its unit tests (`tests/alerts/`) show every alert firing
//! and staying silent, each alert links to its section of `docs/runbook.md`, and the chart's
//! per-alert values take effect.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::chart::{Render, ci_values, of_kind, one_of_kind, parse_docs};
use support::command::{output_of, run};
use support::repo::{read, root, sorted_files};
use support::tools::tool;

/// The plain rules file, as committed.
const RULES: &str = "deploy/prometheus-rules.yaml";

/// The alerts the operator ships, by name.
const ALERTS: [&str; 9] = [
    "PartnerEventSourceNotReady",
    "PartnerEventSourceRetryingTooLong",
    "PartnerEventSourceBacklog",
    "PartnerEventSourceExpiringSoon",
    "PartnerAccountNotReady",
    "EventBridgeThrottled",
    "EventBridgeErrorRateHigh",
    "EventBridgePartnerOperatorDown",
    "EventBridgePartnerOperatorNoLeader",
];

/// The rules of a rules document (`groups:`), by alert name.
fn rules_of(groups: &Value) -> BTreeMap<String, Value> {
    groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .map(|r| (r["alert"].as_str().expect("an alert").to_owned(), r.clone()))
        .collect()
}

fn committed_rules() -> BTreeMap<String, Value> {
    rules_of(&parse_docs(&read(RULES))[0])
}

/// The promtool unit-test files.
fn test_files() -> Vec<std::path::PathBuf> {
    sorted_files(root().join("tests/alerts"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect()
}

#[test]
fn promtool_accepts_the_rules() {
    let out = run(tool("promtool")
        .arg("check")
        .arg("rules")
        .arg(root().join(RULES)));
    println!("promtool check rules {RULES}:\n{out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
        "{out}"
    );
    let names: BTreeSet<String> = committed_rules().into_keys().collect();
    let expected: BTreeSet<String> = ALERTS.iter().map(|a| a.to_string()).collect();
    assert_eq!(names, expected);
}

#[test]
fn promtool_unit_tests_fire_and_stay_silent_for_every_alert() {
    let files = test_files();
    assert!(!files.is_empty(), "no tests/alerts/*.yaml");
    let output = output_of(tool("promtool").args(["test", "rules"]).args(&files));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("promtool test rules tests/alerts/*.yaml:\n{text}");
    assert!(
        output.status.success(),
        "promtool test rules failed:\n{text}"
    );

    // Every alert has a case where it fires and one where it stays silent.
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for file in &files {
        let doc = &parse_docs(&read(file))[0];
        for test in doc["tests"].as_array().expect("tests") {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().expect("alertname").to_owned();
                match case["exp_alerts"].as_array().map(Vec::len) {
                    Some(0) | None => silent.insert(name),
                    Some(_) => fires.insert(name),
                };
            }
        }
    }
    for alert in ALERTS {
        assert!(
            fires.contains(alert),
            "no promtool case where {alert} fires"
        );
        assert!(
            silent.contains(alert),
            "no promtool case where {alert} stays silent"
        );
    }
}

#[test]
fn every_alert_explains_itself_and_links_its_runbook_section() {
    let runbook = read("docs/runbook.md");
    let headings: BTreeSet<&str> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    for (name, rule) in committed_rules() {
        let annotations = &rule["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            let value = annotations[key].as_str().unwrap_or_default();
            assert!(!value.trim().is_empty(), "{name} has no {key}");
        }
        let url = annotations["runbook_url"].as_str().unwrap_or_default();
        let (page, anchor) = url.split_once('#').expect("a runbook_url with an anchor");
        assert!(page.ends_with("docs/runbook.md"), "{name}: {url}");
        assert_eq!(anchor, name.to_lowercase(), "{name}: {url}");
        assert!(
            headings.contains(name.as_str()),
            "docs/runbook.md has no section \"## {name}\""
        );
        assert!(
            rule["labels"]["severity"].is_string(),
            "{name} has no severity"
        );
    }
}

#[test]
fn the_rules_file_is_the_charts_rendered_rules() {
    let rendered = run(Command::new("bash")
        .arg(root().join("hack/render-rules.sh"))
        .arg("--stdout")
        .stdin(Stdio::null()));
    assert!(
        rendered == read(RULES),
        "{RULES} is not what the chart renders; run hack/render-rules.sh"
    );
    let docs = Render::new().set("prometheusRule.enabled=true").docs();
    let rule = one_of_kind(&docs, "PrometheusRule");
    assert_eq!(rules_of(&rule["spec"]), committed_rules());
}

#[test]
fn the_prometheus_rule_is_off_by_default_and_its_values_take_effect() {
    assert!(of_kind(&Render::new().docs(), "PrometheusRule").is_empty());
    // The ci values switch one alert off, change another's `for` and severity, and add
    // labels to the object and to every alert.
    let docs = Render::new()
        .values(ci_values("everything-on-values.yaml"))
        .docs();
    let rule = one_of_kind(&docs, "PrometheusRule");
    assert_eq!(rule["metadata"]["labels"]["release"], json!("prometheus"));
    let rules = rules_of(&rule["spec"]);
    assert!(!rules.contains_key("PartnerEventSourceExpiringSoon"));
    assert_eq!(rules.len(), ALERTS.len() - 1);
    let throttled = &rules["EventBridgeThrottled"];
    assert_eq!(throttled["for"], json!("30m"));
    assert_eq!(throttled["labels"]["severity"], json!("critical"));
    for (name, rule) in &rules {
        assert_eq!(rule["labels"]["team"], json!("platform"), "{name}");
    }
    // A threshold from the values reaches the expression.
    let docs = Render::new()
        .set("prometheusRule.enabled=true")
        .set("prometheusRule.alerts.PartnerEventSourceBacklog.seconds=900")
        .docs();
    let rules = rules_of(&one_of_kind(&docs, "PrometheusRule")["spec"]);
    let expr = rules["PartnerEventSourceBacklog"]["expr"]
        .as_str()
        .unwrap_or_default();
    assert!(expr.trim_end().ends_with("> 900"), "{expr}");
}
