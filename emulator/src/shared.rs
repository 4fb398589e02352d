//! The state the listener, the admin API and the library handle share: the
//! configuration, the service state, roles and sessions, faults, call counts
//! and change notifications.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::config::Config;
use crate::faults::{CallCounts, Faults};
use crate::identity::{CredentialError, Identities, Principal};
use crate::model::Model;
use crate::store::{Expirations, Store};
use crate::wire::RequestIds;

/// Everything the listener and the library handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    identities: Mutex<Identities>,
    calls: Mutex<CallCounts>,
    pub(crate) request_ids: RequestIds,
    /// The expiration periods in force: the configured ones until a test
    /// changes them at run time.
    expirations: Mutex<Expirations>,
    /// Bumped after every request and admin change, so waiters wake up.
    changes: watch::Sender<u64>,
}

/// Takes a lock even if a panicking thread poisoned it: every critical
/// section leaves the state consistent, and a test's panic must not turn
/// into failures of unrelated calls.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(config: Config) -> Shared {
        Shared {
            expirations: Mutex::new(Expirations {
                pending: config.pending_expiration,
                deactivated: config.deactivated_expiration,
            }),
            config,
            store: Mutex::new(Store::new()),
            faults: Mutex::new(Faults::default()),
            identities: Mutex::new(Identities::new()),
            calls: Mutex::new(CallCounts::default()),
            request_ids: RequestIds::new(),
            changes: watch::channel(0).0,
        }
    }

    /// The expiration periods in force now.
    pub(crate) fn expirations(&self) -> Expirations {
        *lock(&self.expirations)
    }

    /// Changes the expiration periods for what happens from now on; the
    /// expiration times already given out stay, as they do in AWS.
    pub(crate) fn set_expirations(&self, change: impl FnOnce(&mut Expirations)) {
        change(&mut lock(&self.expirations));
        self.changed();
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn identities(&self) -> MutexGuard<'_, Identities> {
        lock(&self.identities)
    }

    /// Whom a request signed with `access_key_id` acts as (its session token,
    /// if any, is the `X-Amz-Security-Token` header).
    pub(crate) fn principal(
        &self,
        access_key_id: &str,
        headers: &axum::http::HeaderMap,
        now: std::time::SystemTime,
    ) -> Result<Principal, CredentialError> {
        let token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        self.identities()
            .principal(access_key_id, token, now, &self.config.partner_account)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn calls(&self) -> MutexGuard<'_, CallCounts> {
        lock(&self.calls)
    }

    /// Wakes everyone waiting for a change.
    pub(crate) fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Forgets all state, faults and call counts.
    pub(crate) fn reset(&self) {
        *self.store() = Store::new();
        *self.identities() = Identities::new();
        *self.faults() = Faults::default();
        *self.calls() = CallCounts::default();
        self.changed();
    }
}

/// Whether faults can be injected for `operation`: an operation of the
/// EventBridge model or one of the STS operations the emulator serves.
pub(crate) fn is_known_operation(operation: &str) -> bool {
    Model::get().has_operation(operation) || crate::sts::OPERATIONS.contains(&operation)
}

/// Every operation [`is_known_operation`] accepts, sorted.
pub(crate) fn known_operations() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Model::get().operation_names().collect();
    all.extend(crate::sts::OPERATIONS);
    all.sort_unstable();
    all
}
