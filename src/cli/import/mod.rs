//! The `import` command: lists a partner's existing event sources in EventBridge and writes one
//! `PartnerEventSource` manifest per source and customer account, so that `kubectl apply` of
//! the output puts sources made before the operator under its care. The operator adopts each
//! of them (`Ready=True, reason=Adopted`): its create meets `ResourceAlreadyExistsException`
//! for a source already shared with the object's account, so nothing is created, and with
//! `deletionPolicy: Retain` (the default here) nothing is deleted when an object goes.
//!
//! Pure pieces (flag validation, object names in [`names`], YAML in [`manifests`]) are separate
//! from the I/O edge: the listing in [`listing`], through the operator's partner API and its
//! request budget, and stdout or files. Everything is listed and rendered before the first
//! byte is written, so a failed listing leaves nothing behind.

mod listing;
mod manifests;
mod names;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;

use clap::Args;
use regex::Regex;

use crate::aws::budget::Priority;
use crate::cli::config::RunArgs;
use crate::error::AwsError;
use crate::resources::DeletionPolicy;
use manifests::{Manifest, Target, manifests, yaml_stream};
use names::{DNS_LABEL_RE, OBJECT_NAME_MAX_LEN};

/// Pattern of `ListPartnerEventSources`' `NamePrefix`, from the EventBridge model's
/// `PartnerEventSourceNamePrefix` shape, anchored over the whole value: `aws.partner/`, the
/// partner name, a `/`, then any part of the rest of a source name.
const PREFIX_PATTERN: &str = r"^aws\.partner/[.\-_A-Za-z0-9]+/[/.\-_A-Za-z0-9]*$";
/// Longest `NamePrefix` EventBridge accepts.
const PREFIX_MAX_LEN: usize = 256;

static PREFIX_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(PREFIX_PATTERN).expect("PREFIX_PATTERN is a valid regex"));

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
pub(crate) fn parse_prefix(s: &str) -> Result<String, String> {
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
pub(crate) fn check_namespace(s: &str) -> Result<(), String> {
    if s.len() > OBJECT_NAME_MAX_LEN || !DNS_LABEL_RE.is_match(s) {
        return Err(format!(
            "invalid value {s:?} for --namespace: a namespace name is at most 63 lowercase \
             letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Why `import` failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
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
    pub(crate) fn exit_code(&self) -> u8 {
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
pub(crate) async fn run(args: &ImportArgs, aws: &RunArgs) -> Result<(), ImportError> {
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
    let (eventbridge, region) = listing::eventbridge(aws).await?;
    let calls = eventbridge.calls(eventbridge.operator(), Priority::User);
    let found = listing::list(&calls, &region, &args.prefix).await?;
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
}
