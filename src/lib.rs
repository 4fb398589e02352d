//! eventbridge-partner-operator keeps Amazon EventBridge partner event sources in line with
//! `PartnerEventSource` objects in Kubernetes.
//!
//! - [`resource`]: the custom resource and its validation.
//! - [`decision`]: the pure reconcile decision.
//! - [`reconciler`]: the shell that performs it against Kubernetes and AWS.
//! - [`eventbridge`]: every EventBridge call, rate-limited and measured.
//! - [`error`]: the one error type and the classification of AWS errors.
//! - [`operator`]: the `run` command: leader election, controller, shutdown.
//! - [`config`], [`http`], [`metrics`], [`telemetry`]: flags, endpoints, metrics, logs.

pub mod config;
pub mod decision;
pub mod error;
pub mod eventbridge;
pub mod http;
pub mod metrics;
pub mod operator;
pub mod reconciler;
pub mod resource;
pub mod telemetry;

use kube::CustomResourceExt;

/// The PartnerEventSource CustomResourceDefinition as YAML, exactly as `crd` prints it and as
/// `crds/partnereventsources.eventbridgepartner.dev.yaml` holds it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&resource::PartnerEventSource::crd())
}
