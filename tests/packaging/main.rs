//! What ships beside the binary, one test binary: the Helm chart (rendering, RBAC), the
//! kubectl manifest and the CRDs, the alerts (promtool), the Grafana dashboard, the Dockerfile and the image, the
//! Argo CD integration, and upgrades from an earlier release. Each suite is a module named for what it tests
//! (`cargo test --test packaging chart_rbac::` runs one).
//!
//! `image` and `upgrade` are slow and need what CI builds first (the image, the old tree): CI
//! runs them as steps of their own (`cargo test --test packaging image::` and `upgrade::`),
//! and `make test` skips them by name.
//!
//! `manifests` and `argocd_health` share this process's control plane (CRDs applied with
//! kubectl, namespaced objects in namespaces of their own). `chart_rbac`, `image` and
//! `upgrade` each take a control plane of their own
//! ([`support::controlplane::ControlPlane::of_suite`]): they install the chart, whose CRDs,
//! ValidatingAdmissionPolicy and (for `image`) operator act on every namespace, and `upgrade`
//! replaces and deletes the CRDs.

#[path = "../support/mod.rs"]
mod support;

#[path = "../kubeschemas/mod.rs"]
mod kubeschemas;

mod alerts;
mod argocd_application;
mod argocd_health;
mod chart_rbac;
mod chart_render;
mod crd;
mod dashboard;
mod dockerfile;
mod image;
mod manifests;
mod upgrade;
