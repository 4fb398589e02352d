//! The command line: the flags of every command ([`config`]), the `import` command
//! ([`import`]) and the `status` command ([`status`]). May use the AWS side, the resources and the reconcile settings; the runtime
//! reads its settings from here, never the other way round.

pub mod config;
pub mod import;
pub mod status;
