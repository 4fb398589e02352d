//! The reconcile core: one pass over a PartnerEventSource. [`sync`] runs the steps against the
//! partner API as straight-line code; [`status`], [`ownership`] and [`backoff`] are
//! the pure pieces it is made of; [`shell`] reads what a pass needs from the cluster, runs it,
//! and writes the outcome. May use [`crate::accounts`], [`crate::aws`], [`crate::resources`],
//! the error type and the metrics; nothing here knows about the CLI or the process wiring.

pub(crate) mod admission;
pub(crate) mod backoff;
pub(crate) mod objects;
pub(crate) mod outcome;
pub(crate) mod ownership;
pub(crate) mod settings;
pub mod shell;
pub(crate) mod status;
pub(crate) mod sync;
