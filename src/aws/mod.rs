//! The AWS side: the partner API as a trait ([`partner_api`]), its production implementation
//! over the SDK ([`eventbridge`]), the one `NextToken` loop every paged listing uses
//! (`paging`), the request budget per AWS account and region ([`budget`]) and the
//! identities calls are made as ([`identity`]). The classification of AWS errors lives with
//! the one error type in [`crate::error`]. May use [`crate::resources`], the error type and
//! the metrics; knows nothing of reconciling.

pub(crate) mod budget;
pub(crate) mod eventbridge;
pub(crate) mod identity;
pub(crate) mod paging;
pub(crate) mod partner_api;
