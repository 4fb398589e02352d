//! End-to-end: no dead queries. Every operator metric an alert rule, a dashboard panel or the
//! runbook names is one a running operator exports, scraped live from `/metrics` after it has
//! made AWS calls for an object of a PartnerAccount; the metric families no alert uses, and those no panel
//! shows, are printed for information.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use eventbridge_partner_operator::resources::{
    PartnerAccount, PartnerAccountRef, PartnerAccountSpec,
};
use kube::api::{Api, DeleteParams, PostParams};
use regex::Regex;
use support::http::get;
use support::repo::read;
use support::scenario::{CUSTOMER, Scenario, TIMEOUT, unique};

/// Where metric names are used, each file as the repository holds it.
const USERS: [&str; 3] = [
    "deploy/prometheus-rules.yaml",
    "deploy/grafana-dashboard.json",
    "docs/runbook.md",
];

/// Every operator metric name in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let name = Regex::new(r"eventbridge_partner_operator_[a-z0-9_]*[a-z0-9]").expect("a regex");
    name.find_iter(text)
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// Whether sample or family name `name` belongs to `family` (a counter's `_total`, a
/// histogram's `_bucket`, `_sum` and `_count`).
fn of_family(name: &str, family: &str) -> bool {
    name.strip_prefix(family)
        .is_some_and(|rest| ["", "_total", "_bucket", "_sum", "_count"].contains(&rest))
}

/// The names a scrape shows: every sample's, and every family's (`# TYPE` lines), so that a
/// histogram or a counter may be named by family or by sample.
fn exported(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|line| match line.strip_prefix("# TYPE ") {
            Some(family) => family.split_whitespace().next(),
            None if line.starts_with('#') => None,
            None => line.split(['{', ' ']).next(),
        })
        .filter(|name| name.starts_with("eventbridge_partner_operator_"))
        .map(str::to_owned)
        .collect()
}

/// Scrapes until every name in `wanted` has a sample (families fill in as the operator works:
/// the budget gauges after its first AWS call), or the timeout; returns the last page.
async fn scrape_until(addr: SocketAddr, wanted: &BTreeSet<String>) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let page = get(addr, "/metrics").await.1;
        let missing = wanted.difference(&exported(&page)).count();
        if missing == 0 || Instant::now() >= deadline {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_an_alert_a_panel_or_the_runbook_names_is_exported() {
    let used: BTreeMap<&str, BTreeSet<String>> = USERS
        .iter()
        .map(|path| (*path, names_in(&read(path))))
        .collect();
    for (path, names) in &used {
        assert!(!names.is_empty(), "{path} names no operator metric");
    }
    let wanted: BTreeSet<String> = used.values().flatten().cloned().collect();

    let s = Scenario::start("metric-names").await;
    let accounts: Api<PartnerAccount> = Api::all(s.client.clone());
    let account_name = unique("metrics-acme");
    let mut account = PartnerAccount::new(
        &account_name,
        PartnerAccountSpec {
            role_arn: None,
            external_id: None,
            session_name: None,
            session_tags: Default::default(),
            source_prefixes: vec!["aws.partner/acme.com/".into()],
            namespace_selector: None,
            customer_accounts: None,
            region: None,
            aws_rps: None,
            default: false,
        },
    );
    account.metadata.labels = Some([("e2e".to_owned(), s.selector.clone())].into());
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("create the PartnerAccount");
    let operator = s.launch().start();
    let mut obj = s.object("orders", "aws.partner/acme.com/metrics/orders", CUSTOMER);
    obj.spec.partner_account_ref = Some(PartnerAccountRef {
        name: account_name.clone(),
    });
    s.create(&obj).await;
    s.wait_looked_at("orders").await;

    let page = scrape_until(operator.http_addr().await, &wanted).await;
    let exported = exported(&page);
    let dead: Vec<String> = used
        .iter()
        .flat_map(|(path, names)| {
            names
                .difference(&exported)
                .map(move |name| format!("{path}: {name}"))
        })
        .collect();
    assert!(
        dead.is_empty(),
        "metrics named but not exported:\n{}\n--- the scrape:\n{page}",
        dead.join("\n")
    );
    let families: BTreeSet<&String> = exported
        .iter()
        .filter(|name| page.contains(&format!("# TYPE {name} ")))
        .collect();
    // The reverse lists, for information: families no alert uses, and none a panel shows.
    let unused_by = |path: &str| -> String {
        let names = &used[path];
        let unused: Vec<&str> = families
            .iter()
            .filter(|family| !names.iter().any(|n| of_family(n, family)))
            .map(|f| f.as_str())
            .collect();
        if unused.is_empty() {
            "none".to_owned()
        } else {
            unused.join(", ")
        }
    };
    println!(
        "{} metric names used, all exported; families no alert uses: {}; families no panel \
         shows: {}",
        wanted.len(),
        unused_by(USERS[0]),
        unused_by(USERS[1]),
    );

    s.delete(&s.namespace, "orders").await;
    s.wait_gone(&s.namespace, "orders").await;
    let _ = accounts
        .delete(&account_name, &DeleteParams::default())
        .await;
}

#[test]
fn names_are_found_in_queries_and_prose() {
    let text = "sum(rate(eventbridge_partner_operator_aws_requests_total{outcome!=\"success\"}[5m])) \
                and `eventbridge_partner_operator_leader`.";
    let names: Vec<String> = names_in(text).into_iter().collect();
    assert_eq!(
        names,
        [
            "eventbridge_partner_operator_aws_requests_total",
            "eventbridge_partner_operator_leader"
        ]
    );
    let page = "# TYPE eventbridge_partner_operator_reconciles counter\n\
                eventbridge_partner_operator_reconciles_total{result=\"ready\"} 1\n\
                # HELP other x\nother_metric 2\n";
    let names: Vec<String> = exported(page).into_iter().collect();
    assert_eq!(
        names,
        [
            "eventbridge_partner_operator_reconciles",
            "eventbridge_partner_operator_reconciles_total"
        ]
    );
    let family = "eventbridge_partner_operator_objects";
    assert!(of_family("eventbridge_partner_operator_objects", family));
    assert!(of_family(
        "eventbridge_partner_operator_objects_total",
        family
    ));
    assert!(!of_family(
        "eventbridge_partner_operator_objects_by_reason",
        family
    ));
}
