//! The Grafana dashboard: the committed JSON (`deploy/` and the chart's copy) is what
//! `hack/dashboard.py` builds with Grafana's foundation SDK; its shape passes the project's
//! checks (unique panel ids, the datasource variable on every panel and query, a unit on
//! every graph, only declared variables, every variable used, no overlapping panels); every
//! query parses as PromQL (promtool); it shows every metric an alert watches; and the chart
//! ships it as a ConfigMap for Grafana's sidecar only when asked to.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use regex::Regex;
use serde_json::{Value, json};
use support::chart::{Render, ci_values, of_kind};
use support::command::run;
use support::repo::{read, root};
use support::tools::tool;

/// The dashboard as `deploy/` holds it, to import by hand.
const DASHBOARD: &str = "deploy/grafana-dashboard.json";
/// The chart's copy, which the ConfigMap carries.
const CHART_COPY: &str =
    "charts/eventbridge-partner-operator/files/dashboards/eventbridge-partner-operator.json";
/// The datasource every panel and query uses: the dashboard's variable.
const DATASOURCE: &str = "${datasource}";
/// Grafana's own variables, which need no declaration.
const BUILTINS: [&str; 3] = ["__rate_interval", "__interval", "__range"];

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON")
}

/// Every panel, rows and the panels of collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// The panels that show data (not rows).
fn graphs(dashboard: &Value) -> Vec<&Value> {
    panels(dashboard)
        .into_iter()
        .filter(|p| p["type"] != json!("row"))
        .collect()
}

/// Every query expression: the panels' and the variables'.
fn queries(dashboard: &Value) -> Vec<String> {
    let panels = graphs(dashboard).into_iter().flat_map(|p| {
        p["targets"].as_array().into_iter().flatten().map(|t| {
            t["expr"]
                .as_str()
                .expect("a target with an expr")
                .to_owned()
        })
    });
    let variables = variables(dashboard)
        .into_iter()
        .filter(|v| v["type"] == json!("query"))
        .map(|v| v["query"].as_str().expect("a query").to_owned());
    panels.chain(variables).collect()
}

fn variables(dashboard: &Value) -> Vec<&Value> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .collect()
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let name = Regex::new(r"eventbridge_partner_operator_[a-z0-9_]*[a-z0-9]").expect("a regex");
    name.find_iter(text)
        .map(|m| m.as_str().to_owned())
        .collect()
}

#[test]
fn the_committed_dashboard_is_what_the_sdk_builds() {
    let built = run(Command::new("python3")
        .arg(root().join("hack/dashboard.py"))
        .arg("--stdout")
        .stdin(Stdio::null()));
    for file in [DASHBOARD, CHART_COPY] {
        assert!(
            built == read(file),
            "{file} is not what hack/dashboard.py builds; run make dashboard"
        );
    }
}

#[test]
fn every_panel_has_a_unique_id_the_datasource_variable_and_a_unit() {
    let d = dashboard();
    let mut ids = BTreeSet::new();
    for panel in panels(&d) {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {panel}");
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "{title}: panel id {id} is used twice");
    }
    let graphs = graphs(&d);
    assert!(graphs.len() >= 15, "{} panels", graphs.len());
    for panel in graphs {
        let title = panel["title"].as_str().unwrap_or_default();
        assert_eq!(panel["datasource"]["uid"], json!(DATASOURCE), "{title}");
        assert!(
            panel["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{title}: no description"
        );
        let unit = panel["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .unwrap_or_default();
        assert!(!unit.is_empty(), "{title}: no unit");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        let mut refs = BTreeSet::new();
        for target in targets {
            assert_eq!(target["datasource"]["uid"], json!(DATASOURCE), "{title}");
            assert!(
                refs.insert(target["refId"].as_str().expect("a refId")),
                "{title}: refId used twice"
            );
        }
    }
    let datasource = variables(&d)
        .into_iter()
        .find(|v| v["type"] == json!("datasource"))
        .expect("a datasource variable");
    assert_eq!(datasource["name"], json!("datasource"));
    assert_eq!(datasource["query"], json!("prometheus"));
}

#[test]
fn panels_stay_on_the_grid_and_do_not_overlap() {
    let d = dashboard();
    let mut cells: BTreeMap<(u64, u64), &str> = BTreeMap::new();
    for panel in panels(&d) {
        let title = panel["title"].as_str().unwrap_or_default();
        let pos = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
            pos[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: {pos}");
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), title) {
                    panic!("{title} overlaps {other} at ({cx}, {cy})");
                }
            }
        }
    }
}

#[test]
fn queries_use_declared_variables_and_every_variable_is_used() {
    let d = dashboard();
    let declared: BTreeSet<String> = variables(&d)
        .into_iter()
        .map(|v| v["name"].as_str().expect("a name").to_owned())
        .collect();
    let reference = Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").expect("a regex");
    let mut used = BTreeSet::from([String::from("datasource")]);
    for expr in queries(&d) {
        for name in reference.captures_iter(&expr).map(|c| c[1].to_owned()) {
            if BUILTINS.contains(&name.as_str()) {
                continue;
            }
            assert!(declared.contains(&name), "${name} is not declared: {expr}");
            used.insert(name);
        }
    }
    assert_eq!(used, declared, "variables no query uses");
    for wanted in ["namespace", "partner_account", "region"] {
        assert!(declared.contains(wanted), "no {wanted} variable");
    }
}

#[test]
fn every_query_is_promql_that_promtool_accepts() {
    // Each query becomes a recording rule, with the variables replaced by what Grafana
    // substitutes (a regex for a multi-value variable, a duration for $__rate_interval):
    // `promtool check rules` parses every expression.
    let d = dashboard();
    let panel_queries: Vec<String> = graphs(&d)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().expect("targets").iter())
        .map(|t| t["expr"].as_str().expect("an expr").to_owned())
        .collect();
    let substitute = Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?").expect("a regex");
    let rules: Vec<Value> = panel_queries
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            let expr = substitute.replace_all(expr, |c: &regex::Captures| {
                if c[1].starts_with("__") {
                    "5m".to_owned()
                } else {
                    ".*".to_owned()
                }
            });
            json!({"record": format!("dashboard:query{i}"), "expr": expr})
        })
        .collect();
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-queries.yaml");
    let doc = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, serde_yaml::to_string(&doc).expect("yaml")).expect("write the rules");
    let out = run(tool("promtool").arg("check").arg("rules").arg(&file));
    println!("promtool check rules (the dashboard's queries):\n{out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", panel_queries.len())),
        "{out}"
    );
}

#[test]
fn the_dashboard_shows_every_metric_an_alert_watches() {
    let on_dashboard = metric_names(&queries(&dashboard()).join("\n"));
    let alerted = metric_names(&read("deploy/prometheus-rules.yaml"));
    let missing: Vec<&String> = alerted.difference(&on_dashboard).collect();
    assert!(missing.is_empty(), "no panel shows {missing:?}");
}

#[test]
fn the_dashboard_configmap_is_off_by_default_and_carries_the_sidecar_label() {
    let dashboards = |docs: &[Value]| -> Vec<Value> {
        of_kind(docs, "ConfigMap")
            .into_iter()
            .filter(|c| {
                c["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-dashboard"))
            })
            .cloned()
            .collect()
    };
    assert!(dashboards(&Render::new().docs()).is_empty());

    let docs = Render::new()
        .values(ci_values("everything-on-values.yaml"))
        .docs();
    let [config_map] = dashboards(&docs)
        .try_into()
        .expect("one dashboard ConfigMap");
    let meta = &config_map["metadata"];
    assert_eq!(meta["namespace"], json!("monitoring"));
    assert_eq!(meta["labels"]["grafana_dashboard"], json!("1"));
    assert_eq!(meta["labels"]["team"], json!("platform"));
    assert_eq!(meta["annotations"]["grafana_folder"], json!("Operators"));
    let data = config_map["data"]
        .as_object()
        .expect("data")
        .values()
        .next()
        .expect("one file");
    let shipped: Value = serde_json::from_str(data.as_str().expect("a string")).expect("JSON");
    assert_eq!(shipped, dashboard());

    // By default the ConfigMap lives in the release's namespace, with the default label.
    let docs = Render::new().set("grafanaDashboard.enabled=true").docs();
    let [config_map] = dashboards(&docs)
        .try_into()
        .expect("one dashboard ConfigMap");
    assert_eq!(config_map["metadata"]["namespace"], json!("operators"));
    assert_eq!(
        config_map["metadata"]["labels"]["grafana_dashboard"],
        json!("1")
    );
}
