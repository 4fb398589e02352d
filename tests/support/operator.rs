//! Runs the real operator binary as a child process, the way a cluster would: configured by
//! flags and environment, logging JSON lines (to a file the test can read), stopped with
//! SIGTERM or killed with SIGKILL.

#![allow(dead_code)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The access key id the operator signs with. Not 12 digits, so the emulator treats the
/// caller as its configured partner account.
pub const PARTNER_ACCESS_KEY_ID: &str = "AKIAPARTNEREXAMPLE01";
/// The secret key the operator is given; tests check it never reaches a log line.
pub const PARTNER_SECRET_ACCESS_KEY: &str = "e2e-secret-Qk7rZ3vT9wX2yB5nM8pL";

/// How to start one operator process.
#[derive(Clone, Debug)]
pub struct Launch {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    /// An operator for the given kubeconfig and EventBridge endpoint, reconciling only objects
    /// labelled `e2e=<selector>`, without leader election, with a short resync so that drift
    /// tests do not wait long, and a generous AWS rate.
    pub fn new(kubeconfig: &Path, endpoint: &str, selector: &str) -> Launch {
        let args = [
            "run",
            "--region",
            "eu-west-1",
            "--aws-endpoint-url",
            endpoint,
            "--selector",
            &format!("e2e={selector}"),
            "--leader-election",
            "false",
            "--resync-interval",
            "3s",
            "--aws-rps",
            "100",
            "--aws-burst",
            "100",
            "--log-format",
            "json",
            "--http-addr",
            "127.0.0.1:0",
        ]
        .map(str::to_owned)
        .to_vec();
        let env = vec![
            ("KUBECONFIG".to_owned(), kubeconfig.display().to_string()),
            (
                "AWS_ACCESS_KEY_ID".to_owned(),
                PARTNER_ACCESS_KEY_ID.to_owned(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                PARTNER_SECRET_ACCESS_KEY.to_owned(),
            ),
            ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
            (
                "RUST_LOG".to_owned(),
                "info,eventbridge_partner_operator=debug,kube=warn".to_owned(),
            ),
        ];
        Launch { args, env }
    }

    /// Sets a flag, replacing an earlier value of the same flag.
    pub fn arg(mut self, flag: &str, value: &str) -> Launch {
        if let Some(i) = self.args.iter().position(|a| a == flag) {
            self.args[i + 1] = value.to_owned();
        } else {
            self.args.push(flag.to_owned());
            self.args.push(value.to_owned());
        }
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the process; its output goes to a log file.
    pub fn start(&self) -> OperatorProcess {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "eventbridge-partner-operator-e2e-{}-{}.log",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let out = File::create(&log).expect("create the operator log file");
        let err = out.try_clone().expect("clone the log file handle");
        let mut command = Command::new(env!("CARGO_BIN_EXE_eventbridge-partner-operator"));
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Nothing from the test process's own AWS setup may leak into the operator.
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start the operator binary");
        OperatorProcess {
            child: Some(child),
            log,
        }
    }
}

/// A running operator process; killed when dropped.
pub struct OperatorProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl OperatorProcess {
    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log as JSON objects (lines that are not JSON are skipped).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// Waits until some log line satisfies `matches`, or panics with the log after `timeout`.
    pub async fn wait_for_log(
        &self,
        timeout: Duration,
        what: &str,
        mut matches: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_lines().into_iter().find(|l| matches(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "operator did not log {what} within {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The address of `/metrics`, `/healthz` and `/readyz`, from the startup log line.
    pub async fn http_addr(&self) -> SocketAddr {
        let line = self
            .wait_for_log(Duration::from_secs(60), "its HTTP address", |l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("serving /metrics"))
            })
            .await;
        line["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"))
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until the process exits on its own and returns its status, or panics with the log
    /// after `timeout`.
    pub async fn wait_exited(&mut self, timeout: Duration, why: &str) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator still runs {timeout:?} after {why}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit; returns its status,
    /// or `None` if it did not exit in time (it is then killed).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "operator log kept at {} (last lines):\n{}",
                self.log.display(),
                tail(&self.log(), 40)
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
