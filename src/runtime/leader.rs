//! Leader election: a Lease per operator, held while leading. A replica that cannot be sure
//! it still holds the Lease exits at once, so that two leaders never call AWS together.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::config::RunArgs;
use crate::error::Error;

/// Where Kubernetes mounts the pod's namespace.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Returns once this replica can no longer be sure it holds the Lease: the Lease names another
/// holder, or its last renewal seen has run out (the API server may be unreachable). The lease
/// manager alone keeps believing it leads until it reaches the API server again, while a
/// standby takes over as soon as the Lease expires.
pub(crate) async fn confirm_lease(
    leases: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
) {
    // Just acquired: valid for at most one duration from now until a renewal is seen.
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let mut valid_until = Timestamp::now().as_millisecond() + millis(duration);
    loop {
        tokio::time::sleep(LEASE_CHECK).await;
        match leases.get_opt(&name).await {
            Ok(Some(lease)) => {
                let spec = lease.spec.unwrap_or_default();
                if spec.holder_identity.as_deref() != Some(identity.as_str()) {
                    return;
                }
                let seconds = spec
                    .lease_duration_seconds
                    .map_or(millis(duration), |s| i64::from(s) * 1000);
                if let Some(renewed) = spec.renew_time {
                    valid_until = renewed.0.as_millisecond() + seconds;
                }
            }
            Ok(None) => return,
            Err(e) => tracing::debug!("cannot confirm the leader lease: {e}"),
        }
        if Timestamp::now().as_millisecond() >= valid_until {
            return;
        }
    }
}

/// How often the leader confirms that it still holds the Lease.
const LEASE_CHECK: Duration = Duration::from_secs(1);

/// The Lease manager for this replica, in the pod's namespace unless told otherwise.
pub(crate) async fn lease_manager(
    args: &RunArgs,
    client: &Client,
    identity: &str,
) -> Result<kube_lease_manager::LeaseManager, Error> {
    let namespace = lease_namespace(args, client);
    let duration = args.lease_duration.as_secs().max(3);
    // Renew a third of the way before expiry, so two missed renewals still hold the lease.
    let grace = (duration / 3).max(1);
    let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&namespace)
        .with_identity(identity)
        .with_duration(duration)
        .with_grace(grace)
        .build()
        .await?;
    info!(lease = %args.lease_name, %namespace, %identity, "waiting to lead");
    Ok(manager)
}

/// The Lease's namespace: the flag's, else the pod's, else the client's default.
pub(crate) fn lease_namespace(args: &RunArgs, client: &Client) -> String {
    match &args.lease_namespace {
        Some(ns) => ns.clone(),
        None => std::fs::read_to_string(NAMESPACE_FILE)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| client.default_namespace().to_owned()),
    }
}

/// Waits until this replica holds the Lease (true), or shutdown or a dead lease manager
/// (false).
pub(crate) async fn wait_to_lead(
    leading: &mut tokio::sync::watch::Receiver<bool>,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        if *leading.borrow_and_update() {
            return true;
        }
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { return false },
            _ = shutdown.cancelled() => return false,
        }
    }
}

/// Waits for shutdown (`stop`) and hands the channel back. When the lease manager says the
/// Lease is lost, or `confirmed` can no longer confirm it, the process exits at once: another
/// replica may lead already, so not one more AWS call, not even to finish a pass in flight.
/// A fresh process then starts as a standby.
pub(crate) async fn exit_when_lost(
    mut leading: tokio::sync::watch::Receiver<bool>,
    stop: CancellationToken,
    confirmed: impl Future<Output = ()>,
) -> tokio::sync::watch::Receiver<bool> {
    tokio::pin!(confirmed);
    loop {
        tokio::select! {
            changed = leading.changed() => {
                if changed.is_err() || !*leading.borrow_and_update() {
                    break;
                }
            }
            _ = &mut confirmed => break,
            _ = stop.cancelled() => return leading,
        }
    }
    error!("lost the leader lease; exiting at once so that a fresh standby takes its place");
    std::process::exit(1);
}

pub(crate) async fn release(
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
) {
    match tokio::time::timeout(Duration::from_secs(5), task).await {
        Ok(Ok(Ok(_))) => info!("released the leader lease"),
        Ok(Ok(Err(e))) => warn!("could not release the leader lease: {e}"),
        Ok(Err(e)) => warn!("lease manager task failed: {e}"),
        Err(_) => warn!("timed out releasing the leader lease; it expires by itself"),
    }
}

pub(crate) fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "eventbridge-partner-operator".into());
    // Two processes on one host (a laptop, a test) must not share an identity.
    format!("{host}-{:08x}", rand::random::<u32>())
}
