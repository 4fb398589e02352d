//! The reconcile shell: reads what a pass needs from the cluster, runs [`crate::reconcile::sync`]'s
//! `apply` or `cleanup` against EventBridge, and writes the outcome back (status, Events,
//! finalizer, requeue).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::accounts::{Accounts, Acting};
use crate::aws::budget::Budget;
use crate::aws::eventbridge::EventBridge;
use crate::aws::partner_api::Counted;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::reconcile::admission::{self, Backlog, Gate, Lifecycle, PassKind};
use crate::reconcile::backoff::retry_delay;
use crate::reconcile::objects::ObjectStates;
use crate::reconcile::outcome::{Note, Outcome, Requeue};
use crate::reconcile::ownership::{Claim, Ownership, ownership};
use crate::reconcile::settings::Settings;
use crate::reconcile::status::{self, Observed};
use crate::reconcile::sync;
use crate::resources::{
    FIELD_MANAGER, FINALIZER, ManagementPolicy, PartnerEventSource, PartnerEventSourceStatus,
};

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
    /// What is remembered about each object between passes: failures in a row, the
    /// `Creating` mark, when its next check is due.
    pub objects: ObjectStates,
    /// How many workers may wait on the AWS budget for new objects before further new objects
    /// are deferred (so that the others stay free to mark new objects at once).
    waiting_limit: usize,
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
            objects: ObjectStates::default(),
            waiting_limit: 2,
        }
    }

    /// With `workers` concurrent reconciles: half of them may wait on AWS for new objects, the
    /// rest mark new arrivals at once.
    pub fn with_workers(mut self, workers: u16) -> Self {
        self.waiting_limit = usize::from(workers / 2).max(1);
        self
    }

    /// The region a pass over `obj` uses: the spec's, its partner account's, the operator's.
    pub fn region_of(&self, obj: &PartnerEventSource, acting: &Acting) -> Option<String> {
        obj.spec
            .region
            .clone()
            .or_else(|| acting.region().map(str::to_owned))
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
        valid: obj.spec.validate().is_ok() && !matches!(acting, Acting::NotPermitted { .. }),
        manages: obj.spec.management_policy != Some(ManagementPolicy::Observe),
        partner_account: acting.partner_account().unwrap_or_default().to_owned(),
    }
}

/// Reconciles one object: kube-runtime's finalizer helper adds the finalizer before anything
/// reaches AWS; a deleted object is settled by [`release`], which removes the finalizer itself.
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
                FinalizerEvent::Apply(o) => {
                    Ok(pass(&o, &ctx, &api, Lifecycle::Live).await?.action(&ctx))
                }
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
        ctx.objects.forget(&cached.uid().unwrap_or_default());
        return Ok(Action::await_change());
    };
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    match pass(&obj, ctx, api, Lifecycle::Deleting).await? {
        Passed::Ran { release: true, .. } => {
            remove_finalizer(api, &obj).await?;
            ctx.objects.forget(&obj.uid().unwrap_or_default());
            Ok(Action::await_change())
        }
        // The finalizer stays: deletion in AWS is being retried, or waits for a person.
        not_settled => Ok(not_settled.action(ctx)),
    }
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

/// How a pass ended, for the caller that decides about the requeue and the finalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Passed {
    /// Nothing was settled (the partner account is not checked yet, the check is not due, the
    /// budget has no room): look again after this delay.
    Later(Duration),
    /// The steps ran and their outcome was written.
    Ran {
        /// What the pass served.
        kind: PassKind,
        /// Cleanup is finished: the finalizer may go.
        release: bool,
        /// When to look again.
        requeue: Requeue,
    },
}

impl Passed {
    /// What the controller does next, unless the finalizer went.
    fn action(self, ctx: &Context) -> Action {
        match self {
            Passed::Later(after)
            | Passed::Ran {
                requeue: Requeue::After(after),
                ..
            } => Action::requeue(after),
            // A deletion that waits for a person is looked at again now and then: the
            // finalizer holds the object, and nothing may change it.
            Passed::Ran {
                kind: PassKind::Delete,
                release: false,
                requeue: Requeue::AwaitChange,
            } => Action::requeue(ctx.settings.terminal_requeue),
            Passed::Ran {
                requeue: Requeue::AwaitChange,
                ..
            } => Action::await_change(),
        }
    }
}

/// One pass: look at the object, run the steps against EventBridge, write the outcome.
async fn pass(
    obj: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
    lifecycle: Lifecycle,
) -> Result<Passed, Error> {
    let started = Instant::now();
    let uid = obj.uid().unwrap_or_default();
    let acting = ctx.accounts.acting(obj);
    if let Acting::Unchecked { .. } = acting {
        // The PartnerAccount reconciler asks for this pass again once it has checked.
        return Ok(Passed::Later(Duration::from_secs(5)));
    }
    let ownership = ctx.ownership_of(obj, &acting);
    let region = ctx.region_of(obj, &acting);
    let access = acting.access();
    let observed = Observed {
        spec: &obj.spec,
        generation: obj.meta().generation,
        status: obj.status.as_ref(),
        ownership: &ownership,
        region: region.as_deref(),
        failures: ctx.objects.failures(&uid),
        jitter: rand::random(),
        paused: obj.paused(),
        access: &access,
        partner_account: acting.partner_account(),
        now: Timestamp::now(),
    };
    let kind = PassKind::of(lifecycle, &observed);
    let identity = acting
        .identity()
        .cloned()
        .unwrap_or_else(|| ctx.eventbridge.operator());
    let budget = region
        .as_deref()
        .map(|r| ctx.eventbridge.budget(&identity, r));
    let settings = Settings {
        resync: budget.as_ref().map_or(ctx.settings.resync, |b| {
            b.resync_interval(ctx.settings.resync)
        }),
        ..ctx.settings.clone()
    };
    let admitted = admit(obj, ctx, api, &observed, kind, budget.as_deref(), &settings);
    if let Some(wait) = admitted.await? {
        return Ok(Passed::Later(wait));
    }
    let calls = ctx.eventbridge.calls(identity, kind.priority());
    let aws = Counted::new(&calls);
    let outcome = match kind {
        PassKind::Delete => sync::cleanup(&aws, &observed, &settings).await,
        PassKind::Apply | PassKind::Resync => sync::apply(&aws, &observed, &settings).await,
    };
    finish(obj, ctx, api, &outcome, aws.calls(), started).await?;
    Ok(Passed::Ran {
        kind,
        release: outcome.release,
        requeue: outcome.requeue,
    })
}

/// Whether the pass may go on to AWS now, or when to look again (decided by
/// [`admission`]): a resync only once due and within its share of the budget, a new object
/// marked `Creating` first and deferred while the budget is busy with others; deletions and
/// paused objects always go on.
async fn admit(
    obj: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
    observed: &Observed<'_>,
    kind: PassKind,
    budget: Option<&Budget>,
    settings: &Settings,
) -> Result<Option<Duration>, Error> {
    let uid = obj.uid().unwrap_or_default();
    let generation = observed.generation.unwrap_or_default();
    let due_in = match kind {
        PassKind::Resync => {
            ctx.objects
                .due_in(&uid, Instant::now(), settings.resync, rand::random())
        }
        PassKind::Apply | PassKind::Delete => None,
    };
    let mark = status::creating(observed);
    let marked = ctx.objects.marked(&uid, generation);
    let gate = admission::gate(
        kind,
        budget.is_some(),
        observed.paused,
        due_in,
        mark.is_some(),
        marked,
    );
    match (gate, budget) {
        (Gate::NotDue(wait), _) => {
            debug!(after = ?wait, "next check in AWS not due yet");
            Ok(Some(wait))
        }
        (Gate::Go, _) | (_, None) => Ok(None),
        (Gate::ResyncShare, Some(budget)) => Ok(budget.admit_resync().err().map(|wait| {
            ctx.metrics.resync_deferred();
            admission::defer_resync(wait, settings.resync, rand::random())
        })),
        (Gate::New { mark: write }, Some(budget)) => {
            if write && let Some(status) = &mark {
                write_status(obj, api, status).await?;
                ctx.objects.mark(&uid, generation);
            }
            let backlog = Backlog {
                in_backlog: ctx.objects.in_backlog(&uid),
                users_waiting: budget.users_waiting(),
                waiting_limit: ctx.waiting_limit,
                backlog: ctx.objects.backlog(),
                rate: budget.rate(),
            };
            Ok(admission::defer_new(backlog, rand::random()))
        }
    }
}

/// Writes the outcome, keeps the per-object memory, counts and logs the pass.
async fn finish(
    obj: &PartnerEventSource,
    ctx: &Context,
    api: &Api<PartnerEventSource>,
    outcome: &Outcome,
    aws_calls: u32,
    started: Instant,
) -> Result<(), Error> {
    perform(obj, ctx, api, outcome).await?;
    // The next check is due when this pass asks to look again.
    let next = match outcome.requeue {
        Requeue::After(after) => after,
        Requeue::AwaitChange => ctx.settings.resync,
    };
    let failures = if outcome.release { 0 } else { outcome.failures };
    let uid = obj.uid().unwrap_or_default();
    ctx.objects.passed(&uid, failures, Instant::now() + next);
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
        action: note.action.as_str().to_owned(),
        secondary: None,
    }
}

/// Decides when to look again after a failed reconcile (a Kubernetes API error): back off per
/// object.
pub fn error_policy(obj: Arc<PartnerEventSource>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile("error", Duration::ZERO);
    let failures = ctx.objects.bump_failures(&obj.uid().unwrap_or_default());
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
