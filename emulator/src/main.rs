//! `eventbridge-partner-emulator`: runs the emulator as a process.
//!
//! Prints `LISTENING http://127.0.0.1:PORT` on stdout once bound (the only
//! line it prints there, so scripts can read it) and serves until SIGINT or
//! SIGTERM. Logs go to stderr (`RUST_LOG` filters them, default `info`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use eventbridge_partner_emulator::{
    Config, DEFAULT_DEACTIVATED_EXPIRATION, DEFAULT_PENDING_EXPIRATION, Emulator,
};
use tracing_subscriber::EnvFilter;

/// Emulator of the Amazon EventBridge partner event source API (for tests and demos).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// The emulator's own region.
    #[arg(long, default_value = "eu-west-1")]
    region: String,
    /// Account of callers whose access key id is not a 12-digit account id.
    #[arg(long, default_value = "111111111111")]
    partner_account: String,
    /// Seconds a new source stays PENDING before it expires if its customer
    /// never activates it (default: seven days).
    #[arg(long, default_value_t = DEFAULT_PENDING_EXPIRATION.as_secs())]
    pending_expiration_secs: u64,
    /// Seconds a source stays PENDING after a deactivation or the deletion of
    /// its matching event bus before it expires (default: two weeks).
    #[arg(long, default_value_t = DEFAULT_DEACTIVATED_EXPIRATION.as_secs())]
    deactivated_expiration_secs: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let emulator = Emulator::start_on(
        Config {
            region: args.region,
            partner_account: args.partner_account,
            pending_expiration: Duration::from_secs(args.pending_expiration_secs),
            deactivated_expiration: Duration::from_secs(args.deactivated_expiration_secs),
        },
        args.addr,
    )
    .await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "LISTENING {}", emulator.endpoint_url())?;
    stdout.flush()?;
    drop(stdout);

    wait_for_signal().await?;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
