//! Rootful podman for the image tests: the project's `hack/containers.conf` (runc, cgroupfs,
//! explicit ulimits), the image `make image` builds, and containers that are removed when
//! their handle is dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    super::repo::root().to_path_buf()
}

/// The image `make image` (hack/image.sh) tags: the crate version, as the chart's default
/// image tag (its appVersion).
pub fn image() -> String {
    format!(
        "localhost/eventbridge-partner-operator:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// `podman` with the project's containers.conf.
pub fn podman() -> Command {
    let mut command = Command::new("podman");
    command
        .env("CONTAINERS_CONF", root().join("hack/containers.conf"))
        .stdin(Stdio::null());
    command
}

/// Runs podman with `args`, panicking with its stderr when it fails; returns stdout.
pub fn podman_ok(args: &[&str]) -> String {
    let output = podman()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running podman {args:?}: {e}"));
    assert!(
        output.status.success(),
        "podman {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether CI runs this (CI=true): then a missing image or podman is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The image to test, or `None` (with a notice) when podman or the image is missing outside
/// CI. Under CI=true a missing podman or image fails the test: `make image` runs first there.
pub fn built_image() -> Option<String> {
    let image = image();
    let why = match podman().args(["image", "exists", &image]).output() {
        Ok(output) if output.status.success() => return Some(image),
        Ok(_) => format!("the image {image} is not built"),
        Err(e) => format!("podman cannot run ({e})"),
    };
    assert!(
        !in_ci(),
        "{why}: CI runs `make image` before the tests, so this is a failure"
    );
    eprintln!("SKIPPED: {why}; run `make image` first (CI=true makes this a failure)");
    None
}

/// A port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// One plain HTTP/1.1 GET; the status code and body, or `None` when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// A container started with `podman run --detach`; removed (killed first) when dropped.
pub struct Container {
    name: String,
}

impl Container {
    /// `podman run --detach --name <name> <args...>`: `args` hold the options, the image and
    /// its arguments.
    pub fn run(name: &str, args: &[String]) -> Container {
        let _ = podman().args(["rm", "--force", "--ignore", name]).output();
        let mut command = podman();
        command.args(["run", "--detach", "--name", name]).args(args);
        let output = command.output().expect("running podman run");
        assert!(
            output.status.success(),
            "podman run failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Container {
            name: name.to_owned(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `podman inspect --format <format>`, trimmed.
    pub fn inspect(&self, format: &str) -> String {
        podman_ok(&["inspect", "--format", format, &self.name])
            .trim()
            .to_owned()
    }

    /// Everything the container wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        let Output { stdout, stderr, .. } = podman()
            .args(["logs", &self.name])
            .output()
            .expect("running podman logs");
        let mut text = String::from_utf8_lossy(&stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&stderr));
        text
    }

    /// The log lines that are JSON objects.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Whether the container still runs.
    pub fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// Sends `signal` to the container's main process.
    pub fn signal(&self, signal: &str) {
        podman_ok(&["kill", "--signal", signal, &self.name]);
    }

    /// Waits until the container has exited, for at most `timeout`; its exit code, or `None`
    /// when it still runs then.
    pub fn wait_exit(&self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.running() {
                return self.inspect("{{.State.ExitCode}}").parse().ok();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `matches` holds for some JSON log line, for at most `timeout`; returns it,
    /// or panics with the log.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_lines().into_iter().find(|l| matches(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline && self.running(),
                "the container did not log {what} within {timeout:?} (running: {}); log:\n{}",
                self.running(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("log of container {}:\n{}", self.name, self.logs());
        }
        let _ = podman()
            .args(["rm", "--force", "--time", "0", "--ignore", &self.name])
            .output();
    }
}

/// A temporary dir that is removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{name}-{}-{:06x}",
            std::process::id(),
            rand::random::<u32>() & 0xff_ffff
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
