//! A test-only emulator of the Amazon EventBridge partner event source API.
//!
//! It speaks the real wire protocol (AWS JSON 1.1, `X-Amz-Target:
//! AWSEvents.<Operation>`, SigV4-signed requests with any signature accepted),
//! validates every input against the official service model, keeps per-region,
//! per-partner and per-customer-account state with AWS's semantics, and injects
//! faults on demand. The operator's end-to-end tests drive it in-process through
//! [`Emulator`]; other tools use the `eventbridge-partner-emulator` binary and the
//! admin API under `/_emulator/` (see `emulator/README.md`).
//!
//! The calling account is the SigV4 access key id when that is 12 digits, and
//! [`Config::partner_account`] otherwise, so one emulator serves the partner and
//! all its customers. On the same port the emulator also serves STS's
//! `AssumeRole` and `GetCallerIdentity` (AWS query protocol): credentials
//! handed out for a [`Role`] registered with [`Emulator::add_role`] act as the
//! role's account.
//!
//! It is never part of the operator binary.

#![warn(missing_docs)]

mod admin;
mod config;
mod error;
mod faults;
#[cfg(test)]
mod fuzz;
mod identity;
mod model;
mod pagination;
mod server;
mod shared;
mod sigv4;
mod store;
mod sts;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Config, DEFAULT_DEACTIVATED_EXPIRATION, DEFAULT_PENDING_EXPIRATION};
pub use faults::{InjectedFaults, OUTCOME_OK, RandomFaults, ScriptedError};
pub use identity::{DEFAULT_SESSION_DURATION, Role, SessionSnapshot};
pub use store::{BusSnapshot, ChangeKind, SourceChange, SourceSnapshot, SourceState};

use shared::Shared;

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops the server.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `127.0.0.1:0` and serves in a background tokio task until dropped or shut down.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        Emulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` and serves in a background tokio task until dropped or shut down.
    pub async fn start_on(config: Config, addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let app = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender stops the server just like a sent signal.
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "emulator server failed");
            }
        });
        tracing::info!(%addr, region = %shared.config.region, partner_account = %shared.config.partner_account, "emulator listening");
        Ok(Emulator {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The URL to give an SDK as its endpoint: `http://127.0.0.1:PORT`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration the emulator runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The emulator's own region ([`Config::region`]).
    pub fn region(&self) -> &str {
        &self.shared.config.region
    }

    /// The partner account ([`Config::partner_account`]).
    pub fn partner_account(&self) -> &str {
        &self.shared.config.partner_account
    }

    /// Makes the next calls of `operation` fail, one per code, in order; later
    /// calls succeed again. Each error has the HTTP status AWS uses for its code.
    ///
    /// # Panics
    /// If `operation` is not an operation of the service model (a typo in a test).
    pub fn inject_errors(&self, operation: &str, codes: &[&str]) {
        self.inject(operation, codes.iter().map(|c| ScriptedError::code(c)));
    }

    /// Like [`Emulator::inject_errors`], with a message or status per error.
    ///
    /// # Panics
    /// If `operation` is not an operation of the service model.
    pub fn inject(&self, operation: &str, errors: impl IntoIterator<Item = ScriptedError>) {
        known(operation);
        self.shared.faults().push_errors(operation, errors);
        self.shared.changed();
    }

    /// Delays every answer to `operation` by `latency` (zero removes it). The
    /// operation takes effect before the delay.
    ///
    /// # Panics
    /// If `operation` is not an operation of the service model.
    pub fn set_latency(&self, operation: &str, latency: Duration) {
        known(operation);
        self.shared.faults().set_latency(operation, latency);
        self.shared.changed();
    }

    /// Limits `operation` with a token bucket of `burst` tokens refilled at
    /// `rate_per_sec`, starting full; calls beyond it answer `ThrottlingException`.
    ///
    /// # Panics
    /// If `operation` is not an operation of the service model, or the rate is
    /// negative or not finite.
    pub fn set_quota(&self, operation: &str, rate_per_sec: f64, burst: u32) {
        known(operation);
        assert!(
            rate_per_sec.is_finite() && rate_per_sec >= 0.0,
            "rate_per_sec must be finite and >= 0, got {rate_per_sec}"
        );
        self.shared
            .faults()
            .set_quota(operation, rate_per_sec, burst, Instant::now());
        self.shared.changed();
    }

    /// Removes the quota of `operation`.
    pub fn clear_quota(&self, operation: &str) {
        self.shared.faults().clear_quota(operation);
        self.shared.changed();
    }

    /// Removes every injected fault (scripted errors, latency, quotas).
    pub fn clear_faults(&self) {
        self.shared.faults().clear(None);
        self.shared.changed();
    }

    /// Draws faults at random for every later partner-API call (`None` stops them).
    ///
    /// # Panics
    /// If a rate is not within [0, 1].
    pub fn set_random_faults(&self, random: Option<RandomFaults>) {
        if let Some(r) = &random
            && let Err(e) = r.check()
        {
            panic!("{e}");
        }
        self.shared.faults().set_random(random);
        self.shared.changed();
    }

    /// How many faults were injected so far, by kind.
    pub fn injected_faults(&self) -> InjectedFaults {
        self.shared.faults().injected()
    }

    /// How many requests reached the emulator, of every operation and outcome.
    pub fn total_calls(&self) -> u64 {
        self.shared.calls().all()
    }

    /// The sources created and deleted by partner calls, oldest first.
    pub fn changes(&self) -> Vec<SourceChange> {
        self.shared.store().changes()
    }

    /// How many requests named `operation` (any outcome, including
    /// authentication failures and injected faults).
    pub fn calls(&self, operation: &str) -> u64 {
        self.shared.calls().total(operation)
    }

    /// How many requests named `operation` ended with `outcome`: [`OUTCOME_OK`]
    /// or an error code such as `ThrottlingException`.
    pub fn calls_with_outcome(&self, operation: &str, outcome: &str) -> u64 {
        self.shared.calls().with_outcome(operation, outcome)
    }

    /// Every live partner event source (all regions and partners).
    pub fn sources(&self) -> Vec<SourceSnapshot> {
        self.shared.store().sources(SystemTime::now())
    }

    /// The first live source named `name`, if any.
    pub fn source(&self, name: &str) -> Option<SourceSnapshot> {
        self.sources().into_iter().find(|s| s.name == name)
    }

    /// Every event bus created by customers.
    pub fn buses(&self) -> Vec<BusSnapshot> {
        self.shared.store().buses()
    }

    /// Deletes every source named `name`, as if someone else had. Returns
    /// whether one existed. A customer's matching bus then sees it `DELETED`.
    pub fn delete_out_of_band(&self, name: &str) -> bool {
        self.mutate(|store| store.delete_out_of_band(name, None, SystemTime::now()))
    }

    /// Expires every pending source named `name` now, as AWS does when its
    /// expiration time passes: the expiration time becomes now and the
    /// source is gone. Returns whether one expired (active sources never
    /// expire).
    pub fn expire(&self, name: &str) -> bool {
        self.expire_in(name, Duration::ZERO)
    }

    /// Moves the expiration time of every pending source named `name` to
    /// `delay` from now; the source vanishes at the first look after that, as
    /// at a natural expiry, so a client can read the new `ExpirationTime`
    /// before the source is gone. Returns whether a pending source matched.
    pub fn expire_in(&self, name: &str, delay: Duration) -> bool {
        let now = SystemTime::now();
        self.mutate(|store| store.expire_at(name, None, now, now + delay))
    }

    /// Acts as the customer: deletes the event bus matched with every source
    /// named `name` (as `DeleteEventBus` does), which returns a live source to
    /// `PENDING` with an expiration time the deactivation period from now.
    /// Returns whether a bus was deleted.
    pub fn delete_bus(&self, name: &str) -> bool {
        let period = self.deactivated_expiration();
        self.mutate(|store| store.delete_bus(name, None, SystemTime::now(), period))
    }

    /// How long new sources stay `PENDING` before they expire if never
    /// activated ([`Config::pending_expiration`] unless changed).
    pub fn pending_expiration(&self) -> Duration {
        self.shared.expirations().pending
    }

    /// Changes how long sources created from now on stay `PENDING` if never
    /// activated. Expiration times already given out stay.
    pub fn set_pending_expiration(&self, period: Duration) {
        self.shared.set_expirations(|e| e.pending = period);
    }

    /// How long a source stays `PENDING` after a deactivation or the deletion
    /// of its matching bus ([`Config::deactivated_expiration`] unless changed).
    pub fn deactivated_expiration(&self) -> Duration {
        self.shared.expirations().deactivated
    }

    /// Changes how long sources deactivated (or whose bus is deleted) from now
    /// on stay `PENDING`. Expiration times already given out stay.
    pub fn set_deactivated_expiration(&self, period: Duration) {
        self.shared.set_expirations(|e| e.deactivated = period);
    }

    /// Acts as the customer: creates the matching partner event bus if missing
    /// and makes every source named `name` `ACTIVE`. Returns whether one existed.
    pub fn activate(&self, name: &str) -> bool {
        self.mutate(|store| store.activate(name, None, SystemTime::now()))
    }

    /// Acts as the customer: deactivates every source named `name` (back to
    /// `PENDING`, expiring after the deactivation period). Returns whether one existed.
    pub fn deactivate(&self, name: &str) -> bool {
        let period = self.deactivated_expiration();
        self.mutate(|store| store.deactivate(name, None, SystemTime::now(), period))
    }

    /// Registers an IAM role that `AssumeRole` hands out credentials for
    /// (replacing one with the same ARN). Calls signed with those credentials
    /// act as the role's account.
    ///
    /// # Panics
    /// If the ARN is not an IAM role ARN (`arn:aws:iam::<12 digits>:role/<name>`).
    pub fn add_role(&self, role: Role) {
        if let Err(e) = self.shared.identities().add_role(role) {
            panic!("{e}");
        }
        self.shared.changed();
    }

    /// Forgets a role; credentials already handed out work until they expire.
    /// Returns whether it was registered.
    pub fn remove_role(&self, arn: &str) -> bool {
        let removed = self.shared.identities().remove_role(arn);
        self.shared.changed();
        removed
    }

    /// Every registered role, by ARN.
    pub fn roles(&self) -> Vec<Role> {
        self.shared.identities().roles()
    }

    /// Every set of credentials `AssumeRole` handed out (expired ones too).
    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        self.shared.identities().sessions()
    }

    /// Forgets all sources, buses, roles, sessions, faults and call counts.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Waits until `condition` holds, re-checking after every request or admin
    /// change (and at least every 50 ms, for time-based changes such as
    /// expiry). Returns whether it held before `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Emulator) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared.subscribe();
        loop {
            changes.borrow_and_update();
            if condition(self) {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            let tick = (deadline - now).min(Duration::from_millis(50));
            // Either a change or the tick: both mean "look again".
            let _ = tokio::time::timeout(tick, changes.changed()).await;
        }
    }

    /// Stops accepting connections, lets in-flight requests finish (for at most
    /// five seconds) and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    fn mutate(&self, f: impl FnOnce(&mut store::Store) -> usize) -> bool {
        let affected = f(&mut self.shared.store());
        self.shared.changed();
        affected > 0
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Graceful: the listener closes at once, open connections finish their
        // request. Works without a runtime, so dropping after the test's runtime
        // is gone is fine too.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Fails loudly on operation names the emulator does not serve: a typo in a
/// test would otherwise inject a fault no request ever meets.
fn known(operation: &str) {
    assert!(
        shared::is_known_operation(operation),
        "unknown EventBridge operation {operation:?} (nor an STS one the emulator serves); known: {}",
        shared::known_operations().join(", ")
    );
}
