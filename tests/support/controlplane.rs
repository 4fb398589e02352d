//! A real Kubernetes control plane (kube-apiserver with etcd) for integration tests.
//!
//! `hack/controlplane.sh build` compiles the Go program in `tests/controlplane/` and
//! kubectl into a git-ignored cache; [`ControlPlane::shared`] starts that program once per
//! test binary on 127.0.0.1 with its own temporary data dir, RBAC on and service-account
//! tokens signed, so tests talk to the same API server a cluster runs.
//!
//! A suite whose cluster-wide objects other suites of its test binary must not see takes
//! [`ControlPlane::of_suite`], shared by its own tests alone.
//!
//! A test that stops or restarts the API server takes a [`ControlPlane::dedicated`] one
//! instead: its data dir persists across [`ControlPlane::restart`], which brings it back on
//! the same URL with the same CA, admin token, service-account signing key and objects, so
//! clients and kubeconfigs made before the restart work after it.

// Each test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::command::{run, run_with_input};

/// How long the program may take from spawn to `READY` (the build, which can take many
/// minutes the first time, is not counted: it runs before the clock starts).
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How many lines of the control plane's log a start failure shows.
const LOG_TAIL_LINES: usize = 60;

/// Run dirs (kubeconfigs and logs of earlier test processes) older than this are removed.
const STALE_RUN_DIR: Duration = Duration::from_secs(24 * 60 * 60);

/// Lifetime asked for service-account tokens: longer than any test run.
const SERVICE_ACCOUNT_TOKEN_SECONDS: i64 = 24 * 60 * 60;

/// How long a graceful stop may take before the process is killed: the program gives the
/// API server and etcd 30 s each.
const STOP_TIMEOUT: Duration = Duration::from_secs(75);

/// How a dedicated control plane's process is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: the API server closes its connections and etcd shuts down in order, as in a
    /// rolling restart.
    Graceful,
    /// SIGKILL: the process dies at once, as in a crash or an OOM kill.
    Kill,
}

/// A running control plane and the files to reach it.
pub struct ControlPlane {
    /// The control plane process; `None` while a dedicated one is stopped.
    process: Mutex<Option<Process>>,
    /// What every start of the program is given.
    args: Vec<OsString>,
    /// Holds the kubeconfigs and the control plane's log: this test process's run dir for
    /// the shared control plane, a dir of its own inside it for a dedicated one.
    run_dir: PathBuf,
    /// A dedicated control plane's data dir (`--dir`), kept across restarts; `None` for the
    /// shared one, whose program keeps its data in a temporary dir of its own.
    data_dir: Option<PathBuf>,
    kubeconfig: PathBuf,
    log: PathBuf,
    bin_dir: PathBuf,
    server_url: String,
    /// Makes each service-account kubeconfig file name unique.
    written_kubeconfigs: AtomicUsize,
    /// The CRD files [`ControlPlane::install_crds`] applied to this control plane.
    installed_crds: Mutex<BTreeSet<PathBuf>>,
    /// How many times a dedicated control plane was started again.
    restarts: AtomicUsize,
}

/// One run of the control plane program.
struct Process {
    child: Child,
    /// Kept open while the process should run: the control plane runs with
    /// `--exit-on-stdin-eof`, so when the test process ends (statics are never dropped, and a
    /// killed test drops nothing), the kernel closes the pipe and the control plane stops.
    stdin: ChildStdin,
}

impl ControlPlane {
    /// Builds (via hack/controlplane.sh build, cached) and starts the control plane once per test binary; synchronous so any tokio runtime can use it.
    ///
    /// Panics, in every test that asks for it, with the reason and the tail of the
    /// control plane's log when it could not be built or started.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        match SHARED.get_or_init(|| ControlPlane::start_shared(None)) {
            Ok(control_plane) => control_plane,
            Err(message) => panic!("{message}"),
        }
    }

    /// A control plane shared by the tests of one suite alone, started once per test binary
    /// like [`ControlPlane::shared`] (and, like it, never restarted). For a suite whose
    /// cluster-wide objects would change what the other suites of its binary see: a CRD it
    /// relaxes, an admission policy or operator that judges every namespace. Each suite of a
    /// test binary once had a control plane to itself; this keeps that where it matters.
    pub fn of_suite(suite: &'static str) -> &'static ControlPlane {
        type Slot = OnceLock<Result<ControlPlane, String>>;
        static SUITES: Mutex<BTreeMap<&'static str, &'static Slot>> = Mutex::new(BTreeMap::new());
        let slot = *SUITES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(suite)
            .or_insert_with(|| Box::leak(Box::new(OnceLock::new())));
        // Started outside the lock: other suites' control planes start meanwhile.
        match slot.get_or_init(|| ControlPlane::start_shared(Some(suite))) {
            Ok(control_plane) => control_plane,
            Err(message) => panic!("{message}"),
        }
    }

    /// Builds (cached) and starts a control plane for one test alone, with a data dir that
    /// persists across [`ControlPlane::restart`]. Dropping it stops the process and removes
    /// the dir. Synchronous, like [`ControlPlane::shared`]; it has no CRDs until
    /// [`ControlPlane::install_crds`] applies them.
    ///
    /// Panics with the reason and the tail of the control plane's log when it could not be
    /// built or started.
    pub fn dedicated() -> ControlPlane {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let started = (|| {
            let run_dir = test_run_dir()?.join(format!(
                "dedicated-{}",
                COUNT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&run_dir)
                .map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
            let data_dir = run_dir.join("data");
            ControlPlane::start(run_dir, Some(data_dir))
        })();
        started.unwrap_or_else(|message| panic!("{message}"))
    }

    /// Stops a dedicated control plane gracefully (SIGTERM), waits until it has exited, and
    /// starts it again with the same data dir and kubeconfig path; returns once the API
    /// server is ready. The URL, CA, admin token and service-account signing key stay the
    /// same, so clients and kubeconfigs made before keep working after.
    ///
    /// Blocks the calling thread for the seconds this takes (interior mutability: a
    /// `&ControlPlane` shared by tasks may call it). From async code, call it in a
    /// multi-threaded runtime or through `tokio::task::spawn_blocking`.
    ///
    /// Panics for the shared control plane, which other tests are using.
    pub fn restart(&self) {
        self.restart_with(Stop::Graceful);
    }

    /// Like [`ControlPlane::restart`], stopping the process as `how` says.
    pub fn restart_with(&self, how: Stop) {
        let mut process = self.lock_process();
        self.stop_locked(&mut process, how);
        self.start_locked(&mut process);
    }

    /// Stops a dedicated control plane as `how` says and waits until it has exited; until
    /// [`ControlPlane::start_again`], nothing listens on its URL. Does nothing if it is
    /// already stopped. Blocks like [`ControlPlane::restart`].
    pub fn stop(&self, how: Stop) {
        let mut process = self.lock_process();
        self.stop_locked(&mut process, how);
    }

    /// Starts a dedicated control plane that [`ControlPlane::stop`] stopped, and waits until
    /// it is ready. Does nothing if it is running.
    pub fn start_again(&self) {
        let mut process = self.lock_process();
        if process.is_none() {
            self.start_locked(&mut process);
        }
    }

    /// How many times this control plane was started again after a stop.
    pub fn restarts(&self) -> usize {
        self.restarts.load(Ordering::SeqCst)
    }

    /// The control plane's log (appended to by every start).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The admin kubeconfig (user in group `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The directory that holds `kubectl` (and `controlplane`).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// A fresh admin client (create one per tokio runtime: kube clients are tied to the runtime that made them).
    pub async fn admin_client(&self) -> kube::Client {
        client_for(&self.kubeconfig).await
    }

    /// `kubectl --kubeconfig <admin>` ready to take args.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(self.bin_dir.join("kubectl"));
        command.arg("--kubeconfig").arg(&self.kubeconfig);
        command
    }

    /// `kubectl apply --server-side` of `manifest`, given on stdin.
    pub fn apply(&self, manifest: &str) {
        run_with_input(
            self.kubectl()
                .args(["apply", "--server-side", "--field-manager=tests", "-f", "-"]),
            manifest,
        );
    }

    /// Creates namespace `name` unless it exists.
    pub fn ensure_namespace(&self, name: &str) {
        self.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        ));
    }

    /// Applies the CustomResourceDefinitions in `files` and waits until the API server
    /// serves them (`Established`). Each file is applied once per control plane; a later call
    /// for it returns at once, and a concurrent one waits for the first.
    pub fn install_crds(&self, files: &[PathBuf]) {
        let mut installed = self
            .installed_crds
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let missing: Vec<&PathBuf> = files
            .iter()
            .filter(|file| !installed.contains(*file))
            .collect();
        if missing.is_empty() {
            return;
        }
        for file in &missing {
            run(self
                .kubectl()
                .args(["apply", "--server-side", "--field-manager=tests", "-f"])
                .arg(file));
        }
        let mut wait = self.kubectl();
        wait.args(["wait", "--for=condition=Established", "--timeout=60s"]);
        for file in &missing {
            wait.arg("-f").arg(file);
        }
        run(&mut wait);
        installed.extend(missing.into_iter().cloned());
    }

    /// Asks TokenRequest for a token of ServiceAccount namespace/name (which must exist) and writes a kubeconfig that acts as it; returns its path.
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let service_accounts: Api<ServiceAccount> =
            Api::namespaced(self.admin_client().await, namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(SERVICE_ACCOUNT_TOKEN_SECONDS),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let token = service_accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("TokenRequest for ServiceAccount {namespace}/{name}: {e}"))
            .status
            .unwrap_or_else(|| panic!("TokenRequest for {namespace}/{name} returned no status"))
            .token;

        let admin = read_kubeconfig(&self.kubeconfig);
        let cluster = admin
            .clusters
            .first()
            .and_then(|named| named.cluster.as_ref())
            .expect("the admin kubeconfig names a cluster");
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": "controlplane",
                "cluster": {
                    "server": self.server_url,
                    "certificate-authority-data": cluster.certificate_authority_data,
                },
            }],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{
                "name": user,
                "context": {"cluster": "controlplane", "user": user, "namespace": namespace},
            }],
            "current-context": user,
        });

        let n = self.written_kubeconfigs.fetch_add(1, Ordering::Relaxed);
        let path = self
            .run_dir
            .join(format!("sa-{namespace}-{name}-{n}.kubeconfig"));
        let yaml = serde_yaml::to_string(&kubeconfig).expect("a kubeconfig serializes");
        std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// The shared control plane (or one suite's): the program keeps its data in a temporary
    /// dir of its own, and files go to this test process's run dir (a suite's to a dir of its
    /// own inside it).
    fn start_shared(suite: Option<&str>) -> Result<ControlPlane, String> {
        let run_dir = match suite {
            None => test_run_dir()?.to_path_buf(),
            Some(suite) => {
                let dir = test_run_dir()?.join(format!("suite-{suite}"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                dir
            }
        };
        ControlPlane::start(run_dir, None)
    }

    /// Builds the binaries, starts the program and waits for its `READY` line.
    fn start(run_dir: PathBuf, data_dir: Option<PathBuf>) -> Result<ControlPlane, String> {
        let bin_dir = build()?;
        let kubeconfig_path = run_dir.join("admin.kubeconfig");
        let log = run_dir.join("controlplane.log");
        let mut args: Vec<OsString> = vec!["--exit-on-stdin-eof".into()];
        if let Some(data_dir) = &data_dir {
            args.extend(["--dir".into(), data_dir.clone().into_os_string()]);
        }
        args.extend([
            "--kubeconfig".into(),
            kubeconfig_path.clone().into_os_string(),
            "--log-file".into(),
            log.clone().into_os_string(),
        ]);
        let process = launch(&bin_dir, &args, &kubeconfig_path, &log)?;

        let server_url = read_kubeconfig(&kubeconfig_path)
            .clusters
            .first()
            .and_then(|named| named.cluster.as_ref())
            .and_then(|cluster| cluster.server.clone())
            .ok_or_else(|| format!("{} names no server", kubeconfig_path.display()))?;

        Ok(ControlPlane {
            process: Mutex::new(Some(process)),
            args,
            run_dir,
            data_dir,
            kubeconfig: kubeconfig_path,
            log,
            bin_dir,
            server_url,
            written_kubeconfigs: AtomicUsize::new(0),
            installed_crds: Mutex::new(BTreeSet::new()),
            restarts: AtomicUsize::new(0),
        })
    }

    /// The process slot of a dedicated control plane; panics for the shared one.
    fn lock_process(&self) -> MutexGuard<'_, Option<Process>> {
        assert!(
            self.data_dir.is_some(),
            "only a dedicated control plane (ControlPlane::dedicated) stops and restarts"
        );
        self.process.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the process in the slot, if any, and waits until it has exited.
    fn stop_locked(&self, process: &mut Option<Process>, how: Stop) {
        let Some(Process { mut child, stdin }) = process.take() else {
            return;
        };
        match how {
            Stop::Kill => {
                let _ = child.kill();
            }
            Stop::Graceful => {
                let pid = child.id().to_string();
                let _ = Command::new("kill").args(["-TERM", &pid]).status();
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    eprintln!("the control plane did not stop within {STOP_TIMEOUT:?}: killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        drop(stdin);
    }

    /// Starts the program again into the empty slot; panics if it does not get ready.
    fn start_locked(&self, process: &mut Option<Process>) {
        let started = launch(&self.bin_dir, &self.args, &self.kubeconfig, &self.log)
            .unwrap_or_else(|message| panic!("restarting: {message}"));
        *process = Some(started);
        self.restarts.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for ControlPlane {
    /// Only a dedicated control plane is ever dropped (the shared one is a static): it is
    /// killed (its data is thrown away, so there is nothing to shut down in order) and its
    /// dir removed. A failing test gets the tail of its log first.
    fn drop(&mut self) {
        let process = self.process.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(Process { mut child, stdin }) = process.take() {
            let _ = child.kill();
            let _ = child.wait();
            drop(stdin);
        }
        if self.data_dir.is_some() {
            if std::thread::panicking() {
                eprintln!(
                    "last lines of the dedicated control plane's log {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// Starts the program and waits for its `READY` line announcing `kubeconfig`; on failure it
/// is killed and the error carries the tail of its log.
fn launch(
    bin_dir: &Path,
    args: &[OsString],
    kubeconfig: &Path,
    log: &Path,
) -> Result<Process, String> {
    let mut child = Command::new(bin_dir.join("controlplane"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}/controlplane: {e}", bin_dir.display()))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");

    // A thread reads stdout so a hung start can be timed out; it keeps draining
    // afterwards so the program never blocks on a full pipe.
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(path) = line.strip_prefix("READY ") {
                let _ = ready_tx.send(Some(PathBuf::from(path)));
            }
        }
        let _ = ready_tx.send(None);
    });

    let failure = match ready_rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(path)) if path == kubeconfig => None,
        Ok(Some(path)) => Some(format!(
            "it announced kubeconfig {} instead of {}",
            path.display(),
            kubeconfig.display()
        )),
        Ok(None) => Some("it exited before it was ready".to_string()),
        Err(_) => Some(format!("it was not ready within {START_TIMEOUT:?}")),
    };
    if let Some(reason) = failure {
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        return Err(format!(
            "the test control plane did not start: {reason} ({status}); last lines of {}:\n{}",
            log.display(),
            log_tail(log)
        ));
    }
    Ok(Process { child, stdin })
}

/// Runs `hack/controlplane.sh build` (a no-op once built) once per test process and returns
/// the bin dir it prints last. Its progress goes to stderr, where a long first build can be
/// followed.
fn build() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(run_build).clone()
}

fn run_build() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/controlplane.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("build")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} build failed ({}); its output is above",
            script.display(),
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let bin_dir = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| PathBuf::from(line.trim()))
        .ok_or_else(|| format!("{} build printed no bin dir", script.display()))?;
    if !bin_dir.join("controlplane").is_file() || !bin_dir.join("kubectl").is_file() {
        return Err(format!(
            "{} lacks controlplane or kubectl after the build",
            bin_dir.display()
        ));
    }
    Ok(bin_dir)
}

/// This test process's directory for kubeconfigs, logs and dedicated control planes, beside
/// cargo's other test scratch files; made afresh by the first caller. Run dirs of long-gone
/// test processes are pruned on the way.
pub fn test_run_dir() -> Result<&'static Path, String> {
    static RUN_DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match RUN_DIR.get_or_init(fresh_run_dir) {
        Ok(dir) => Ok(dir),
        Err(message) => Err(message.clone()),
    }
}

fn fresh_run_dir() -> Result<PathBuf, String> {
    let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("controlplane");
    if let Ok(entries) = std::fs::read_dir(&parent) {
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age > STALE_RUN_DIR);
            if stale {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".to_string());
    let run_dir = parent.join(format!("{binary}-{}", std::process::id()));
    // A dir left by an earlier process with the same pid holds nothing of ours.
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
    Ok(run_dir)
}

/// The last lines of the control plane's log, for failure messages.
fn log_tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", log.display()),
    }
}

fn read_kubeconfig(path: &Path) -> Kubeconfig {
    Kubeconfig::read_from(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A client for the given kubeconfig, in the calling tokio runtime.
pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        read_kubeconfig(kubeconfig),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("loading {}: {e}", kubeconfig.display()));
    kube::Client::try_from(config)
        .unwrap_or_else(|e| panic!("a client for {}: {e}", kubeconfig.display()))
}
