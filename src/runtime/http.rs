//! The HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the process is alive) and
//! `/readyz` (the replica is doing its job: a standby that passed the start-up checks, or a
//! leader whose every cache has synced and whose watches work).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, ObjectCounts};
use crate::resources::{PartnerAccount, PartnerEventSource};
use crate::runtime::counts::object_counts;
use crate::runtime::watches::Watches;

/// Where the replica is in its life, as `/readyz` reports it.
#[derive(Clone, Default)]
pub enum Phase {
    /// Running the start-up checks, or stopping: not ready.
    #[default]
    Starting,
    /// Passed the start-up checks and waits to lead: ready, its job is to wait.
    Standby,
    /// Leading: ready once every watch a pass waits on has synced and none is failing.
    Leading(Arc<Watches>),
    /// Shutting down: not ready.
    Stopping,
}

/// What the endpoints report on, shared with the rest of the process.
#[derive(Clone)]
pub struct Health {
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The controller's cache, once this replica leads.
    pub store: Arc<RwLock<Option<Store<PartnerEventSource>>>>,
    /// The PartnerAccount cache, once this replica leads.
    pub accounts: Arc<RwLock<Option<Store<PartnerAccount>>>>,
    /// What `/readyz` answers from.
    pub phase: Arc<RwLock<Phase>>,
}

impl Health {
    /// A fresh, not-ready state.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Health {
            metrics,
            store: Arc::new(RwLock::new(None)),
            accounts: Arc::new(RwLock::new(None)),
            phase: Arc::new(RwLock::new(Phase::Starting)),
        }
    }

    /// Moves the replica to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        // Only ever replaced whole; a poisoned lock still holds a usable value.
        *self.phase.write().unwrap_or_else(|p| p.into_inner()) = phase;
    }

    /// `Ok` when the replica is ready, else why not.
    pub fn readiness(&self) -> Result<(), String> {
        match &*self.phase.read().unwrap_or_else(|p| p.into_inner()) {
            Phase::Starting => Err("running the start-up checks".into()),
            Phase::Standby => Ok(()),
            Phase::Leading(watches) => watches.readiness(),
            Phase::Stopping => Err("shutting down".into()),
        }
    }

    /// Publishes the leader's caches for the object and account gauges, or withdraws them
    /// (`None`) when it stops leading.
    pub fn set_caches(&self, caches: Option<(Store<PartnerEventSource>, Store<PartnerAccount>)>) {
        let (objects, accounts) = caches.unzip();
        // Only ever replaced whole; a poisoned lock still holds a usable value.
        *self.store.write().unwrap_or_else(|p| p.into_inner()) = objects;
        *self.accounts.write().unwrap_or_else(|p| p.into_inner()) = accounts;
    }

    fn counts(&self) -> ObjectCounts {
        let objects = state(&self.store);
        let accounts = state(&self.accounts);
        object_counts(&objects, &accounts, Timestamp::now())
    }
}

/// What a published cache holds now (nothing before one is published).
fn state<K>(store: &RwLock<Option<Store<K>>>) -> Vec<Arc<K>>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let guard = store.read().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().map(Store::state).unwrap_or_default()
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    let body = health.metrics.render(&health.counts());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    match health.readiness() {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
    }
}

/// Binds `addr` (so that a taken port fails at startup) and returns the server's address and a
/// future that serves until `shutdown` is cancelled.
pub async fn bind(
    addr: SocketAddr,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health);
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    };
    Ok((local, serve))
}
