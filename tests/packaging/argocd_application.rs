//! The Argo CD Application in `examples/argocd/application.yaml`: it installs the chart
//! before the sources, with server-side apply, and values the chart accepts. (The health
//! check is in `argocd_health.rs`.)

use crate::support;

use serde_json::{Value, json};
use support::chart::{CHART, Render, kind, name, one_of_kind, parse_docs, scratch};
use support::repo::read;

#[test]
fn argocd_application_installs_the_chart_before_the_sources() {
    let apps = parse_docs(&read("examples/argocd/application.yaml"));
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
