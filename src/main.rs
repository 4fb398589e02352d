//! `eventbridge-partner-operator`: `run` (the default), `crd`, `import` or `status` (also run
//! as the kubectl plugin `kubectl-eventbridge`, which takes the same arguments).

use std::process::ExitCode;

use clap::Parser;
use eventbridge_partner_operator::cli::config::{Cli, Command, CrdKind};
use eventbridge_partner_operator::cli::{import, status};
use eventbridge_partner_operator::runtime::{operator, telemetry};
use eventbridge_partner_operator::{crd_yaml, partner_account_crd_yaml};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd { kind }) => print_crd(kind),
        Some(Command::Import(args)) => import::main(&args, &cli.run),
        Some(Command::Status(args)) => status::main(&args, &cli.run),
        None | Some(Command::Run) => {
            telemetry::init(cli.run.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(operator::run(cli.run)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_crd(kind: CrdKind) -> ExitCode {
    let yaml = match kind {
        CrdKind::PartnerEventSource => crd_yaml(),
        CrdKind::PartnerAccount => partner_account_crd_yaml(),
    };
    match yaml {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot render the CRD: {e}");
            ExitCode::FAILURE
        }
    }
}
