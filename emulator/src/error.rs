//! The error every layer of the emulator answers with: an AWS error code, its
//! message and HTTP status. How it is written on the wire is the protocol's
//! business (`wire` for EventBridge's JSON); which status a code gets is
//! decided here, once.

use crate::model::{InvalidInput, Model};

/// An AWS error answer: its code, message and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The error code, e.g. `ResourceNotFoundException`.
    pub code: String,
    /// The human-readable message.
    pub message: String,
    /// The HTTP status.
    pub status: u16,
}

impl ApiError {
    /// An error with the status AWS uses for this code.
    pub(crate) fn new(code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.to_owned(),
            message: message.into(),
            status: default_status(code),
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationException", message)
    }

    pub(crate) fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new("SerializationException", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new("ResourceNotFoundException", message)
    }

    pub(crate) fn already_exists(message: impl Into<String>) -> ApiError {
        ApiError::new("ResourceAlreadyExistsException", message)
    }

    pub(crate) fn invalid_state(message: impl Into<String>) -> ApiError {
        ApiError::new("InvalidStateException", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new("InternalException", message)
    }

    pub(crate) fn throttling() -> ApiError {
        ApiError::new("ThrottlingException", "Rate exceeded")
    }

    pub(crate) fn unknown_operation(message: impl Into<String>) -> ApiError {
        ApiError::new("UnknownOperationException", message)
    }
}

/// The HTTP status AWS answers with for an error code.
///
/// Server faults (the model's `"fault": true` shapes and the common
/// `InternalFailure`) are 500, `ServiceUnavailable` is 503, the common auth
/// errors documented as 403 (and STS's `AccessDenied` and `ExpiredToken`)
/// are 403, and every other client error of a JSON
/// protocol service — including `ThrottlingException` and
/// `AccessDeniedException` — is 400.
pub(crate) fn default_status(code: &str) -> u16 {
    match code {
        "InternalFailure" | "InternalServerError" => 500,
        "ServiceUnavailable" | "ServiceUnavailableException" => 503,
        "MissingAuthenticationTokenException"
        | "MissingAuthenticationToken"
        | "InvalidClientTokenId"
        | "OptInRequired"
        | "AccessDenied"
        | "ExpiredToken" => 403,
        c if Model::get().is_fault(c) => 500,
        _ => 400,
    }
}

/// The message the emulator sends with an injected error that came without one.
pub(crate) fn default_message(code: &str) -> String {
    match code {
        "ThrottlingException" => "Rate exceeded".to_owned(),
        "InternalException" | "InternalFailure" => {
            "An internal error occurred. Please try again.".to_owned()
        }
        "AccessDeniedException" => {
            "User is not authorized to perform this action on this resource".to_owned()
        }
        "OperationDisabledException" => {
            "The operation you are attempting is not available in this region.".to_owned()
        }
        "LimitExceededException" => {
            "The request failed because it attempted to create resource beyond the allowed service quota."
                .to_owned()
        }
        "ConcurrentModificationException" => {
            "There is concurrent modification on a resource. Please try again.".to_owned()
        }
        other => format!("Injected {other} (emulator fault injection)"),
    }
}

impl From<InvalidInput> for ApiError {
    fn from(invalid: InvalidInput) -> ApiError {
        ApiError::new(invalid.code, invalid.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_aws() {
        assert_eq!(default_status("InternalException"), 500);
        assert_eq!(default_status("ThrottlingException"), 400);
        assert_eq!(default_status("AccessDeniedException"), 400);
        assert_eq!(default_status("MissingAuthenticationTokenException"), 403);
        assert_eq!(default_status("ResourceAlreadyExistsException"), 400);
    }
}
