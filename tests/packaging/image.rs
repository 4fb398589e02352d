//! The image `make image` builds, run as the chart's pod would run it: podman with the
//! Deployment's user, a read-only root filesystem with a /tmp scratch mount, no capabilities,
//! the chart's environment, and the pod's in-cluster configuration (the ServiceAccount's
//! token and CA at /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST and
//! _PORT, no kubeconfig). The network is the host's, so the container reaches the test control
//! plane and the emulator on 127.0.0.1, and serves its HTTP port there (a free port, which
//! the chart is installed with, so the probes name it too).
//!
//! Skipped with a notice when podman or the image is missing, except under CI=true, where
//! `make image` runs first and a missing image fails the test.

use crate::support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventbridge_partner_emulator::{Config as EmulatorConfig, Emulator};
use serde_json::Value;

use support::command::run;
use support::controlplane::ControlPlane;
use support::operator::{PARTNER_ACCESS_KEY_ID, PARTNER_SECRET_ACCESS_KEY};
use support::podman::{self, Container, TempDir};
use support::repo::root;

const RELEASE: &str = "ebpo";
const RELEASE_NAMESPACE: &str = "eventbridge-partner-operator";
const POD_NAME: &str = "eventbridge-partner-operator-7d9f8c6b5-x2k4q";
const EXAMPLE_NAMESPACE: &str = "tenants";
const EXAMPLE: &str = "customer-4711-orders";
const EXAMPLE_SOURCE: &str = "aws.partner/acme.com/customer-4711/orders";
const TIMEOUT: Duration = Duration::from_secs(120);

/// Polls `check` every 50 ms until it returns a value, for at most `timeout`.
fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of a container env entry, resolving the fieldRefs the chart uses.
fn env_value(entry: &Value) -> String {
    if let Some(value) = entry["value"].as_str() {
        return value.to_owned();
    }
    match entry["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
        Some("metadata.name") => POD_NAME.to_owned(),
        Some("metadata.namespace") => RELEASE_NAMESPACE.to_owned(),
        other => {
            panic!("env entry {entry} takes its value from {other:?}, which this test cannot give")
        }
    }
}

/// The container port a probe targets (by name or number).
fn probe_port(container: &Value, probe: &str) -> u16 {
    let port = &container[probe]["httpGet"]["port"];
    if let Some(number) = port.as_u64() {
        return number as u16;
    }
    let name = port.as_str().expect("a probe port");
    container["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == name))
        .and_then(|p| p["containerPort"].as_u64())
        .map(|p| p as u16)
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

/// The admin kubeconfig's CA certificate (PEM), which signs the API server's certificate.
fn cluster_ca(cp: &ControlPlane) -> Vec<u8> {
    let kubeconfig: Value = serde_yaml::from_str(
        &std::fs::read_to_string(cp.kubeconfig()).expect("reading the admin kubeconfig"),
    )
    .expect("a kubeconfig");
    let data = kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"].clone();
    let bytes: k8s_openapi::ByteString =
        serde_json::from_value(data).expect("base64 certificate-authority-data");
    bytes.0
}

fn token_of(kubeconfig: &Path) -> String {
    let config: Value = serde_yaml::from_str(
        &std::fs::read_to_string(kubeconfig).expect("reading the ServiceAccount kubeconfig"),
    )
    .expect("a kubeconfig");
    config["users"][0]["user"]["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_runs_as_the_charts_pod_and_reconciles_the_example() {
    let Some(image) = podman::built_image() else {
        return;
    };
    let test_started = Instant::now();
    // A control plane of this suite's own: the chart's CRDs and admission policy, and an
    // operator that watches every namespace.
    let cp = ControlPlane::of_suite("image");
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("start the emulator");
    let port = podman::free_port();

    // The chart as a cluster gets it: CRD, ServiceAccount, RBAC, Lease rights, Deployment.
    // The API server runs no controllers, so the Deployment is a record of the pod spec.
    run(support::tools::tool("helm")
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .args(["install", RELEASE])
        .arg(root().join("charts/eventbridge-partner-operator"))
        .args(["--namespace", RELEASE_NAMESPACE, "--create-namespace"])
        .args(["--set", "aws.region=eu-west-1"])
        .args([
            "--set",
            &format!("aws.endpointUrl={}", emulator.endpoint_url()),
        ])
        .args(["--set", &format!("operator.httpPort={port}")]));
    let deployments: Value = serde_json::from_str(&run(cp.kubectl().args([
        "get",
        "deployments",
        "-n",
        RELEASE_NAMESPACE,
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "-o",
        "json",
    ])))
    .expect("deployments JSON");
    let pod = &deployments["items"][0]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let grace = Duration::from_secs(
        pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("a grace period"),
    );
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    let user = format!(
        "{}:{}",
        security["runAsUser"].as_u64().expect("runAsUser"),
        security["runAsGroup"].as_u64().expect("runAsGroup")
    );
    assert_eq!(
        user, "65532:65532",
        "the chart runs the image's nonroot user"
    );
    assert_eq!(probe_port(container, "readinessProbe"), port);
    assert_eq!(probe_port(container, "livenessProbe"), port);

    // What the kubelet mounts for the ServiceAccount: a token, the cluster CA, the namespace.
    let account = pod["serviceAccountName"]
        .as_str()
        .expect("a serviceAccountName");
    let token = token_of(
        &cp.service_account_kubeconfig(RELEASE_NAMESPACE, account)
            .await,
    );
    let secrets = TempDir::new("image-serviceaccount");
    std::fs::write(secrets.path().join("token"), token).unwrap();
    std::fs::write(secrets.path().join("ca.crt"), cluster_ca(cp)).unwrap();
    std::fs::write(secrets.path().join("namespace"), RELEASE_NAMESPACE).unwrap();
    let server: url_parts::HostPort = url_parts::host_port(cp.server_url());

    let mut args: Vec<String> = [
        "--user",
        &user,
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,size=16m,mode=1777",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--network",
        "host",
        "--hostname",
        POD_NAME,
        "--volume",
        &format!(
            "{}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
            secrets.path().display()
        ),
        "--env",
        &format!("KUBERNETES_SERVICE_HOST={}", server.host),
        "--env",
        &format!("KUBERNETES_SERVICE_PORT={}", server.port),
        // The chart gives credentials through IRSA or Pod Identity; here the SDK's
        // environment source stands in.
        "--env",
        &format!("AWS_ACCESS_KEY_ID={PARTNER_ACCESS_KEY_ID}"),
        "--env",
        &format!("AWS_SECRET_ACCESS_KEY={PARTNER_SECRET_ACCESS_KEY}"),
        "--env",
        "AWS_EC2_METADATA_DISABLED=true",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut http_addr = None;
    for entry in container["env"].as_array().expect("the container's env") {
        let name = entry["name"].as_str().expect("an env name");
        let mut value = env_value(entry);
        if name == "HTTP_ADDR" {
            // As every test server here: 127.0.0.1, on the free port the chart was given.
            assert_eq!(value, format!("0.0.0.0:{port}"));
            value = format!("127.0.0.1:{port}");
            http_addr = Some(value.parse::<SocketAddr>().unwrap());
        }
        args.push("--env".to_owned());
        args.push(format!("{name}={value}"));
    }
    let http_addr = http_addr.expect("the chart sets HTTP_ADDR");
    args.push(image.clone());
    args.extend(
        container["args"]
            .as_array()
            .expect("the container's args")
            .iter()
            .map(|a| a.as_str().expect("a string arg").to_owned()),
    );

    let name = format!("ebpo-image-test-{}", std::process::id());
    let run_started = Instant::now();
    let operator = Container::run(&name, &args);
    let (ready_after_run, ready_at) = tokio::task::block_in_place(|| {
        wait_for(TIMEOUT, "/readyz answers 200", || {
            podman::http_get(http_addr, "/readyz")
                .filter(|(status, _)| *status == 200)
                .map(|_| (run_started.elapsed(), SystemTime::now()))
        })
    });
    let started_ns: u128 = operator
        .inspect("{{.State.StartedAt.UnixNano}}")
        .parse()
        .expect("StartedAt in ns");
    let ready_ns = ready_at
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_nanos();
    let process_to_ready = Duration::from_nanos(ready_ns.saturating_sub(started_ns) as u64);
    assert_eq!(operator.inspect("{{.Config.User}}"), user);

    // It holds the Lease as the pod.
    let lease_name = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "LEASE_NAME")
        .map(env_value)
        .expect("the chart sets LEASE_NAME");
    tokio::task::block_in_place(|| {
        wait_for(TIMEOUT, "the container holds the Lease", || {
            let out = cp
                .kubectl()
                .args(["get", "lease", &lease_name, "-n", RELEASE_NAMESPACE])
                .args(["-o", "jsonpath={.spec.holderIdentity}"])
                .output()
                .ok()?;
            (String::from_utf8_lossy(&out.stdout) == POD_NAME).then_some(())
        })
    });

    // The example, as a user applies it, reconciled to Ready through the emulator.
    run(cp
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(root().join("examples/namespace.yaml"))
        .arg("-f")
        .arg(root().join("examples/partnereventsource.yaml")));
    run(cp.kubectl().args([
        "wait",
        "--for=condition=Ready",
        &format!("--timeout={}s", TIMEOUT.as_secs()),
        "-n",
        EXAMPLE_NAMESPACE,
        &format!("partnereventsources/{EXAMPLE}"),
    ]));
    assert!(
        emulator.source(EXAMPLE_SOURCE).is_some(),
        "the emulator holds {EXAMPLE_SOURCE}"
    );
    let status =
        run(cp
            .kubectl()
            .args(["get", "pes", "-n", EXAMPLE_NAMESPACE, EXAMPLE, "-o", "wide"]));

    // The endpoints the chart's probes and the Service use.
    for path in ["/healthz", "/readyz"] {
        let answer = podman::http_get(http_addr, path);
        assert!(
            matches!(answer, Some((200, _))),
            "{path} answered {answer:?}"
        );
    }
    let metrics = podman::http_get(http_addr, "/metrics").expect("/metrics answers");
    assert_eq!(metrics.0, 200);
    assert!(
        metrics.1.contains("eventbridge_partner_operator_"),
        "/metrics has the operator's metrics:\n{}",
        metrics.1
    );

    // The log lines of the reconcile of the example.
    let logs = operator.logs();
    let reconcile_lines: Vec<&str> = logs.lines().filter(|l| l.contains(EXAMPLE)).collect();
    assert!(
        !reconcile_lines.is_empty(),
        "the operator logged the example's reconcile:\n{logs}"
    );

    // SIGTERM, as the kubelet stops a pod: exit 0 within the grace period.
    let stop_started = Instant::now();
    operator.signal("TERM");
    let exit = tokio::task::block_in_place(|| operator.wait_exit(grace));
    let stop_took = stop_started.elapsed();
    assert_eq!(
        exit,
        Some(0),
        "exit code after SIGTERM within the {grace:?} grace period; log:\n{}",
        operator.logs()
    );

    let size: u64 = podman::podman_ok(&["image", "inspect", "--format", "{{.Size}}", &image])
        .trim()
        .parse()
        .expect("the image size");
    eprintln!("image test: {image}, {:.1} MB", size as f64 / 1e6);
    eprintln!(
        "image test: podman run -> /readyz 200 in {:.2}s; container process start -> /readyz 200 in {:.2}s",
        ready_after_run.as_secs_f64(),
        process_to_ready.as_secs_f64()
    );
    eprintln!(
        "image test: SIGTERM -> exit 0 in {:.2}s (grace period {grace:?})",
        stop_took.as_secs_f64()
    );
    eprintln!(
        "image test: {}",
        status.trim_end().replace('\n', "\nimage test: ")
    );
    eprintln!(
        "image test: the containerised operator's log ({} of its lines name {EXAMPLE_NAMESPACE}/{EXAMPLE}):",
        reconcile_lines.len()
    );
    for line in operator.logs().lines() {
        eprintln!("  {line}");
    }
    eprintln!(
        "image test: took {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
    drop(operator);
    emulator.shutdown().await;
}

/// The host and port of the API server URL (`https://127.0.0.1:PORT`).
mod url_parts {
    pub struct HostPort {
        pub host: String,
        pub port: u16,
    }

    pub fn host_port(url: &str) -> HostPort {
        let rest = url
            .strip_prefix("https://")
            .unwrap_or_else(|| panic!("{url} is not https"));
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = authority
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{url} names no port"));
        HostPort {
            host: host.trim_matches(['[', ']']).to_owned(),
            port: port.parse().unwrap_or_else(|_| panic!("bad port in {url}")),
        }
    }
}
