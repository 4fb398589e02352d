//! The test control plane is the real thing: the release's API server with RBAC on,
//! kubectl of the same release, and service-account tokens that authenticate.

use crate::support;

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use support::command::run;
use support::controlplane::{ControlPlane, Stop, client_for};
use support::kube_faults::KubeFaultProxy;

/// The Kubernetes release tests/controlplane/go.mod pins.
const RELEASE: &str = "v1.37.2";

/// How long a condition that should hold soon may take (RBAC changes reach the
/// authorizer through a watch, so they apply shortly after the write, not at once).
const EVENTUALLY: Duration = Duration::from_secs(30);

#[tokio::test]
async fn server_reports_the_pinned_release() {
    let control_plane = ControlPlane::shared();
    let version = control_plane
        .admin_client()
        .await
        .apiserver_version()
        .await
        .expect("GET /version");
    assert_eq!(version.git_version, RELEASE);
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "37")
    );
    assert!(
        control_plane.server_url().starts_with("https://127.0.0.1:"),
        "{}",
        control_plane.server_url()
    );
}

#[test]
fn kubectl_is_the_same_release_as_the_server() {
    let output = run(ControlPlane::shared()
        .kubectl()
        .args(["version", "--output=json"]));
    let versions: serde_json::Value =
        serde_json::from_str(&output).expect("kubectl version prints JSON");
    assert_eq!(
        versions["clientVersion"]["gitVersion"], RELEASE,
        "{versions}"
    );
    assert_eq!(
        versions["serverVersion"]["gitVersion"], RELEASE,
        "{versions}"
    );
}

#[tokio::test]
async fn a_namespace_can_be_created() {
    let client = ControlPlane::shared().admin_client().await;
    let namespaces: Api<Namespace> = Api::all(client);
    namespaces
        .create(&PostParams::default(), &namespace("created-by-a-test"))
        .await
        .expect("create namespace");

    let fetched = namespaces.get("created-by-a-test").await.expect("get it");
    let phase = fetched.status.and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Active"));

    // kubectl sees what the API shows.
    let output = ControlPlane::shared()
        .kubectl()
        .args(["get", "namespace", "created-by-a-test", "--output=name"])
        .output()
        .expect("run kubectl");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "namespace/created-by-a-test",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_service_account_token_acts_as_the_account_under_rbac() {
    let control_plane = ControlPlane::shared();
    let admin = control_plane.admin_client().await;
    let ns = "rbac-test";
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace(ns))
        .await
        .expect("create namespace");
    create_service_account(&admin, ns, "operator").await;

    let kubeconfig = control_plane
        .service_account_kubeconfig(ns, "operator")
        .await;
    let as_account = client_for(&kubeconfig).await;

    // The token authenticates as the ServiceAccount.
    let review = Api::<SelfSubjectReview>::all(as_account.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("create SelfSubjectReview");
    let user = review
        .status
        .and_then(|s| s.user_info)
        .expect("the review names the user");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:rbac-test:operator")
    );
    let groups = user.groups.unwrap_or_default();
    assert!(
        groups.contains(&"system:serviceaccounts:rbac-test".to_string()),
        "{groups:?}"
    );

    // Nothing is granted yet: RBAC denies it.
    let secrets: Api<Secret> = Api::namespaced(as_account.clone(), ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(as_account.clone(), ns);
    assert_forbidden(secrets.list(&ListParams::default()).await);
    assert_forbidden(config_maps.list(&ListParams::default()).await);

    // A Role that grants reading ConfigMaps in this namespace, and nothing else.
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta("read-config-maps"),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["configmaps".to_string()]),
                    verbs: vec!["get".to_string(), "list".to_string()],
                    ..PolicyRule::default()
                }]),
            },
        )
        .await
        .expect("create role");
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta("operator-reads-config-maps"),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".to_string()),
                    kind: "Role".to_string(),
                    name: "read-config-maps".to_string(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".to_string(),
                    name: "operator".to_string(),
                    namespace: Some(ns.to_string()),
                    ..Subject::default()
                }]),
            },
        )
        .await
        .expect("create role binding");

    eventually("the role binding lets the account list config maps", || {
        let config_maps = config_maps.clone();
        async move { config_maps.list(&ListParams::default()).await.is_ok() }
    })
    .await;
    // The grant is exactly what the Role says.
    assert_forbidden(secrets.list(&ListParams::default()).await);
    assert_forbidden(
        Api::<ConfigMap>::namespaced(as_account, "default")
            .list(&ListParams::default())
            .await,
    );

    // kubectl with the same kubeconfig agrees.
    let can_i = |verb: &str, resource: &str| {
        let output = std::process::Command::new(control_plane.bin_dir().join("kubectl"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["auth", "can-i", verb, resource, "--namespace", ns])
            .output()
            .expect("run kubectl");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(can_i("list", "configmaps"), "yes");
    assert_eq!(can_i("list", "secrets"), "no");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_control_plane_restarts_with_its_url_credentials_and_objects() {
    let control_plane = ControlPlane::dedicated();
    let url = control_plane.server_url().to_string();
    let admin = control_plane.admin_client().await;
    let ns = "restarted";
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace(ns))
        .await
        .expect("create namespace");
    Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: meta("kept"),
                data: Some([("key".to_string(), "value".to_string())].into()),
                ..ConfigMap::default()
            },
        )
        .await
        .expect("create config map");
    create_service_account(&admin, ns, "operator").await;
    let account_kubeconfig = control_plane
        .service_account_kubeconfig(ns, "operator")
        .await;
    let as_account = client_for(&account_kubeconfig).await;
    assert_eq!(
        user_of(&as_account).await,
        "system:serviceaccount:restarted:operator"
    );

    // A graceful stop, then a crash: each time the same URL, CA and credentials serve the
    // same objects, to clients made before and to kubeconfigs read afresh.
    for (restarts, how) in [(1, Stop::Graceful), (2, Stop::Kill)] {
        control_plane.restart_with(how);
        assert_eq!(control_plane.restarts(), restarts);
        assert_eq!(control_plane.server_url(), url, "after {how:?}");
        for client in [admin.clone(), control_plane.admin_client().await] {
            let kept = Api::<ConfigMap>::namespaced(client, ns)
                .get("kept")
                .await
                .unwrap_or_else(|e| panic!("get the config map after {how:?}: {e}"));
            assert_eq!(
                kept.data.and_then(|d| d.get("key").cloned()).as_deref(),
                Some("value")
            );
        }
        for client in [as_account.clone(), client_for(&account_kubeconfig).await] {
            assert_eq!(
                user_of(&client).await,
                "system:serviceaccount:restarted:operator",
                "after {how:?}"
            );
        }
        let output = run(control_plane.kubectl().args([
            "get",
            "serviceaccount",
            "operator",
            "-n",
            ns,
            "--output=name",
        ]));
        assert_eq!(output.trim(), "serviceaccount/operator");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_proxy_keeps_each_users_credentials_and_answers_502_while_its_upstream_is_down() {
    let control_plane = ControlPlane::dedicated();
    let admin = control_plane.admin_client().await;
    let ns = "proxied";
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace(ns))
        .await
        .expect("create namespace");
    Api::<ServiceAccount>::namespaced(admin, ns)
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta("operator"),
                ..ServiceAccount::default()
            },
        )
        .await
        .expect("create service account");
    let account_kubeconfig = control_plane
        .service_account_kubeconfig(ns, "operator")
        .await;

    // Through a proxy, each kubeconfig still acts as its own user.
    let admin_proxy = KubeFaultProxy::start(control_plane.kubeconfig(), control_plane.bin_dir());
    let account_proxy = KubeFaultProxy::start(&account_kubeconfig, control_plane.bin_dir());
    let via_admin_proxy = client_for(admin_proxy.kubeconfig()).await;
    let via_account_proxy = client_for(account_proxy.kubeconfig()).await;
    assert_eq!(user_of(&via_admin_proxy).await, "admin");
    assert_eq!(
        user_of(&via_account_proxy).await,
        "system:serviceaccount:proxied:operator"
    );

    // While the API server is down, the proxy answers as a load balancer would.
    control_plane.stop(Stop::Graceful);
    let namespaces: Api<Namespace> = Api::all(via_admin_proxy.clone());
    match namespaces.get(ns).await {
        Err(kube::Error::Api(status)) if status.code == 502 => {}
        other => panic!("expected 502 Bad Gateway while the API server is down, got {other:?}"),
    }
    assert!(admin_proxy.stats().upstream_unavailable >= 1);

    // Once the API server is back, the proxy serves the same clients again.
    control_plane.start_again();
    assert_eq!(control_plane.restarts(), 1);
    namespaces
        .get(ns)
        .await
        .expect("get the namespace through the proxy");
    assert_eq!(
        user_of(&via_account_proxy).await,
        "system:serviceaccount:proxied:operator"
    );
}

/// Who the client authenticates as, from a SelfSubjectReview (any authenticated user may
/// create one).
async fn user_of(client: &kube::Client) -> String {
    Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("create SelfSubjectReview")
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .expect("the review names the user")
}

/// Creates ServiceAccount `ns/name` as the admin.
async fn create_service_account(admin: &kube::Client, ns: &str, name: &str) {
    Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta(name),
                ..ServiceAccount::default()
            },
        )
        .await
        .expect("create service account");
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        ..ObjectMeta::default()
    }
}

fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: meta(name),
        ..Namespace::default()
    }
}

fn assert_forbidden<T: std::fmt::Debug>(result: kube::Result<T>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

/// Polls `condition` until it holds, failing the test after [`EVENTUALLY`].
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + EVENTUALLY;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
