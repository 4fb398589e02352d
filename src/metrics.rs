//! Prometheus metrics, one family per concern, served at `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Prefix of every metric the operator exports.
const PREFIX: &str = "eventbridge_partner_operator";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    account: String,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadyLabels {
    ready: String,
}

/// An object's place in the `Ready` breakdown.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The object's namespace.
    pub namespace: String,
    /// `Ready`'s status (`True`, `False`, `Unknown` before the first status).
    pub ready: String,
    /// `Ready`'s reason (`None` before the first status).
    pub reason: String,
}

/// A namespace and a `Ready` reason, for the age of the oldest object with it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct AgeLabels {
    /// The objects' namespace.
    pub namespace: String,
    /// `Ready`'s reason.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    partner_account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// How many objects the operator sees, by `Ready` status and by AWS state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectCounts {
    /// Count per `Ready` condition status (`True`, `False`, `Unknown` when not reported yet).
    pub by_ready: Vec<(String, i64)>,
    /// Count per `status.state` (`PENDING`, `ACTIVE`, `DELETED`, `Unknown`).
    pub by_state: Vec<(String, i64)>,
    /// Pending sources whose `expirationTime` is within a day.
    pub expiring_soon: i64,
    /// Count per namespace, `Ready` status and `Ready` reason.
    pub by_reason: Vec<(ReasonLabels, i64)>,
    /// Per namespace and `Ready` reason, the seconds since the `Ready` condition of the
    /// oldest object with that reason last changed status.
    pub oldest_by_reason: Vec<(AgeLabels, f64)>,
    /// Per PartnerAccount, whether its `Ready` condition is `True`.
    pub partner_accounts: Vec<(String, bool)>,
}

/// Registers `metric` under `name` and returns it (metrics are shared handles).
fn add<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
    metric
}

/// A gauge family of floating-point values per budget.
type F64Family = Family<BudgetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>;
/// The budget and expiry families: the effective resync interval, the rate and the configured
/// rate per budget, deferred resyncs, sources expiring within a day.
type ScaleMetrics = (F64Family, F64Family, F64Family, Counter, Gauge);

fn scale_metrics(r: &mut Registry) -> ScaleMetrics {
    let resync_interval = add(
        r,
        "resync_interval_seconds",
        "Effective interval between resyncs of one Ready object, by AWS account and \
         region: the configured one, stretched when the objects outgrow the resync budget",
        Family::default(),
    );
    let budget_rate = add(
        r,
        "aws_budget_rate",
        "EventBridge calls per second allowed now, by AWS account and region (lowered \
         while AWS throttles)",
        Family::default(),
    );
    let configured_rate = add(
        r,
        "aws_budget_configured_rate",
        "EventBridge calls per second configured, by AWS account and region: the ceiling \
         aws_budget_rate returns to once AWS stops throttling",
        Family::default(),
    );
    let resyncs_deferred = add(
        r,
        "resyncs_deferred",
        "Resync passes put off because the resync share of the budget was spent",
        Counter::default(),
    );
    let expiring_soon = add(
        r,
        "sources_expiring_soon",
        "Pending partner event sources that AWS expires within a day unless their \
         customer activates them",
        Gauge::default(),
    );
    (
        resync_interval,
        budget_rate,
        configured_rate,
        resyncs_deferred,
        expiring_soon,
    )
}

/// The breakdowns a person acts on, set from the caches at scrape time: objects by namespace
/// and `Ready` reason, the age of the oldest object per reason, PartnerAccounts ready.
type BreakdownMetrics = (
    Family<ReasonLabels, Gauge>,
    Family<AgeLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    Family<AccountLabels, Gauge>,
);

fn breakdown_metrics(r: &mut Registry) -> BreakdownMetrics {
    let by_reason = add(
        r,
        "objects_by_reason",
        "PartnerEventSource objects by namespace, Ready condition status and Ready reason \
         (reason None before the first status)",
        Family::default(),
    );
    let oldest = add(
        r,
        "objects_oldest_reason_seconds",
        "Seconds since the Ready condition of the oldest object with this Ready reason, in \
         this namespace, last changed status (reason Creating: the creation backlog)",
        Family::default(),
    );
    let accounts = add(
        r,
        "partner_account_ready",
        "1 while the PartnerAccount's Ready condition is True (its identity works), else 0",
        Family::default(),
    );
    (by_reason, oldest, accounts)
}

/// Whether this process leads, and whether its watches are healthy.
fn process_metrics(r: &mut Registry) -> (Gauge, Family<ResourceLabels, Gauge>) {
    let leader = add(
        r,
        "leader",
        "1 while this process holds the leader lease and reconciles, else 0",
        Gauge::default(),
    );
    let watch_healthy = add(
        r,
        "watch_healthy",
        "1 while the leader's watch of a resource has synced and is not failing for \
         longer than its grace period, else 0 (the watch is retried; /readyz answers 503)",
        Family::default(),
    );
    (leader, watch_healthy)
}

/// The operator's metrics registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    aws_requests: Family<AwsLabels, Counter>,
    aws_duration: Family<OperationLabels, Histogram>,
    objects_ready: Family<ReadyLabels, Gauge>,
    objects_state: Family<StateLabels, Gauge>,
    leader: Gauge,
    watch_healthy: Family<ResourceLabels, Gauge>,
    resync_interval: F64Family,
    budget_rate: F64Family,
    configured_rate: F64Family,
    objects_reason: Family<ReasonLabels, Gauge>,
    oldest_reason: Family<AgeLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    account_ready: Family<AccountLabels, Gauge>,
    resyncs_deferred: Counter,
    expiring_soon: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric family.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix(PREFIX);
        // 1 ms .. ~33 s: a pass is a few AWS calls, but may wait on the budget.
        let pass_buckets = || Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let call_buckets = || Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let (resync_interval, budget_rate, configured_rate, resyncs_deferred, expiring_soon) =
            scale_metrics(&mut r);
        let (leader, watch_healthy) = process_metrics(&mut r);
        let (objects_reason, oldest_reason, account_ready) = breakdown_metrics(&mut r);
        Metrics {
            reconciles: add(
                &mut r,
                "reconciles",
                "Reconcile passes by how they ended",
                Family::default(),
            ),
            reconcile_duration: add(
                &mut r,
                "reconcile_duration_seconds",
                "Time one reconcile pass took, AWS calls and budget waits included",
                pass_buckets(),
            ),
            aws_requests: add(
                &mut r,
                "aws_requests",
                "EventBridge calls by operation and outcome (success or the AWS error code)",
                Family::default(),
            ),
            aws_duration: add(
                &mut r,
                "aws_request_duration_seconds",
                "Latency of EventBridge calls by operation",
                Family::new_with_constructor(call_buckets),
            ),
            objects_ready: add(
                &mut r,
                "objects",
                "PartnerEventSource objects by Ready condition status",
                Family::default(),
            ),
            objects_state: add(
                &mut r,
                "objects_by_state",
                "PartnerEventSource objects by partner event source state in AWS",
                Family::default(),
            ),
            leader,
            watch_healthy,
            resync_interval,
            budget_rate,
            configured_rate,
            objects_reason,
            oldest_reason,
            account_ready,
            resyncs_deferred,
            expiring_soon,
            registry: r,
        }
    }

    /// Counts a finished reconcile pass.
    pub fn reconcile(&self, result: &str, elapsed: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts and times one EventBridge call.
    pub fn aws_call(&self, operation: &str, outcome: &str, elapsed: Duration) {
        self.aws_requests
            .get_or_create(&AwsLabels {
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.aws_duration
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one budget's effective resync interval, and its current and configured rates.
    pub fn set_budget(&self, account: &str, region: &str, resync: Duration, rates: (f64, f64)) {
        let (rate, configured) = rates;
        let labels = BudgetLabels {
            account: account.to_owned(),
            region: region.to_owned(),
        };
        self.resync_interval
            .get_or_create(&labels)
            .set(resync.as_secs_f64());
        self.budget_rate.get_or_create(&labels).set(rate);
        self.configured_rate.get_or_create(&labels).set(configured);
    }

    /// Counts a resync pass put off for lack of resync budget.
    pub fn resync_deferred(&self) {
        self.resyncs_deferred.inc();
    }

    /// Records whether this process leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Records whether the watch of `resource` is healthy.
    pub fn set_watch_healthy(&self, resource: &str, healthy: bool) {
        self.watch_healthy
            .get_or_create(&ResourceLabels {
                resource: resource.to_owned(),
            })
            .set(i64::from(healthy));
    }

    /// Renders the registry in the Prometheus text format, with the object gauges set from
    /// `objects` first (they are a view of the cache, computed at scrape time).
    pub fn render(&self, objects: &ObjectCounts) -> String {
        self.objects_ready.clear();
        for (ready, n) in &objects.by_ready {
            self.objects_ready
                .get_or_create(&ReadyLabels {
                    ready: ready.clone(),
                })
                .set(*n);
        }
        self.objects_state.clear();
        for (state, n) in &objects.by_state {
            self.objects_state
                .get_or_create(&StateLabels {
                    state: state.clone(),
                })
                .set(*n);
        }
        self.expiring_soon.set(objects.expiring_soon);
        self.set_breakdowns(objects);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The scrape-time breakdowns: gone objects, reasons and accounts leave no series behind.
    fn set_breakdowns(&self, objects: &ObjectCounts) {
        self.objects_reason.clear();
        for (labels, n) in &objects.by_reason {
            self.objects_reason.get_or_create(labels).set(*n);
        }
        self.oldest_reason.clear();
        for (labels, seconds) in &objects.oldest_by_reason {
            self.oldest_reason.get_or_create(labels).set(*seconds);
        }
        self.account_ready.clear();
        for (name, ready) in &objects.partner_accounts {
            self.account_ready
                .get_or_create(&AccountLabels {
                    partner_account: name.clone(),
                })
                .set(i64::from(*ready));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(namespace: &str, ready: &str, reason: &str) -> ReasonLabels {
        ReasonLabels {
            namespace: namespace.into(),
            ready: ready.into(),
            reason: reason.into(),
        }
    }

    fn age(namespace: &str, reason: &str) -> AgeLabels {
        AgeLabels {
            namespace: namespace.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn renders_every_family_with_its_labels() {
        let m = Metrics::new();
        m.reconcile("ready", Duration::from_millis(3));
        m.aws_call(
            "CreatePartnerEventSource",
            "ThrottlingException",
            Duration::from_millis(2),
        );
        m.aws_call(
            "CreatePartnerEventSource",
            "success",
            Duration::from_millis(2),
        );
        m.set_leader(true);
        m.set_budget(
            "default",
            "eu-west-1",
            Duration::from_secs(600),
            (25.0, 50.0),
        );
        m.resync_deferred();
        let text = m.render(&ObjectCounts {
            by_ready: vec![("True".into(), 2)],
            by_state: vec![("PENDING".into(), 2)],
            expiring_soon: 1,
            by_reason: vec![(reason("tenants", "False", "Retrying"), 3)],
            oldest_by_reason: vec![(age("tenants", "Retrying"), 90.0)],
            partner_accounts: vec![("acme".into(), true), ("beta".into(), false)],
        });
        for line in [
            "eventbridge_partner_operator_reconciles_total{result=\"ready\"} 1",
            "eventbridge_partner_operator_aws_requests_total{operation=\"CreatePartnerEventSource\",outcome=\"ThrottlingException\"} 1",
            "eventbridge_partner_operator_aws_requests_total{operation=\"CreatePartnerEventSource\",outcome=\"success\"} 1",
            "eventbridge_partner_operator_objects{ready=\"True\"} 2",
            "eventbridge_partner_operator_objects_by_state{state=\"PENDING\"} 2",
            "eventbridge_partner_operator_leader 1",
            "eventbridge_partner_operator_sources_expiring_soon 1",
            "eventbridge_partner_operator_resync_interval_seconds{account=\"default\",region=\"eu-west-1\"} 600.0",
            "eventbridge_partner_operator_aws_budget_rate{account=\"default\",region=\"eu-west-1\"} 25.0",
            "eventbridge_partner_operator_aws_budget_configured_rate{account=\"default\",region=\"eu-west-1\"} 50.0",
            "eventbridge_partner_operator_objects_by_reason{namespace=\"tenants\",ready=\"False\",reason=\"Retrying\"} 3",
            "eventbridge_partner_operator_objects_oldest_reason_seconds{namespace=\"tenants\",reason=\"Retrying\"} 90.0",
            "eventbridge_partner_operator_partner_account_ready{partner_account=\"acme\"} 1",
            "eventbridge_partner_operator_partner_account_ready{partner_account=\"beta\"} 0",
            "eventbridge_partner_operator_resyncs_deferred_total 1",
            "eventbridge_partner_operator_reconcile_duration_seconds_count 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn object_gauges_follow_the_latest_counts() {
        let m = Metrics::new();
        m.render(&ObjectCounts {
            by_ready: vec![("False".into(), 1)],
            by_reason: vec![(reason("gone", "False", "Retrying"), 1)],
            oldest_by_reason: vec![(age("gone", "Retrying"), 5.0)],
            partner_accounts: vec![("deleted".into(), true)],
            ..ObjectCounts::default()
        });
        let text = m.render(&ObjectCounts {
            by_ready: vec![("True".into(), 1)],
            ..ObjectCounts::default()
        });
        for stale in [
            "ready=\"False\"",
            "namespace=\"gone\"",
            "partner_account=\"deleted\"",
        ] {
            assert!(!text.contains(stale), "{stale} is still rendered:\n{text}");
        }
    }
}
