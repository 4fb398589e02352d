//! The `import` command: lists a partner's existing event sources in EventBridge and writes one
//! `PartnerEventSource` manifest per source and customer account, so that `kubectl apply` of
//! the output puts sources made before the operator under its care. The operator adopts each
//! of them (`Ready=True, reason=Adopted`): its create meets `ResourceAlreadyExistsException`
//! for a source already shared with the object's account, so nothing is created, and with
//! `deletionPolicy: Retain` (the default here) nothing is deleted when an object goes.
//!
//! Pure pieces (flag validation, object names, YAML) are separate from the I/O edge (the SDK
//! listing, stdout and files). Everything is listed and rendered before the first byte is
//! written, so a failed listing leaves nothing behind.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;
use std::time::Duration;

use aws_sdk_eventbridge::Client;
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use kube::Resource;
use regex::Regex;
use serde::Serialize;

use crate::aws::identity::load_sdk_config;
use crate::cli::config::RunArgs;
use crate::error::AwsError;
use crate::resources::{DeletionPolicy, PartnerEventSource};

/// Pattern of `ListPartnerEventSources`' `NamePrefix`, from the EventBridge model's
/// `PartnerEventSourceNamePrefix` shape, anchored over the whole value: `aws.partner/`, the
/// partner name, a `/`, then any part of the rest of a source name.
pub const PREFIX_PATTERN: &str = r"^aws\.partner/[.\-_A-Za-z0-9]+/[/.\-_A-Za-z0-9]*$";
/// Longest `NamePrefix` EventBridge accepts.
pub const PREFIX_MAX_LEN: usize = 256;
/// Longest object name `import` writes: a DNS label, so that the name also fits a label value.
pub const OBJECT_NAME_MAX_LEN: usize = 63;
/// Hex digits of the hash suffix of a truncated or colliding name.
const HASH_LEN: usize = 8;

static PREFIX_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(PREFIX_PATTERN).expect("PREFIX_PATTERN is a valid regex"));
static NAMESPACE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("the DNS label pattern is a valid regex")
});

/// Settings of `import`. The AWS region and endpoint are the global `--region` and
/// `--aws-endpoint-url` that `run` uses too.
#[derive(Clone, Debug, Args)]
pub struct ImportArgs {
    /// List the sources whose names start with this prefix, e.g. `aws.partner/acme.com/` or
    /// `aws.partner/acme.com/customer-4711/`. It must name the partner and end the partner
    /// name with `/`.
    #[arg(long, value_parser = parse_prefix)]
    pub prefix: String,

    /// Namespace the written objects go to. The same flag and variable as `run`'s
    /// `--namespace`, so that objects imported for an operator that watches one namespace land
    /// where it looks.
    // The id is that of the global `--namespace`, so clap gives import this definition (its
    // own help and default) instead of propagating `run`'s.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// `spec.deletionPolicy` of the written objects. `Retain` keeps a source in AWS when its
    /// object is deleted, so importing never risks deleting what existed before.
    #[arg(long, value_enum, default_value = "Retain")]
    pub deletion_policy: DeletionPolicy,

    /// Write one file per object, `<metadata.name>.yaml`, into this directory (made if
    /// missing) instead of one multi-document YAML stream on stdout.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// Checks `--prefix` against the EventBridge model's `NamePrefix`.
pub fn parse_prefix(s: &str) -> Result<String, String> {
    let len = s.encode_utf16().count();
    if len > PREFIX_MAX_LEN {
        return Err(format!(
            "must be at most {PREFIX_MAX_LEN} characters long (got {len})"
        ));
    }
    if !PREFIX_RE.is_match(s) {
        return Err(format!(
            "{s:?} must look like aws.partner/<partner_name>/ followed by any start of the rest \
             of a source name: letters, digits, '.', '-', '_' and '/' (e.g. aws.partner/acme.com/)"
        ));
    }
    Ok(s.to_owned())
}

/// Checks `--namespace` as Kubernetes checks a namespace name (a DNS label).
pub fn check_namespace(s: &str) -> Result<(), String> {
    if s.len() > OBJECT_NAME_MAX_LEN || !NAMESPACE_RE.is_match(s) {
        return Err(format!(
            "invalid value {s:?} for --namespace: a namespace name is at most 63 lowercase \
             letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// One partner event source shared with one customer account, as AWS listed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    /// The source's name.
    pub source: String,
    /// The customer account it is shared with.
    pub account: String,
    /// The source's ARN, for the provenance comment.
    pub arn: Option<String>,
}

/// Where the written objects go and what they say besides the source itself.
#[derive(Clone, Debug)]
pub struct Target {
    /// The prefix the sources were listed with, for the provenance comment.
    pub prefix: String,
    /// The region the sources were listed in; written as `spec.region`, so the objects adopt
    /// the sources where they are whatever the operator's default region.
    pub region: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.deletionPolicy`.
    pub deletion_policy: DeletionPolicy,
}

/// One rendered object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// `metadata.name`.
    pub name: String,
    /// The YAML document, led by its provenance comment, without a `---` separator.
    pub yaml: String,
}

/// 64-bit FNV-1a: small, stable across platforms and releases, which is all a name suffix
/// needs (it is no defence against crafted collisions, and [`object_names`] checks for those).
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The suffix that tells apart objects whose readable names are too long or the same.
fn hash_suffix(source: &str, account: &str) -> String {
    // A zero byte cannot occur in either value, so ("ab", "c") and ("a", "bc") differ.
    let hash = fnv1a(
        source
            .bytes()
            .chain(std::iter::once(0))
            .chain(account.bytes()),
    );
    let folded = (hash >> 32) as u32 ^ hash as u32;
    format!("{folded:0HASH_LEN$x}")
}

/// The readable part of an object name: the source name after `aws.partner/<partner>/`,
/// lowercased, each run of other characters than letters and digits turned into one `-`.
/// `source` when nothing readable is left.
pub fn readable_name(source: &str) -> String {
    let rest = source
        .strip_prefix("aws.partner/")
        .and_then(|after| after.split_once('/'))
        .map_or(source, |(_partner, rest)| rest);
    let mut name = String::with_capacity(rest.len());
    for c in rest.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        "source".to_owned()
    } else {
        name.to_owned()
    }
}

/// The readable name cut to leave room for the hash suffix.
fn hashed_name(readable: &str, source: &str, account: &str) -> String {
    // The readable name is ASCII, so any byte index is a character boundary.
    let cut = &readable[..readable.len().min(OBJECT_NAME_MAX_LEN - HASH_LEN - 1)];
    format!(
        "{}-{}",
        cut.trim_end_matches('-'),
        hash_suffix(source, account)
    )
}

/// The `metadata.name` of each (source, account), in the same order: the [`readable_name`]
/// when it fits in 63 characters and no other pair gets the same one; otherwise that name cut
/// to fit, then `-` and 8 hex digits of a hash of source and account. The result depends only
/// on the set of pairs, not on their order. Fails only if two pairs still end up with the
/// same name (a hash collision), rather than write two objects that overwrite each other.
pub fn object_names(pairs: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let readable: Vec<String> = pairs.iter().map(|(s, _)| readable_name(s)).collect();
    let mut hashed: Vec<bool> = readable
        .iter()
        .map(|r| r.len() > OBJECT_NAME_MAX_LEN)
        .collect();
    // Mark every pair that shares its name with another; repeat, since a hashed name could
    // (very rarely) meet a readable one.
    loop {
        let names: Vec<String> = pairs
            .iter()
            .zip(&readable)
            .zip(&hashed)
            .map(|(((source, account), r), &h)| {
                if h {
                    hashed_name(r, source, account)
                } else {
                    r.clone()
                }
            })
            .collect();
        let mut holders: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            holders.entry(name).or_default().push(i);
        }
        let mut changed = false;
        for (name, idx) in holders.iter().filter(|(_, idx)| idx.len() > 1) {
            if idx.iter().all(|&i| hashed[i]) {
                let who: Vec<String> = idx
                    .iter()
                    .map(|&i| format!("{} for {}", pairs[i].0, pairs[i].1))
                    .collect();
                return Err(format!(
                    "cannot give distinct names to {}: both would be {name}",
                    who.join(" and ")
                ));
            }
            for &i in idx {
                changed |= !hashed[i];
                hashed[i] = true;
            }
        }
        if !changed {
            return Ok(names);
        }
    }
}

/// Replaces line breaks and other control characters, so that a value from AWS cannot end
/// the comment it is quoted in.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: Metadata<'a>,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    namespace: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    name: &'a str,
    account: &'a str,
    region: &'a str,
    deletion_policy: DeletionPolicy,
}

/// One manifest per found (source, account), sorted by source and account, duplicates
/// dropped, each led by a comment naming the source, its ARN and region, the account, and
/// the command that wrote it.
pub fn manifests(found: &[Found], target: &Target) -> Result<Vec<Manifest>, String> {
    let mut found = found.to_vec();
    found.sort();
    found.dedup_by(|a, b| a.source == b.source && a.account == b.account);
    let pairs: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.source.as_str(), f.account.as_str()))
        .collect();
    let names = object_names(&pairs)?;
    let api_version = PartnerEventSource::api_version(&());
    let kind = PartnerEventSource::kind(&());
    found
        .iter()
        .zip(names)
        .map(|(f, name)| {
            let document = Document {
                api_version: &api_version,
                kind: &kind,
                metadata: Metadata {
                    name: &name,
                    namespace: &target.namespace,
                },
                spec: Spec {
                    name: &f.source,
                    account: &f.account,
                    region: &target.region,
                    deletion_policy: target.deletion_policy,
                },
            };
            let body = serde_yaml::to_string(&document)
                .map_err(|e| format!("cannot render {name} as YAML: {e}"))?;
            let mut yaml = String::new();
            // Writing to a String cannot fail.
            let _ = writeln!(
                yaml,
                "# Imported by `eventbridge-partner-operator import --prefix {}`:",
                one_line(&target.prefix)
            );
            let _ = writeln!(
                yaml,
                "# partner event source {} in {}, shared with account {}.",
                one_line(&f.source),
                one_line(&target.region),
                one_line(&f.account)
            );
            if let Some(arn) = &f.arn {
                let _ = writeln!(yaml, "# ARN: {}", one_line(arn));
            }
            yaml.push_str(&body);
            Ok(Manifest { name, yaml })
        })
        .collect()
}

/// The manifests as one multi-document YAML stream.
pub fn yaml_stream(manifests: &[Manifest]) -> String {
    manifests
        .iter()
        .map(|m| format!("---\n{}", m.yaml))
        .collect()
}

/// Why `import` failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The command line asks for something impossible (exit code 2, as clap's usage errors).
    #[error("{0}")]
    Usage(String),
    /// Listing in AWS failed.
    #[error("{operation} failed: {error}")]
    Aws {
        /// The EventBridge operation.
        operation: &'static str,
        /// What AWS (or the transport) said.
        error: AwsError,
    },
    /// The listing cannot be turned into manifests.
    #[error("{0}")]
    Render(String),
    /// Writing the output failed.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file or directory.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
}

impl ImportError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ImportError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Runs `import` to the end: the entry point `main` calls.
pub fn main(args: &ImportArgs, aws: &RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, aws)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Lists, renders, and only then writes.
pub async fn run(args: &ImportArgs, aws: &RunArgs) -> Result<(), ImportError> {
    check_namespace(&args.namespace).map_err(ImportError::Usage)?;
    if let Some(dir) = &args.output
        && dir.exists()
        && !dir.is_dir()
    {
        return Err(ImportError::Usage(format!(
            "invalid value {:?} for --output: not a directory",
            dir.display()
        )));
    }
    let (client, region) = client(aws).await?;
    let found = list(&client, &args.prefix).await?;
    let target = Target {
        prefix: args.prefix.clone(),
        region: region.clone(),
        namespace: args.namespace.clone(),
        deletion_policy: args.deletion_policy,
    };
    let manifests = manifests(&found, &target).map_err(ImportError::Render)?;
    match &args.output {
        // Not print!, which panics when the reader went away (`| head`).
        None => {
            std::io::Write::write_all(&mut std::io::stdout(), yaml_stream(&manifests).as_bytes())
                .map_err(|error| ImportError::Write {
                    path: "stdout".into(),
                    error,
                })?
        }
        Some(dir) => write_files(dir, &manifests)?,
    }
    let sources = {
        let mut names: Vec<&str> = found.iter().map(|f| f.source.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    eprintln!(
        "{} PartnerEventSource objects for {sources} sources starting with {} in {region}{}",
        manifests.len(),
        args.prefix,
        args.output
            .as_ref()
            .map(|d| format!(", written to {}", d.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// The EventBridge client of the AWS default chain, with the global `--region` and
/// `--aws-endpoint-url`, and the region it lists in.
async fn client(aws: &RunArgs) -> Result<(Client, String), ImportError> {
    let region = aws.region.as_deref();
    let endpoint = aws.aws_endpoint_url.as_deref();
    let sdk = load_sdk_config(
        region,
        endpoint,
        Duration::from_secs(15),
        Duration::from_secs(60),
    )
    .await;
    let Some(region) = sdk.region().map(ToString::to_string) else {
        return Err(ImportError::Usage(
            "no AWS region: set --region (or AWS_REGION, or a profile's region)".into(),
        ));
    };
    Ok((Client::new(&sdk), region))
}

/// How many `ListPartnerEventSourceAccounts` listings run at the same time. The SDK's
/// standard retries absorb throttling; this only keeps a large import from taking one round
/// trip per source in sequence.
const ACCOUNT_LISTINGS_AT_ONCE: usize = 4;

/// Every source starting with `prefix` (`ListPartnerEventSources`, every page), then every
/// account each is shared with (`ListPartnerEventSourceAccounts`, every page).
pub async fn list(client: &Client, prefix: &str) -> Result<Vec<Found>, ImportError> {
    let mut sources: Vec<(String, Option<String>)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_partner_event_sources()
            .name_prefix(prefix)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| ImportError::Aws {
                operation: "ListPartnerEventSources",
                error: AwsError::from_sdk(e),
            })?;
        sources.extend(
            page.partner_event_sources()
                .iter()
                .filter_map(|s| Some((s.name()?.to_owned(), s.arn().map(str::to_owned)))),
        );
        match page.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    let per_source: Vec<Vec<Found>> = futures::stream::iter(sources)
        .map(|(source, arn)| async move {
            let accounts = list_accounts(client, &source).await?;
            Ok::<_, ImportError>(
                accounts
                    .into_iter()
                    .map(|account| Found {
                        source: source.clone(),
                        account,
                        arn: arn.clone(),
                    })
                    .collect(),
            )
        })
        .buffered(ACCOUNT_LISTINGS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(per_source.into_iter().flatten().collect())
}

/// The accounts one source is shared with, every page.
async fn list_accounts(client: &Client, source: &str) -> Result<Vec<String>, ImportError> {
    let mut accounts = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_partner_event_source_accounts()
            .event_source_name(source)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| ImportError::Aws {
                operation: "ListPartnerEventSourceAccounts",
                error: AwsError::from_sdk(e),
            })?;
        accounts.extend(
            page.partner_event_source_accounts()
                .iter()
                .filter_map(|a| a.account().map(str::to_owned)),
        );
        match page.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    Ok(accounts)
}

/// Writes `<name>.yaml` per manifest into `dir`, making it if missing.
fn write_files(dir: &Path, manifests: &[Manifest]) -> Result<(), ImportError> {
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |error| ImportError::Write { path, error }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    for m in manifests {
        let path = dir.join(format!("{}.yaml", m.name));
        std::fs::write(&path, &m.yaml).map_err(failed(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::config::{Cli, Command};
    use clap::Parser;

    const ACCOUNT: &str = "123456789012";

    fn target() -> Target {
        Target {
            prefix: "aws.partner/acme.com/".into(),
            region: "eu-west-1".into(),
            namespace: "tenants".into(),
            deletion_policy: DeletionPolicy::Retain,
        }
    }

    fn found(source: &str, account: &str) -> Found {
        Found {
            source: source.into(),
            account: account.into(),
            arn: Some(format!("arn:aws:events:eu-west-1::event-source/{source}")),
        }
    }

    fn is_dns_label(name: &str) -> bool {
        name.len() <= OBJECT_NAME_MAX_LEN && NAMESPACE_RE.is_match(name)
    }

    #[test]
    fn prefixes_follow_the_model() {
        for good in [
            "aws.partner/acme.com/",
            "aws.partner/acme.com/customer-4711/",
            "aws.partner/acme.com/customer-4711/ord",
            "aws.partner/a_b-c.d/x.y_z",
        ] {
            assert_eq!(parse_prefix(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "aws.partner/",
            "aws.partner/acme.com",
            "aws.partner//x",
            "acme.com/",
            "aws.partnerx/acme.com/",
            "aws.partner/acme com/",
            "aws.partner/acme.com/\n",
            "AWS.PARTNER/acme.com/",
        ] {
            assert!(parse_prefix(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("aws.partner/acme.com/{}", "a".repeat(236));
        assert_eq!(long.len(), 257);
        assert!(parse_prefix(&long).unwrap_err().contains("256"));
        assert!(parse_prefix(&long[..256]).is_ok());
    }

    #[test]
    fn the_cli_takes_import_and_its_flags() {
        let cli = Cli::try_parse_from([
            "eventbridge-partner-operator",
            "import",
            "--prefix",
            "aws.partner/acme.com/",
        ])
        .unwrap();
        let Some(Command::Import(args)) = cli.command else {
            panic!("not import: {:?}", cli.command);
        };
        assert_eq!(args.prefix, "aws.partner/acme.com/");
        assert_eq!(args.namespace, "default");
        assert_eq!(args.deletion_policy, DeletionPolicy::Retain);
        assert_eq!(args.output, None);

        let cli = Cli::try_parse_from([
            "eventbridge-partner-operator",
            "--region",
            "us-east-2",
            "import",
            "--prefix",
            "aws.partner/acme.com/c/",
            "--namespace",
            "tenants",
            "--deletion-policy",
            "Delete",
            "--output",
            "out",
            "--aws-endpoint-url",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        let Some(Command::Import(args)) = cli.command else {
            panic!("not import");
        };
        assert_eq!(args.namespace, "tenants");
        assert_eq!(args.deletion_policy, DeletionPolicy::Delete);
        assert_eq!(args.output, Some(PathBuf::from("out")));
        assert_eq!(cli.run.region.as_deref(), Some("us-east-2"));
        assert_eq!(
            cli.run.aws_endpoint_url.as_deref(),
            Some("http://127.0.0.1:1")
        );

        // The global flag given before the subcommand reaches import too.
        let cli = Cli::try_parse_from([
            "eventbridge-partner-operator",
            "--namespace",
            "tenants",
            "import",
            "--prefix",
            "aws.partner/acme.com/",
        ])
        .unwrap();
        let Some(Command::Import(args)) = cli.command else {
            panic!("not import");
        };
        assert_eq!(args.namespace, "tenants");
    }

    #[test]
    fn a_bad_or_missing_prefix_is_a_usage_error_naming_the_flag() {
        for args in [
            &["import", "--prefix", "aws.partner/acme.com"][..],
            &["import", "--prefix", "acme.com/"],
            &["import"],
        ] {
            let err = Cli::try_parse_from(
                std::iter::once("eventbridge-partner-operator").chain(args.iter().copied()),
            )
            .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(err.to_string().contains("--prefix"), "{args:?}: {err}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert!(check_namespace("default").is_ok());
        assert!(check_namespace("team-1").is_ok());
        for bad in ["", "Tenants", "-a", "a-", "a.b", &"a".repeat(64)] {
            let err = check_namespace(bad).unwrap_err();
            assert!(err.contains("--namespace"), "{err}");
        }
    }

    #[test]
    fn readable_names_drop_the_partner_and_keep_the_rest() {
        let cases = [
            (
                "aws.partner/acme.com/customer-4711/orders",
                "customer-4711-orders",
            ),
            (
                "aws.partner/acme.com/Customer_4711/Orders",
                "customer-4711-orders",
            ),
            ("aws.partner/acme.com/a..b//c", "a-b-c"),
            ("aws.partner/acme.com/-x-/", "x"),
            ("aws.partner/acme.com/___", "source"),
            ("aws.partner/acme.com/4711", "4711"),
        ];
        for (source, name) in cases {
            assert_eq!(readable_name(source), name, "{source}");
        }
    }

    #[test]
    fn names_are_readable_unless_too_long_or_shared() {
        let long = format!("aws.partner/acme.com/{}", "segment/".repeat(20));
        let pairs = [
            ("aws.partner/acme.com/c1/orders", ACCOUNT),
            ("aws.partner/acme.com/C1/Orders", ACCOUNT),
            ("aws.partner/acme.com/c2/orders", ACCOUNT),
            ("aws.partner/acme.com/c3/orders", ACCOUNT),
            ("aws.partner/acme.com/c3/orders", "210987654321"),
            (long.as_str(), ACCOUNT),
        ];
        let names = object_names(&pairs).unwrap();
        assert_eq!(names[2], "c2-orders");
        for i in [0, 1, 3, 4] {
            let n = &names[i];
            assert!(
                n.starts_with(&format!("{}-", readable_name(pairs[i].0))),
                "{n}"
            );
            assert_eq!(
                n.len(),
                readable_name(pairs[i].0).len() + 1 + HASH_LEN,
                "{n}"
            );
        }
        assert!(names[5].starts_with("segment-segment-"), "{}", names[5]);
        assert_eq!(names[5].len(), OBJECT_NAME_MAX_LEN, "{}", names[5]);
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| is_dns_label(n)), "{names:?}");
    }

    #[test]
    fn names_depend_on_the_pairs_not_their_order_or_the_run() {
        let pairs: Vec<(String, String)> = (0..40)
            .map(|i| {
                (
                    format!("aws.partner/acme.com/customer-{}/Orders", i % 20),
                    format!("{:012}", 100_000_000_000u64 + i / 20),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(s, a)| (s.as_str(), a.as_str()))
            .collect();
        let names = object_names(&refs).unwrap();
        let mut reversed = refs.clone();
        reversed.reverse();
        let mut names_reversed = object_names(&reversed).unwrap();
        names_reversed.reverse();
        assert_eq!(names, names_reversed);
        // Pinned, so that a changed hash (which would rename every imported object on the
        // next import) cannot go unnoticed.
        assert_eq!(
            hash_suffix("aws.partner/acme.com/c/orders", ACCOUNT),
            "057d713e"
        );
        assert_eq!(fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_hashed_name_that_meets_a_readable_one_is_hashed_too() {
        let hashed = object_names(&[
            ("aws.partner/acme.com/x/y", ACCOUNT),
            ("aws.partner/acme.com/X/Y", ACCOUNT),
        ])
        .unwrap();
        // A third source whose readable name is exactly the first one's hashed name.
        let lookalike = format!("aws.partner/acme.com/{}", hashed[0]);
        let names = object_names(&[
            ("aws.partner/acme.com/x/y", ACCOUNT),
            ("aws.partner/acme.com/X/Y", ACCOUNT),
            (lookalike.as_str(), ACCOUNT),
        ])
        .unwrap();
        assert_eq!(names[..2], hashed[..]);
        assert_ne!(names[2], hashed[0]);
        assert!(names[2].starts_with(&format!("{}-", hashed[0])));
    }

    #[test]
    fn manifests_are_valid_objects_with_their_provenance() {
        let found = [
            found("aws.partner/acme.com/c2/orders", ACCOUNT),
            found("aws.partner/acme.com/c1/orders", ACCOUNT),
            found("aws.partner/acme.com/c1/orders", ACCOUNT),
        ];
        let manifests = manifests(&found, &target()).unwrap();
        assert_eq!(
            manifests
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["c1-orders", "c2-orders"]
        );
        let m = &manifests[0];
        assert!(m.yaml.starts_with(
            "# Imported by `eventbridge-partner-operator import --prefix aws.partner/acme.com/`:\n\
             # partner event source aws.partner/acme.com/c1/orders in eu-west-1, shared with account 123456789012.\n\
             # ARN: arn:aws:events:eu-west-1::event-source/aws.partner/acme.com/c1/orders\n\
             apiVersion: eventbridgepartner.dev/v1alpha1\n\
             kind: PartnerEventSource\n"
        ), "{}", m.yaml);
        let obj: PartnerEventSource = serde_yaml::from_str(&m.yaml).unwrap();
        assert_eq!(obj.metadata.name.as_deref(), Some("c1-orders"));
        assert_eq!(obj.metadata.namespace.as_deref(), Some("tenants"));
        assert_eq!(obj.spec.name, "aws.partner/acme.com/c1/orders");
        assert_eq!(obj.spec.account, ACCOUNT);
        assert_eq!(obj.spec.region.as_deref(), Some("eu-west-1"));
        assert_eq!(obj.spec.deletion_policy, Some(DeletionPolicy::Retain));
        assert_eq!(obj.spec.validate(), Ok(()));
        assert!(obj.status.is_none());
    }

    #[test]
    fn the_stream_holds_one_document_per_manifest() {
        let found: Vec<Found> = (0..3)
            .map(|i| found(&format!("aws.partner/acme.com/c{i}/orders"), ACCOUNT))
            .collect();
        let stream = yaml_stream(&manifests(&found, &target()).unwrap());
        let objects: Vec<PartnerEventSource> = serde_yaml::Deserializer::from_str(&stream)
            .map(|doc| <PartnerEventSource as serde::Deserialize>::deserialize(doc).unwrap())
            .collect();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[2].spec.name, "aws.partner/acme.com/c2/orders");
        assert_eq!(yaml_stream(&[]), "");
    }

    #[test]
    fn comments_stay_on_one_line() {
        let mut f = found("aws.partner/acme.com/c/orders", ACCOUNT);
        f.arn = Some("arn\n- injected: true".into());
        let m = &manifests(&[f], &target()).unwrap()[0];
        let obj: serde_yaml::Value = serde_yaml::from_str(&m.yaml).unwrap();
        assert!(obj.get("injected").is_none(), "{}", m.yaml);
        assert!(
            m.yaml.contains("# ARN: arn - injected: true\n"),
            "{}",
            m.yaml
        );
    }

    mod listing {
        use super::*;
        use aws_sdk_eventbridge::operation::list_partner_event_source_accounts::ListPartnerEventSourceAccountsOutput;
        use aws_sdk_eventbridge::operation::list_partner_event_sources::ListPartnerEventSourcesOutput;
        use aws_sdk_eventbridge::types::{PartnerEventSource as Source, PartnerEventSourceAccount};
        use aws_smithy_mocks::{Rule, RuleMode, create_mock_http_client, mock};
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;

        fn client(rules: &[&Rule]) -> Client {
            let mut interceptor =
                aws_smithy_mocks::MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
            for rule in rules {
                interceptor = interceptor.with_rule(rule);
            }
            Client::from_conf(
                aws_sdk_eventbridge::Config::builder()
                    .with_test_defaults_v2()
                    .http_client(create_mock_http_client())
                    .interceptor(interceptor)
                    .build(),
            )
        }

        fn sources(names: &[&str], token: Option<&str>) -> ListPartnerEventSourcesOutput {
            ListPartnerEventSourcesOutput::builder()
                .set_partner_event_sources(Some(
                    names
                        .iter()
                        .map(|n| Source::builder().name(*n).arn(format!("arn:{n}")).build())
                        .collect(),
                ))
                .set_next_token(token.map(str::to_owned))
                .build()
        }

        fn accounts(
            accounts: &[&str],
            token: Option<&str>,
        ) -> ListPartnerEventSourceAccountsOutput {
            ListPartnerEventSourceAccountsOutput::builder()
                .set_partner_event_source_accounts(Some(
                    accounts
                        .iter()
                        .map(|a| PartnerEventSourceAccount::builder().account(*a).build())
                        .collect(),
                ))
                .set_next_token(token.map(str::to_owned))
                .build()
        }

        #[tokio::test]
        async fn every_page_of_sources_and_of_accounts_is_read() {
            const A: &str = "aws.partner/acme.com/a/x";
            const B: &str = "aws.partner/acme.com/b/x";
            let first = mock!(Client::list_partner_event_sources)
                .match_requests(|r| {
                    r.name_prefix() == Some("aws.partner/acme.com/") && r.next_token().is_none()
                })
                .then_output(|| sources(&[A], Some("s2")));
            let second = mock!(Client::list_partner_event_sources)
                .match_requests(|r| r.next_token() == Some("s2"))
                .then_output(|| sources(&[B], None));
            let a1 = mock!(Client::list_partner_event_source_accounts)
                .match_requests(|r| r.event_source_name() == Some(A) && r.next_token().is_none())
                .then_output(|| accounts(&["111111111111"], Some("a2")));
            let a2 = mock!(Client::list_partner_event_source_accounts)
                .match_requests(|r| {
                    r.event_source_name() == Some(A) && r.next_token() == Some("a2")
                })
                .then_output(|| accounts(&["222222222222"], None));
            let b = mock!(Client::list_partner_event_source_accounts)
                .match_requests(|r| r.event_source_name() == Some(B))
                .then_output(|| accounts(&[ACCOUNT], None));
            let client = client(&[&first, &second, &a1, &a2, &b]);
            let mut listed = list(&client, "aws.partner/acme.com/").await.unwrap();
            listed.sort();
            let pairs: Vec<(&str, &str)> = listed
                .iter()
                .map(|f| (f.source.as_str(), f.account.as_str()))
                .collect();
            assert_eq!(
                pairs,
                [(A, "111111111111"), (A, "222222222222"), (B, ACCOUNT)]
            );
            assert_eq!(listed[2].arn.as_deref(), Some(&*format!("arn:{B}")));
            assert_eq!(second.num_calls(), 1);
            assert_eq!(a2.num_calls(), 1);
        }

        #[tokio::test]
        async fn a_failed_listing_names_the_operation() {
            let denied = mock!(Client::list_partner_event_sources).then_http_response(|| {
                let body = r#"{"__type":"OperationDisabledException","message":"disabled"}"#;
                let mut response = HttpResponse::new(
                    StatusCode::try_from(400).expect("400 is a status"),
                    SdkBody::from(body),
                );
                response
                    .headers_mut()
                    .insert("content-type", "application/x-amz-json-1.1");
                response
            });
            let err = list(&client(&[&denied]), "aws.partner/acme.com/")
                .await
                .unwrap_err();
            assert_eq!(err.exit_code(), 1);
            let text = err.to_string();
            assert!(
                text.starts_with("ListPartnerEventSources failed: OperationDisabledException"),
                "{text}"
            );
        }
    }
}
