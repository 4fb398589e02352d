//! Real parts that integration tests run against, and the helpers they share. Every test
//! binary compiles all of it (`mod support;`) and uses its own part.

pub mod chart;
pub mod command;
pub mod controlplane;
pub mod kube_faults;
pub mod operator;
pub mod podman;
pub mod rbac;
pub mod repo;
pub mod scenario;
pub mod tools;
