//! The emulator's settings.

use std::time::Duration;

/// How long a source its customer never activates lives before AWS deletes
/// it: seven days after creation (a partner event source that stays
/// `PENDING` for over 7 days is deleted).
pub const DEFAULT_PENDING_EXPIRATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long a source lives in `PENDING` after its customer deactivated it or
/// deleted the matching event bus: two weeks, per the `DeactivateEventSource`
/// documentation ("If it remains in PENDING state for more than two weeks, it
/// is deleted").
pub const DEFAULT_DEACTIVATED_EXPIRATION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Emulator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The region the emulator announces as its own (`Emulator::region`). Requests
    /// signed for any region are served, each region with its own state and ARNs,
    /// as if the endpoint override routed each to that region's endpoint.
    pub region: String,
    /// The account of callers whose access key id is not a 12-digit account id.
    pub partner_account: String,
    /// How long a new source stays `PENDING` before it expires and is deleted
    /// if its customer never activates it.
    pub pending_expiration: Duration,
    /// How long a source stays `PENDING` after a deactivation, or after its
    /// customer deleted the matching event bus, before it expires.
    pub deactivated_expiration: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            region: "eu-west-1".to_owned(),
            partner_account: "111111111111".to_owned(),
            pending_expiration: DEFAULT_PENDING_EXPIRATION,
            deactivated_expiration: DEFAULT_DEACTIVATED_EXPIRATION,
        }
    }
}
