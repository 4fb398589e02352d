//! `eventbridge-partner-operator`: `run` (the default), `crd` or `import`.

use std::process::ExitCode;

use clap::Parser;
use eventbridge_partner_operator::config::{Cli, Command};
use eventbridge_partner_operator::{crd_yaml, import, operator, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => match crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot render the CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Import(args)) => import::main(&args, &cli.run),
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
