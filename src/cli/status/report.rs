//! What `status` says about one object, decided from plain values: the object, its Events,
//! its partner account's verdict and AWS's own view. Nothing here does I/O; the text and JSON
//! forms are renderings of one [`Report`].

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde::Serialize;

use super::advice::what_to_do;
use crate::aws::partner_api::SourceAccount;
use crate::resources::conditions::{ConditionStatus, READY, Reason};
use crate::resources::{PartnerEventSource, SourceState};

/// Everything `status` shows about one object.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    /// `namespace/name`.
    pub object: String,
    /// The spec, with the region a pass would use.
    pub spec: SpecView,
    /// What the status records.
    pub status: StatusView,
    /// The conditions, each with the README's advice for its reason.
    pub conditions: Vec<ConditionView>,
    /// The most recent Events about the object, oldest first.
    pub events: Vec<EventView>,
    /// The partner account the object resolves to, and the grant's verdict.
    pub partner_account: AccountView,
    /// The request budget the object's AWS calls draw from, when its identity is known.
    pub budget: Option<BudgetView>,
    /// AWS's own view of the source.
    pub aws: AwsView,
    /// Where the status and AWS disagree.
    pub differences: Vec<String>,
    /// `Ready=True` and no difference: nothing for a person to do.
    pub healthy: bool,
}

/// The spec as `status` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SpecView {
    /// `spec.name`.
    pub name: String,
    /// `spec.account`.
    pub account: String,
    /// The region a pass uses: the spec's, the partner account's, the operator's.
    pub region: Option<String>,
    /// `deletionPolicy / managementPolicy / onExpiry`, as set (empty: the default).
    pub policies: String,
    /// The paused annotation is set.
    pub paused: bool,
}

/// The status as `status` shows it.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusView {
    /// The source's ARN.
    pub arn: Option<String>,
    /// The source's state for `spec.account`.
    pub state: Option<String>,
    /// When a pending source expires.
    pub expiration_time: Option<String>,
    /// The generation the status describes, and the object's.
    pub observed_generation: Option<i64>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
}

/// One condition, with what to do about it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConditionView {
    /// The condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The reason.
    pub reason: String,
    /// The message.
    pub message: String,
    /// When the status last changed.
    pub since: String,
    /// The README's advice for the reason.
    pub what_to_do: Option<String>,
}

/// One Event.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventView {
    /// When it last happened.
    pub time: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Why.
    pub reason: String,
    /// What it says.
    pub message: String,
}

/// The object's partner account and whether its grant permits the object.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountView {
    /// Which identity the object acts with, and why.
    pub resolution: String,
    /// The account's own `Ready` condition, when one applies.
    pub ready: Option<String>,
    /// The grant's verdict: `permitted`, or the rule broken.
    pub grant: String,
}

/// The budget a call of the object draws from.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BudgetView {
    /// The AWS account the calls are made as.
    pub account: String,
    /// The region.
    pub region: String,
    /// Calls per second configured.
    pub rate: f64,
}

/// AWS's own view of the source, from read-only calls.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "checked")]
pub(crate) enum AwsView {
    /// AWS was not asked, or could not answer: why.
    #[serde(rename = "false")]
    NotChecked {
        /// Why.
        why: String,
    },
    /// What `DescribePartnerEventSource` and `ListPartnerEventSourceAccounts` answered.
    #[serde(rename = "true")]
    Checked(AwsSource),
}

/// What AWS says about the source's name.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AwsSource {
    /// The source's ARN; `None`: no source of that name.
    pub arn: Option<String>,
    /// Every account the source is shared with, and its state there.
    pub accounts: Vec<AwsAccount>,
}

/// One account of a source, as AWS lists it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AwsAccount {
    /// The customer account.
    pub account: String,
    /// Its state (`PENDING`, `ACTIVE`, `DELETED`).
    pub state: Option<String>,
}

impl AwsSource {
    /// AWS's answer: the ARN (`None` when the name is unknown) and the source's accounts.
    pub(crate) fn new(arn: Option<String>, accounts: &[SourceAccount]) -> Self {
        let accounts = accounts
            .iter()
            .map(|a| AwsAccount {
                account: a.account.clone(),
                state: a.state.as_ref().map(|s| s.as_str().to_owned()),
            })
            .collect();
        AwsSource { arn, accounts }
    }
}

/// What the I/O side learned, for [`assess`].
pub(crate) struct Facts<'a> {
    /// The object, as the API server has it.
    pub object: &'a PartnerEventSource,
    /// Its Events, in any order.
    pub events: &'a [Event],
    /// The region a pass would use.
    pub region: Option<String>,
    /// The partner account's resolution and verdict.
    pub account: AccountView,
    /// The budget, when the identity's account is known.
    pub budget: Option<BudgetView>,
    /// AWS's view.
    pub aws: AwsView,
    /// How many Events to keep.
    pub last_events: usize,
}

/// The report about one object.
pub(crate) fn assess(facts: Facts<'_>) -> Report {
    let obj = facts.object;
    let st = obj.status.as_ref();
    let status = StatusView {
        arn: st.and_then(|s| s.arn.clone()),
        state: st
            .and_then(|s| s.state.as_ref())
            .map(|s| s.as_str().to_owned()),
        expiration_time: st
            .and_then(|s| s.expiration_time.as_ref())
            .map(|t| t.0.to_string()),
        observed_generation: st.and_then(|s| s.observed_generation),
        generation: obj.metadata.generation,
    };
    let differences = match &facts.aws {
        AwsView::Checked(aws) => differences(obj, aws),
        AwsView::NotChecked { .. } => vec![],
    };
    let ready = obj
        .condition(READY)
        .is_some_and(|c| c.status == ConditionStatus::True);
    Report {
        object: format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
        spec: spec_view(obj, facts.region),
        status,
        conditions: st
            .map(|s| s.conditions.iter().map(condition_view).collect())
            .unwrap_or_default(),
        events: last_events(facts.events, facts.last_events),
        partner_account: facts.account,
        budget: facts.budget,
        aws: facts.aws,
        healthy: ready && differences.is_empty(),
        differences,
    }
}

fn spec_view(obj: &PartnerEventSource, region: Option<String>) -> SpecView {
    let spec = &obj.spec;
    let policy = |p: Option<String>| p.unwrap_or_else(|| "(default)".into());
    SpecView {
        name: spec.name.clone(),
        account: spec.account.clone(),
        region,
        policies: format!(
            "deletionPolicy {}, managementPolicy {}, onExpiry {}",
            policy(spec.deletion_policy.map(|p| format!("{p:?}"))),
            policy(spec.management_policy.map(|p| format!("{p:?}"))),
            policy(spec.on_expiry.map(|p| format!("{p:?}"))),
        ),
        paused: obj.paused(),
    }
}

fn condition_view(c: &Condition) -> ConditionView {
    ConditionView {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        since: c.last_transition_time.0.to_string(),
        what_to_do: Reason::parse(&c.reason)
            .and_then(|r| what_to_do(&c.type_, r))
            .map(str::to_owned),
    }
}

/// The `n` most recent Events, oldest first.
fn last_events(events: &[Event], n: usize) -> Vec<EventView> {
    let time = |e: &Event| {
        e.event_time
            .as_ref()
            .map(|t| t.0)
            .or_else(|| {
                e.series
                    .as_ref()
                    .and_then(|s| s.last_observed_time.as_ref())
                    .map(|t| t.0)
            })
            .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
            .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
    };
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| time(e));
    let skip = sorted.len().saturating_sub(n);
    sorted
        .into_iter()
        .skip(skip)
        .map(|e| EventView {
            time: time(e).map(|t| t.to_string()).unwrap_or_default(),
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
        })
        .collect()
}

/// Where the status and AWS disagree: a source missing in AWS, held for another account, with
/// another ARN or in another state.
pub(crate) fn differences(obj: &PartnerEventSource, aws: &AwsSource) -> Vec<String> {
    let (spec, st) = (&obj.spec, obj.status.as_ref());
    let recorded_arn = st.and_then(|s| s.arn.as_deref());
    let Some(arn) = aws.arn.as_deref() else {
        return match recorded_arn {
            Some(recorded) => vec![format!(
                "source missing in AWS: the status records {recorded}, AWS has no source named {}",
                spec.name
            )],
            None => vec![],
        };
    };
    let mut found = Vec::new();
    match recorded_arn {
        Some(recorded) if recorded != arn => found.push(format!(
            "other ARN: the status records {recorded}, AWS answers {arn}"
        )),
        None => found.push(format!(
            "AWS has the source ({arn}) but the status records no ARN"
        )),
        _ => {}
    }
    let Some(entry) = aws.accounts.iter().find(|a| a.account == spec.account) else {
        let others: Vec<&str> = aws.accounts.iter().map(|a| a.account.as_str()).collect();
        found.push(format!(
            "other account: AWS shares the source with {}, not spec.account {}",
            if others.is_empty() {
                "no account".to_owned()
            } else {
                others.join(", ")
            },
            spec.account
        ));
        return found;
    };
    let recorded_state = st.and_then(|s| s.state.as_ref()).map(SourceState::as_str);
    if recorded_state.is_some() && recorded_state != entry.state.as_deref() {
        found.push(format!(
            "other state: the status records {}, AWS answers {}",
            recorded_state.unwrap_or("none"),
            entry.state.as_deref().unwrap_or("none")
        ));
    }
    found
}

/// The report as text, in sections.
pub(crate) fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let line = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "  {label:<15} {value}");
    };
    let _ = writeln!(out, "PartnerEventSource {}", r.object);
    line(&mut out, "Source", &r.spec.name);
    line(&mut out, "Account", &r.spec.account);
    line(
        &mut out,
        "Region",
        r.spec.region.as_deref().unwrap_or("(none)"),
    );
    line(&mut out, "Policies", &r.spec.policies);
    line(&mut out, "Paused", if r.spec.paused { "yes" } else { "no" });
    out.push_str("Status\n");
    line(&mut out, "ARN", r.status.arn.as_deref().unwrap_or("(none)"));
    line(
        &mut out,
        "State",
        r.status.state.as_deref().unwrap_or("(unknown)"),
    );
    if let Some(t) = &r.status.expiration_time {
        line(&mut out, "Expires", t);
    }
    let generation = |g: Option<i64>| g.map_or("-".to_owned(), |g| g.to_string());
    let generations = format!(
        "{} of {}",
        generation(r.status.observed_generation),
        generation(r.status.generation)
    );
    line(&mut out, "Generation", &generations);
    render_conditions(&mut out, r);
    render_events(&mut out, r);
    render_account(&mut out, r);
    render_aws(&mut out, r);
    let verdict = if r.healthy {
        "healthy"
    } else {
        "needs attention"
    };
    let _ = writeln!(out, "Verdict: {verdict}");
    out
}

fn render_conditions(out: &mut String, r: &Report) {
    out.push_str("Conditions\n");
    if r.conditions.is_empty() {
        out.push_str("  (none yet: the operator has not written a status)\n");
    }
    for c in &r.conditions {
        let _ = writeln!(
            out,
            "  {}={} {} (since {}): {}",
            c.type_, c.status, c.reason, c.since, c.message
        );
        if let Some(advice) = &c.what_to_do {
            let _ = writeln!(out, "    what to do: {advice}");
        }
    }
}

fn render_events(out: &mut String, r: &Report) {
    out.push_str("Events\n");
    if r.events.is_empty() {
        out.push_str("  (none)\n");
    }
    for e in &r.events {
        let _ = writeln!(out, "  {} {} {}: {}", e.time, e.type_, e.reason, e.message);
    }
}

fn render_account(out: &mut String, r: &Report) {
    out.push_str("Partner account\n");
    let _ = writeln!(out, "  {:<15} {}", "Identity", r.partner_account.resolution);
    if let Some(ready) = &r.partner_account.ready {
        let _ = writeln!(out, "  {:<15} {ready}", "Ready");
    }
    let _ = writeln!(out, "  {:<15} {}", "Grant", r.partner_account.grant);
    match &r.budget {
        Some(b) => {
            let _ = writeln!(
                out,
                "  {:<15} AWS account {} in {}, {} calls/s configured",
                "Budget", b.account, b.region, b.rate
            );
        }
        None => {
            let _ = writeln!(out, "  {:<15} (not known without the identity)", "Budget");
        }
    }
}

fn render_aws(out: &mut String, r: &Report) {
    out.push_str("AWS (read-only: DescribePartnerEventSource, ListPartnerEventSourceAccounts)\n");
    match &r.aws {
        AwsView::NotChecked { why } => {
            let _ = writeln!(out, "  not checked: {why}");
        }
        AwsView::Checked(aws) => {
            let arn = aws.arn.as_deref().unwrap_or("(no source of this name)");
            let _ = writeln!(out, "  {:<15} {arn}", "ARN");
            for a in &aws.accounts {
                let state = a.state.as_deref().unwrap_or("(unknown)");
                let _ = writeln!(out, "  {:<15} {} {state}", "Account", a.account);
            }
            if r.differences.is_empty() {
                out.push_str("  the status agrees with AWS\n");
            }
            for d in &r.differences {
                let _ = writeln!(out, "  DIFFERENCE: {d}");
            }
        }
    }
}

/// One line of `--all-namespaces`: an object and its `Ready` condition.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Row {
    /// `namespace/name`.
    pub object: String,
    /// `Ready`'s status (`Unknown` before the first status).
    pub ready: String,
    /// `Ready`'s reason.
    pub reason: String,
    /// `Ready`'s message.
    pub message: String,
}

/// The rows of `objects`, sorted; with `not_ready`, only those whose `Ready` is not `True`.
pub(crate) fn rows(objects: &[PartnerEventSource], not_ready: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = objects
        .iter()
        .map(|o| {
            let ready = o.condition(READY);
            Row {
                object: format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()),
                ready: ready.map_or(ConditionStatus::Unknown.as_str().to_owned(), |c| {
                    c.status.clone()
                }),
                reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
                message: ready.map(|c| c.message.clone()).unwrap_or_default(),
            }
        })
        .filter(|row| !not_ready || row.ready != ConditionStatus::True)
        .collect();
    rows.sort_by(|a, b| a.object.cmp(&b.object));
    rows
}

/// The rows as a table.
pub(crate) fn render_rows(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.object.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!(
        "{:<width$}  {:<7}  {:<22}  MESSAGE\n",
        "OBJECT", "READY", "REASON"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<width$}  {:<7}  {:<22}  {}",
            r.object, r.ready, r.reason, r.message
        );
    }
    out
}

#[cfg(test)]
mod tests;
