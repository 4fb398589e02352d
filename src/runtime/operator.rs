//! The `run` command: wires the Kubernetes client, the AWS SDK, the HTTP endpoints, leader
//! election and the controller together, and shuts them down in order on SIGTERM.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Predicate, WatchStreamExt, predicates, reflector, watcher};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::accounts::{AccountContext, Accounts, account_error_policy, reconcile_account};
use crate::aws::budget::{BudgetKey, Budgets};
use crate::aws::eventbridge::EventBridge;
use crate::aws::identity::{Identities, Identity};
use crate::cli::config::RunArgs;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::reconcile::settings::Settings;
use crate::reconcile::shell::{self, Context};
use crate::resources::PartnerAccount;
use crate::resources::PartnerEventSource;
use crate::runtime::http::{self, Health, Phase};
use crate::runtime::leader::{
    confirm_lease, default_identity, exit_when_lost, lease_manager, lease_namespace, release,
    wait_to_lead,
};
use crate::runtime::preflight::{self, Rbac, Resource};
use crate::runtime::watches::{self, Watches};

/// Runs the operator until SIGTERM/SIGINT, or until it loses leadership (then it returns an
/// error so that the process exits non-zero and is restarted as a standby).
pub async fn run(args: RunArgs) -> Result<(), Error> {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::new());
    let health = Health::new(metrics.clone());

    let (addr, serve) = http::bind(args.http_addr, health.clone(), shutdown.clone()).await?;
    info!(%addr, "serving /metrics, /healthz and /readyz");
    let server = tokio::spawn(serve);

    let result = match preflight_or_shutdown(&args, &client, &shutdown).await {
        Err(e) => Err(e),
        Ok(()) if shutdown.is_cancelled() => Ok(()),
        Ok(()) if args.leader_election => {
            lead_then_run(&args, client, metrics, &health, &shutdown).await
        }
        Ok(()) => {
            metrics.set_leader(true);
            run_controller(&args, client, metrics, &health, shutdown.clone()).await
        }
    };

    health.set_phase(Phase::Stopping);
    shutdown.cancel();
    match server.await {
        Ok(Err(e)) => warn!("HTTP server stopped with an error: {e}"),
        Err(e) => warn!("HTTP server task failed: {e}"),
        Ok(Ok(())) => {}
    }
    result
}

/// Where the operator's permissions come from, for the messages that name a missing one.
fn rbac(args: &RunArgs, client: &Client) -> Rbac {
    Rbac {
        name: args.rbac_name.clone(),
        namespace: args.namespace.clone().filter(|ns| !ns.is_empty()),
        lease_namespace: args.leader_election.then(|| lease_namespace(args, client)),
    }
}

/// The start-up checks, unless a signal ends the process first.
async fn preflight_or_shutdown(
    args: &RunArgs,
    client: &Client,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let rbac = rbac(args, client);
    let checks = preflight::run(client, &rbac, &args.lease_name, args.preflight_timeout);
    tokio::select! {
        result = checks => result,
        _ = shutdown.cancelled() => Ok(()),
    }
}

async fn cancel_on_signal(token: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot listen for SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received, shutting down"),
    }
    token.cancel();
}

/// Waits for the Lease, runs the controller while leading, and releases the Lease on the way
/// out.
async fn lead_then_run(
    args: &RunArgs,
    client: Client,
    metrics: Arc<Metrics>,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let manager = lease_manager(args, &client, &identity).await?;
    let (mut leading, lease_task) = manager.watch().await;
    // A standby that passed the start-up checks is ready: its job is to wait.
    health.set_phase(Phase::Standby);

    if !wait_to_lead(&mut leading, shutdown).await {
        drop(leading);
        release(lease_task).await;
        return if shutdown.is_cancelled() {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        };
    }

    info!(%identity, "leading");
    metrics.set_leader(true);
    // Stops the controller on shutdown; ends the process when the lease is lost.
    let stop = shutdown.child_token();
    let leases: Api<Lease> = Api::namespaced(client.clone(), &lease_namespace(args, &client));
    let confirmed = confirm_lease(
        leases,
        args.lease_name.clone(),
        identity.clone(),
        args.lease_duration,
    );
    let watch_lease = tokio::spawn(exit_when_lost(leading, stop.clone(), confirmed));
    let result = run_controller(args, client, metrics.clone(), health, stop.clone()).await;
    stop.cancel();
    metrics.set_leader(false);
    match watch_lease.await {
        // Closing the channel makes the lease manager release the Lease.
        Ok(leading) => drop(leading),
        Err(e) => warn!("lease watcher failed: {e}"),
    }
    release(lease_task).await;
    result
}

/// The AWS configuration from the default chain, with the SDK's own retries off: the
/// operator retries per object.
async fn aws_identities(args: &RunArgs) -> Identities {
    Identities::from_default_chain(
        args.region.as_deref(),
        args.aws_endpoint_url.as_deref(),
        args.aws_timeout,
    )
    .await
}

/// Runs the controllers until `stop` is cancelled, then lets in-flight reconciles finish for
/// up to the shutdown timeout.
async fn run_controller(
    args: &RunArgs,
    client: Client,
    metrics: Arc<Metrics>,
    health: &Health,
    stop: CancellationToken,
) -> Result<(), Error> {
    let budgets = Arc::new(Budgets::new(args.budget()).map_err(Error::Config)?);
    let (identities, settings) = aws_side(args).await;
    let operator = identities.operator().await;
    let eventbridge = EventBridge::new(operator, budgets.clone(), metrics.clone());
    let watches = Arc::new(Watches::new(rbac(args, &client)));
    health.set_phase(Phase::Leading(watches.clone()));
    let (store, writer) = reflector::store();
    let objects = watched_objects(args, &client, writer, watches.clone());
    let (recheck, rechecks) = mpsc::unbounded_channel();
    let (accounts, account_objects) = partner_accounts(
        &client,
        args,
        Operator {
            identities,
            own: eventbridge.operator(),
        },
        &store,
        recheck.clone(),
        watches.clone(),
    );
    let controller = Controller::for_stream(objects, store.clone())
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .reconcile_on(UnboundedReceiverStream::new(rechecks));
    health.set_caches(Some((store.clone(), accounts.store.clone())));
    let account_ctx = Arc::new(AccountContext {
        client: client.clone(),
        accounts: accounts.clone(),
        sources: store.clone(),
        recheck,
    });
    let recorder = recorder(&client, args);
    let ctx = Context::new(
        client,
        store.clone(),
        eventbridge,
        accounts,
        recorder,
        metrics,
        settings,
    )
    .with_workers(args.concurrency);
    let ctx = Arc::new(ctx);
    let report_task = tokio::spawn(watches::report_until_aborted(watches, ctx.metrics.clone()));
    let budget_task = tokio::spawn(watch_budgets(ctx.clone(), budgets));

    let accounts = Controller::for_stream(account_objects, account_ctx.accounts.store.clone());
    let timeout = args.shutdown_timeout;
    run_both(controller, ctx, accounts, account_ctx, &stop, timeout).await;
    report_task.abort();
    budget_task.abort();
    health.set_caches(None);
    Ok(())
}

/// Publishes Events as this replica of the operator.
fn recorder(client: &Client, args: &RunArgs) -> Recorder {
    let reporter = Reporter {
        controller: "eventbridge-partner-operator".into(),
        instance: args.identity.clone(),
    };
    Recorder::new(client.clone(), reporter)
}

/// Runs the PartnerEventSource and PartnerAccount controllers until `stop`, then drains both.
async fn run_both(
    sources: Controller<PartnerEventSource>,
    ctx: Arc<Context>,
    accounts: Controller<PartnerAccount>,
    account_ctx: Arc<AccountContext>,
    stop: &CancellationToken,
    timeout: Duration,
) {
    let sources = sources
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(shell::reconcile, shell::error_policy, ctx)
        .for_each(log_failure);
    let accounts = accounts
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(reconcile_account, account_error_policy, account_ctx)
        .for_each(log_failure);
    drain_on_stop(
        futures::future::join(sources, accounts).map(|_| ()),
        stop,
        timeout,
    )
    .await;
}

/// The AWS configuration (credentials chain, endpoint, region) and the reconcile settings with
/// the default region it implies.
async fn aws_side(args: &RunArgs) -> (Identities, Settings) {
    let identities = aws_identities(args).await;
    let mut settings = args.settings();
    settings.default_region = identities.region();
    match &settings.default_region {
        Some(region) => info!(%region, "default AWS region"),
        None => warn!("no default AWS region: objects without spec.region cannot be reconciled"),
    }
    (identities, settings)
}

/// Logs a failed reconcile (the error policy already reported it) or a controller error.
async fn log_failure<T, E: std::error::Error>(
    result: Result<T, controller::Error<E, watcher::Error>>,
) {
    match result {
        Err(controller::Error::ReconcilerFailed(err, obj)) => {
            tracing::debug!(object = %obj, "reconcile failed: {err}")
        }
        Err(other) => warn!("controller: {other}"),
        Ok(_) => {}
    }
}

/// The operator's own AWS side, for the PartnerAccounts: the identities it makes, its own.
struct Operator {
    identities: Identities,
    own: Arc<Identity>,
}

/// The PartnerAccount side: a cache of every PartnerAccount the shard's selector selects (and
/// the stream its controller runs on), a cache of namespace labels for the grants' selectors, and a task that asks for a
/// pass over the objects of a namespace whose labels changed.
fn partner_accounts(
    client: &Client,
    args: &RunArgs,
    operator: Operator,
    sources: &reflector::Store<PartnerEventSource>,
    recheck: mpsc::UnboundedSender<ObjectRef<PartnerEventSource>>,
    watches: Arc<Watches>,
) -> (
    Arc<Accounts>,
    impl futures::Stream<Item = Result<PartnerAccount, watcher::Error>> + Send + 'static,
) {
    let (account_store, account_writer) = reflector::store();
    // A shard (--selector) sees only the PartnerAccounts its label selects, like its objects.
    let mut config = watcher::Config::default();
    if let Some(selector) = args.selector.as_deref().filter(|s| !s.is_empty()) {
        config = config.labels(selector);
    }
    let seen = watches.clone();
    let account_objects = watcher(Api::<PartnerAccount>::all(client.clone()), config)
        .default_backoff()
        .reflect(account_writer)
        .inspect(move |item| seen.observe(Resource::PartnerAccounts, item))
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let (namespace_store, namespace_writer) = reflector::store();
    let namespaces = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        Default::default(),
    )
    .default_backoff()
    .reflect(namespace_writer)
    .inspect(move |item| watches.observe(Resource::Namespaces, item))
    .applied_objects()
    .predicate_filter(predicates::labels, Default::default());
    let sources = sources.clone();
    tokio::spawn(namespaces.for_each(move |ns| {
        // A namespace's labels decide the grants of the objects in it: look at them again.
        if let Ok(ns) = ns {
            let name = ns.name_any();
            for obj in sources.state() {
                if obj.namespace().as_deref() == Some(name.as_str()) {
                    let _ = recheck.send(ObjectRef::from_obj(&*obj));
                }
            }
        }
        async {}
    }));
    let accounts = Accounts::new(
        account_store,
        namespace_store,
        operator.identities,
        operator.own,
        args.own_identity,
    );
    (Arc::new(accounts), account_objects)
}

/// The PartnerEventSource objects to reconcile, cached in `writer`'s store.
///
/// Reconcile on spec changes (generation, which deletion also bumps), finalizer changes and
/// annotation changes (the paused annotation) only: the operator's own status writes must not
/// trigger another pass, or every terminal error would be retried at once. Drift is caught by
/// the resync requeue.
fn watched_objects(
    args: &RunArgs,
    client: &Client,
    writer: reflector::store::Writer<PartnerEventSource>,
    watches: Arc<Watches>,
) -> impl futures::Stream<Item = Result<PartnerEventSource, watcher::Error>> + Send + 'static {
    let api: Api<PartnerEventSource> = match &args.namespace {
        Some(ns) if !ns.is_empty() => Api::namespaced(client.clone(), ns),
        _ => Api::all(client.clone()),
    };
    let mut watch = watcher::Config::default().any_semantic();
    if let Some(selector) = args.selector.as_deref().filter(|s| !s.is_empty()) {
        watch = watch.labels(selector);
    }
    watcher(api, watch)
        .default_backoff()
        .modify(forget_unread_fields)
        .reflect(writer)
        .inspect(move |item| watches.observe(Resource::PartnerEventSources, item))
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::finalizers)
                .combine(predicates::annotations),
            Default::default(),
        )
}

/// Drops what no reconcile reads before an object enters the cache: at thousands of objects,
/// `managedFields` and kubectl's last-applied copy of the spec are most of its memory.
fn forget_unread_fields(obj: &mut PartnerEventSource) {
    obj.metadata.managed_fields = None;
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// How often the budgets' populations and gauges are brought up to date.
const BUDGET_REVIEW: Duration = Duration::from_secs(5);

/// Keeps each budget's population (the objects it resyncs) current, forgets objects that left
/// the cache, so that the effective
/// resync interval follows the number of objects; publishes the interval and rate, and logs
/// when the interval changes. One pass over the cache every few seconds: a bounded cost.
async fn watch_budgets(ctx: Arc<Context>, budgets: Arc<Budgets>) {
    let mut reported: HashMap<BudgetKey, Duration> = HashMap::new();
    loop {
        let mut population: HashMap<BudgetKey, usize> = HashMap::new();
        let mut live = HashSet::new();
        for obj in ctx.store.state() {
            live.extend(obj.uid());
            let acting = ctx.accounts.acting(&obj);
            let Some(region) = ctx.region_of(&obj, &acting) else {
                continue;
            };
            let identity = acting
                .identity()
                .cloned()
                .unwrap_or_else(|| ctx.eventbridge.operator());
            let key = BudgetKey {
                account: identity.account.clone(),
                region,
            };
            *population.entry(key).or_default() += 1;
        }
        for (key, budget) in budgets.all() {
            budget.set_population(population.get(&key).copied().unwrap_or(0));
        }
        // Objects that left the cache without a last pass (deleted while the operator did not
        // lead, moved out of the shard) leave no memory behind.
        ctx.objects.retain(&live);
        for (key, budget) in budgets.all() {
            let interval = budget.resync_interval(ctx.settings.resync);
            let rates = (budget.rate(), budget.configured_rate());
            ctx.metrics
                .set_budget(&key.account, &key.region, interval, rates);
            let before = reported.insert(key.clone(), interval);
            let was = before.unwrap_or(ctx.settings.resync);
            if interval.abs_diff(was) > was / 10 {
                info!(
                    account = %key.account,
                    region = %key.region,
                    objects = population.get(&key).copied().unwrap_or(0),
                    interval = ?interval,
                    configured = ?ctx.settings.resync,
                    "effective resync interval changed: the objects outgrow the resync budget (--resync-budget)"
                );
            }
        }
        tokio::time::sleep(BUDGET_REVIEW).await;
    }
}

/// Drives the controller until it ends; once `stop` is cancelled, gives in-flight reconciles
/// up to `timeout` to finish.
async fn drain_on_stop(run: impl Future<Output = ()>, stop: &CancellationToken, timeout: Duration) {
    tokio::pin!(run);
    tokio::select! {
        _ = &mut run => {},
        _ = stop.cancelled() => {
            info!("stopping: waiting for in-flight reconciles");
            if tokio::time::timeout(timeout, &mut run).await.is_err() {
                warn!("in-flight reconciles did not finish within {timeout:?}; abandoning them (their next pass starts over)");
            }
        }
    }
}
