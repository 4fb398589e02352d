//! The resources the operator defines, and what every other module names them by: the two
//! custom resources with their validation, and the constants shared across the operator (the
//! finalizer, the field manager, the annotations), and the vocabulary of their conditions and
//! Events ([`conditions`]). Depends on nothing else in the crate.

pub mod conditions;
mod partner_account;
mod partner_event_source;

pub use partner_account::*;
pub use partner_event_source::*;

/// The finalizer that keeps an object until its source is dealt with in AWS.
pub const FINALIZER: &str = "eventbridgepartner.dev/finalizer";
/// Field manager of the status the operator writes.
pub const FIELD_MANAGER: &str = "eventbridge-partner-operator";
