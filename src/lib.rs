//! eventbridge-partner-operator keeps Amazon EventBridge partner event sources in line with
//! `PartnerEventSource` objects in Kubernetes.
//!
//! The folders, from the bottom up; each may use only those below it:
//!
//! - [`resources`]: the two custom resources (PartnerEventSource, PartnerAccount), their
//!   validation, the constants every module names them by (finalizer, field manager,
//!   annotations), and the typed vocabulary of their conditions and Events
//!   ([`resources::conditions`]: condition statuses, reasons, actions).
//! - [`error`], [`metrics`]: the one error type with the one classification of AWS errors, and
//!   the Prometheus registry; leaves that everything may use.
//! - [`aws`]: the partner API as a trait, its EventBridge implementation, the request budget
//!   per AWS account and region, the identities calls are made as.
//! - [`accounts`]: PartnerAccounts at run time — which identity an object acts with and
//!   whether its grant permits it (pure, in `accounts::grant`), and the account reconciler.
//! - [`reconcile`]: one pass over a PartnerEventSource — straight-line steps over the partner
//!   API (`sync`), the pure pieces (status and conditions, reasons, ownership, backoff), and
//!   the shell that reads the cluster and writes the outcome (`shell`).
//! - [`cli`]: the flags of every command, the `import` command, and the read-only `status`
//!   command (also the kubectl plugin `kubectl eventbridge`).
//! - [`runtime`]: the `run` command's wiring — start-up checks, leader election, watches,
//!   controllers, HTTP endpoints, logs.
//!
//! One create, from the watch to the SDK: `runtime::operator` watches PartnerEventSources
//! into a cache and runs kube-runtime's `Controller`, which calls `reconcile::shell::reconcile`;
//! the shell asks `accounts` which identity the object acts as, decides with
//! `reconcile::admission` whether it may go to AWS now, and runs `reconcile::sync::apply`
//! over `aws::eventbridge`'s `PartnerApi`, which waits on `aws::budget` and calls
//! `CreatePartnerEventSource` through the SDK client of `aws::identity`; the answer becomes a
//! status in `reconcile::status`, which the shell writes back.
//!
//! The public surface is what the binary and the integration tests use: [`resources`],
//! [`error`], the status writes of [`reconcile::shell`], [`cli::config`], [`cli::import`],
//! [`cli::status`], [`runtime::operator`] and [`runtime::telemetry`], and the CRD YAML below.
//! Everything else is `pub(crate)`, so rustc reports what nothing uses.

pub(crate) mod accounts;
pub(crate) mod aws;
pub mod cli;
pub mod error;
pub(crate) mod metrics;
pub mod reconcile;
pub mod resources;
pub mod runtime;

use kube::CustomResourceExt;

/// The PartnerAccount CustomResourceDefinition as YAML, exactly as `crd --kind PartnerAccount`
/// prints it and as `crds/partneraccounts.eventbridgepartner.dev.yaml` holds it.
pub fn partner_account_crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&resources::PartnerAccount::crd())
}

/// The PartnerEventSource CustomResourceDefinition as YAML, exactly as `crd` prints it and as
/// `crds/partnereventsources.eventbridgepartner.dev.yaml` holds it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&resources::PartnerEventSource::crd())
}
