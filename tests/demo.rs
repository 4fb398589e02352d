//! `make demo`, run the way the README's quick start describes it: from the repository root,
//! the README's second-shell steps while it runs, then Ctrl-C (SIGINT to its process group,
//! as a terminal sends it), after which nothing of it may be left running.
//!
//! The demo owns the fixed paths under `target/demo` (`hack/demo.sh` holds
//! `target/demo.lock` while it runs) and is the only test in this binary, so no other test
//! can share them; every port it uses is chosen free at start (the control plane picks its own
//! for a fresh `--dir`, the emulator and the operator bind port 0 on 127.0.0.1).

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use support::command::output_of;
use support::repo::{read, root, sorted_files};

/// Until the demo starts its control plane: it may first build the workspace and, the first
/// time, the control plane (`hack/controlplane.sh build`, many minutes on a busy machine).
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// From the control plane's start until the demo says the operator is running (the example is
/// Ready by then).
const START_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// From SIGINT until `make` exits: the control plane gives the API server and etcd 30 s each,
/// the operator has a 20 s shutdown timeout.
const STOP_TIMEOUT: Duration = Duration::from_secs(3 * 60);
/// How long one second-shell step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);
/// The signal number of SIGINT on Linux (no libc among the dev-dependencies).
const SIGINT: i32 = 2;
/// How many lines of each log a failure shows.
const TAIL_LINES: usize = 40;

/// What the demo prints once the example is Ready.
const RUNNING: &str = "The operator is running. In another shell:";
/// The demo's first line after its builds.
const STARTING_CONTROL_PLANE: &str = "demo: starting the control plane";
/// What the README's second-shell steps set, removed from their environment so that only
/// `target/demo/env` can provide it.
const DEMO_ENV: [&str; 5] = [
    "KUBECONFIG",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "PARTNER_ACCOUNT_ID",
    "METRICS_URL",
];
/// Make's own variables, which a `make test` run leaves in the environment; a user's shell
/// has none of them.
const MAKE_ENV: [&str; 4] = ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CARGO_MAKEFLAGS"];

fn demo_dir() -> PathBuf {
    root().join("target/demo")
}

/// `make demo` running in a process group of its own. Dropping it before [`Demo::stop`]
/// succeeded (a failing test) kills the whole group with SIGKILL and shows the logs.
struct Demo {
    child: Child,
    /// The process group: make's pid.
    pgid: u32,
    log: PathBuf,
    /// Every process of the running demo: the group and, found through parent pids, the
    /// components `hack/demo.sh` starts in sessions of their own (and their children).
    /// Recorded once the demo is up, so the stop can be checked for all of them.
    processes: Vec<Process>,
    /// Set once make has exited and no process of the demo is left.
    stopped: bool,
}

/// One process, told apart from a later one that reuses its pid by its start time.
#[derive(Clone, Debug, PartialEq)]
struct Process {
    pid: u32,
    start_time: u64,
    command: String,
}

/// A `/proc/<pid>/stat` line's fields after the command name.
struct Stat {
    state: char,
    ppid: u32,
    pgrp: u32,
    start_time: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; the fields follow the last ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        // Field 22 of the whole line; the 20th after the command name.
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// Every live process (zombies are done: they only wait to be reaped).
fn live_processes() -> Vec<(u32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .filter(|(_, stat)| stat.state != 'Z')
        .collect()
}

impl Demo {
    /// Starts `make demo` from the repository root, stdout and stderr to a log file, no stdin.
    fn start() -> Demo {
        // Outside target/demo: the demo removes that dir when it starts.
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("make-demo.log");
        let file = File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let mut command = Command::new("make");
        command
            .arg("demo")
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .process_group(0);
        for var in MAKE_ENV {
            command.env_remove(var);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let pgid = child.id();
        eprintln!("make demo: process group {pgid}, log {}", log.display());
        Demo {
            child,
            pgid,
            log,
            processes: Vec::new(),
            stopped: false,
        }
    }

    fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Polls until the log satisfies `ready`; panics with the log when make exits first or
    /// `timeout` passes.
    fn wait_for_log(&mut self, timeout: Duration, what: &str, ready: impl Fn(&str) -> bool) {
        let started = Instant::now();
        loop {
            if ready(&self.log()) {
                eprintln!("make demo: {what} after {:?}", started.elapsed());
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll make") {
                panic!("make demo exited ({status}) before {what}");
            }
            assert!(
                started.elapsed() < timeout,
                "make demo: no {what} within {timeout:?}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Sends SIGINT to the whole process group, as Ctrl-C in a terminal does.
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", "--", &format!("-{}", self.pgid)])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -INT -{} failed: {status}",
            self.pgid
        );
    }

    /// Waits until make exits; panics after `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll make") {
                eprintln!(
                    "make demo: exited ({status}) {:?} after SIGINT",
                    started.elapsed()
                );
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "make demo still runs {timeout:?} after SIGINT"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Records the demo's processes: the group and every descendant of its members.
    fn record_processes(&mut self) {
        let all = live_processes();
        let mut pids: Vec<u32> = all
            .iter()
            .filter(|(_, stat)| stat.pgrp == self.pgid)
            .map(|(pid, _)| *pid)
            .collect();
        let mut next = 0;
        while next < pids.len() {
            let parent = pids[next];
            pids.extend(
                all.iter()
                    .filter(|(pid, stat)| stat.ppid == parent && !pids.contains(pid))
                    .map(|(pid, _)| *pid)
                    .collect::<Vec<_>>(),
            );
            next += 1;
        }
        self.processes = all
            .iter()
            .filter(|(pid, _)| pids.contains(pid))
            .map(|(pid, stat)| Process {
                pid: *pid,
                start_time: stat.start_time,
                command: command_line(*pid),
            })
            .collect();
    }

    /// The demo's processes still running, one `pid command line` each: what is left in the
    /// group, and every recorded process that is still the same live process.
    fn processes_left(&self) -> Vec<String> {
        live_processes()
            .into_iter()
            .filter(|(pid, stat)| {
                stat.pgrp == self.pgid
                    || self
                        .processes
                        .iter()
                        .any(|p| p.pid == *pid && p.start_time == stat.start_time)
            })
            .map(|(pid, _)| format!("{pid} {}", command_line(pid)))
            .collect()
    }

    /// Kills every process of the demo with SIGKILL: the group, and the recorded processes in
    /// sessions of their own.
    fn kill_all(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pgid)])
            .status();
        for process in &self.processes {
            if stat(process.pid).is_some_and(|s| s.start_time == process.start_time) {
                let _ = Command::new("kill")
                    .args(["-KILL", &process.pid.to_string()])
                    .status();
            }
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if !self.stopped {
            self.kill_all();
            let _ = self.child.wait();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.processes_left().is_empty() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {} (last lines):\n{}",
                self.log.display(),
                tail(&self.log(), 2 * TAIL_LINES)
            );
            for name in ["operator.log", "controlplane.log", "emulator.log"] {
                let path = demo_dir().join(name);
                if let Ok(text) = std::fs::read_to_string(&path) {
                    eprintln!(
                        "--- {} (last lines):\n{}",
                        path.display(),
                        tail(&text, TAIL_LINES)
                    );
                }
            }
        }
    }
}

/// The README's quick-start section (`## Quick start` up to the next `## ` heading).
fn quick_start() -> String {
    let readme = read("README.md");
    let start = readme
        .find("\n## Quick start\n")
        .expect("the README has a `## Quick start` section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end].to_owned()
}

/// The quick start's second-shell steps: its `sh` block that begins with
/// `source target/demo/env`.
fn second_shell_steps() -> String {
    let quick_start = quick_start();
    quick_start
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.starts_with("source target/demo/env\n"))
        .unwrap_or_else(|| {
            panic!("no ```sh block starting with `source target/demo/env` in:\n{quick_start}")
        })
        .to_owned()
}

/// `export NAME="value"` lines of `target/demo/env`, without the `PATH` one.
fn demo_env() -> BTreeMap<String, String> {
    let path = demo_dir().join("env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .filter(|(name, _)| *name != "PATH")
        .map(|(name, value)| (name.to_owned(), value.trim_matches('"').to_owned()))
        .collect()
}

/// `host:port` of an `http(s)://host:port/...` URL.
fn url_addr(url: &str) -> SocketAddr {
    let rest = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    rest.parse()
        .unwrap_or_else(|e| panic!("no host:port in {url}: {e}"))
}

/// Every address the demo's components listen on: the control plane's (API server, etcd
/// client and peer, from its data dir's ports.json), the emulator's and the operator's.
fn listening_addrs(env: &BTreeMap<String, String>) -> Vec<(String, SocketAddr)> {
    let ports_path = demo_dir().join("data/ports.json");
    let ports: serde_json::Value = serde_json::from_str(&read(&ports_path))
        .unwrap_or_else(|e| panic!("parsing {}: {e}", ports_path.display()));
    let mut addrs: Vec<(String, SocketAddr)> = ["apiServer", "etcdClient", "etcdPeer"]
        .into_iter()
        .map(|key| {
            let port = ports[key]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| panic!("no {key} port in {ports}"));
            (
                format!("control plane {key}"),
                SocketAddr::from(([127, 0, 0, 1], port)),
            )
        })
        .collect();
    for (what, var) in [
        ("emulator", "AWS_ENDPOINT_URL"),
        ("operator", "METRICS_URL"),
    ] {
        let url = env
            .get(var)
            .unwrap_or_else(|| panic!("target/demo/env sets no {var}: {env:?}"));
        addrs.push((what.to_owned(), url_addr(url)));
    }
    addrs
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Runs `script` as a second shell would: `bash` from the repository root, without the
/// variables `target/demo/env` sets, stopping at the first failing step (`-e -o pipefail`).
fn second_shell(script: &str) -> Output {
    let mut command = Command::new("timeout");
    command
        .arg(STEP_TIMEOUT.as_secs().to_string())
        .args(["bash", "-e", "-o", "pipefail", "-c", script])
        .current_dir(root())
        .stdin(Stdio::null());
    for var in DEMO_ENV.into_iter().chain(MAKE_ENV) {
        command.env_remove(var);
    }
    output_of(&mut command)
}

fn assert_success(script: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the second shell's steps failed ({}):\n{script}\n--- stdout:\n{stdout}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The value in column `column` of the row whose first field is `name`, in a kubectl table
/// (columns start where their header starts).
fn table_cell(table: &str, name: &str, column: &str) -> Option<String> {
    let header = table
        .lines()
        .find(|l| l.starts_with("NAME ") && l.contains(&format!(" {column} ")))?;
    let at = header.find(&format!(" {column} "))? + 1;
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))?;
    row.get(at..)?.split_whitespace().next().map(str::to_owned)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn make_demo_runs_the_readme_quick_start_and_stops_cleanly_on_ctrl_c() {
    let steps = second_shell_steps();
    let mut demo = Demo::start();

    // The demo is up: it printed its message, which it does once the example is Ready and
    // target/demo/env is written.
    demo.wait_for_log(BUILD_TIMEOUT, "control plane start", |log| {
        log.contains(STARTING_CONTROL_PLANE)
    });
    demo.wait_for_log(START_TIMEOUT, "\"The operator is running\"", |log| {
        log.contains(RUNNING)
    });
    assert!(demo_dir().join("env").is_file(), "no target/demo/env");
    demo.record_processes();
    let commands: Vec<&str> = demo.processes.iter().map(|p| p.command.as_str()).collect();
    for component in [
        // The control plane runs kube-apiserver and etcd in its own process.
        "controlplane",
        "eventbridge-partner-emulator",
        "eventbridge-partner-operator run",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(component)),
            "no {component} among the demo's processes:\n{}",
            commands.join("\n")
        );
    }
    let ready = assert_success(
        "kubectl get pes",
        &second_shell(
            "source target/demo/env\n\
             kubectl get pes -n tenants customer-4711-orders \
             -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}'",
        ),
    );
    assert_eq!(ready.trim(), "True", "customer-4711-orders is not Ready");

    // It installed what a user installs: every CRD of crds/ (the files deploy/operator.yaml
    // and the chart carry), each Established.
    let established = assert_success(
        "kubectl get -f crds/",
        &second_shell(
            "source target/demo/env\n\
             kubectl get -f crds/ -o jsonpath='{range .items[*]}{.metadata.name}=\
             {.status.conditions[?(@.type==\"Established\")].status}{\"\\n\"}{end}'",
        ),
    );
    for file in sorted_files("crds") {
        let crd: serde_yaml::Value = serde_yaml::from_str(&read(&file))
            .unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()));
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{} names no CRD", file.display()));
        assert!(
            established.lines().any(|l| l == format!("{name}=True")),
            "the demo did not install {} ({name} Established):\n{established}",
            file.display()
        );
    }

    // The demo's own "In another shell" text starts with the README's steps.
    let log = demo.log();
    let printed = &log[log.find(RUNNING).expect("the message is in the log")..];
    let indented: String = steps.lines().map(|l| format!("  {l}\n")).collect();
    assert!(
        printed.contains(&format!("\n\n{indented}")),
        "the demo's \"In another shell\" text does not list the README's steps\n{steps}\nit \
         printed:\n{printed}"
    );

    // The README's second-shell steps, as written.
    eprintln!("second shell:\n{steps}");
    let output = assert_success(&steps, &second_shell(&steps));
    eprintln!("{output}");
    assert_eq!(
        table_cell(&output, "customer-4711-orders", "READY").as_deref(),
        Some("True"),
        "`kubectl get pes` does not show customer-4711-orders with READY True:\n{output}"
    );
    assert!(
        output
            .lines()
            .any(|l| l.starts_with("eventbridge_partner_operator_aws_requests_total")),
        "the metrics lack eventbridge_partner_operator_aws_requests_total:\n{output}"
    );

    // What must be closed after the stop is open now.
    let env = demo_env();
    let addrs = listening_addrs(&env);
    for (what, addr) in &addrs {
        assert!(accepts(*addr), "{what} does not listen on {addr}");
    }

    // Ctrl-C.
    demo.interrupt();
    let status = demo.wait_exit(STOP_TIMEOUT);
    let left = demo.processes_left();
    demo.stopped = left.is_empty();
    assert!(
        left.is_empty(),
        "processes of the demo left running:\n{}",
        left.join("\n")
    );
    // GNU make waits for its recipe and then, whatever the recipe's status, raises SIGINT on
    // itself again, so it ends killed by SIGINT (a shell shows 130). The recipe's own status
    // is in the log: make prints `make: *** [Makefile:..: demo] Error N` when it is not 0.
    assert!(
        status.success() || status.signal() == Some(SIGINT),
        "make demo ended {status} after SIGINT, neither 0 nor by SIGINT"
    );
    let log = demo.log();
    assert!(
        !log.contains("make: ***"),
        "make reports an error after SIGINT (hack/demo.sh did not exit 0):\n{}",
        tail(&log, TAIL_LINES)
    );
    let last_demo_line = log.lines().rfind(|l| l.starts_with("demo: "));
    assert_eq!(
        last_demo_line,
        Some("demo: stopped"),
        "hack/demo.sh did not stop cleanly:\n{}",
        tail(&log, TAIL_LINES)
    );
    for (what, addr) in &addrs {
        assert!(
            !accepts(*addr),
            "{what} still accepts connections on {addr}"
        );
    }
    assert!(
        !demo_dir().join("env").exists() && !demo_dir().join("data").exists(),
        "the stopped demo left target/demo/env or target/demo/data behind"
    );
    eprintln!(
        "make demo: stopped cleanly ({status}); none of its {} processes left",
        demo.processes.len()
    );
}
