//! The reconcile shell: reads what a pass needs from the cluster, runs [`crate::sync`]'s
//! `apply` or `cleanup` against EventBridge, and writes the outcome back (status, Events,
//! finalizer, requeue).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use tracing::{Instrument, info, info_span, warn};

use crate::backoff::{FailureCounts, retry_delay};
use crate::error::Error;
use crate::eventbridge::EventBridge;
use crate::metrics::{Metrics, ObjectCounts};
use crate::ownership::{Claim, Ownership, ownership};
use crate::partner_api::Counted;
use crate::reason::READY;
use crate::resource::{PartnerEventSource, PartnerEventSourceStatus};
use crate::settings::Settings;
use crate::status::{Note, Observed, Outcome, Requeue};
use crate::sync;

/// The finalizer that keeps an object until its source is dealt with in AWS.
pub const FINALIZER: &str = "eventbridgepartner.dev/finalizer";
/// Field manager of the status the operator writes.
pub const FIELD_MANAGER: &str = "eventbridge-partner-operator";

/// What every reconcile shares.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Every PartnerEventSource the operator watches, for the name-ownership check.
    pub store: Store<PartnerEventSource>,
    /// The EventBridge partner API.
    pub eventbridge: EventBridge,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Reconcile settings.
    pub settings: Settings,
    /// Region for objects whose spec names none.
    pub default_region: Option<String>,
    /// Transient failures in a row, by object UID, for per-object backoff.
    failures: FailureCounts,
}

impl Context {
    /// Assembles the shared context.
    pub fn new(
        client: Client,
        store: Store<PartnerEventSource>,
        eventbridge: EventBridge,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        settings: Settings,
        default_region: Option<String>,
    ) -> Self {
        Context {
            client,
            store,
            eventbridge,
            recorder,
            metrics,
            settings,
            default_region,
            failures: FailureCounts::default(),
        }
    }

    fn ownership_of(&self, obj: &PartnerEventSource) -> Ownership {
        let claims: Vec<Claim> = self.store.state().iter().map(|o| claim(o)).collect();
        ownership(&claim(obj), &claims)
    }
}

fn claim(obj: &PartnerEventSource) -> Claim {
    Claim {
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        created: obj.meta().creation_timestamp.as_ref().map(|t| t.0),
        source_name: obj.spec.name.clone(),
        holds_source: obj.status.as_ref().is_some_and(|s| s.arn.is_some()),
        valid: obj.spec.validate().is_ok(),
    }
}

/// Counts the watched objects by `Ready` status and AWS state, for the object gauges.
pub fn object_counts(store: &Store<PartnerEventSource>) -> ObjectCounts {
    let mut by_ready: HashMap<String, i64> = HashMap::new();
    let mut by_state: HashMap<String, i64> = HashMap::new();
    for obj in store.state() {
        let ready = obj
            .condition(READY)
            .map_or("Unknown", |c| c.status.as_str());
        *by_ready.entry(ready.to_owned()).or_default() += 1;
        let state = obj
            .status
            .as_ref()
            .and_then(|s| s.state.as_ref())
            .map_or("Unknown", |s| s.as_str());
        *by_state.entry(state.to_owned()).or_default() += 1;
    }
    let mut counts = ObjectCounts {
        by_ready: by_ready.into_iter().collect(),
        by_state: by_state.into_iter().collect(),
    };
    counts.by_ready.sort();
    counts.by_state.sort();
    counts
}

/// Reconciles one object: kube-runtime's finalizer helper adds the finalizer before anything
/// reaches AWS, and runs the cleanup branch once the object is being deleted.
pub async fn reconcile(obj: Arc<PartnerEventSource>, ctx: Arc<Context>) -> Result<Action, Error> {
    // `object` rather than `name`: JSON logs already use `name` for the span's own name.
    let span = info_span!(
        "reconcile",
        namespace = %obj.namespace().unwrap_or_default(),
        object = %obj.name_any(),
        generation = obj.meta().generation.unwrap_or_default(),
    );
    async {
        // Ownership is decided from the cache; wait until it holds every object once.
        ctx.store
            .wait_until_ready()
            .await
            .map_err(|e| Error::Cache(e.to_string()))?;
        let api: Api<PartnerEventSource> =
            Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        finalizer(&api, FINALIZER, obj, |event| async {
            match event {
                FinalizerEvent::Apply(o) => pass(&o, &ctx, &api, false).await,
                FinalizerEvent::Cleanup(o) => pass(&o, &ctx, &api, true).await,
            }
        })
        .await
        .map_err(Error::from_finalizer)
    }
    .instrument(span)
    .await
}

/// One pass: look at the object, run the steps against EventBridge, write the outcome.
async fn pass(
    obj: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
    deleting: bool,
) -> Result<Action, Error> {
    let started = Instant::now();
    let uid = obj.uid().unwrap_or_default();
    let ownership = ctx.ownership_of(obj);
    let observed = Observed {
        spec: &obj.spec,
        generation: obj.meta().generation,
        status: obj.status.as_ref(),
        ownership: &ownership,
        region: obj.spec.region.as_deref().or(ctx.default_region.as_deref()),
        failures: ctx.failures.get(&uid),
        jitter: rand::random(),
        now: Timestamp::now(),
    };
    let aws = Counted::new(&ctx.eventbridge);
    let outcome = if deleting {
        sync::cleanup(&aws, &observed, &ctx.settings).await
    } else {
        sync::apply(&aws, &observed, &ctx.settings).await
    };
    perform(obj, ctx, api, &outcome).await?;
    ctx.failures
        .set(&uid, if outcome.release { 0 } else { outcome.failures });
    ctx.metrics
        .reconcile(outcome.result.as_str(), started.elapsed());
    info!(
        result = outcome.result.as_str(),
        aws_calls = aws.calls(),
        requeue = ?outcome.requeue,
        "reconciled"
    );
    action(deleting, &outcome, &ctx.settings)
}

/// What the controller does next. A cleanup that is not finished is reported as an error,
/// because kube-runtime's finalizer helper keeps the finalizer only when cleanup fails.
fn action(deleting: bool, outcome: &Outcome, settings: &Settings) -> Result<Action, Error> {
    match (deleting && !outcome.release, outcome.requeue) {
        (true, Requeue::After(after)) => Err(Error::DeletePending { after }),
        (true, Requeue::AwaitChange) => Err(Error::DeletePending {
            after: settings.terminal_requeue,
        }),
        (false, Requeue::After(d)) => Ok(Action::requeue(d)),
        (false, Requeue::AwaitChange) => Ok(Action::await_change()),
    }
}

/// Writes the status (only when it changed) and publishes the Events.
async fn perform(
    obj: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
    outcome: &Outcome,
) -> Result<(), Error> {
    if let Some(status) = &outcome.status
        && !outcome.release
        && changed(obj.status.as_ref(), status)
    {
        let patch = serde_json::json!({
            "apiVersion": PartnerEventSource::api_version(&()),
            "kind": PartnerEventSource::kind(&()),
            "status": status,
        });
        api.patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    let reference = obj.object_ref(&());
    for note in &outcome.notes {
        if let Err(e) = ctx.recorder.publish(&event(note), &reference).await {
            // An Event is a courtesy to the reader; never fail the reconcile over one.
            warn!(
                reason = note.reason.as_str(),
                "could not publish Event: {e}"
            );
        }
    }
    Ok(())
}

/// Compares statuses in their stored (serialized) form, so that values that serialize the same
/// count as unchanged.
fn changed(current: Option<&PartnerEventSourceStatus>, desired: &PartnerEventSourceStatus) -> bool {
    let current = current.map(serde_json::to_value);
    let desired = serde_json::to_value(desired);
    match (current, desired) {
        (Some(Ok(c)), Ok(d)) => c != d,
        _ => true,
    }
}

fn event(note: &Note) -> KubeEvent {
    KubeEvent {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.as_str().to_owned(),
        note: Some(note.message.chars().take(1000).collect()),
        action: note.action.to_owned(),
        secondary: None,
    }
}

/// Decides when to look again after a failed reconcile: a pending deletion says when itself;
/// other failures (Kubernetes API errors) back off per object.
pub fn error_policy(obj: Arc<PartnerEventSource>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Error::DeletePending { after } = error {
        return Action::requeue(*after);
    }
    ctx.metrics.reconcile("error", Duration::ZERO);
    let failures = ctx.failures.bump(&obj.uid().unwrap_or_default());
    let delay = retry_delay(
        failures - 1,
        rand::random(),
        ctx.settings.backoff_base,
        ctx.settings.backoff_cap,
    );
    warn!(
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        "reconcile failed: {error}; retrying in {delay:?}"
    );
    Action::requeue(delay)
}
