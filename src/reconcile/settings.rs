//! The settings a reconcile pass depends on, from the operator's configuration.

use std::time::Duration;

use crate::resources::DeletionPolicy;

/// Settings of every reconcile pass.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Deletion policy for objects that do not set one.
    pub default_deletion_policy: DeletionPolicy,
    /// How often a Ready object is checked again for drift and activation.
    pub resync: Duration,
    /// How long to wait after a terminal error before looking again.
    pub terminal_requeue: Duration,
    /// How often an object that lost a name conflict checks whether the owner is gone.
    pub conflict_recheck: Duration,
    /// Delay after the first transient failure; doubles with each further one.
    pub backoff_base: Duration,
    /// Longest delay between retries.
    pub backoff_cap: Duration,
    /// Region for objects whose spec and partner account name none.
    pub default_region: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_deletion_policy: DeletionPolicy::Delete,
            resync: Duration::from_secs(300),
            terminal_requeue: Duration::from_secs(600),
            conflict_recheck: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            default_region: None,
        }
    }
}
