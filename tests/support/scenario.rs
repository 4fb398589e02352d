//! One end-to-end scenario: the shared control plane with the CRD installed, a fresh namespace,
//! a fresh EventBridge emulator, and helpers to create objects and wait for what the operator
//! does with them. Scenarios are isolated from each other by a label that only their own
//! operator selects, so they can run side by side.

#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::Duration;

use eventbridge_partner_emulator::{Config as EmulatorConfig, Emulator};
use eventbridge_partner_operator::resources::{PartnerEventSource, PartnerEventSourceSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;
use kube::runtime::wait::conditions::is_deleted;
use kube::{Client, ResourceExt};

use super::command::output_with_input;
use super::controlplane::ControlPlane;
use super::operator::Launch;
use super::repo::{crd_paths, read};

/// How long any single expectation may take before the test fails. Generous: the machine may
/// be busy compiling while tests run.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The customer account the examples offer their sources to.
pub const CUSTOMER: &str = "123456789012";

/// A short random suffix for names.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// One scenario's world.
pub struct Scenario {
    /// The control plane: the shared one unless [`Scenario::start_on`] named another.
    pub cp: &'static ControlPlane,
    /// An admin client in this test's runtime.
    pub client: Client,
    /// This scenario's namespace.
    pub namespace: String,
    /// The value of the `e2e` label this scenario's operator selects.
    pub selector: String,
    /// This scenario's EventBridge.
    pub emulator: Emulator,
}

impl Scenario {
    /// Sets up a namespace and an emulator; the operator is started by the test.
    pub async fn start(name: &str) -> Scenario {
        Scenario::start_on(ControlPlane::shared(), name).await
    }

    /// [`Scenario::start`] on another control plane than the shared one (a suite's own,
    /// [`ControlPlane::of_suite`]).
    pub async fn start_on(cp: &'static ControlPlane, name: &str) -> Scenario {
        cp.install_crds(&crd_paths());
        let client = cp.admin_client().await;
        let namespace = unique(name);
        create_namespace(&client, &namespace).await;
        let emulator = Emulator::start(EmulatorConfig::default())
            .await
            .expect("start the emulator");
        Scenario {
            cp,
            client,
            selector: namespace.clone(),
            namespace,
            emulator,
        }
    }

    /// How this scenario's operator is launched (adjust with `arg`, then `start`).
    pub fn launch(&self) -> Launch {
        Launch::new(
            self.cp.kubeconfig(),
            &self.emulator.endpoint_url(),
            &self.selector,
        )
    }

    /// The PartnerEventSource API in this scenario's namespace.
    pub fn api(&self) -> Api<PartnerEventSource> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The API in another namespace.
    pub fn api_in(&self, namespace: &str) -> Api<PartnerEventSource> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// An object labelled for this scenario's operator.
    pub fn object(&self, name: &str, source: &str, account: &str) -> PartnerEventSource {
        let mut obj = PartnerEventSource::new(
            name,
            PartnerEventSourceSpec {
                name: source.to_owned(),
                account: account.to_owned(),
                region: None,
                deletion_policy: None,
                on_expiry: None,
                management_policy: None,
                partner_account_ref: None,
            },
        );
        obj.metadata = ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.clone()),
            labels: Some([("e2e".to_owned(), self.selector.clone())].into()),
            ..ObjectMeta::default()
        };
        obj
    }

    /// Creates an object in its namespace (this scenario's unless set otherwise).
    pub async fn create(&self, obj: &PartnerEventSource) -> PartnerEventSource {
        let ns = obj.namespace().unwrap_or_else(|| self.namespace.clone());
        self.api_in(&ns)
            .create(&PostParams::default(), obj)
            .await
            .unwrap_or_else(|e| panic!("create {}/{}: {e}", ns, obj.name_any()))
    }

    /// The example manifest, in this scenario's namespace, with this scenario's label.
    pub fn example(&self) -> PartnerEventSource {
        let text = read("examples/partnereventsource.yaml");
        let mut obj: PartnerEventSource = serde_yaml::from_str(&text).expect("parse the example");
        obj.metadata.namespace = Some(self.namespace.clone());
        obj.metadata.labels = Some([("e2e".to_owned(), self.selector.clone())].into());
        obj
    }

    /// Waits until the object satisfies `condition`, driven by a watch, and returns it.
    pub async fn wait(
        &self,
        namespace: &str,
        name: &str,
        what: &str,
        condition: impl Fn(&PartnerEventSource) -> bool,
    ) -> PartnerEventSource {
        self.wait_within(TIMEOUT, namespace, name, what, condition)
            .await
    }

    /// Like [`Scenario::wait`], allowing `timeout`.
    pub async fn wait_within(
        &self,
        timeout: Duration,
        namespace: &str,
        name: &str,
        what: &str,
        condition: impl Fn(&PartnerEventSource) -> bool,
    ) -> PartnerEventSource {
        let api = self.api_in(namespace);
        let waited = tokio::time::timeout(
            timeout,
            await_condition(api.clone(), name, move |o: Option<&PartnerEventSource>| {
                o.is_some_and(&condition)
            }),
        )
        .await;
        match waited {
            Ok(Ok(Some(obj))) => obj,
            other => {
                let now = api.get_opt(name).await.ok().flatten();
                panic!(
                    "{namespace}/{name} did not become {what} within {timeout:?} ({other:?}); now: {}",
                    serde_json::to_string_pretty(&now).unwrap_or_default()
                )
            }
        }
    }

    /// Waits until the object is Ready and a resync has brought its creation and expiration
    /// times (a create answer carries only the ARN).
    pub async fn wait_looked_at(&self, name: &str) -> PartnerEventSource {
        self.wait(&self.namespace, name, "Ready with its times", |o| {
            condition_is(o, "Ready", "True", None)
                && o.status.as_ref().is_some_and(|s| s.creation_time.is_some())
        })
        .await
    }

    /// Waits until the object is `Ready=True`.
    pub async fn wait_ready(&self, name: &str) -> PartnerEventSource {
        self.wait(&self.namespace, name, "Ready", |o| {
            condition_is(o, "Ready", "True", None)
        })
        .await
    }

    /// Waits until the object has `Ready` with the given status and reason.
    pub async fn wait_reason(
        &self,
        namespace: &str,
        name: &str,
        status: &str,
        reason: &str,
    ) -> PartnerEventSource {
        self.wait(
            namespace,
            name,
            &format!("Ready={status} ({reason})"),
            |o| condition_is(o, "Ready", status, Some(reason)),
        )
        .await
    }

    /// Waits until the object is gone from the API.
    pub async fn wait_gone(&self, namespace: &str, name: &str) {
        self.wait_gone_within(TIMEOUT, namespace, name).await
    }

    /// Like [`Scenario::wait_gone`], allowing `timeout`.
    pub async fn wait_gone_within(&self, timeout: Duration, namespace: &str, name: &str) {
        let api = self.api_in(namespace);
        let Some(uid) = api
            .get_opt(name)
            .await
            .expect("get the object")
            .and_then(|o| o.uid())
        else {
            return;
        };
        let gone = tokio::time::timeout(
            timeout,
            await_condition(api.clone(), name, is_deleted(&uid)),
        )
        .await;
        if gone.is_err() {
            let now = api.get_opt(name).await.ok().flatten();
            panic!(
                "{namespace}/{name} still exists after {timeout:?}: {}",
                serde_json::to_string_pretty(&now).unwrap_or_default()
            );
        }
    }

    /// Deletes an object (the operator's finalizer decides when it is gone).
    pub async fn delete(&self, namespace: &str, name: &str) {
        self.api_in(namespace)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {namespace}/{name}: {e}"));
    }

    /// The Events the operator published about an object.
    pub async fn events(&self, namespace: &str, name: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        events
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }

    /// Waits until an Event with this reason was published about the object.
    pub async fn wait_event(&self, namespace: &str, name: &str, reason: &str) -> Event {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(e) = self
                .events(namespace, name)
                .await
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
            {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {reason} Event for {namespace}/{name}; events: {:?}",
                self.events(namespace, name)
                    .await
                    .iter()
                    .map(|e| e.reason.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the emulator satisfies `condition`.
    pub async fn wait_emulator(&self, what: &str, condition: impl FnMut(&Emulator) -> bool) {
        assert!(
            self.emulator.wait_until(TIMEOUT, condition).await,
            "emulator never reached: {what}; sources: {:?}",
            self.emulator.sources()
        );
    }

    /// How many creates reach the emulator while a Ready object of this scenario is resynced
    /// twice (two more account listings): the way to see that nothing else is being retried.
    pub async fn creates_during_two_resyncs(&self) -> u64 {
        let creates = self.emulator.calls("CreatePartnerEventSource");
        let listed = self.emulator.calls("ListPartnerEventSourceAccounts");
        self.wait_emulator("two resyncs", |e| {
            e.calls("ListPartnerEventSourceAccounts") >= listed + 2
        })
        .await;
        self.emulator.calls("CreatePartnerEventSource") - creates
    }

    /// Creates another namespace for this scenario.
    pub async fn extra_namespace(&self, prefix: &str) -> String {
        let ns = unique(prefix);
        create_namespace(&self.client, &ns).await;
        ns
    }

    /// An EventBridge client that acts as the given account (the emulator takes a 12-digit
    /// access key id as the caller's account), as the customer's own tools would.
    pub async fn aws_as(&self, account: &str) -> aws_sdk_eventbridge::Client {
        sdk_client(&self.emulator, account, "secret")
    }

    /// Runs kubectl with the admin kubeconfig, feeding `stdin`.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        kubectl(self.cp.kubectl(), args, stdin)
    }
}

/// Runs a prepared kubectl command with `args`, feeding `stdin` (none: an empty stdin).
pub fn kubectl(mut command: Command, args: &[&str], stdin: Option<&str>) -> Output {
    output_with_input(command.args(args), stdin.unwrap_or_default())
}

/// An EventBridge SDK client for the emulator, signing with these static keys (a 12-digit
/// access key id acts as that account; any other as the emulator's partner account).
pub fn sdk_client(
    emulator: &Emulator,
    access_key: &str,
    secret: &str,
) -> aws_sdk_eventbridge::Client {
    use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(emulator.endpoint_url())
        .credentials_provider(Credentials::new(access_key, secret, None, None, "tests"))
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// Whether the object carries a condition of this type with this status (and reason).
pub fn condition_is(
    obj: &PartnerEventSource,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> bool {
    obj.condition(type_)
        .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
}

async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
}
