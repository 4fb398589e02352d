//! `make bench`: the operator at scale against the real API server and the emulator, with
//! 30 ms of latency per call and an AWS quota of Q = 50 requests/s per operation (the operator's
//! budget set to match). For each N in `BENCH_SIZES` (default `1000,10000`) it measures:
//! the time from the first apply until all N objects are Ready against the bound N/Q, and the
//! same for deleting them; the time to Ready of 20 new objects while the N resync; the
//! operator's peak RSS and CPU seconds; Kubernetes writes and AWS calls per object; the
//! steady-state AWS call rate against the resync budget; and a baseline — the same creations
//! done by a sequential SDK loop, the way a partner without the operator does them.
//!
//! Ignored by `cargo test`: numbers are printed, and written to `BENCH_RESULTS` (one record per
//! N, replacing an earlier record of the same N) when that is set, never asserted.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eventbridge_partner_operator::resources::PartnerEventSource;
use futures::{StreamExt, stream};
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use support::scenario::{CUSTOMER, Scenario};

/// The emulator's quota per operation, and the operator's budget.
const Q: f64 = 50.0;
/// Latency the emulator adds to every call.
const LATENCY: Duration = Duration::from_millis(30);
const OPERATIONS: [&str; 4] = [
    "CreatePartnerEventSource",
    "ListPartnerEventSourceAccounts",
    "DescribePartnerEventSource",
    "DeletePartnerEventSource",
];

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Peak resident memory (bytes) and CPU seconds of a process, from /proc.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    (hwm_kib * 1024, ticks / 100.0)
}

fn aws_calls(s: &Scenario) -> u64 {
    OPERATIONS.iter().map(|op| s.emulator.calls(op)).sum()
}

/// Writes to PartnerEventSource objects and their status (updates, patches and server-side
/// applies; the operator never creates one) as counted by the API server.
fn kube_writes(s: &Scenario) -> f64 {
    let out = s.kubectl(&["get", "--raw", "/metrics"], None);
    assert!(out.status.success(), "API server metrics: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| l.contains("resource=\"partnereventsources\""))
        // Server-side apply patches count as APPLY.
        .filter(|l| {
            ["APPLY", "PATCH", "PUT"]
                .iter()
                .any(|v| l.contains(&format!("verb=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Counts the scenario's objects that are Ready, from a watch, and reports each change.
fn ready_counter(
    s: &Scenario,
) -> tokio::sync::watch::Receiver<(usize, BTreeMap<String, Option<Instant>>)> {
    let (tx, rx) = tokio::sync::watch::channel((0, BTreeMap::new()));
    let api = s.api();
    tokio::spawn(async move {
        let mut ready: BTreeMap<String, Option<Instant>> = BTreeMap::new();
        let events = watcher(api, watcher::Config::default()).default_backoff();
        let mut objects = std::pin::pin!(events.touched_objects());
        while let Some(Ok(obj)) = objects.next().await {
            let is_ready = obj.condition("Ready").is_some_and(|c| c.status == "True");
            let name = kube::ResourceExt::name_any(&obj);
            let entry = ready.entry(name).or_insert(None);
            if is_ready && entry.is_none() {
                *entry = Some(Instant::now());
            }
            let count = ready.values().filter(|t| t.is_some()).count();
            let _ = tx.send((count, ready.clone()));
        }
    });
    rx
}

async fn wait_count(
    rx: &mut tokio::sync::watch::Receiver<(usize, BTreeMap<String, Option<Instant>>)>,
    what: &str,
    enough: impl Fn(usize) -> bool,
    timeout: Duration,
) {
    let waited = tokio::time::timeout(timeout, rx.wait_for(|(n, _)| enough(*n))).await;
    assert!(waited.is_ok(), "{what}: not reached within {timeout:?}");
}

/// How many of the scenario's objects exist.
async fn count_objects(api: &Api<PartnerEventSource>) -> usize {
    api.list_metadata(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

/// Creates the objects `range`, 32 at a time, as `kubectl apply` of many files would.
async fn apply(s: &Scenario, prefix: &str, range: std::ops::Range<usize>) {
    stream::iter(range)
        .map(|i| {
            let obj = s.object(
                &format!("{prefix}-{i}"),
                &format!("aws.partner/acme.com/{prefix}-{i}/orders"),
                CUSTOMER,
            );
            async move { s.create(&obj).await }
        })
        .buffer_unordered(32)
        .for_each(|_| async {})
        .await;
}

/// The baseline: one sequential SDK loop creating a source per customer.
async fn baseline(s: &Scenario, n: usize) -> f64 {
    let aws = s.aws_as(s.emulator.partner_account()).await;
    let started = Instant::now();
    for i in 0..n {
        aws.create_partner_event_source()
            .name(format!("aws.partner/acme.com/baseline-{i}/orders"))
            .account(CUSTOMER)
            .send()
            .await
            .expect("baseline create");
    }
    started.elapsed().as_secs_f64()
}

fn slow_emulator(s: &Scenario) {
    for op in OPERATIONS {
        s.emulator.set_latency(op, LATENCY);
        s.emulator.set_quota(op, Q, Q as u32);
    }
}

async fn run(n: usize) -> Value {
    let s = Scenario::start("bench").await;
    slow_emulator(&s);
    let baseline_seconds = baseline(&s, n).await;
    s.emulator.reset();
    slow_emulator(&s);
    println!("n={n}: baseline loop {baseline_seconds:.1}s");

    // Short enough that the resyncs of N objects ask for more than their share of the budget,
    // so the steady state shows the share holding.
    let resync_secs: u64 = env_or("BENCH_RESYNC_SECS", 30);
    let operator = s
        .launch()
        .arg("--aws-rps", &Q.to_string())
        .arg("--aws-burst", &(Q as u32).to_string())
        .arg("--concurrency", "16")
        .arg("--resync-interval", &format!("{resync_secs}s"))
        .env(
            "RUST_LOG",
            "warn,eventbridge_partner_operator::runtime::operator=info",
        )
        .start();
    operator.http_addr().await;
    let mut ready = ready_counter(&s);
    let writes_before = kube_writes(&s);
    let bound = n as f64 / Q;
    let timeout = Duration::from_secs_f64(bound * 4.0 + 120.0);

    let started = Instant::now();
    apply(&s, "bench", 0..n).await;
    wait_count(&mut ready, "all Ready", |c| c >= n, timeout).await;
    let seconds = started.elapsed().as_secs_f64();
    let create_calls = aws_calls(&s);
    let kube_writes_per_object = (kube_writes(&s) - writes_before) / n as f64;
    println!("n={n}: all Ready after {seconds:.1}s (bound {bound:.1}s)");

    // 20 new objects while the N resync: time to Ready of each.
    let mut latencies = Vec::new();
    for i in 0..20 {
        let applied = Instant::now();
        apply(&s, "late", i..i + 1).await;
        let name = format!("late-{i}");
        let waited = tokio::time::timeout(
            timeout,
            ready.wait_for(|(_, m)| m.get(&name).is_some_and(Option::is_some)),
        )
        .await;
        assert!(waited.is_ok(), "{name} never became Ready");
        latencies.push(applied.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);

    // Steady state: the resyncs of N + 20 objects, once the first of them are due.
    let due = Duration::from_secs(resync_secs + 5).saturating_sub(started.elapsed());
    tokio::time::sleep(due).await;
    let window = Duration::from_secs(env_or("BENCH_STEADY_SECS", 60));
    let calls_before = aws_calls(&s);
    tokio::time::sleep(window).await;
    let steady_aws_rps = (aws_calls(&s) - calls_before) as f64 / window.as_secs_f64();

    let deleting = Instant::now();
    s.api()
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete every object");
    let api = s.api();
    let gone = tokio::time::timeout(timeout, async {
        while count_objects(&api).await > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "objects still there after {timeout:?}");
    let delete_seconds = deleting.elapsed().as_secs_f64();
    let (peak_rss_bytes, cpu_seconds) = usage(operator.pid());
    println!("n={n}: all deleted after {delete_seconds:.1}s");

    json!({
        "n": n,
        "q": Q,
        "seconds": round(seconds),
        "bound_seconds": round(bound),
        "ratio": round(seconds / bound),
        "delete_seconds": round(delete_seconds),
        "delete_ratio": round(delete_seconds / ((n + 20) as f64 / Q)),
        "new_object_p50_seconds_under_load": round(latencies[latencies.len() / 2]),
        "new_object_max_seconds_under_load": round(latencies[latencies.len() - 1]),
        "peak_rss_bytes": peak_rss_bytes,
        "cpu_seconds": round(cpu_seconds),
        "kube_writes_per_object": round(kube_writes_per_object),
        "aws_calls_per_object": round(create_calls as f64 / n as f64),
        "steady_aws_rps": round(steady_aws_rps),
        "resync_budget_rps": round(Q * 0.2),
        "baseline_seconds": round(baseline_seconds),
    })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Replaces the records of the same N in the results file, keeping the others, sorted by N.
fn record(path: &str, results: &[Value]) {
    let mut all: Vec<Value> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for r in results {
        all.retain(|old| old["n"] != r["n"]);
        all.push(r.clone());
    }
    all.sort_by_key(|r| r["n"].as_u64().unwrap_or(0));
    let text = serde_json::to_string_pretty(&all).expect("results serialize");
    std::fs::write(path, text + "\n").expect("write the results");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with make bench"]
async fn scale() {
    let mut results = Vec::new();
    for n in sizes() {
        let result = run(n).await;
        println!("{}", serde_json::to_string(&result).unwrap());
        results.push(result);
    }
    if let Ok(path) = std::env::var("BENCH_RESULTS") {
        record(&path, &results);
        println!("wrote {path}");
    }
}
