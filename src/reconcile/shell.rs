//! The reconcile shell: reads what a pass needs from the cluster, runs [`crate::reconcile::sync`]'s
//! `apply` or `cleanup` against EventBridge, and writes the outcome back (status, Events,
//! finalizer, requeue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::accounts::{Access, Accounts, Acting};
use crate::aws::budget::{Budget, Priority};
use crate::aws::eventbridge::EventBridge;
use crate::aws::partner_api::Counted;
use crate::error::Error;
use crate::metrics::{Metrics, ObjectCounts};
use crate::reconcile::backoff::{FailureCounts, retry_delay};
use crate::reconcile::ownership::{Claim, Ownership, ownership};
use crate::reconcile::reason::READY;
use crate::reconcile::settings::Settings;
use crate::reconcile::status::{self, Note, Observed, Outcome, Requeue};
use crate::reconcile::sync;
use crate::resources::{
    FIELD_MANAGER, FINALIZER, ManagementPolicy, PartnerEventSource, PartnerEventSourceStatus,
    SourceState,
};

/// How early a resync may come and still count as due.
const RESYNC_SLACK: Duration = Duration::from_secs(1);

/// What every reconcile shares.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Every PartnerEventSource the operator watches, for the name-ownership check.
    pub store: Store<PartnerEventSource>,
    /// The EventBridge partner API.
    pub eventbridge: EventBridge,
    /// PartnerAccounts: which identity an object acts with, and its grant.
    pub accounts: Arc<Accounts>,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Reconcile settings.
    pub settings: Settings,
    /// Transient failures in a row, by object UID, for per-object backoff.
    failures: FailureCounts,
    /// New objects marked `Creating` and not yet answered, by UID, with the generation marked:
    /// the backlog of user-driven work, and a guard against marking one twice while the cache
    /// catches up with the mark.
    creating: Mutex<HashMap<String, Option<i64>>>,
    /// How many workers may wait on the AWS budget for new objects before further new objects
    /// are deferred (so that the others stay free to mark new objects at once).
    waiting_limit: usize,
    /// When each object's next check in AWS is due, by UID. A resync pass before that makes no
    /// call, whatever triggered it (a namespace or PartnerAccount recheck, a re-list); the first
    /// pass over a settled object after a start or a change of leader sets it.
    due: Mutex<HashMap<String, Instant>>,
}

impl Context {
    /// Assembles the shared context.
    pub fn new(
        client: Client,
        store: Store<PartnerEventSource>,
        eventbridge: EventBridge,
        accounts: Arc<Accounts>,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        Context {
            client,
            store,
            eventbridge,
            accounts,
            recorder,
            metrics,
            settings,
            failures: FailureCounts::default(),
            creating: Mutex::new(HashMap::new()),
            waiting_limit: 2,
            due: Mutex::new(HashMap::new()),
        }
    }

    /// With `workers` concurrent reconciles: half of them may wait on AWS for new objects, the
    /// rest mark new arrivals at once.
    pub fn with_workers(mut self, workers: u16) -> Self {
        self.waiting_limit = usize::from(workers / 2).max(1);
        self
    }

    fn creating(&self) -> MutexGuard<'_, HashMap<String, Option<i64>>> {
        // A plain map of marks; a panic elsewhere cannot leave it inconsistent.
        self.creating.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn due(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.due.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long until a resync of the object is due; `None` when it is due now. The first time
    /// this process asks about a settled object, its check is spread over the last nine tenths
    /// of `interval`: the status says it was fine when the last process looked, and a restart
    /// or a change of leader must not sweep AWS with every object at once.
    fn resync_wait(&self, uid: &str, interval: Duration) -> Option<Duration> {
        let now = Instant::now();
        let due = *self
            .due()
            .entry(uid.to_owned())
            .or_insert_with(|| now + interval.mul_f64(0.1 + 0.9 * rand::random::<f64>()));
        // A requeue may fire a moment early; that is on time.
        due.checked_duration_since(now)
            .filter(|wait| *wait > RESYNC_SLACK)
    }

    /// The region a pass over `obj` uses: the spec's, its partner account's, the operator's.
    pub fn region_of(&self, obj: &PartnerEventSource, acting: &Acting) -> Option<String> {
        obj.spec
            .region
            .clone()
            .or_else(|| acting.region.clone())
            .or_else(|| self.settings.default_region.clone())
    }

    fn ownership_of(&self, obj: &PartnerEventSource, acting: &Acting) -> Ownership {
        // Only objects with the same source name matter; compare names before building claims.
        let claims: Vec<Claim> = self
            .store
            .state()
            .iter()
            .filter(|o| o.spec.name == obj.spec.name)
            .map(|o| claim(o, &self.accounts.acting(o)))
            .collect();
        ownership(&claim(obj, acting), &claims)
    }
}

/// An object's claim on its source name: only objects that are valid, permitted and managing
/// claim one, within their partner account.
fn claim(obj: &PartnerEventSource, acting: &Acting) -> Claim {
    Claim {
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        created: obj.meta().creation_timestamp.as_ref().map(|t| t.0),
        source_name: obj.spec.name.clone(),
        holds_source: obj.status.as_ref().is_some_and(|s| s.arn.is_some()),
        valid: obj.spec.validate().is_ok() && !matches!(acting.access, Access::NotPermitted(_)),
        manages: obj.spec.management_policy != Some(ManagementPolicy::Observe),
        partner_account: acting.partner_account.clone().unwrap_or_default(),
    }
}

/// Counts the watched objects by `Ready` status and AWS state, for the object gauges.
pub fn object_counts(store: &Store<PartnerEventSource>) -> ObjectCounts {
    let mut by_ready: HashMap<String, i64> = HashMap::new();
    let mut by_state: HashMap<String, i64> = HashMap::new();
    let soon = Timestamp::now() + status::EXPIRY_WARNING;
    let mut expiring_soon = 0;
    for obj in store.state() {
        if let Some(st) = &obj.status
            && st.state == Some(SourceState::Pending)
            && st.expiration_time.as_ref().is_some_and(|t| t.0 <= soon)
        {
            expiring_soon += 1;
        }
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
        expiring_soon,
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
        // Ownership and grants are decided from the caches; wait until they hold everything.
        synced(&ctx.store).await?;
        synced(&ctx.accounts.store).await?;
        synced(&ctx.accounts.namespaces).await?;
        let api: Api<PartnerEventSource> =
            Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        if obj.meta().deletion_timestamp.is_some() {
            return release(&obj, &ctx, &api).await;
        }
        finalizer(&api, FINALIZER, obj, |event| async {
            match event {
                FinalizerEvent::Apply(o) => pass(&o, &ctx, &api, false).await,
                // Deletions never get here: `release` settles them.
                FinalizerEvent::Cleanup(_) => Ok(Action::await_change()),
            }
        })
        .await
        .map_err(Error::from_finalizer)
    }
    .instrument(span)
    .await
}

/// Settles a deleted object, then removes its finalizer. Both happen only for the object as
/// the API server has it now, read fresh rather than from the cache, and the finalizer comes off
/// only from that object (its UID is a precondition of the patch).
///
/// kube-runtime's finalizer helper removes the finalizer by name and index. A pass from a stale
/// cache, or a retry whose first answer was lost, would then strip the finalizer from a new
/// object of the same name: that object could be deleted later without its cleanup, and its
/// source would leak. Worse, the stale cleanup could delete the new object's source.
async fn release(
    cached: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
) -> Result<Action, Error> {
    let current = api.get_opt(&cached.name_any()).await?;
    let Some(obj) = current.filter(|o| o.uid() == cached.uid()) else {
        debug!("the object is gone, or another object has its name: nothing left to settle");
        return Ok(Action::await_change());
    };
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let action = pass(&obj, ctx, api, true).await?;
    remove_finalizer(api, &obj).await?;
    Ok(action)
}

/// Removes the operator's finalizer from `obj`, and only from it: the patch tests the object's
/// UID and the finalizer at its index first, so the API server refuses it (422) when the name
/// now belongs to another object or the finalizers moved. Nothing to do without the finalizer.
pub async fn remove_finalizer(
    api: &Api<PartnerEventSource>,
    obj: &PartnerEventSource,
) -> Result<(), Error> {
    let Some(index) = obj.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let patch = for_this_object(
        obj,
        serde_json::json!([
            { "op": "test", "path": format!("/metadata/finalizers/{index}"), "value": FINALIZER },
            { "op": "remove", "path": format!("/metadata/finalizers/{index}") },
        ]),
    )?;
    api.patch(&obj.name_any(), &PatchParams::default(), &patch)
        .await?;
    Ok(())
}

/// A JSON patch of `ops` that the API server applies only to `obj` itself: its first operation
/// tests the UID, so a new object that took the name refuses it (422).
fn for_this_object(obj: &PartnerEventSource, ops: serde_json::Value) -> Result<Patch<()>, Error> {
    let mut all =
        vec![serde_json::json!({ "op": "test", "path": "/metadata/uid", "value": obj.uid() })];
    all.extend(ops.as_array().into_iter().flatten().cloned());
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(all))?;
    Ok(Patch::Json(patch))
}

/// Waits until a cache has been filled once. A store's readiness future wakes only its latest
/// waiter, and many reconciles wait at once, so each looks again every half second instead of
/// relying on a wake-up.
async fn synced<K>(store: &Store<K>) -> Result<(), Error>
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(500), store.wait_until_ready()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => return Err(Error::Cache(e.to_string())),
            Err(_) => continue,
        }
    }
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
    let acting = ctx.accounts.acting(obj);
    if acting.unchecked {
        // The PartnerAccount reconciler asks for this pass again once it has checked. A
        // cleanup must not end Ok here: the finalizer helper would drop the finalizer.
        let after = Duration::from_secs(5);
        return match deleting {
            true => Err(Error::DeletePending { after }),
            false => Ok(Action::requeue(after)),
        };
    }
    let ownership = ctx.ownership_of(obj, &acting);
    let region = ctx.region_of(obj, &acting);
    let observed = Observed {
        spec: &obj.spec,
        generation: obj.meta().generation,
        status: obj.status.as_ref(),
        ownership: &ownership,
        region: region.as_deref(),
        failures: ctx.failures.get(&uid),
        jitter: rand::random(),
        paused: obj.paused(),
        access: &acting.access,
        partner_account: acting.partner_account.as_deref(),
        now: Timestamp::now(),
    };
    let identity = acting
        .identity
        .unwrap_or_else(|| ctx.eventbridge.operator());
    let budget = region
        .as_deref()
        .map(|r| ctx.eventbridge.budget(&identity, r));
    let resync = !deleting && status::is_resync(&observed);
    let settings = Settings {
        resync: budget.as_ref().map_or(ctx.settings.resync, |b| {
            b.resync_interval(ctx.settings.resync)
        }),
        ..ctx.settings.clone()
    };
    if resync && let Some(wait) = ctx.resync_wait(&uid, settings.resync) {
        debug!(after = ?wait, "next check in AWS not due yet");
        return Ok(Action::requeue(wait));
    }
    if let Some(wait) = admit(obj, ctx, api, &observed, budget.as_deref(), deleting).await? {
        return Ok(Action::requeue(wait));
    }
    let priority = if resync {
        Priority::Resync
    } else {
        Priority::User
    };
    let calls = ctx.eventbridge.calls(identity, priority);
    let aws = Counted::new(&calls);
    let outcome = if deleting {
        sync::cleanup(&aws, &observed, &settings).await
    } else {
        sync::apply(&aws, &observed, &settings).await
    };
    finish(obj, ctx, api, &outcome, aws.calls(), started).await?;
    action(deleting, &outcome, &settings)
}

/// Whether the pass may go on to AWS now, or when to look again: resyncs within their share
/// of the budget, new objects marked and, when the budget is busy, deferred; deletions and
/// paused objects always go on.
async fn admit(
    obj: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
    observed: &Observed<'_>,
    budget: Option<&Budget>,
    deleting: bool,
) -> Result<Option<Duration>, Error> {
    let Some(budget) = budget.filter(|_| !observed.paused && !deleting) else {
        return Ok(None);
    };
    if status::is_resync(observed) {
        return Ok(admit_resync(ctx, budget));
    }
    admit_new(obj, ctx, api, observed, budget).await
}

/// A resync pass goes ahead only within the resync share of the budget; otherwise it is
/// deferred to a random point of the effective resync interval, so that a crowd of due
/// objects (after a restart, say) spreads over it instead of spinning.
fn admit_resync(ctx: &Context, budget: &Budget) -> Option<Duration> {
    let wait = budget.admit_resync().err()?;
    ctx.metrics.resync_deferred();
    let interval = budget.resync_interval(ctx.settings.resync);
    Some(wait + interval.mul_f64(rand::random::<f64>()))
}

/// A new or changed object is marked `Creating` at once. It goes on to AWS unless enough
/// workers already wait on the budget for other new objects; then it is deferred by about its
/// turn in the backlog, so that the remaining workers stay free to mark what arrives next.
async fn admit_new(
    obj: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
    observed: &Observed<'_>,
    budget: &Budget,
) -> Result<Option<Duration>, Error> {
    let uid = obj.uid().unwrap_or_default();
    if let Some(mark) = status::creating(observed) {
        let marked = ctx.creating().get(&uid) == Some(&observed.generation);
        if !marked {
            write_status(obj, api, &mark).await?;
            ctx.creating().insert(uid.clone(), observed.generation);
        }
    }
    if !ctx.creating().contains_key(&uid) || budget.users_waiting() < ctx.waiting_limit {
        return Ok(None);
    }
    let backlog = ctx.creating().len() as f64 / budget.rate();
    let turn = backlog * (0.3 + 0.7 * rand::random::<f64>());
    Ok(Some(Duration::from_secs_f64(turn.clamp(0.2, 30.0))))
}

/// Writes the outcome, keeps the per-object bookkeeping, counts and logs the pass.
async fn finish(
    obj: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
    outcome: &Outcome,
    aws_calls: u32,
    started: Instant,
) -> Result<(), Error> {
    perform(obj, ctx, api, outcome).await?;
    let uid = obj.uid().unwrap_or_default();
    ctx.creating().remove(&uid);
    // The next check is due when this pass asks to look again; a released object is gone.
    let next = match outcome.requeue {
        Requeue::After(after) => after,
        Requeue::AwaitChange => ctx.settings.resync,
    };
    match outcome.release {
        true => ctx.due().remove(&uid),
        false => ctx.due().insert(uid.clone(), Instant::now() + next),
    };
    let failures = if outcome.release { 0 } else { outcome.failures };
    ctx.failures.set(&uid, failures);
    ctx.metrics
        .reconcile(outcome.result.as_str(), started.elapsed());
    info!(
        result = outcome.result.as_str(),
        aws_calls,
        requeue = ?outcome.requeue,
        "reconciled"
    );
    Ok(())
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
        write_status(obj, api, status).await?;
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

/// Writes the status subresource under the operator's field manager, as a JSON patch that
/// first tests the object's UID: the API server refuses it (422) when the name now belongs to
/// another object (a pass from a stale cache), rather than give the new object a status it
/// never earned. (A server-side apply patch cannot carry that condition: the status strategy
/// drops whatever it says of the metadata.)
pub async fn write_status(
    obj: &PartnerEventSource,
    api: &Api<PartnerEventSource>,
    status: &PartnerEventSourceStatus,
) -> Result<(), Error> {
    let patch = for_this_object(
        obj,
        serde_json::json!([{ "op": "add", "path": "/status", "value": status }]),
    )?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch_status(&obj.name_any(), &params, &patch).await?;
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
