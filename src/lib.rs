//! eventbridge-partner-operator: keeps Amazon EventBridge partner event sources in line with
//! `PartnerEventSource` objects in Kubernetes.
//!
//! - [`resource`]: the custom resource and its validation.
//! - [`decision`]: the pure reconcile decision.
//! - [`error`]: the one error type and the classification of AWS errors.

pub mod decision;
pub mod error;
pub mod eventbridge;
pub mod metrics;
pub mod resource;
