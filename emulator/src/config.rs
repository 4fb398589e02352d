//! The emulator's settings.

use std::time::Duration;

/// How long a pending source lives before AWS deletes it: two weeks, per the
/// `DeactivateEventSource` documentation ("If it remains in PENDING state for
/// more than two weeks, it is deleted").
pub const DEFAULT_PENDING_EXPIRATION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Emulator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The region the emulator announces as its own (`Emulator::region`). Requests
    /// signed for any region are served, each region with its own state and ARNs,
    /// as if the endpoint override routed each to that region's endpoint.
    pub region: String,
    /// The account of callers whose access key id is not a 12-digit account id.
    pub partner_account: String,
    /// How long a `PENDING` source lives before it expires and is deleted.
    pub pending_expiration: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            region: "eu-west-1".to_owned(),
            partner_account: "111111111111".to_owned(),
            pending_expiration: DEFAULT_PENDING_EXPIRATION,
        }
    }
}
