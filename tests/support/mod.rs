//! Real parts that integration tests run against.

pub mod controlplane;
pub mod operator;
pub mod scenario;
pub mod tools;
