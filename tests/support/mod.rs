//! Real parts that integration tests run against, and the helpers they share. Every test
//! binary compiles all of it once (`mod support;`, or `#[path = "../support/mod.rs"] mod
//! support;` in a binary that groups suites, `tests/<kind>/main.rs`) and uses its own part.

pub mod chart;
pub mod command;
pub mod controlplane;
pub mod http;
pub mod kube_faults;
pub mod operator;
pub mod podman;
pub mod rbac;
pub mod repo;
pub mod scenario;
pub mod tools;
