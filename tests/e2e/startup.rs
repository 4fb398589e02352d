//! End-to-end: start-up faults against the real API server. A CRD or a permission the
//! operator needs is missing: it exits non-zero naming the fix, and `/readyz` never says ready
//! in between; a CRD installed late, or an API server that is away at start, is waited for; a
//! permission lost mid-run turns `/readyz` to 503 with an ERROR naming it. Never an AWS call
//! while not ready.

use crate::support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventbridge_partner_emulator::{Config as EmulatorConfig, Emulator};
use support::controlplane::{ControlPlane, Stop};
use support::operator::{Launch, OperatorProcess};
use support::podman::http_get;
use support::repo::{PARTNER_ACCOUNT_CRD_FILE, crd_path, root};
use support::scenario::{Scenario, TIMEOUT, condition_is, unique};

/// Polls `/readyz` every 100 ms in a thread of its own, recording every answer, until dropped.
struct ReadyzProbe {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<(u16, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReadyzProbe {
    fn start(addr: SocketAddr) -> ReadyzProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new(None));
        let thread = std::thread::spawn({
            let (stop, ok, last) = (stop.clone(), ok.clone(), last.clone());
            move || {
                while !stop.load(Ordering::SeqCst) {
                    let answer = http_get(addr, "/readyz");
                    if matches!(answer, Some((200, _))) {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    if answer.is_some() {
                        *last.lock().unwrap() = answer;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        ReadyzProbe {
            stop,
            ok,
            last,
            thread: Some(thread),
        }
    }

    /// How many answers were 200 so far.
    fn ready_answers(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// The last answer.
    fn last(&self) -> Option<(u16, String)> {
        self.last.lock().unwrap().clone()
    }

    /// Waits until the last answer satisfies `matches`, or panics after `timeout`.
    async fn wait_for(&self, timeout: Duration, what: &str, matches: impl Fn(u16, &str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((status, body)) = self.last()
                && matches(status, &body)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz never {what} within {timeout:?}; last answer {:?}",
                self.last()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ReadyzProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An operator on `kubeconfig`, for objects labelled `e2e=<selector>`.
fn launch(kubeconfig: &std::path::Path, emulator: &Emulator, selector: &str) -> Launch {
    Launch::new(kubeconfig, &emulator.endpoint_url(), selector)
}

/// The ERROR line the operator exits with.
async fn exit_error(operator: &OperatorProcess) -> String {
    let line = operator
        .wait_for_log(TIMEOUT, "an ERROR line", |l| l["level"] == "ERROR")
        .await;
    line["message"].as_str().unwrap_or_default().to_owned()
}

/// Starts the operator, checks that it exits non-zero within a minute with an ERROR naming
/// `expected`, that `/readyz` never answered 200 on the way, and that nothing reached AWS.
async fn assert_exits_naming(launch: Launch, emulator: &Emulator, expected: &str) -> String {
    let started = Instant::now();
    let mut operator = launch.start();
    let probe = ReadyzProbe::start(operator.http_addr().await);
    let status = operator
        .wait_exited(Duration::from_secs(60), "the start-up checks to give up")
        .await;
    let took = started.elapsed();
    assert!(!status.success(), "exit status {status}");
    let message = exit_error(&operator).await;
    assert!(message.contains(expected), "{message}");
    assert_eq!(
        probe.ready_answers(),
        0,
        "/readyz answered 200 while not ready"
    );
    assert!(
        probe
            .last()
            .is_some_and(|(status, body)| status == 503 && body.contains("start-up checks")),
        "{:?}",
        probe.last()
    );
    assert_eq!(emulator.total_calls(), 0, "no AWS call while not ready");
    println!("exited with {status} after {took:.1?}: ERROR {message}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_partner_account_crd_the_operator_exits_naming_it_and_is_never_ready() {
    let cp = ControlPlane::dedicated();
    cp.install_crds(&[crd_path()]);
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let message = assert_exits_naming(
        launch(cp.kubeconfig(), &emulator, "no-pa-crd"),
        &emulator,
        "CRD partneraccounts.eventbridgepartner.dev is not installed: kubectl apply -f \
         deploy/operator.yaml, or helm upgrade with crds.install=true",
    )
    .await;
    assert!(message.starts_with("start-up checks failed: "), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_partner_event_source_crd_the_operator_exits_naming_it() {
    let cp = ControlPlane::dedicated();
    cp.install_crds(&[root().join("crds").join(PARTNER_ACCOUNT_CRD_FILE)]);
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    assert_exits_naming(
        launch(cp.kubeconfig(), &emulator, "no-pes-crd").arg("--preflight-timeout", "5s"),
        &emulator,
        "CRD partnereventsources.eventbridgepartner.dev is not installed: kubectl apply -f \
         deploy/operator.yaml, or helm upgrade with crds.install=true",
    )
    .await;
}

/// The ServiceAccount `name` in `namespace` with the operator's permissions under the chart's
/// role names (`name`, `name-partner-accounts`); without the namespaces rule unless
/// `namespaces`. Applying it again with another `namespaces` changes only that rule.
fn apply_rbac(cp: &ControlPlane, namespace: &str, name: &str, namespaces: bool) {
    let namespaces_rule = if namespaces {
        "  - {apiGroups: [\"\"], resources: [namespaces], verbs: [get, list, watch]}\n"
    } else {
        ""
    };
    cp.apply(&format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}, namespace: {namespace}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {name}}}
rules:
  - {{apiGroups: [eventbridgepartner.dev], resources: [partnereventsources], verbs: [get, list, watch, patch]}}
  - {{apiGroups: [eventbridgepartner.dev], resources: [partnereventsources/status], verbs: [get, patch]}}
  - {{apiGroups: [events.k8s.io], resources: [events], verbs: [create, patch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {name}-partner-accounts}}
rules:
  - {{apiGroups: [eventbridgepartner.dev], resources: [partneraccounts], verbs: [get, list, watch]}}
  - {{apiGroups: [eventbridgepartner.dev], resources: [partneraccounts/status], verbs: [get, patch]}}
{namespaces_rule}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}
subjects: [{{kind: ServiceAccount, name: {name}, namespace: {namespace}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {name}-partner-accounts}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}-partner-accounts}}
subjects: [{{kind: ServiceAccount, name: {name}, namespace: {namespace}}}]
"#
    ));
}

/// Removes what [`apply_rbac`] made.
fn delete_rbac(cp: &ControlPlane, name: &str) {
    let _ = cp
        .kubectl()
        .args([
            "delete",
            "--ignore-not-found",
            "clusterrole,clusterrolebinding",
        ])
        .args([name, &format!("{name}-partner-accounts")])
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_without_the_namespaces_permission_exits_naming_the_role() {
    let s = Scenario::start("no-ns-rbac").await;
    let name = unique("ebpo-rbac");
    apply_rbac(s.cp, &s.namespace, &name, false);
    let kubeconfig = s.cp.service_account_kubeconfig(&s.namespace, &name).await;
    let message = assert_exits_naming(
        launch(&kubeconfig, &s.emulator, &s.selector)
            .arg("--rbac-name", &name)
            .arg("--preflight-timeout", "5s"),
        &s.emulator,
        &format!("cannot list namespaces: the ServiceAccount needs the {name}-partner-accounts ClusterRole"),
    )
    .await;
    assert!(
        message.contains(&format!(
            "cannot watch namespaces: the ServiceAccount needs the {name}-partner-accounts ClusterRole"
        )),
        "every missing verb is named: {message}"
    );
    delete_rbac(s.cp, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_away_at_start_is_waited_for_without_exiting() {
    let cp = ControlPlane::dedicated();
    cp.install_crds(&support::repo::crd_paths());
    let namespace = unique("late-apiserver");
    cp.ensure_namespace(&namespace);
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    cp.stop(Stop::Graceful);
    let selector = namespace.clone();
    let mut operator = launch(cp.kubeconfig(), &emulator, &selector).start();
    let probe = ReadyzProbe::start(operator.http_addr().await);
    let away = Instant::now();
    operator
        .wait_for_log(TIMEOUT, "that the API server does not answer", |l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("the API server did not answer"))
        })
        .await;
    // The API server stays away for 20 s, as a control plane being upgraded might.
    while away.elapsed() < Duration::from_secs(20) {
        assert!(
            operator.exited().is_none(),
            "the operator exited:\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        probe.ready_answers(),
        0,
        "ready while the API server was away"
    );
    assert_eq!(emulator.total_calls(), 0, "no AWS call while not ready");
    cp.start_again();
    probe
        .wait_for(TIMEOUT, "answered 200", |status, _| status == 200)
        .await;
    assert!(
        operator.exited().is_none(),
        "the operator came up without a restart"
    );
    wait_ready_object(&cp, &namespace, &selector).await;
}

/// Creates the example in `namespace` for the operator selecting `selector`, and waits until
/// it is Ready.
async fn wait_ready_object(cp: &ControlPlane, namespace: &str, selector: &str) {
    let client = cp.admin_client().await;
    let api: kube::Api<eventbridge_partner_operator::resources::PartnerEventSource> =
        kube::Api::namespaced(client, namespace);
    let mut obj: eventbridge_partner_operator::resources::PartnerEventSource =
        serde_yaml::from_str(&support::repo::read("examples/partnereventsource.yaml")).unwrap();
    obj.metadata.namespace = Some(namespace.to_owned());
    obj.metadata.labels = Some([("e2e".to_owned(), selector.to_owned())].into());
    api.create(&Default::default(), &obj).await.unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = api.get("customer-4711-orders").await.unwrap();
        if condition_is(&now, "Ready", "True", None) {
            return;
        }
        assert!(Instant::now() < deadline, "never Ready: {:?}", now.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_installed_after_the_operator_started_is_waited_for() {
    let cp = ControlPlane::dedicated();
    cp.install_crds(&[crd_path()]);
    let namespace = unique("late-crd");
    cp.ensure_namespace(&namespace);
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let started = Instant::now();
    let mut operator = launch(cp.kubeconfig(), &emulator, &namespace).start();
    let probe = ReadyzProbe::start(operator.http_addr().await);
    operator
        .wait_for_log(TIMEOUT, "that the PartnerAccount CRD is missing", |l| {
            l["level"] == "WARN"
                && l["message"].as_str().is_some_and(|m| {
                    m.contains("CRD partneraccounts.eventbridgepartner.dev is not installed")
                })
        })
        .await;
    // Installed 10 s after the start, as a `kubectl apply` of CRDs and Deployment together
    // might leave it.
    while started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        probe.ready_answers(),
        0,
        "ready without the PartnerAccount CRD"
    );
    assert_eq!(emulator.total_calls(), 0, "no AWS call while not ready");
    cp.install_crds(&[root().join("crds").join(PARTNER_ACCOUNT_CRD_FILE)]);
    probe
        .wait_for(TIMEOUT, "answered 200", |status, _| status == 200)
        .await;
    assert!(
        operator.exited().is_none(),
        "the operator came up without exiting"
    );
    wait_ready_object(&cp, &namespace, &namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_lost_mid_run_turns_readyz_503_and_logs_an_error_naming_it() {
    let cp = ControlPlane::dedicated();
    cp.install_crds(&support::repo::crd_paths());
    let namespace = unique("lost-rbac");
    cp.ensure_namespace(&namespace);
    let name = unique("ebpo-rbac");
    apply_rbac(&cp, &namespace, &name, true);
    let kubeconfig = cp.service_account_kubeconfig(&namespace, &name).await;
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let mut operator = launch(&kubeconfig, &emulator, &namespace)
        .arg("--rbac-name", &name)
        .start();
    let addr = operator.http_addr().await;
    let probe = ReadyzProbe::start(addr);
    probe
        .wait_for(TIMEOUT, "answered 200", |status, _| status == 200)
        .await;
    wait_ready_object(&cp, &namespace, &namespace).await;

    apply_rbac(&cp, &namespace, &name, false);
    // Kubernetes does not end a watch when a permission goes; the watch's next list does
    // fail. A control-plane restart ends every watch now instead of minutes from now.
    let restart = tokio::task::spawn_blocking({
        let cp = Arc::new(cp);
        move || {
            cp.restart_with(Stop::Graceful);
            cp
        }
    });
    let cp = restart.await.unwrap();
    let error = operator
        .wait_for_log(Duration::from_secs(120), "an ERROR naming the watch", |l| {
            l["level"] == "ERROR" && l["resource"] == "namespaces"
        })
        .await;
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "cannot list namespaces: the ServiceAccount needs the {name}-partner-accounts ClusterRole"
        )),
        "{error}"
    );
    assert!(
        message.contains("forbidden"),
        "the API server's answer: {error}"
    );
    probe
        .wait_for(TIMEOUT, "answered 503 for the watch", |status, body| {
            status == 503 && body.contains("the watch of namespaces is failing")
        })
        .await;
    let (_, metrics) = http_get(addr, "/metrics").expect("scrape /metrics");
    assert!(
        metrics.contains(r#"eventbridge_partner_operator_watch_healthy{resource="namespaces"} 0"#),
        "{metrics}"
    );
    assert!(
        operator.exited().is_none(),
        "a lost permission never ends the process"
    );

    apply_rbac(&cp, &namespace, &name, true);
    probe
        .wait_for(
            Duration::from_secs(120),
            "answered 200 again",
            |status, _| status == 200,
        )
        .await;
    operator
        .wait_for_log(TIMEOUT, "that the watch recovered", |l| {
            l["message"] == "watch recovered" && l["resource"] == "namespaces"
        })
        .await;
    delete_rbac(&cp, &name);
}
