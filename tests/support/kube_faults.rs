//! Kubernetes-side faults: a reverse proxy in front of the test control plane's API server
//! (`controlplane proxy`, tests/controlplane/proxy.go) that fails the operator's status
//! writes and finalizer patches with 409, 429 or 500, breaks its watches, and answers a
//! resumed watch with 410 Gone, all seeded and only for `partnereventsources`. An operator
//! given [`KubeFaultProxy::kubeconfig`] sees a flaky cluster; the test's own clients keep
//! talking to the API server directly.
//!
//! Faults are set and counted at runtime through the proxy's plain-HTTP control address;
//! [`KubeFaults`] and [`KubeFaultStats`] are the JSON it takes and gives.

// Each test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::controlplane::test_run_dir;

/// How long the proxy may take from spawn to `READY`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one request to the control address may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// How many lines of the proxy's log a failing test shows.
const LOG_TAIL_LINES: usize = 40;

/// The codes an error fault may answer with: Conflict, TooManyRequests (with
/// `Retry-After: 1`) and InternalError, each with the Status body the API server sends.
pub const ERROR_CODES: [u16; 3] = [409, 429, 500];

/// The faults to inject; the default injects nothing. Build with [`KubeFaults::seeded`] and
/// the methods that add one kind of fault each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeFaults {
    /// Seeds the generator every draw comes from (reseeded each time faults are set).
    pub seed: u64,
    /// Status writes (PATCH/PUT of `.../partnereventsources/<name>/status`).
    pub status_writes: Option<ErrorFault>,
    /// Writes of the object itself (PATCH/PUT of `.../partnereventsources/<name>`), which the
    /// operator only makes to add or remove its finalizer.
    pub finalizer_patches: Option<ErrorFault>,
    /// Every watch of the resource is cut off (the connection aborted) at a random time
    /// within the range after it starts.
    pub watch_breaks: Option<WatchBreaks>,
    /// A share of resumed watches is answered with a 410 Gone watch event. A resumed watch
    /// is the next watch of the same client, path and selectors after the proxy broke one,
    /// starting from a resourceVersion other than "" and "0"; the first watch after a list
    /// is not one, so a client that re-lists gets a working watch again.
    pub gone_on_resume: Option<GoneOnResume>,
}

/// Answers a share of writes with an error instead of passing them on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorFault {
    /// Within [0, 1].
    pub rate: f64,
    /// Drawn at random for each injected error; each among [`ERROR_CODES`].
    pub codes: Vec<u16>,
    /// When above 0, a write to an object that has just failed this many times in a row
    /// gets through: the operator backs off exponentially per object, so an unbounded run
    /// of failures stretches a test by minutes without showing anything new.
    #[serde(default)]
    pub max_in_a_row: u32,
}

/// When watches break: a random time between `min_ms` and `max_ms` after each starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchBreaks {
    pub min_ms: u64,
    pub max_ms: u64,
}

/// Which share of resumed watches get 410 Gone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoneOnResume {
    /// Within [0, 1].
    pub rate: f64,
}

impl KubeFaults {
    /// No faults yet, drawing from `seed`.
    pub fn seeded(seed: u64) -> KubeFaults {
        KubeFaults {
            seed,
            ..KubeFaults::default()
        }
    }

    /// Fails `rate` of status writes with one of `codes`, at most `max_in_a_row` times in a
    /// row for one object (0: no limit).
    pub fn status_writes(mut self, rate: f64, codes: &[u16], max_in_a_row: u32) -> KubeFaults {
        self.status_writes = Some(ErrorFault {
            rate,
            codes: codes.to_vec(),
            max_in_a_row,
        });
        self
    }

    /// Fails `rate` of finalizer patches with one of `codes`, at most `max_in_a_row` times in
    /// a row for one object (0: no limit).
    pub fn finalizer_patches(mut self, rate: f64, codes: &[u16], max_in_a_row: u32) -> KubeFaults {
        self.finalizer_patches = Some(ErrorFault {
            rate,
            codes: codes.to_vec(),
            max_in_a_row,
        });
        self
    }

    /// Breaks every watch after a random time within `after` (millisecond resolution).
    pub fn watch_breaks(mut self, after: RangeInclusive<Duration>) -> KubeFaults {
        self.watch_breaks = Some(WatchBreaks {
            min_ms: after.start().as_millis() as u64,
            max_ms: after.end().as_millis() as u64,
        });
        self
    }

    /// Answers `rate` of resumed watches with 410 Gone.
    pub fn gone_on_resume(mut self, rate: f64) -> KubeFaults {
        self.gone_on_resume = Some(GoneOnResume { rate });
        self
    }
}

/// What the proxy saw and did so far.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct KubeFaultStats {
    /// Requests that reached the proxy, by kind, faulted or not.
    pub requests: RequestCounts,
    /// Faults injected, by kind.
    pub injected: InjectedCounts,
    /// Error answers injected (status writes and finalizer patches), by HTTP code.
    pub injected_by_code: BTreeMap<u16, u64>,
    /// Requests answered 502 because the API server could not be reached.
    pub upstream_unavailable: u64,
}

/// Requests by kind: those of `partnereventsources` one by one, the rest as `other`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RequestCounts {
    pub status_write: u64,
    pub finalizer_patch: u64,
    /// Every watch, resumed ones included.
    pub watch: u64,
    /// Watches that resumed one the proxy broke.
    pub resumed_watch: u64,
    pub list: u64,
    pub get: u64,
    pub create: u64,
    pub delete: u64,
    pub other: u64,
}

/// Faults injected, by kind.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct InjectedCounts {
    /// Status writes answered with an error.
    pub status_write: u64,
    /// Finalizer patches answered with an error.
    pub finalizer_patch: u64,
    /// Watches cut off.
    pub watch_break: u64,
    /// Resumed watches answered with 410 Gone.
    pub watch_gone: u64,
}

impl KubeFaultStats {
    /// Every fault injected, of any kind.
    pub fn total_injected(&self) -> u64 {
        let i = &self.injected;
        i.status_write + i.finalizer_patch + i.watch_break + i.watch_gone
    }
}

/// A running fault proxy; killed when dropped.
pub struct KubeFaultProxy {
    child: Child,
    /// Kept open while the proxy should run: it runs with `--exit-on-stdin-eof`, so it stops
    /// with the test process even if this is never dropped.
    stdin: Option<ChildStdin>,
    /// Holds its kubeconfig and log.
    dir: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    control: SocketAddr,
}

impl KubeFaultProxy {
    /// Starts a proxy in front of the API server of `upstream_kubeconfig`, with the
    /// `controlplane` binary of `bin_dir` (`ControlPlane::bin_dir`), injecting nothing yet.
    /// Its kubeconfig has the same users as `upstream_kubeconfig`.
    ///
    /// Panics with the tail of its log if it does not start.
    pub fn start(upstream_kubeconfig: &Path, bin_dir: &Path) -> KubeFaultProxy {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let run_dir = test_run_dir().unwrap_or_else(|message| panic!("{message}"));
        let dir = run_dir.join(format!(
            "kube-faults-{}",
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let kubeconfig = dir.join("proxy.kubeconfig");
        let log = dir.join("proxy.log");

        let mut child = Command::new(bin_dir.join("controlplane"))
            .arg("proxy")
            .arg("--exit-on-stdin-eof")
            .arg("--upstream-kubeconfig")
            .arg(upstream_kubeconfig)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--log-file")
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}/controlplane proxy: {e}", bin_dir.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");

        // A thread reads stdout so a hung start can be timed out; it keeps draining
        // afterwards so the proxy never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(Some(line));
            }
            let _ = tx.send(None);
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut control = None;
        let failure = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(line)) => {
                    if let Some(url) = line.strip_prefix("CONTROL http://") {
                        control = url.parse::<SocketAddr>().ok();
                    } else if let Some(path) = line.strip_prefix("READY ") {
                        if Path::new(path) != kubeconfig {
                            break Some(format!("it announced kubeconfig {path}"));
                        }
                        if control.is_none() {
                            break Some("it announced no control address".to_string());
                        }
                        break None;
                    }
                }
                Ok(None) => break Some("it exited before it was ready".to_string()),
                Err(_) => break Some(format!("it was not ready within {START_TIMEOUT:?}")),
            }
        };
        if let Some(reason) = failure {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the Kubernetes fault proxy did not start: {reason}; last lines of {}:\n{}",
                log.display(),
                tail(&log)
            );
        }
        KubeFaultProxy {
            child,
            stdin,
            dir,
            kubeconfig,
            log,
            control: control.expect("checked above"),
        }
    }

    /// The kubeconfig that reaches the API server through the proxy (give it to the
    /// operator).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The proxy's log.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Puts `faults` in force from now on, replacing the earlier ones; panics if the proxy
    /// rejects them.
    pub fn set(&self, faults: &KubeFaults) {
        let body = serde_json::to_string(faults).expect("faults serialize");
        self.control_request("PUT", "/faults", &body);
    }

    /// Injects nothing from now on (the counts stay).
    pub fn clear(&self) {
        self.control_request("DELETE", "/faults", "");
    }

    /// What the proxy saw and injected so far.
    pub fn stats(&self) -> KubeFaultStats {
        let body = self.control_request("GET", "/stats", "");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("stats {body}: {e}"))
    }

    /// Waits until the stats satisfy `condition` and returns them, or panics with them
    /// after `timeout`.
    pub async fn wait_for_stats(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&KubeFaultStats) -> bool,
    ) -> KubeFaultStats {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if condition(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "the fault proxy never saw {what} within {timeout:?}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One HTTP/1.1 request to the control address; returns the body of a 2xx answer and
    /// panics on anything else.
    fn control_request(&self, method: &str, path: &str, body: &str) -> String {
        let fail = |e: &dyn std::fmt::Display| -> ! {
            panic!(
                "{method} {path} to the fault proxy at {}: {e}",
                self.control
            )
        };
        let mut stream =
            TcpStream::connect_timeout(&self.control, CONTROL_TIMEOUT).unwrap_or_else(|e| fail(&e));
        stream
            .set_read_timeout(Some(CONTROL_TIMEOUT))
            .unwrap_or_else(|e| fail(&e));
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.control,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| fail(&e));
        // The proxy sets Content-Length and closes the connection: the answer is everything
        // up to EOF, never chunked.
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|e| fail(&e));
        let status: u16 = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| fail(&format!("no status line in {response:?}")));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        if !(200..300).contains(&status) {
            fail(&format!("{status}: {body}"));
        }
        body
    }
}

impl Drop for KubeFaultProxy {
    /// Kills the proxy. A failing test keeps its dir and shows the tail of its log; a passing
    /// one removes the dir.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.stdin.take());
        if std::thread::panicking() {
            eprintln!(
                "Kubernetes fault proxy log kept at {} (last lines):\n{}",
                self.log.display(),
                tail(&self.log)
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The last lines of a log, for failure messages.
fn tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", log.display()),
    }
}
