#!/usr/bin/env python3
"""Builds the operator's Grafana dashboard with Grafana's foundation SDK.

The dashboard's JSON is written to deploy/grafana-dashboard.json (to import by hand) and to
the chart's files/dashboards/ (shipped as a ConfigMap with `grafanaDashboard.enabled`). Both
are generated: edit this file, run `make dashboard`, and commit the result. A test
(tests/packaging/dashboard.rs) fails when either file differs from this script's output, and
checks the dashboard's shape (unique panel ids, the datasource variable on every panel, a
unit on every graph, only metric names the operator exports).

    hack/dashboard.py            rewrite both files
    hack/dashboard.py --stdout   print the JSON instead

The SDK is a pinned Python package (`make python-deps`).
"""

import json
import pathlib
import sys

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUTS = [
    ROOT / "deploy/grafana-dashboard.json",
    ROOT / "charts/eventbridge-partner-operator/files/dashboards/eventbridge-partner-operator.json",
]

M = "eventbridge_partner_operator_"
# Every panel queries the data source the viewer picks.
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
# The series of the installation the viewer picks (the ServiceMonitor's job label).
JOB = 'job=~"$job"'
NAMESPACE = f'{JOB}, namespace=~"$namespace"'
BUDGET = f'{JOB}, account=~"$account", region=~"$region"'


_ids = iter(range(1, 1000))


def next_id():
    """Panel ids in the order the panels are added: unique, as Grafana's links need."""
    return next(_ids)


def query(expr, legend, ref="A"):
    """A Prometheus range query on the chosen data source."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .datasource(DATASOURCE)
    )


def graph(title, description, unit, *queries, stacked=False):
    """A time series panel of `queries`, in `unit`."""
    panel = (
        timeseries.Panel()
        .id(next_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .fill_opacity(10)
        .height(8)
        .span(12)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if stacked:
        panel = panel.stacking(
            common_builder.StackingConfig().mode(common.StackingMode.NORMAL)
        )
    for i, q in enumerate(queries):
        panel = panel.with_target(q.ref_id(chr(ord("A") + i)))
    return panel


def single(title, description, unit, expr, red_above):
    """A stat panel: one number, red from `red_above` on."""
    return (
        stat.Panel()
        .id(next_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(4)
        .span(6)
        .thresholds(
            db.ThresholdsConfig()
            .mode(model.ThresholdsMode.ABSOLUTE)
            .steps(
                [
                    model.Threshold(value=None, color="green"),
                    model.Threshold(value=red_above, color="red"),
                ]
            )
        )
        .with_target(query(expr, title).instant())
    )


def label_variable(name, label, metric, description):
    """A multi-value variable of one label's values, `All` by default; below the job
    variable, only the chosen jobs' values."""
    selector = "" if name == "job" else f"{{{JOB}}}"
    return (
        db.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(f"label_values({M}{metric}{selector}, {name})")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(text="All", value="$__all", selected=True))
    )


def quantiles(metric, by, selector=JOB):
    """p50, p90 and p99 of a histogram, per `by`."""
    group = f"{by}, le" if by else "le"
    return [
        query(
            f"histogram_quantile({q}, sum by ({group}) "
            f"(rate({M}{metric}_bucket{{{selector}}}[$__rate_interval])))",
            f"p{int(q * 100)}" + (f" {{{{{by}}}}}" if by else ""),
        )
        for q in (0.5, 0.9, 0.99)
    ]


def objects_row(d):
    """What the objects are doing: Ready reasons, AWS states, the backlog, expiry."""
    d = d.with_row(db.Row("Objects").id(next_id()))
    d = d.with_panel(
        single(
            "Objects not Ready",
            "PartnerEventSource objects whose Ready condition is not True, in the chosen "
            "namespaces (Creating and Retrying included).",
            "short",
            f'sum(max by (namespace, ready, reason) ({M}objects_by_reason{{{NAMESPACE}, ready!="True"}}))',
            1,
        )
    )
    d = d.with_panel(
        single(
            "Oldest in Creating",
            "Age of the oldest object still waiting for its first AWS answer: the creation "
            "backlog (alert PartnerEventSourceBacklog).",
            "s",
            f'max({M}objects_oldest_reason_seconds{{{NAMESPACE}, reason="Creating"}})',
            300,
        )
    )
    d = d.with_panel(
        single(
            "Expiring within a day",
            "Pending sources AWS deletes within a day unless their customer activates them "
            "(alert PartnerEventSourceExpiringSoon).",
            "short",
            f"max({M}sources_expiring_soon{{{JOB}}})",
            1,
        )
    )
    d = d.with_panel(
        single(
            "Replicas leading",
            "Replicas that hold the leader lease; exactly one should (alert "
            "EventBridgePartnerOperatorNoLeader).",
            "short",
            f"sum({M}leader{{{JOB}}})",
            2,
        )
    )
    d = d.with_panel(
        graph(
            "Objects by Ready reason",
            "PartnerEventSource objects by Ready status and reason over time (docs/runbook.md "
            "says what each reason asks of a person).",
            "short",
            query(
                f"sum by (ready, reason) (max by (namespace, ready, reason) "
                f"({M}objects_by_reason{{{NAMESPACE}}}))",
                "{{ready}} {{reason}}",
            ),
            stacked=True,
        )
    )
    d = d.with_panel(
        graph(
            "Objects by AWS state",
            "PartnerEventSource objects by the state AWS reports: PENDING until the customer "
            "activates the source, then ACTIVE.",
            "short",
            query(f"max by (state) ({M}objects_by_state{{{JOB}}})", "{{state}}"),
            stacked=True,
        )
    )
    d = d.with_panel(
        graph(
            "Creation backlog",
            "Objects in Creating (waiting for their first AWS answer), per namespace.",
            "short",
            query(
                f'max by (namespace) ({M}objects_by_reason{{{NAMESPACE}, reason="Creating"}})',
                "{{namespace}}",
            ),
        )
    )
    return d.with_panel(
        graph(
            "Oldest object per Ready reason",
            "Seconds since the Ready condition of the oldest object with each reason last "
            "changed (alerts PartnerEventSourceRetryingTooLong and PartnerEventSourceBacklog).",
            "s",
            query(
                f"max by (namespace, reason) ({M}objects_oldest_reason_seconds{{{NAMESPACE}}})",
                "{{namespace}} {{reason}}",
            ),
        )
    )


def aws_row(d):
    """What the operator asks of AWS: calls, errors, latency, the budget and resyncs."""
    d = d.with_row(db.Row("AWS").id(next_id()))
    d = d.with_panel(
        graph(
            "AWS calls by operation and outcome",
            "EventBridge calls per second by operation and outcome (success or the AWS error "
            "code).",
            "reqps",
            query(
                f"sum by (operation, outcome) (rate({M}aws_requests_total{{{JOB}}}[$__rate_interval]))",
                "{{operation}} {{outcome}}",
            ),
        )
    )
    d = d.with_panel(
        graph(
            "AWS error share by operation",
            "Share of EventBridge calls that failed, by operation; ResourceAlreadyExists and "
            "ResourceNotFound answers are expected and not counted (alert "
            "EventBridgeErrorRateHigh).",
            "percentunit",
            query(
                f"sum by (operation) (rate({M}aws_requests_total{{{JOB}, "
                f'outcome!~"success|ResourceAlreadyExistsException|ResourceNotFoundException"}}'
                f"[$__rate_interval])) / sum by (operation) "
                f"(rate({M}aws_requests_total{{{JOB}}}[$__rate_interval]))",
                "{{operation}}",
            ),
        )
    )
    d = d.with_panel(
        graph(
            "AWS call latency",
            "EventBridge call latency quantiles by operation.",
            "s",
            *quantiles("aws_request_duration_seconds", "operation"),
        )
    )
    d = d.with_panel(
        graph(
            "Budget rate vs. configured",
            "EventBridge calls per second allowed now, per AWS account and region, against "
            "the configured rate; below it while AWS throttles (alert EventBridgeThrottled).",
            "reqps",
            query(
                f"max by (account, region) ({M}aws_budget_rate{{{BUDGET}}})",
                "now {{account}} {{region}}",
            ),
            query(
                f"max by (account, region) ({M}aws_budget_configured_rate{{{BUDGET}}})",
                "configured {{account}} {{region}}",
            ),
        )
    )
    d = d.with_panel(
        graph(
            "Resync interval",
            "Effective seconds between two checks of one Ready object, per AWS account and "
            "region: the configured interval, stretched when the objects outgrow the resync "
            "budget.",
            "s",
            query(
                f"max by (account, region) ({M}resync_interval_seconds{{{BUDGET}}})",
                "{{account}} {{region}}",
            ),
        )
    )
    return d.with_panel(
        graph(
            "Resyncs deferred",
            "Resync passes put off per second because the resync share of the budget was "
            "spent; new objects are never put off.",
            "ops",
            query(
                f"sum(rate({M}resyncs_deferred_total{{{JOB}}}[$__rate_interval]))",
                "deferred",
            ),
        )
    )


def operator_row(d):
    """The operator itself: leadership, passes, errors, watches, PartnerAccounts."""
    d = d.with_row(db.Row("Operator").id(next_id()))
    d = d.with_panel(
        graph(
            "Reconcile passes by result",
            "Reconcile passes per second by how they ended; `error` is a Kubernetes API "
            "failure, retried with backoff.",
            "ops",
            query(
                f"sum by (result) (rate({M}reconciles_total{{{JOB}}}[$__rate_interval]))",
                "{{result}}",
            ),
            stacked=True,
        )
    )
    d = d.with_panel(
        graph(
            "Reconcile duration",
            "Time one reconcile pass took, AWS calls and budget waits included.",
            "s",
            *quantiles("reconcile_duration_seconds", ""),
        )
    )
    d = d.with_panel(
        graph(
            "Leader per replica",
            "1 on the replica that holds the leader lease.",
            "short",
            query(f"max by (instance) ({M}leader{{{JOB}}})", "{{instance}}"),
        )
    )
    d = d.with_panel(
        graph(
            "Watches healthy",
            "1 while the leader's watch of each resource is synced and not failing; 0 turns "
            "/readyz to 503.",
            "short",
            query(f"min by (resource) ({M}watch_healthy{{{JOB}}})", "{{resource}}"),
        )
    )
    return d.with_panel(
        graph(
            "PartnerAccounts ready",
            "1 while a PartnerAccount's identity works (its role can be assumed), 0 otherwise "
            "(alert PartnerAccountNotReady).",
            "short",
            query(
                f'min by (partner_account) ({M}partner_account_ready{{{JOB}, partner_account=~"$partner_account"}})',
                "{{partner_account}}",
            ),
        )
    )


def build():
    """The dashboard, as the SDK's model."""
    d = (
        db.Dashboard("EventBridge partner operator")
        .uid("eventbridge-partner-operator")
        .description(
            "PartnerEventSource objects, the EventBridge calls made for them and the "
            "operator's own health. Alerts and what to do: docs/runbook.md."
        )
        .tags(["eventbridge", "kubernetes-operator"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(
            db.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            label_variable(
                "job", "Job", "leader", "The scrape job of one operator installation."
            )
        )
        .with_variable(
            label_variable(
                "namespace",
                "Namespace",
                "objects_by_reason",
                "Namespaces of the PartnerEventSource objects (object panels).",
            )
        )
        .with_variable(
            label_variable(
                "partner_account",
                "PartnerAccount",
                "partner_account_ready",
                "PartnerAccount objects (the PartnerAccounts panel).",
            )
        )
        .with_variable(
            label_variable(
                "account",
                "AWS account",
                "aws_budget_rate",
                "The AWS account a budget belongs to (budget and resync panels).",
            )
        )
        .with_variable(
            label_variable(
                "region",
                "Region",
                "aws_budget_rate",
                "The AWS region a budget belongs to (budget and resync panels).",
            )
        )
    )
    d = operator_row(aws_row(objects_row(d)))
    return d.build()


def render():
    """The dashboard's JSON, as committed."""
    return json.dumps(build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main():
    text = render()
    if sys.argv[1:] == ["--stdout"]:
        sys.stdout.write(text)
        return
    if sys.argv[1:]:
        sys.exit("usage: hack/dashboard.py [--stdout]")
    for path in OUTPUTS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
