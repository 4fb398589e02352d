//! `status NAMESPACE/NAME`: one object explained — its spec, conditions with what to do, last
//! Events, the partner account it resolved to and the grant's verdict, the budget it draws
//! from, and AWS's own view beside the status with each difference flagged. Also installed as
//! the kubectl plugin `kubectl eventbridge status` (the binary named `kubectl-eventbridge`).
//! It only reads: Kubernetes gets and lists, and with AWS credentials the read-only
//! `DescribePartnerEventSource` and `ListPartnerEventSourceAccounts` (a PartnerAccount's role is
//! assumed to make them as that account).
//!
//! The global `--selector` narrows it to one shard's objects and PartnerAccounts, as that
//! shard's operator sees them.
//!
//! Exit codes: 0 healthy, 1 not Ready or different from AWS (with `--all-namespaces`: any
//! object listed), 2 bad input (a malformed argument, no such object), 3 the cluster could not
//! be read.

mod advice;
mod report;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use crate::accounts::{Resolution, permits, resolve};
use crate::aws::budget::{Budgets, Priority};
use crate::aws::eventbridge::EventBridge;
use crate::aws::identity::{Identities, Identity};
use crate::aws::partner_api::PartnerApi;
use crate::cli::config::RunArgs;
use crate::error::AwsErrorClass;
use crate::metrics::Metrics;
use crate::resources::conditions::READY;
use crate::resources::{PartnerAccount, PartnerEventSource};
use report::{AccountView, AwsSource, AwsView, BudgetView, Facts};

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The object to explain, as NAMESPACE/NAME.
    #[arg(
        value_name = "NAMESPACE/NAME",
        value_parser = object_ref,
        required_unless_present = "all_namespaces",
        conflicts_with = "all_namespaces"
    )]
    pub object: Option<(String, String)>,

    /// List every PartnerEventSource, one line each, instead of explaining one.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// With --all-namespaces: only the objects whose Ready condition is not True.
    #[arg(long, requires = "all_namespaces")]
    pub not_ready: bool,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub format: Format,

    /// Do not ask AWS: skip the side-by-side view.
    #[arg(long)]
    pub no_aws: bool,

    /// How many of the object's most recent Events to show.
    #[arg(long, default_value_t = 10)]
    pub events: usize,
}

/// How `status` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Sections for a person.
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// `NAMESPACE/NAME`, each part a valid Kubernetes name.
fn object_ref(s: &str) -> Result<(String, String), String> {
    let (namespace, name) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not NAMESPACE/NAME"))?;
    let label = |part: &str| {
        (1..=63).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    };
    if !label(namespace) {
        return Err(format!(
            "namespace {namespace:?} is not a DNS label (lower-case letters, digits, '-', at most 63)"
        ));
    }
    let subdomain = name.len() <= 253 && !name.is_empty() && name.split('.').all(label);
    if !subdomain {
        return Err(format!(
            "name {name:?} is not a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253)"
        ));
    }
    Ok((namespace.to_owned(), name.to_owned()))
}

/// Why `status` could not answer, with its exit code.
enum Failure {
    /// Bad input: exit 2.
    Input(String),
    /// The cluster could not be read: exit 3.
    Cluster(String),
}

/// Runs `status`; the exit code says what it found.
pub fn main(args: &StatusArgs, run: &RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(status(args, run)) {
        Ok((out, healthy)) => {
            print!("{out}");
            ExitCode::from(if healthy { 0 } else { 1 })
        }
        Err(Failure::Input(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(2)
        }
        Err(Failure::Cluster(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(3)
        }
    }
}

/// The output and whether it is healthy.
async fn status(args: &StatusArgs, run: &RunArgs) -> Result<(String, bool), Failure> {
    let client = Client::try_default()
        .await
        .map_err(|e| Failure::Cluster(format!("cannot reach the Kubernetes API: {e}")))?;
    // As the operator's shard sees them: only objects and PartnerAccounts the selector selects.
    let selected = match &run.selector {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    };
    let Some((namespace, name)) = &args.object else {
        return list(&client, args, &selected).await;
    };
    let api: Api<PartnerEventSource> = Api::namespaced(client.clone(), namespace);
    let obj = api
        .get_opt(name)
        .await
        .map_err(|e| Failure::Cluster(format!("cannot read partnereventsources: {e}")))?
        .ok_or_else(|| {
            Failure::Input(format!("partnereventsource {namespace}/{name} not found"))
        })?;
    let events = events(&client, &obj).await?;
    let accounts: Api<PartnerAccount> = Api::all(client.clone());
    let accounts = accounts
        .list(&selected)
        .await
        .map_err(|e| Failure::Cluster(format!("cannot list partneraccounts: {e}")))?
        .items;
    let labels = Api::<Namespace>::all(client)
        .get_opt(namespace)
        .await
        .map_err(|e| Failure::Cluster(format!("cannot read namespace {namespace}: {e}")))?
        .and_then(|ns| ns.metadata.labels)
        .unwrap_or_default();
    let look = Look::of(&obj, &accounts, &labels, run);
    let (aws, budget) = match args.no_aws {
        true => (
            AwsView::NotChecked {
                why: "--no-aws".into(),
            },
            look.budget_without_aws(),
        ),
        false => look.ask_aws(run).await,
    };
    let report = report::assess(Facts {
        object: &obj,
        events: &events,
        region: look.region.clone(),
        account: look.account.clone(),
        budget,
        aws,
        last_events: args.events,
    });
    let out = match args.format {
        Format::Text => report::render_text(&report),
        Format::Json => json(&report)?,
    };
    Ok((out, report.healthy))
}

/// `--all-namespaces`: one line per object (only those not Ready with `--not-ready`);
/// healthy when no object is listed as not Ready.
async fn list(
    client: &Client,
    args: &StatusArgs,
    selected: &ListParams,
) -> Result<(String, bool), Failure> {
    let api: Api<PartnerEventSource> = Api::all(client.clone());
    let objects = api
        .list(selected)
        .await
        .map_err(|e| Failure::Cluster(format!("cannot list partnereventsources: {e}")))?
        .items;
    let rows = report::rows(&objects, args.not_ready);
    let healthy = rows.iter().all(|r| r.ready == "True");
    let out = match args.format {
        Format::Text => report::render_rows(&rows),
        Format::Json => json(&rows)?,
    };
    Ok((out, healthy))
}

fn json(value: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| Failure::Cluster(format!("cannot render JSON: {e}")))
}

/// The Events about `obj` (by UID, so an earlier object of the same name is left out).
async fn events(client: &Client, obj: &PartnerEventSource) -> Result<Vec<Event>, Failure> {
    let api: Api<Event> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let uid = obj.uid().unwrap_or_default();
    let params = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
    api.list(&params)
        .await
        .map(|l| l.items)
        .map_err(|e| Failure::Cluster(format!("cannot list events: {e}")))
}

/// What the object resolves to, before any AWS call.
struct Look<'a> {
    obj: &'a PartnerEventSource,
    resolution: Resolution,
    /// The PartnerAccount the object resolves to.
    partner: Option<&'a PartnerAccount>,
    /// The region a pass would use.
    region: Option<String>,
    account: AccountView,
    rate: f64,
}

impl<'a> Look<'a> {
    fn of(
        obj: &'a PartnerEventSource,
        accounts: &'a [PartnerAccount],
        labels: &std::collections::BTreeMap<String, String>,
        run: &RunArgs,
    ) -> Self {
        let names: Vec<String> = accounts.iter().map(|a| a.name_any()).collect();
        let resolution = resolve(
            obj.recorded_partner_account(),
            obj.partner_account_reference(),
            names
                .iter()
                .map(String::as_str)
                .zip(accounts.iter().map(|a| &a.spec)),
            run.own_identity,
        );
        let partner = match &resolution {
            Resolution::Account(name) => accounts.iter().find(|a| a.name_any() == *name),
            _ => None,
        };
        let region = obj
            .spec
            .region
            .clone()
            .or_else(|| partner.and_then(|a| a.spec.region.clone()))
            .or_else(|| run.region.clone());
        let rate = partner.and_then(|a| a.spec.aws_rps).unwrap_or(run.aws_rps);
        let account = account_view(obj, &resolution, partner, labels);
        Look {
            obj,
            resolution,
            partner,
            region,
            account,
            rate,
        }
    }

    /// The budget, from the identity the PartnerAccount's status records.
    fn budget_without_aws(&self) -> Option<BudgetView> {
        let who = self.partner?.status.as_ref()?.caller_identity.as_ref()?;
        self.budget(&who.account)
    }

    fn budget(&self, account: &str) -> Option<BudgetView> {
        Some(BudgetView {
            account: account.to_owned(),
            region: self.region.clone()?,
            rate: self.rate,
        })
    }

    /// AWS's view of the source, asked as the identity the object acts with, and the budget
    /// of that identity.
    async fn ask_aws(&self, run: &RunArgs) -> (AwsView, Option<BudgetView>) {
        let identities = Identities::from_default_chain(
            run.region.as_deref(),
            run.aws_endpoint_url.as_deref(),
            run.aws_timeout,
        )
        .await;
        let region = match self.region.clone().or_else(|| identities.region()) {
            Some(region) => region,
            None => return (not_checked("no region: set spec.region or --region"), None),
        };
        let identity = match self.identity(&identities).await {
            Ok(identity) => identity,
            Err(why) => return (not_checked(&why), self.budget_without_aws()),
        };
        let budget = BudgetView {
            account: identity.account.clone(),
            region: region.clone(),
            rate: self.rate,
        };
        (
            self.source_in_aws(identity, run, &region).await,
            Some(budget),
        )
    }

    /// The identity a pass would use: the operator's own, or the PartnerAccount's.
    async fn identity(&self, identities: &Identities) -> Result<Identity, String> {
        match (&self.resolution, self.partner) {
            (Resolution::Operator, _) => Ok(identities.operator().await),
            (Resolution::Account(name), Some(account)) => identities
                .partner_account(name, &account.spec)
                .await
                .map(|(identity, _)| identity)
                .map_err(|why| format!("cannot act as PartnerAccount {name}: {why}")),
            _ => Err(format!("no identity: {}", self.account.resolution)),
        }
    }

    /// `DescribePartnerEventSource` and, when it exists, `ListPartnerEventSourceAccounts`.
    async fn source_in_aws(&self, identity: Identity, run: &RunArgs, region: &str) -> AwsView {
        let Ok(budgets) = Budgets::new(run.budget()) else {
            return not_checked("the request budget flags are invalid");
        };
        let eventbridge = EventBridge::new(identity, Arc::new(budgets), Arc::new(Metrics::new()));
        let calls = eventbridge.calls(eventbridge.operator(), Priority::User);
        let name = &self.obj.spec.name;
        let arn = match calls.describe(region, name).await {
            Ok(arn) => arn,
            Err(e) if e.class == AwsErrorClass::NotFound => {
                return AwsView::Checked(AwsSource::new(None, &[]));
            }
            Err(e) => return not_checked(&format!("DescribePartnerEventSource failed: {e}")),
        };
        match calls.list_accounts(region, name).await {
            Ok(accounts) => AwsView::Checked(AwsSource::new(Some(arn), &accounts)),
            Err(e) => not_checked(&format!("ListPartnerEventSourceAccounts failed: {e}")),
        }
    }
}

fn not_checked(why: &str) -> AwsView {
    AwsView::NotChecked {
        why: why.to_owned(),
    }
}

/// The resolution in words, the account's `Ready`, and the grant's verdict.
fn account_view(
    obj: &PartnerEventSource,
    resolution: &Resolution,
    partner: Option<&PartnerAccount>,
    labels: &std::collections::BTreeMap<String, String>,
) -> AccountView {
    let how = match (
        obj.recorded_partner_account(),
        obj.partner_account_reference(),
    ) {
        (Some(_), _) => "recorded in the status",
        (None, Some(_)) => "named by spec.partnerAccountRef",
        (None, None) => "the default",
    };
    let resolution_text = match resolution {
        Resolution::Operator => "the operator's own identity (no PartnerAccount applies)".into(),
        Resolution::Account(name) => format!("PartnerAccount {name} ({how})"),
        Resolution::Missing(name) => format!("PartnerAccount {name} does not exist"),
        Resolution::AmbiguousDefault(names) => format!(
            "none: more than one PartnerAccount is marked default ({})",
            names.join(", ")
        ),
        Resolution::Unnamed => "none: no PartnerAccount is named and none is marked default".into(),
    };
    let ready = partner.map(|a| {
        a.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
            .map_or("not checked yet".to_owned(), |c| {
                format!("{} {}: {}", c.status, c.reason, c.message)
            })
    });
    let grant = match (resolution, partner) {
        (Resolution::Operator, _) => "no grant applies to the operator's own identity".into(),
        (Resolution::Account(name), Some(account)) => {
            match permits(&account.spec, name, labels, &obj.spec) {
                Ok(()) => "permitted".into(),
                Err(rule) => format!("not permitted: {rule}"),
            }
        }
        _ => "no grant: no PartnerAccount resolved".into(),
    };
    AccountView {
        resolution: resolution_text,
        ready,
        grant,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::config::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-eventbridge").chain(args.iter().copied()))
    }

    #[test]
    fn the_object_is_namespace_slash_name() {
        let cli = parse(&["status", "tenants/customer-4711-orders", "-o", "json"]).unwrap();
        let Some(Command::Status(args)) = cli.command else {
            panic!("not status");
        };
        assert_eq!(
            args.object,
            Some(("tenants".into(), "customer-4711-orders".into()))
        );
        assert_eq!(args.format, super::Format::Json);
    }

    #[test]
    fn bad_arguments_exit_2_naming_what_is_wrong() {
        for (args, says) in [
            (&["status", "no-slash"][..], "NAMESPACE/NAME"),
            (&["status", "Tenants/x"], "namespace \"Tenants\""),
            (&["status", "tenants/"], "name \"\""),
            (&["status", "tenants/UPPER"], "name \"UPPER\""),
            (&["status"], "NAMESPACE/NAME"),
            (&["status", "--not-ready"], "--all-namespaces"),
            (&["status", "-A", "tenants/x"], "cannot be used with"),
            (&["status", "tenants/x", "-o", "yaml"], "yaml"),
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(err.to_string().contains(says), "{args:?}: {err}");
        }
    }
}
