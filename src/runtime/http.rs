//! The HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the process is alive) and
//! `/readyz` (the replica is doing its job: a standby that passed the start-up checks, or a
//! leader whose every cache has synced and whose watches work).

use std::collections::HashMap;
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
use crate::reconcile::status;
use crate::resources::conditions::{ConditionStatus, READY};
use crate::resources::{PartnerEventSource, SourceState};
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
    /// What `/readyz` answers from.
    pub phase: Arc<RwLock<Phase>>,
}

impl Health {
    /// A fresh, not-ready state.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Health {
            metrics,
            store: Arc::new(RwLock::new(None)),
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

    /// Publishes (or withdraws) the controller's cache for the object gauges.
    pub fn set_store(&self, store: Option<Store<PartnerEventSource>>) {
        // Only ever replaced whole; a poisoned lock still holds a usable value.
        *self.store.write().unwrap_or_else(|p| p.into_inner()) = store;
    }

    fn counts(&self) -> ObjectCounts {
        self.store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(object_counts)
            .unwrap_or_default()
    }
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

/// Counts the watched objects by `Ready` status and AWS state, for the object gauges.
fn object_counts(store: &Store<PartnerEventSource>) -> ObjectCounts {
    let mut by_ready: HashMap<String, i64> = HashMap::new();
    let mut by_state: HashMap<String, i64> = HashMap::new();
    let soon = Timestamp::now() + status::EXPIRY_WARNING;
    let mut expiring_soon = 0;
    for obj in store.state() {
        if let Some(st) = &obj.status
            && st.state == Some(SourceState::Pending)
            && st.expiration_time.as_ref().is_some_and(|t| t.0 <= soon)
        {
            expiring_soon += 1;
        }
        let ready = obj
            .condition(READY)
            .map_or(ConditionStatus::Unknown.as_str(), |c| c.status.as_str());
        *by_ready.entry(ready.to_owned()).or_default() += 1;
        let state = obj
            .status
            .as_ref()
            .and_then(|s| s.state.as_ref())
            .map_or("Unknown", |s| s.as_str());
        *by_state.entry(state.to_owned()).or_default() += 1;
    }
    let mut counts = ObjectCounts {
        by_ready: by_ready.into_iter().collect(),
        by_state: by_state.into_iter().collect(),
        expiring_soon,
    };
    counts.by_ready.sort();
    counts.by_state.sort();
    counts
}
