//! The operator's one error type, and the one place where every AWS failure is classified.
//!
//! The reconcile decision only ever looks at [`AwsErrorClass`]; which AWS error code lands in
//! which class is decided by [`classify`] alone, and its tests pin that mapping.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::operation::RequestId;

use crate::resources::conditions::Reason;

/// Everything that can go wrong in the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),

    /// A JSON patch could not be built from its operations.
    #[error("building a JSON patch: {0}")]
    Patch(#[from] serde_json::Error),

    /// The operator was started with settings it cannot work with.
    #[error("configuration: {0}")]
    Config(String),

    /// A start-up check found something a person must fix (a CRD or a permission missing);
    /// the message names each, with its fix.
    #[error("start-up checks failed: {0}")]
    Preflight(String),

    /// The controller's cache stopped before it synced.
    #[error("cache: {0}")]
    Cache(String),

    /// Another replica holds the leader Lease now; this one must stop reconciling.
    #[error("lost the leader lease")]
    LeaseLost,

    /// Leader election failed.
    #[error("leader election: {0}")]
    LeaderElection(#[from] kube_lease_manager::LeaseManagerError),

    /// Serving HTTP failed.
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
}

impl Error {
    /// Unwraps an error from kube-runtime's finalizer helper: the pass's own error as it was,
    /// or the helper's (adding the finalizer failed).
    pub fn from_finalizer(err: kube::runtime::finalizer::Error<Error>) -> Error {
        use kube::runtime::finalizer::Error as F;
        match err {
            F::ApplyFailed(inner) | F::CleanupFailed(inner) => inner,
            other => Error::Finalizer(other.to_string()),
        }
    }
}

/// How the operator must treat a failed AWS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsErrorClass {
    /// The partner event source already exists (`ResourceAlreadyExistsException`).
    AlreadyExists,
    /// The partner event source does not exist (`ResourceNotFoundException`).
    NotFound,
    /// Transient: try again with backoff (throttling, concurrent modification, quota,
    /// AWS-side faults, timeouts, broken connections).
    Retryable,
    /// Trying again will not help until a person acts.
    Terminal(TerminalCause),
}

/// Why an AWS error is terminal: each maps to a `Ready` condition reason a person can act on
/// (the `From` impl below).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalCause {
    /// The partner API is disabled for this account (`OperationDisabledException`).
    OperationDisabled,
    /// The credentials are valid but lack permission.
    AccessDenied,
    /// The credentials are missing, unknown, expired or do not sign correctly.
    InvalidCredentials,
    /// AWS rejected the request itself (validation).
    InvalidRequest,
    /// Any other error AWS does not expect to go away by itself.
    Other,
}

impl From<TerminalCause> for Reason {
    fn from(cause: TerminalCause) -> Self {
        match cause {
            TerminalCause::OperationDisabled => Reason::OperationDisabled,
            TerminalCause::AccessDenied => Reason::AccessDenied,
            TerminalCause::InvalidCredentials => Reason::InvalidCredentials,
            TerminalCause::InvalidRequest => Reason::InvalidRequest,
            TerminalCause::Other => Reason::Terminal,
        }
    }
}

/// A failed EventBridge call, reduced to what the operator reasons about and reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    /// How to treat it.
    pub class: AwsErrorClass,
    /// The AWS error code (`ThrottlingException`, ...) or, when AWS never answered, a
    /// description of the transport failure (`Timeout`, `ConnectionError`).
    pub code: String,
    /// AWS's message, or the transport error.
    pub message: String,
    /// AWS's request id, when AWS answered.
    pub request_id: Option<String>,
    /// AWS said the account is over its request rate ([`is_throttling`]): the budget slows
    /// down. Decided with the class, from the same code and HTTP status.
    pub throttling: bool,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl StdError for AwsError {}

/// Error codes that mean "try again later". `LimitExceededException` is here because the
/// design asks for it to be retried: a quota raise or a deleted source frees room without any
/// change to the object.
const RETRYABLE_CODES: &[&str] = &[
    "ConcurrentModificationException",
    "LimitExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "InternalException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "RequestExpired",
    "RequestTimeTooSkewed",
];

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "NotAuthorized",
];

const INVALID_CREDENTIALS_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
];

const INVALID_REQUEST_CODES: &[&str] = &[
    "ValidationException",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "MissingParameter",
    "SerializationException",
];

/// Error codes with which AWS says the caller exceeds its request rate (as opposed to a quota
/// on resources, such as `LimitExceededException`). Each is also in [`RETRYABLE_CODES`].
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "EC2ThrottledException",
];

/// Whether an AWS error says the caller is over its request rate: a throttling code, or an
/// unknown code with HTTP 429. The budget's AIMD slows down on exactly these.
pub fn is_throttling(code: &str, http_status: Option<u16>) -> bool {
    THROTTLING_CODES.contains(&code)
        || (http_status == Some(429) && classify(code, http_status) == AwsErrorClass::Retryable)
}

/// Classifies an AWS error by its code and, for codes the operator does not know, by the HTTP
/// status: 5xx and 429 are transient, everything else needs a person.
pub fn classify(code: &str, http_status: Option<u16>) -> AwsErrorClass {
    match code {
        "ResourceAlreadyExistsException" => AwsErrorClass::AlreadyExists,
        "ResourceNotFoundException" => AwsErrorClass::NotFound,
        "OperationDisabledException" => AwsErrorClass::Terminal(TerminalCause::OperationDisabled),
        c if RETRYABLE_CODES.contains(&c) => AwsErrorClass::Retryable,
        c if ACCESS_DENIED_CODES.contains(&c) => {
            AwsErrorClass::Terminal(TerminalCause::AccessDenied)
        }
        c if INVALID_CREDENTIALS_CODES.contains(&c) => {
            AwsErrorClass::Terminal(TerminalCause::InvalidCredentials)
        }
        c if INVALID_REQUEST_CODES.contains(&c) => {
            AwsErrorClass::Terminal(TerminalCause::InvalidRequest)
        }
        _ => match http_status {
            Some(s) if s >= 500 || s == 429 => AwsErrorClass::Retryable,
            _ => AwsErrorClass::Terminal(TerminalCause::Other),
        },
    }
}

/// Whether any error in the chain is the credential provider failing to produce credentials.
fn is_credentials_error(err: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Renders an error with its sources, which is where the SDK keeps the useful part.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        out.push_str(": ");
        out.push_str(&e.to_string());
        current = e.source();
    }
    out
}

impl AwsError {
    /// Reduces an SDK error to an [`AwsError`], classifying it with [`classify`].
    pub fn from_sdk<E>(err: SdkError<E, aws_sdk_eventbridge::config::http::HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let request_id = err.request_id().map(str::to_owned);
        let mut throttling = false;
        let (class, code, message) = match &err {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                // A blank `x-amzn-errortype` header wins over the body's `__type` in the SDK
                // and leaves an empty code, which names nothing: read it as no code at all.
                let code = ctx
                    .err()
                    .code()
                    .filter(|c| !c.is_empty())
                    .unwrap_or("UnknownError")
                    .to_owned();
                let message = ctx.err().message().unwrap_or_default().to_owned();
                throttling = is_throttling(&code, Some(status));
                (classify(&code, Some(status)), code, message)
            }
            SdkError::TimeoutError(_) => (AwsErrorClass::Retryable, "Timeout".into(), chain(&err)),
            SdkError::DispatchFailure(failure) => {
                let (class, code) = dispatch_failure(&err, failure.is_timeout(), failure.is_user());
                (class, code.into(), chain(&err))
            }
            SdkError::ResponseError(ctx) => {
                // AWS answered something the SDK could not parse: a proxy error page or a
                // truncated body. Judge it by the status code like an unknown error code.
                let status = ctx.raw().status().as_u16();
                throttling = is_throttling("", Some(status));
                (
                    classify("", Some(status)),
                    format!("HTTP{status}"),
                    chain(&err),
                )
            }
            _ if is_credentials_error(&err) => (
                AwsErrorClass::Terminal(TerminalCause::InvalidCredentials),
                "CredentialsError".into(),
                chain(&err),
            ),
            _ => (
                AwsErrorClass::Terminal(TerminalCause::InvalidRequest),
                "ConstructionFailure".into(),
                chain(&err),
            ),
        };
        AwsError {
            class,
            code,
            message,
            request_id,
            throttling,
        }
    }
}

/// A request that never got an answer: no credentials, a timeout, a request the SDK refused
/// to send, or a broken connection.
fn dispatch_failure(
    err: &(dyn StdError + 'static),
    timeout: bool,
    user: bool,
) -> (AwsErrorClass, &'static str) {
    if is_credentials_error(err) {
        (
            AwsErrorClass::Terminal(TerminalCause::InvalidCredentials),
            "CredentialsError",
        )
    } else if timeout {
        (AwsErrorClass::Retryable, "Timeout")
    } else if user {
        (
            AwsErrorClass::Terminal(TerminalCause::InvalidRequest),
            "DispatchFailure",
        )
    } else {
        (AwsErrorClass::Retryable, "ConnectionError")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_causes_map_to_the_reasons_a_person_acts_on() {
        let cases = [
            (TerminalCause::OperationDisabled, "OperationDisabled"),
            (TerminalCause::AccessDenied, "AccessDenied"),
            (TerminalCause::InvalidCredentials, "InvalidCredentials"),
            (TerminalCause::InvalidRequest, "InvalidRequest"),
            (TerminalCause::Other, "Terminal"),
        ];
        for (cause, reason) in cases {
            assert_eq!(Reason::from(cause).as_str(), reason);
        }
    }

    use super::*;

    #[test]
    fn already_exists_and_not_found_are_their_own_classes() {
        assert_eq!(
            classify("ResourceAlreadyExistsException", Some(400)),
            AwsErrorClass::AlreadyExists
        );
        assert_eq!(
            classify("ResourceNotFoundException", Some(400)),
            AwsErrorClass::NotFound
        );
    }

    #[test]
    fn transient_codes_are_retryable() {
        for code in [
            "ConcurrentModificationException",
            "LimitExceededException",
            "ThrottlingException",
            "InternalException",
            "ServiceUnavailableException",
        ] {
            assert_eq!(
                classify(code, Some(400)),
                AwsErrorClass::Retryable,
                "{code}"
            );
        }
    }

    #[test]
    fn terminal_codes_name_their_cause() {
        let cases = [
            (
                "OperationDisabledException",
                TerminalCause::OperationDisabled,
            ),
            ("AccessDeniedException", TerminalCause::AccessDenied),
            (
                "UnrecognizedClientException",
                TerminalCause::InvalidCredentials,
            ),
            (
                "InvalidSignatureException",
                TerminalCause::InvalidCredentials,
            ),
            ("ExpiredTokenException", TerminalCause::InvalidCredentials),
            ("ValidationException", TerminalCause::InvalidRequest),
        ];
        for (code, cause) in cases {
            assert_eq!(
                classify(code, Some(400)),
                AwsErrorClass::Terminal(cause),
                "{code}"
            );
        }
    }

    #[test]
    fn unknown_codes_are_judged_by_http_status() {
        assert_eq!(
            classify("SomethingNew", Some(503)),
            AwsErrorClass::Retryable
        );
        assert_eq!(
            classify("SomethingNew", Some(429)),
            AwsErrorClass::Retryable
        );
        assert_eq!(
            classify("SomethingNew", Some(400)),
            AwsErrorClass::Terminal(TerminalCause::Other)
        );
        assert_eq!(
            classify("SomethingNew", None),
            AwsErrorClass::Terminal(TerminalCause::Other)
        );
    }

    #[test]
    fn every_throttling_code_is_retryable_and_throttling() {
        for code in THROTTLING_CODES {
            assert_eq!(
                classify(code, Some(400)),
                AwsErrorClass::Retryable,
                "{code}"
            );
            assert!(is_throttling(code, Some(400)), "{code}");
        }
        assert!(is_throttling("SomethingNew", Some(429)));
        for (code, status) in [
            ("LimitExceededException", 400),
            ("ConcurrentModificationException", 400),
            ("InternalException", 500),
            ("SomethingNew", 503),
            ("AccessDeniedException", 429),
        ] {
            assert!(!is_throttling(code, Some(status)), "{code} {status}");
        }
    }

    #[test]
    fn display_carries_code_message_and_request_id() {
        let e = AwsError {
            class: AwsErrorClass::Retryable,
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
            request_id: Some("req-1".into()),
            throttling: true,
        };
        assert_eq!(
            e.to_string(),
            "ThrottlingException: Rate exceeded (request id req-1)"
        );
    }
}
