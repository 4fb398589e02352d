//! The running parts of a chaos run: the objects' operations carried out on the API server,
//! the record of each object's lives, the operator replicas and their disruptions, and the wait
//! for quiet at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use eventbridge_partner_operator::resources::{
    DeletionPolicy, PartnerEventSource, PartnerEventSourceSpec,
};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::invariants::Life;
use crate::plan::{Op, Role, Signal, Step};
use crate::support::operator::{Launch, OperatorProcess};
use eventbridge_partner_operator::resources::FINALIZER;

/// The customer account every source is offered to.
pub const CUSTOMER: &str = "123456789012";

/// How long any one Kubernetes request of the harness is retried (the API server may be
/// restarting).
const RETRY_FOR: Duration = Duration::from_secs(120);

/// The object of index `i`, and its source name.
pub fn object_name(i: usize) -> String {
    format!("chaos-{i}")
}

fn source_name(i: usize) -> String {
    format!("aws.partner/acme.com/chaos-{i}/orders")
}

/// Retries a Kubernetes request until it succeeds, `settle` accepts its error as an answer,
/// or [`RETRY_FOR`] has passed.
async fn retry<T, F, Fut>(
    what: &str,
    mut call: F,
    settle: impl Fn(&kube::Error) -> Option<T>,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        match call().await {
            Ok(value) => return Some(value),
            Err(e) => {
                if let Some(value) = settle(&e) {
                    return Some(value);
                }
                if Instant::now() > deadline {
                    eprintln!("chaos: {what} failed for {RETRY_FOR:?}: {e}");
                    return None;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Every life of every object, as the harness sees them.
#[derive(Default)]
pub struct Book {
    lives: Mutex<Vec<Life>>,
    /// First moment each UID was seen gone.
    gone: Mutex<BTreeMap<String, SystemTime>>,
    /// UIDs seen with the operator's finalizer.
    taken: Mutex<BTreeSet<String>>,
    /// When each life was recorded, after the API server answered its create.
    recorded: Mutex<BTreeMap<String, SystemTime>>,
}

impl Book {
    fn born(&self, life: Life) {
        let now = SystemTime::now();
        self.recorded.lock().unwrap().insert(life.uid.clone(), now);
        self.lives.lock().unwrap().push(life);
    }

    fn deleting(&self, uid: &str, at: SystemTime, policy: DeletionPolicy) {
        let mut lives = self.lives.lock().unwrap();
        if let Some(life) = lives.iter_mut().find(|l| l.uid == uid) {
            life.deleted = Some((at, policy));
        }
    }

    /// Notes that `uid` was seen gone now (the first sighting counts).
    pub fn gone(&self, uid: &str) {
        self.gone
            .lock()
            .unwrap()
            .entry(uid.to_owned())
            .or_insert_with(SystemTime::now);
    }

    /// Notes what the watch shows of an object: whether the operator has taken it on.
    fn seen(&self, obj: &PartnerEventSource) {
        if obj.finalizers().iter().any(|f| f == FINALIZER) {
            let uid = obj.uid().unwrap_or_default();
            self.taken.lock().unwrap().insert(uid);
        }
    }

    /// The lives, each with the first moment it was seen gone and whether it was taken on.
    pub fn lives(&self) -> Vec<Life> {
        let gone = self.gone.lock().unwrap();
        let taken = self.taken.lock().unwrap();
        let mut lives = self.lives.lock().unwrap().clone();
        for life in &mut lives {
            life.gone = gone.get(&life.uid).copied();
            life.taken = taken.contains(&life.uid);
        }
        lives
    }

    /// The UIDs of lives not yet seen gone that were recorded before `before`: only those are
    /// certainly in a list that started then (a create answered later may not be).
    fn alive_before(&self, before: SystemTime) -> BTreeSet<String> {
        let gone = self.gone.lock().unwrap();
        let recorded = self.recorded.lock().unwrap();
        self.lives
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !gone.contains_key(&l.uid))
            .filter(|l| recorded.get(&l.uid).is_some_and(|at| *at < before))
            .map(|l| l.uid.clone())
            .collect()
    }
}

/// Records deletions as the watch reports them. A deletion missed while the watch was down
/// (the API server restarting) is noted when the re-list no longer has the object.
pub async fn watch_lives(api: Api<PartnerEventSource>, book: Arc<Book>) {
    let mut relisted: BTreeSet<String> = BTreeSet::new();
    // When the re-list started: an object whose create was answered after that may be missing
    // from the list without being gone.
    let mut relist_started = SystemTime::now();
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Delete(obj)) => {
                book.seen(&obj);
                book.gone(&obj.uid().unwrap_or_default());
            }
            Ok(watcher::Event::Init) => {
                relisted.clear();
                relist_started = SystemTime::now();
            }
            Ok(watcher::Event::InitApply(obj)) => {
                book.seen(&obj);
                relisted.insert(obj.uid().unwrap_or_default());
            }
            Ok(watcher::Event::Apply(obj)) => book.seen(&obj),
            Ok(watcher::Event::InitDone) => {
                for uid in book.alive_before(relist_started).difference(&relisted) {
                    book.gone(uid);
                }
            }
            Err(_) => {}
        }
    }
}

/// What a chain of operations on one object needs.
pub struct Chains {
    /// The objects' API (admin, straight to the API server).
    pub api: Api<PartnerEventSource>,
    /// The label value the run's operators select.
    pub selector: String,
    /// The run's start.
    pub start: tokio::time::Instant,
    /// Where the lives go.
    pub book: Arc<Book>,
}

impl Chains {
    /// Carries out one object's operations in order, each not before its time; returns how
    /// many were done.
    pub async fn run(self: Arc<Self>, index: usize, ops: Vec<Op>) -> usize {
        let name = object_name(index);
        let mut life: Option<(String, DeletionPolicy)> = None;
        let mut done = 0;
        for op in ops {
            tokio::time::sleep_until(self.start + op.at).await;
            life = match (op.step, life.take()) {
                (Step::Create(policy), previous) => {
                    if let Some((uid, _)) = &previous
                        && !self.wait_gone(&name, uid).await
                    {
                        return done;
                    }
                    self.create(index, policy).await.map(|uid| (uid, policy))
                }
                (Step::SetPolicy(policy), Some((uid, _))) => {
                    self.set_policy(&name, policy).await;
                    Some((uid, policy))
                }
                (Step::Delete, Some((uid, policy))) => {
                    self.book.deleting(&uid, SystemTime::now(), policy);
                    self.delete(&name).await;
                    Some((uid, policy))
                }
                (_, None) => {
                    eprintln!(
                        "chaos: {name}: {:?} skipped, the object could not be created",
                        op.step
                    );
                    continue;
                }
            };
            done += 1;
        }
        done
    }

    fn object(&self, index: usize, policy: DeletionPolicy) -> PartnerEventSource {
        let mut obj = PartnerEventSource::new(
            &object_name(index),
            PartnerEventSourceSpec {
                name: source_name(index),
                account: CUSTOMER.to_owned(),
                region: None,
                deletion_policy: Some(policy),
                on_expiry: None,
                management_policy: None,
                partner_account_ref: None,
            },
        );
        obj.metadata = ObjectMeta {
            name: Some(object_name(index)),
            labels: Some([("e2e".to_owned(), self.selector.clone())].into()),
            ..ObjectMeta::default()
        };
        obj
    }

    /// Creates the object; returns its UID. A create whose answer was lost to a restart is
    /// found by the retry as an object that exists and is not being deleted.
    async fn create(&self, index: usize, policy: DeletionPolicy) -> Option<String> {
        let obj = self.object(index, policy);
        let name = object_name(index);
        let created = SystemTime::now();
        let (api, params) = (&self.api, PostParams::default());
        let made = retry(
            &format!("create {name}"),
            || api.create(&params, &obj),
            // Conflict: the object exists, from an attempt whose answer was lost.
            |e| (status_code(e) == Some(409)).then(|| obj.clone()),
        )
        .await?;
        let uid = match made.uid() {
            Some(uid) => uid,
            None => {
                let existing = retry(&format!("get {name}"), || api.get(&name), |_| None).await?;
                existing.uid()?
            }
        };
        self.book.born(Life {
            source: source_name(index),
            uid: uid.clone(),
            created,
            deleted: None,
            gone: None,
            taken: false,
        });
        Some(uid)
    }

    async fn set_policy(&self, name: &str, policy: DeletionPolicy) {
        let patch = Patch::Merge(serde_json::json!({ "spec": { "deletionPolicy": policy } }));
        let (api, params) = (&self.api, PatchParams::default());
        retry(
            &format!("set the policy of {name}"),
            || api.patch(name, &params, &patch),
            |_| None,
        )
        .await;
    }

    async fn delete(&self, name: &str) {
        let api = &self.api;
        retry(
            &format!("delete {name}"),
            || async { api.delete(name, &DeleteParams::default()).await.map(|_| ()) },
            |e| (status_code(e) == Some(404)).then_some(()),
        )
        .await;
    }

    /// Waits until the life `uid` of the object is over (the operator released it); false
    /// when it is not within twice [`RETRY_FOR`] (the end of the run then reports it stuck).
    async fn wait_gone(&self, name: &str, uid: &str) -> bool {
        let deadline = Instant::now() + 2 * RETRY_FOR;
        while Instant::now() < deadline {
            match self.api.get_opt(name).await {
                Ok(Some(obj)) if obj.uid().as_deref() == Some(uid) => {}
                Ok(_) => {
                    self.book.gone(uid);
                    return true;
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "chaos: {name} (uid {uid}) is still there {:?} after its deletion",
            2 * RETRY_FOR
        );
        false
    }
}

/// How the run's operators are launched.
#[derive(Clone)]
pub struct Fleet {
    /// The base launch (kubeconfig, endpoint, selector, flags).
    pub launch: Launch,
    /// Where the Lease lives.
    pub namespace: String,
    /// Replicas that run at the same time (1: no leader election).
    pub replicas: usize,
}

/// The running operator processes.
pub struct Replicas {
    fleet: Fleet,
    running: Vec<(String, OperatorProcess)>,
    /// Replicas that were stopped or exited: kept for their logs.
    retired: Vec<(String, OperatorProcess)>,
    started: usize,
    /// Processes stopped on purpose.
    pub stopped: usize,
}

/// The Lease the replicas elect a leader with.
const LEASE: &str = "chaos";

impl Replicas {
    /// Starts the fleet's replicas.
    pub fn start(fleet: Fleet) -> Replicas {
        let mut replicas = Replicas {
            fleet,
            running: Vec::new(),
            retired: Vec::new(),
            started: 0,
            stopped: 0,
        };
        for _ in 0..replicas.fleet.replicas {
            replicas.start_one();
        }
        replicas
    }

    fn start_one(&mut self) {
        self.started += 1;
        let identity = format!("replica-{}", self.started);
        let mut launch = self.fleet.launch.clone().arg("--identity", &identity);
        if self.fleet.replicas > 1 {
            launch = launch
                .arg("--leader-election", "true")
                .arg("--lease-name", LEASE)
                .arg("--lease-namespace", &self.fleet.namespace)
                .arg("--lease-duration", "5s");
        }
        self.running.push((identity, launch.start()));
    }

    /// Stops the replica in `role` with `signal`, and starts a replacement, as a Deployment
    /// would. The leader is whoever holds the Lease (waited for, if nobody does right now).
    pub async fn stop(&mut self, client: &Client, role: Role, signal: Signal) {
        let holder = self.holder(client).await;
        let index = self.running.iter().position(|(identity, _)| {
            (Some(identity) == holder.as_ref()) == (role == Role::Leader)
        });
        let Some(index) = index else {
            eprintln!("chaos: no {role:?} to stop (holder {holder:?})");
            return;
        };
        let (identity, mut process) = self.running.remove(index);
        eprintln!("chaos: {signal:?} to the {role:?} {identity}");
        match signal {
            Signal::Kill => process.kill(),
            Signal::Term => {
                process.terminate(Duration::from_secs(30)).await;
            }
        }
        self.stopped += 1;
        self.retired.push((identity, process));
        self.start_one();
    }

    /// The identity holding the Lease, waiting up to a minute for one.
    async fn holder(&self, client: &Client) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(client.clone(), &self.fleet.namespace);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let holder = leases
                .get_opt(LEASE)
                .await
                .ok()
                .flatten()
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity);
            if holder
                .as_ref()
                .is_some_and(|h| self.running.iter().any(|(id, _)| id == h))
            {
                return holder;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }

    /// Restarts replicas that died on their own (a lost Lease makes a replica exit so that a
    /// fresh standby takes its place), so that the fleet is whole for the quiet at the end.
    pub fn replace_exited(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            let Some(status) = self.running[i].1.exited() else {
                i += 1;
                continue;
            };
            let (identity, process) = self.running.remove(i);
            eprintln!("chaos: {identity} exited on its own ({status})");
            self.retired.push((identity, process));
            self.start_one();
        }
    }

    /// Every replica's log lines about `object` (its reconcile span), for a failing run.
    pub fn lines_about(&self, object: &str) -> String {
        let needle = format!("\"object\":\"{object}\"");
        self.retired
            .iter()
            .chain(&self.running)
            .map(|(identity, p)| {
                let log = p.log();
                let lines: Vec<&str> = log.lines().filter(|l| l.contains(&needle)).collect();
                format!("--- {identity} ---\n{}", lines.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether every object of the run is settled: none being deleted, every one Ready with the
/// source EventBridge has.
pub fn settled(objects: &[PartnerEventSource], arns: &BTreeMap<String, String>) -> bool {
    objects.iter().all(|o| {
        o.metadata.deletion_timestamp.is_none()
            && o.condition("Ready").is_some_and(|c| c.status == "True")
            && o.status.as_ref().and_then(|s| s.arn.as_ref()) == arns.get(&o.spec.name)
    })
}

/// Lists the run's objects, retrying through a restart.
pub async fn list(api: &Api<PartnerEventSource>) -> Vec<PartnerEventSource> {
    let params = ListParams::default();
    retry("list the objects", || api.list(&params), |_| None)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}
