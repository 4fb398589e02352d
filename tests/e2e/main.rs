//! The end-to-end suites, one binary: the operator binary against a real kube-apiserver (with
//! etcd) and the EventBridge emulator, and the test control plane itself. Each suite is a
//! module named for what it tests (`cargo test --test e2e accounts::` runs one).
//!
//! The suites share this process's control plane ([`support::controlplane::ControlPlane::shared`])
//! and isolate their objects by namespace, label selector and unique names. Two take a control
//! plane of their own ([`support::controlplane::ControlPlane::of_suite`]) because what they do
//! is cluster-wide: `bad_input` relaxes the CRD's schema, and `install` installs the chart,
//! whose ValidatingAdmissionPolicy judges every namespace. Tests that stop or restart the API
//! server take a dedicated one each.

#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod bad_input;
mod controlplane;
mod import;
mod install;
mod kube_faults;
mod lifecycle;
mod metric_names;
mod operations;
mod reconcile;
mod startup;
mod status;
