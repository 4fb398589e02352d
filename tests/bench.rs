//! `make bench`: throughput, AWS calls per object and memory of the operator at scale, against
//! the real API server and the emulator. Ignored by `cargo test`; numbers are printed, not
//! asserted, because speed depends on the machine.

mod support;

use std::time::Instant;

use support::scenario::{CUSTOMER, Scenario};

fn objects() -> usize {
    std::env::var("BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// Peak resident memory of a process, from /proc, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with make bench"]
async fn reconcile_throughput_and_memory() {
    let s = Scenario::start("bench").await;
    let n = objects();
    let operator = s
        .launch()
        .arg("--aws-rps", "1000")
        .arg("--aws-burst", "1000")
        .arg("--concurrency", "16")
        .arg("--resync-interval", "30m")
        .env(
            "RUST_LOG",
            "warn,eventbridge_partner_operator::operator=info",
        )
        .start();
    operator.http_addr().await;
    let idle_kib = peak_rss_kib(operator.pid());

    let started = Instant::now();
    for i in 0..n {
        s.create(&s.object(
            &format!("bench-{i}"),
            &format!("aws.partner/acme.com/customer-{i}/orders"),
            CUSTOMER,
        ))
        .await;
    }
    let created = started.elapsed();
    s.wait_emulator("every source created", |e| e.sources().len() == n)
        .await;
    for i in 0..n {
        s.wait_ready(&format!("bench-{i}")).await;
    }
    let ready = started.elapsed();
    let calls = s.emulator.calls("CreatePartnerEventSource")
        + s.emulator.calls("ListPartnerEventSourceAccounts");
    println!("objects:                 {n}");
    println!("API creates took:        {:.2?}", created);
    println!(
        "all Ready after:         {:.2?} ({:.1} objects/s)",
        ready,
        n as f64 / ready.as_secs_f64()
    );
    println!(
        "EventBridge calls:       {calls} ({:.2} per object)",
        calls as f64 / n as f64
    );
    println!(
        "operator peak RSS:       {} KiB idle, {} KiB with {n} objects",
        idle_kib,
        peak_rss_kib(operator.pid())
    );

    // One resync round of every object: how long it takes at 50 calls/s.
    drop(operator);
    let listed = s.emulator.calls("ListPartnerEventSourceAccounts");
    let _operator = s
        .launch()
        .arg("--aws-rps", "50")
        .arg("--aws-burst", "50")
        .arg("--resync-interval", "30m")
        .env(
            "RUST_LOG",
            "warn,eventbridge_partner_operator::operator=info",
        )
        .start();
    let restarted = Instant::now();
    s.wait_emulator("a full re-check after restart", |e| {
        e.calls("ListPartnerEventSourceAccounts") >= listed + n as u64
    })
    .await;
    println!(
        "restart re-check of {n} objects at 50 calls/s: {:.2?}",
        restarted.elapsed()
    );
}
