//! The reconcile core: one pass over a PartnerEventSource. [`sync`] runs the steps against the
//! partner API as straight-line code; [`status`], [`reason`], [`ownership`] and [`backoff`] are
//! the pure pieces it is made of; [`shell`] reads what a pass needs from the cluster, runs it,
//! and writes the outcome. May use [`crate::accounts`], [`crate::aws`], [`crate::resources`],
//! the error type and the metrics; nothing here knows about the CLI or the process wiring.

pub mod admission;
pub mod backoff;
pub mod objects;
pub mod outcome;
pub mod ownership;
pub mod reason;
pub mod settings;
pub mod shell;
pub mod status;
pub mod sync;
