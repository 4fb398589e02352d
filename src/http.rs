//! The HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the process is alive) and
//! `/readyz` (the replica is doing its job: standing by, or leading with synced caches).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, ObjectCounts};
use crate::reconciler::object_counts;
use crate::resource::PartnerEventSource;

/// What the endpoints report on, shared with the rest of the process.
#[derive(Clone)]
pub struct Health {
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The controller's cache, once this replica leads.
    pub store: Arc<RwLock<Option<Store<PartnerEventSource>>>>,
    /// Whether `/readyz` answers 200.
    pub ready: Arc<AtomicBool>,
}

impl Health {
    /// A fresh, not-ready state.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Health {
            metrics,
            store: Arc::new(RwLock::new(None)),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the replica ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
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
    if health.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
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
