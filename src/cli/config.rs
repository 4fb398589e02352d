//! Command line and environment configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::accounts::OwnIdentity;
use crate::aws::budget::BudgetSettings;
use crate::cli::import::ImportArgs;
use crate::cli::status::StatusArgs;
use crate::reconcile::settings::Settings;
use crate::resources::DeletionPolicy;

/// Keeps Amazon EventBridge partner event sources in line with PartnerEventSource objects.
#[derive(Debug, Parser)]
#[command(name = "eventbridge-partner-operator", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings of `run`; accepted before or after the subcommand.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The operator's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (the default).
    Run,
    /// Print a CustomResourceDefinition as YAML.
    Crd {
        /// Which kind's definition.
        #[arg(long, value_enum, default_value = "PartnerEventSource")]
        kind: CrdKind,
    },
    /// Write PartnerEventSource manifests for a partner's existing event sources.
    Import(ImportArgs),
    /// Explain one PartnerEventSource (or list those that need a person), beside AWS's own
    /// view; only reads. Also the kubectl plugin `kubectl eventbridge status`.
    Status(StatusArgs),
}

/// The kinds the operator defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum CrdKind {
    /// `partnereventsources.eventbridgepartner.dev`.
    PartnerEventSource,
    /// `partneraccounts.eventbridgepartner.dev`.
    PartnerAccount,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON when stdout is not a terminal (as in a cluster), text on a terminal.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (use e.g. 30s, 5m, 1h)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a positive number of requests per second"
        )),
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a fraction in (0, 1]")),
    }
}

/// Settings of the controller.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// AWS region for sources whose spec names none. Defaults to the AWS SDK's region chain
    /// (AWS_REGION, profile).
    #[arg(long, env = "AWS_REGION", global = true)]
    pub region: Option<String>,

    /// Send EventBridge calls to this URL instead of AWS (an emulator or a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true)]
    pub aws_endpoint_url: Option<String>,

    /// Watch PartnerEventSource objects in this namespace only; all namespaces when empty.
    /// Name conflicts are then detected within this namespace only.
    #[arg(long = "namespace", env = "WATCH_NAMESPACE", global = true)]
    pub namespace: Option<String>,

    /// Reconcile only objects whose labels match this selector (e.g. `partner-account=prod`),
    /// so that several operators, one per partner account, can share a cluster. Name conflicts
    /// are then detected among the selected objects only.
    #[arg(long, env = "LABEL_SELECTOR", global = true)]
    pub selector: Option<String>,

    /// How many objects are reconciled at the same time.
    #[arg(long, env = "CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..), global = true)]
    pub concurrency: u16,

    /// EventBridge calls per second, across all objects (token bucket refill rate).
    #[arg(long, env = "AWS_RPS", default_value = "5", value_parser = positive_rate, global = true)]
    pub aws_rps: f64,

    /// EventBridge calls allowed in one burst (token bucket size).
    #[arg(long, env = "AWS_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub aws_burst: u32,

    /// The fraction, in (0, 1], of the AWS budget that resyncs of Ready objects may use; the
    /// rest is kept for new and changed objects and deletions. When the objects outgrow this
    /// share the effective resync interval stretches (see the resync_interval_seconds gauge).
    #[arg(long, env = "RESYNC_BUDGET", default_value = "0.2", value_parser = fraction, global = true)]
    pub resync_budget: f64,

    /// Longest wait for one EventBridge or STS answer. A call that takes longer counts as a
    /// timeout, which the object retries with its backoff (AWS may still have done the work;
    /// the next pass finds out).
    #[arg(long, env = "AWS_TIMEOUT", default_value = "15s", value_parser = duration, global = true)]
    pub aws_timeout: Duration,

    /// How often a Ready object is checked again in AWS for drift and activation.
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "5m", value_parser = duration, global = true)]
    pub resync_interval: Duration,

    /// Deletion policy for objects whose spec sets none.
    #[arg(
        long,
        env = "DEFAULT_DELETION_POLICY",
        value_enum,
        default_value = "Delete",
        global = true
    )]
    pub default_deletion_policy: DeletionPolicy,

    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub log_format: LogFormat,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080", global = true)]
    pub http_addr: SocketAddr,

    /// Elect a leader through a Lease so that only one replica reconciles.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "LEASE_NAME",
        default_value = "eventbridge-partner-operator",
        global = true
    )]
    pub lease_name: String,

    /// Namespace of the leader-election Lease; defaults to the pod's namespace, else the
    /// client's default namespace.
    #[arg(long, env = "POD_NAMESPACE", global = true)]
    pub lease_namespace: Option<String>,

    /// How long a leader's Lease stays valid without renewal; a standby takes over after it.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = duration, global = true)]
    pub lease_duration: Duration,

    /// This replica's identity in the Lease; defaults to the host name.
    #[arg(long, env = "POD_NAME", global = true)]
    pub identity: Option<String>,

    /// When an object that names no PartnerAccount (and finds none marked default) may be
    /// created with the operator's own AWS identity: `no-accounts` only while no PartnerAccount
    /// exists (in this operator's shard), so that grants cannot be bypassed once there are any;
    /// `fallback` always, outside every grant.
    #[arg(
        long,
        env = "OWN_IDENTITY",
        value_enum,
        default_value = "no-accounts",
        global = true
    )]
    pub own_identity: OwnIdentity,

    /// How long start-up waits for a CustomResourceDefinition or a permission that is missing
    /// (one being installed at the same moment) before the process exits non-zero, naming it.
    #[arg(long, env = "PREFLIGHT_TIMEOUT", default_value = "30s", value_parser = duration, global = true)]
    pub preflight_timeout: Duration,

    /// The name the operator's ClusterRoles and Roles were installed under (the chart sets its
    /// release's full name), so that a missing permission is named with the role that grants it.
    #[arg(
        long,
        env = "RBAC_NAME",
        default_value = "eventbridge-partner-operator",
        global = true
    )]
    pub rbac_name: String,

    /// Longest time to wait for in-flight reconciles on shutdown.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = duration, global = true)]
    pub shutdown_timeout: Duration,
}

impl RunArgs {
    /// The AWS request budget these arguments imply.
    pub fn budget(&self) -> BudgetSettings {
        BudgetSettings {
            rate: self.aws_rps,
            burst: self.aws_burst,
            resync_share: self.resync_budget,
        }
    }

    /// The reconcile settings these arguments imply.
    pub fn settings(&self) -> Settings {
        Settings {
            default_deletion_policy: self.default_deletion_policy,
            resync: self.resync_interval,
            // Terminal errors need a person; look again rarely, but not more rarely than
            // drift checks, so that a fixed permission is noticed within one resync.
            terminal_requeue: self.resync_interval.max(Duration::from_secs(60)),
            conflict_recheck: self.resync_interval.min(Duration::from_secs(30)),
            default_region: self.region.clone(),
            ..Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_is_the_default_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "eventbridge-partner-operator",
            "--resync-interval",
            "2m",
            "--aws-rps",
            "0.5",
            "--default-deletion-policy",
            "Retain",
            "--leader-election",
            "false",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.resync_interval, Duration::from_secs(120));
        assert_eq!(cli.run.aws_rps, 0.5);
        assert!(!cli.run.leader_election);
        assert_eq!(
            cli.run.settings().default_deletion_policy,
            DeletionPolicy::Retain
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        for args in [
            ["--aws-rps", "0"],
            ["--aws-burst", "0"],
            ["--resync-interval", "soon"],
            ["--default-deletion-policy", "Keep"],
            ["--concurrency", "0"],
            ["--resync-budget", "0"],
            ["--resync-budget", "1.5"],
        ] {
            let err =
                Cli::try_parse_from(["eventbridge-partner-operator", "run", args[0], args[1]])
                    .unwrap_err()
                    .to_string();
            assert!(err.contains(args[0]), "{args:?}: {err}");
        }
    }
}
