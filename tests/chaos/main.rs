//! The chaos suite (`make chaos`): a few hundred objects created, changed, deleted and created
//! again at random while EventBridge answers with retryable errors, 503s, timeouts and latency
//! spikes, the API server with conflicts, throttling, 500s, broken watches and 410 Gone, while
//! operator replicas are killed (SIGKILL and SIGTERM, leader and standby) and the kube-apiserver
//! restarts. Once quiet, the invariants of [`invariants`] must hold.
//!
//! The same operations run first without any fault, on one replica: that baseline bounds the
//! AWS calls of the chaos run. Everything random comes from one seed (`CHAOS_SEED`), printed
//! on the last line with the figures, so a failing run can be repeated.
//!
//! `cargo test` runs the pure tests of the plan and of the invariant checks; the run itself is
//! `#[ignore]`d and started by `make chaos` (`SEED`, `DURATION`, `OBJECTS`).

#[path = "../support/mod.rs"]
mod support;

mod invariants;
mod plan;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eventbridge_partner_emulator::{Config as EmulatorConfig, Emulator, RandomFaults};
use eventbridge_partner_operator::resources::PartnerEventSource;
use kube::api::Api;
use kube::{Client, ResourceExt};

use invariants::{Calls, Record, Violation};
use plan::{Disruption, Plan, Size};
use support::controlplane::ControlPlane;
use support::kube_faults::{KubeFaultProxy, KubeFaults};
use support::operator::Launch;
use support::repo::crd_paths;
use world::{Book, Chains, Fleet, Replicas};

/// How long the operators get to settle everything once the operations and faults stop.
const QUIET_WITHIN: Duration = Duration::from_secs(240);

/// The run's size from the environment (`make chaos` sets it).
fn size() -> Size {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let number = |name: &str, default: u64| -> u64 {
        var(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}"))
        })
    };
    let seed = number("CHAOS_SEED", rand::random::<u32>().into());
    let duration = number("CHAOS_DURATION", 120);
    assert!(
        duration >= 30,
        "CHAOS_DURATION must be at least 30 (seconds)"
    );
    Size {
        seed,
        objects: number("CHAOS_OBJECTS", 200) as usize,
        duration: Duration::from_secs(duration),
        kills: number("CHAOS_KILLS", (duration / 40).max(3)) as usize,
        api_restarts: number("CHAOS_API_RESTARTS", (duration / 150).max(1)) as usize,
    }
}

/// The faults EventBridge injects during the chaos run (the operator's AWS timeout is 2 s).
fn aws_weather(seed: u64) -> RandomFaults {
    RandomFaults {
        seed,
        error_rate: 0.1,
        spike_rate: 0.05,
        spike_ms: 800,
        timeout_rate: 0.02,
        timeout_ms: 3_000,
    }
}

/// The faults the API server's proxy injects during the chaos run: conflicts, throttling and
/// 500s on status writes and finalizer patches, watches that break, and 410 Gone on resume.
fn kube_weather(seed: u64) -> KubeFaults {
    KubeFaults::seeded(seed)
        .status_writes(0.05, &[409, 429, 500], 0)
        .finalizer_patches(0.05, &[409, 429, 500], 0)
        .watch_breaks(Duration::from_secs(5)..=Duration::from_secs(20))
        .gone_on_resume(0.5)
}

/// What one run (baseline or chaos) did.
struct Outcome {
    record: Record,
    operations: usize,
    faults: u64,
    restarts: usize,
    seconds: f64,
    violations: Vec<Violation>,
}

/// The control plane both runs share, and the operator's ServiceAccount.
struct World {
    cp: Arc<ControlPlane>,
    client: Client,
    operator_kubeconfig: PathBuf,
}

impl World {
    async fn start() -> World {
        let cp = Arc::new(ControlPlane::dedicated());
        cp.install_crds(&crd_paths());
        cp.apply(OPERATOR_ACCOUNT);
        let operator_kubeconfig = cp
            .service_account_kubeconfig("chaos-operator", "operator")
            .await;
        let client = cp.admin_client().await;
        World {
            cp,
            client,
            operator_kubeconfig,
        }
    }

    /// Runs the plan once: without faults for the baseline, with all of them otherwise.
    async fn run(&self, plan: &Plan, size: &Size, chaos: Option<u64>) -> Outcome {
        let started = Instant::now();
        let label = if chaos.is_some() { "chaos" } else { "baseline" };
        let namespace = support::scenario::unique(&format!("chaos-{label}"));
        self.cp.ensure_namespace(&namespace);
        let emulator = Emulator::start(EmulatorConfig::default())
            .await
            .expect("start the emulator");
        let proxy =
            chaos.map(|_| KubeFaultProxy::start(&self.operator_kubeconfig, self.cp.bin_dir()));
        let kubeconfig: &Path = proxy
            .as_ref()
            .map_or(&self.operator_kubeconfig, |p| p.kubeconfig());
        let launch = Launch::new(kubeconfig, &emulator.endpoint_url(), &namespace)
            .arg("--resync-interval", "60s")
            .arg("--aws-rps", "50")
            .arg("--aws-burst", "50")
            .arg("--aws-timeout", "2s")
            .arg("--concurrency", "8")
            .arg("--shutdown-timeout", "10s")
            .env("RUST_LOG", "info,kube=warn");
        let mut replicas = Replicas::start(Fleet {
            launch,
            namespace: namespace.clone(),
            replicas: if chaos.is_some() { 2 } else { 1 },
        });
        if let Some(proxy) = &proxy {
            emulator.set_random_faults(Some(aws_weather(size.seed)));
            proxy.set(&kube_weather(size.seed));
        }

        let api: Api<PartnerEventSource> = Api::namespaced(self.client.clone(), &namespace);
        let book = Arc::new(Book::default());
        let watch = tokio::spawn(world::watch_lives(api.clone(), book.clone()));
        let chains = Arc::new(Chains {
            api: api.clone(),
            selector: namespace.clone(),
            start: tokio::time::Instant::now(),
            book: book.clone(),
        });
        let tasks: Vec<_> = (0..size.objects)
            .map(|i| tokio::spawn(chains.clone().run(i, plan.ops_of(i))))
            .collect();
        let finished = AtomicBool::new(false);
        let operated = async {
            let done = futures::future::join_all(tasks).await;
            finished.store(true, Ordering::SeqCst);
            done
        };
        let supervised = async {
            let disruptions = match chaos {
                Some(_) => plan.disruptions.as_slice(),
                None => &[],
            };
            self.disrupt(disruptions, &chains, &mut replicas, &finished)
                .await;
        };
        let (done, ()) = tokio::join!(operated, supervised);
        let operations = done.into_iter().map(|d| d.unwrap_or(0)).sum();

        // Quiet: no more faults; the fleet whole; wait until everything settles.
        emulator.set_random_faults(None);
        if let Some(proxy) = &proxy {
            proxy.clear();
        }
        let objects = self.quiet(&api, &emulator, &mut replicas).await;
        let live: Vec<String> = objects.iter().filter_map(|o| o.uid()).collect();
        for life in book.lives() {
            if life.gone.is_none() && !live.contains(&life.uid) {
                book.gone(&life.uid);
            }
        }
        watch.abort();

        let injected = emulator.injected_faults();
        let kube_faults = proxy.as_ref().map_or(0, |p| p.stats().total_injected());
        let record = Record {
            lives: book.lives(),
            changes: emulator.changes(),
            objects,
            sources: emulator.sources(),
            calls: Calls {
                chaos: emulator.total_calls(),
                baseline: chaos.unwrap_or_else(|| emulator.total_calls()),
                faults: injected.failed_calls(),
            },
        };
        eprintln!(
            "chaos: {label}: AWS faults errors={} timeouts={} spikes={}; Kubernetes faults {}; {:?}",
            injected.errors,
            injected.timeouts,
            injected.spikes,
            kube_faults,
            proxy.as_ref().map(|p| p.stats())
        );
        let violations = invariants::check(&record);
        if !violations.is_empty() {
            explain(&violations, &record, &replicas, &namespace);
        }
        Outcome {
            record,
            violations,
            operations,
            faults: injected.errors + injected.timeouts + injected.spikes + kube_faults,
            restarts: replicas.stopped
                + if chaos.is_some() {
                    size.api_restarts
                } else {
                    0
                },
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Carries out the disruptions, each at its time, and keeps the fleet whole until the
    /// operations are `finished` (a replica that lost its Lease while the API server was away
    /// exits, and is replaced as a Deployment would replace it).
    async fn disrupt(
        &self,
        disruptions: &[(Duration, Disruption)],
        chains: &Chains,
        replicas: &mut Replicas,
        finished: &AtomicBool,
    ) {
        let mut pending = disruptions.iter().peekable();
        while pending.peek().is_some() || !finished.load(Ordering::SeqCst) {
            replicas.replace_exited();
            let now = tokio::time::Instant::now();
            match pending.next_if(|(at, _)| chains.start + *at <= now) {
                Some((_, disruption)) => self.disrupt_once(*disruption, replicas).await,
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    async fn disrupt_once(&self, disruption: Disruption, replicas: &mut Replicas) {
        match disruption {
            Disruption::KillOperator(role, signal) => {
                replicas.stop(&self.client, role, signal).await
            }
            Disruption::RestartApiServer => {
                eprintln!("chaos: restarting the kube-apiserver");
                let cp = self.cp.clone();
                tokio::task::spawn_blocking(move || cp.restart())
                    .await
                    .expect("the restart task");
                eprintln!("chaos: the kube-apiserver is back");
            }
        }
    }

    /// Waits until every object is settled (or [`QUIET_WITHIN`] passed); returns the objects.
    async fn quiet(
        &self,
        api: &Api<PartnerEventSource>,
        emulator: &Emulator,
        replicas: &mut Replicas,
    ) -> Vec<PartnerEventSource> {
        let deadline = Instant::now() + QUIET_WITHIN;
        loop {
            replicas.replace_exited();
            let objects = world::list(api).await;
            let arns: BTreeMap<String, String> = emulator
                .sources()
                .into_iter()
                .map(|s| (s.name, s.arn))
                .collect();
            if world::settled(&objects, &arns) || Instant::now() > deadline {
                return objects;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Prints what a reader needs to find the cause of each violation: the lives of the object
/// it names, the emulator's changes of its source, and the operators' log lines about it.
fn explain(violations: &[Violation], record: &Record, replicas: &Replicas, namespace: &str) {
    let mut objects: Vec<String> = violations
        .iter()
        .filter_map(|v| object_named(&v.0))
        .collect();
    objects.sort();
    objects.dedup();
    for object in objects {
        let source = format!("aws.partner/acme.com/{object}/orders");
        eprintln!("chaos: {namespace}/{object}: lives:");
        for life in record.lives.iter().filter(|l| l.source == source) {
            eprintln!("chaos:   {life:?}");
        }
        eprintln!("chaos: {namespace}/{object}: changes of its source:");
        for change in record.changes.iter().filter(|c| c.name == source) {
            eprintln!("chaos:   {:?} at {:?}", change.kind, change.at);
        }
        eprintln!(
            "chaos: {namespace}/{object}: operator log lines:\n{}",
            replicas.lines_about(&object)
        );
    }
}

/// The object (`chaos-<n>`) a violation names, if any.
fn object_named(text: &str) -> Option<String> {
    let start = text.find("chaos-")?;
    let digits: String = text[start + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("chaos-{digits}"))
}

/// The operator's ServiceAccount. It acts through a token the control plane signed, so the
/// restart also proves that the signing key and the token survive.
const OPERATOR_ACCOUNT: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: chaos-operator
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: operator
  namespace: chaos-operator
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: chaos-operator
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: operator
    namespace: chaos-operator
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "make chaos runs it (SEED, DURATION, OBJECTS)"]
async fn chaos() {
    let size = size();
    let plan = Plan::new(&size);
    eprintln!(
        "chaos: seed={} objects={} duration={:?} operations={} disruptions={:?}",
        size.seed,
        size.objects,
        size.duration,
        plan.ops.len(),
        plan.disruptions
    );
    let world = World::start().await;

    let baseline = world.run(&plan, &size, None).await;
    let baseline_violations = baseline.violations.clone();
    eprintln!(
        "chaos: baseline: operations={} aws_calls={} violations={} seconds={:.0}",
        baseline.operations,
        baseline.record.calls.chaos,
        baseline_violations.len(),
        baseline.seconds
    );

    let chaos = world
        .run(&plan, &size, Some(baseline.record.calls.chaos))
        .await;
    let mut violations: Vec<Violation> = baseline_violations
        .into_iter()
        .map(|v| Violation(format!("baseline: {v}")))
        .collect();
    violations.extend(chaos.violations.iter().cloned());
    let calls = chaos.record.calls;
    eprintln!(
        "chaos: run: operations={} aws_calls={} bound={} (2 × baseline {} + {} failed calls) seconds={:.0}",
        chaos.operations,
        calls.chaos,
        calls.bound(),
        calls.baseline,
        calls.faults,
        chaos.seconds
    );
    for v in &violations {
        eprintln!("chaos: violation: {v}");
    }
    if !violations.is_empty() {
        eprintln!("chaos: repeat with `make chaos SEED={}`", size.seed);
    }
    let line = format!(
        "chaos: objects={} operations={} faults={} restarts={} aws_calls={} violations={} seed={}",
        size.objects,
        chaos.operations,
        chaos.faults,
        chaos.restarts,
        calls.chaos,
        violations.len(),
        size.seed
    );
    println!("{line}");
    assert!(violations.is_empty(), "{line}");
}
