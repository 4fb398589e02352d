//! The state the listener, the admin API and the library handle share: the
//! configuration, the service state, faults, call counts and change
//! notifications.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::config::Config;
use crate::faults::{CallCounts, Faults};
use crate::store::{Expirations, Store};
use crate::wire::RequestIds;

/// Everything the listener and the library handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
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
        self.faults().clear(None);
        *self.calls() = CallCounts::default();
        self.changed();
    }
}
