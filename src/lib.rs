//! eventbridge-partner-operator keeps Amazon EventBridge partner event sources in line with
//! `PartnerEventSource` objects in Kubernetes.
//!
//! - [`resource`]: the custom resource and its validation.
//! - [`partner_account`], [`accounts`], [`identity`]: PartnerAccounts — the identity and grant
//!   (pure), their run-time state and reconciler, and the AWS identities they stand for.
//! - [`sync`]: one reconcile pass as straight-line steps over [`partner_api::PartnerApi`].
//! - [`status`], [`reason`], [`ownership`], [`backoff`]: the pure pieces a pass is made of:
//!   status and conditions and Events, the vocabulary, name ownership, retry delays.
//! - [`reconciler`]: the shell that runs a pass and writes its outcome to Kubernetes.
//! - [`eventbridge`]: the production partner API: every EventBridge call, rate-limited and
//!   measured.
//! - [`error`]: the one error type and the classification of AWS errors.
//! - [`operator`]: the `run` command: leader election, controller, shutdown.
//! - [`preflight`], [`watches`]: the start-up checks (every resource served and permitted, or
//!   a non-zero exit naming the fix) and the health of the watches `/readyz` answers from.
//! - [`import`]: the `import` command: manifests for a partner's existing sources.
//! - [`config`], [`settings`], [`http`], [`metrics`], [`telemetry`]: flags, the settings a
//!   pass uses, endpoints, metrics, logs.

pub mod accounts;
pub mod backoff;
pub mod budget;
pub mod config;
pub mod error;
pub mod eventbridge;
pub mod http;
pub mod identity;
pub mod import;
pub mod metrics;
pub mod operator;
pub mod ownership;
pub mod partner_account;
pub mod partner_api;
pub mod preflight;
pub mod reason;
pub mod reconciler;
pub mod resource;
pub mod settings;
pub mod status;
pub mod sync;
pub mod telemetry;
pub mod watches;

use kube::CustomResourceExt;

/// The PartnerAccount CustomResourceDefinition as YAML, exactly as `crd --kind PartnerAccount`
/// prints it and as `crds/partneraccounts.eventbridgepartner.dev.yaml` holds it.
pub fn partner_account_crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&partner_account::PartnerAccount::crd())
}

/// The PartnerEventSource CustomResourceDefinition as YAML, exactly as `crd` prints it and as
/// `crds/partnereventsources.eventbridgepartner.dev.yaml` holds it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&resource::PartnerEventSource::crd())
}
