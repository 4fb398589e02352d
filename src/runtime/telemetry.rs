//! Logging: JSON lines in a cluster, text on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::config::LogFormat;

/// The default filter: the operator at info, chatty libraries at warn. `RUST_LOG` overrides it.
const DEFAULT_FILTER: &str = "info,kube=warn,kube_runtime=warn,kube_lease_manager=warn,aws_config=warn,aws_smithy_runtime=warn,hyper=warn,tower=warn";

/// Installs the global subscriber. Reconcile lines carry the object's namespace, name and
/// generation from the reconcile span; in JSON they appear under `span`.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}
