//! The HTTP edge: the router and the pipeline every AWS request (EventBridge
//! or STS) goes through.
//!
//! Order of checks, as AWS applies them: protocol and operation, then
//! authentication, then throttling and injected faults, then input
//! validation, then the operation itself. Latency is added after the
//! operation took effect, so a client that gives up early still leaves the
//! change behind, exactly the case a retrying client must cope with.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use crate::admin;
use crate::error::ApiError;
use crate::faults::{Admission, OUTCOME_OK};
use crate::identity::CredentialError;
use crate::model::Model;
use crate::shared::Shared;
use crate::sigv4;
use crate::store::{Caller, Request};
use crate::sts;
use crate::wire;

/// AWS's message for temporary credentials past their expiration.
const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
/// AWS's message for temporary credentials without their session token.
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// The router: the admin API under `/_emulator/`, the AWS API everywhere else.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .nest("/_emulator", admin::router())
        .fallback(aws_request)
        .with_state(shared)
}

async fn aws_request(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = shared.request_ids.next();
    if method != Method::POST || uri.path() != "/" {
        let err = ApiError {
            status: 404,
            ..ApiError::unknown_operation(format!("No operation at {method} {}", uri.path()))
        };
        return wire::error_response(&err, &request_id);
    }
    if sts::is_sts_request(&headers) {
        return sts_request(&shared, &headers, &body, &request_id).await;
    }
    let operation = match wire::operation_from_target(&headers) {
        Ok(op) => op,
        Err(err) => {
            tracing::info!(%request_id, code = %err.code, "rejected request without a known operation");
            return wire::error_response(&err, &request_id);
        }
    };

    // Random faults: a call may be held before the service sees it (and never served), fail,
    // or be held after it took effect.
    let weather = shared.faults().weather(&operation);
    if !weather.before.is_zero() {
        tokio::time::sleep(weather.before).await;
    }
    let (result, account, region) = serve(&shared, &operation, &headers, &body, weather.error);
    let outcome = match &result {
        Ok(_) => OUTCOME_OK,
        Err(e) => e.code.as_str(),
    };
    shared.calls().record(&operation, outcome);
    shared.changed();
    tracing::info!(%request_id, %operation, %account, %region, %outcome, "served");

    let latency = shared.faults().latency(&operation) + weather.after;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match result {
        Ok(output) => wire::ok_response(output, &request_id),
        Err(err) => wire::error_response(&err, &request_id),
    }
}

/// Serves an STS request: action, SigV4 (scoped to `sts`), credentials,
/// faults, then the action; latency after it, as for EventBridge.
async fn sts_request(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Response {
    let form = sts::Form::parse(body);
    let action = match form.action() {
        Ok(action) => action,
        Err(err) => {
            tracing::info!(%request_id, code = %err.code, "rejected STS request without a known action");
            return sts::error_response(&err, request_id);
        }
    };
    let now = SystemTime::now();
    let result = (|| {
        let credential = sigv4::authenticate(headers, now, "sts").map_err(sts::query_error)?;
        let caller = shared
            .principal(&credential.access_key_id, headers, now)
            .map_err(|e| match e {
                CredentialError::Expired => ApiError::new("ExpiredToken", EXPIRED_TOKEN),
                CredentialError::InvalidToken => {
                    ApiError::new("InvalidClientTokenId", INVALID_TOKEN)
                }
            })?;
        if let Admission::Fail(err) = shared.faults().admit(action, Instant::now()) {
            return Err(err);
        }
        sts::handle(action, &form, &caller, &mut shared.identities(), now)
            .map(|result| (result, caller.account))
    })();
    let outcome = match &result {
        Ok(_) => OUTCOME_OK,
        Err(e) => e.code.as_str(),
    };
    shared.calls().record(action, outcome);
    shared.changed();
    let account = result.as_ref().map_or("", |(_, account)| account.as_str());
    tracing::info!(%request_id, operation = %action, %account, %outcome, "served");

    let latency = shared.faults().latency(action);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match result {
        Ok((xml, _)) => sts::ok_response(action, &xml, request_id),
        Err(err) => sts::error_response(&err, request_id),
    }
}

/// Runs one request to its result; also returns the caller's account and region for the log.
/// An `injected` error answers an authenticated call in place of the service.
pub(crate) fn serve(
    shared: &Shared,
    operation: &str,
    headers: &HeaderMap,
    body: &[u8],
    injected: Option<ApiError>,
) -> (Result<Option<serde_json::Value>, ApiError>, String, String) {
    let now = SystemTime::now();
    if let Err(err) = wire::check_content_type(headers) {
        return (Err(err), String::new(), String::new());
    }
    let credential = match sigv4::authenticate(headers, now, "events") {
        Ok(c) => c,
        Err(err) => return (Err(err), String::new(), String::new()),
    };
    let region = credential.region;
    let account = match shared.principal(&credential.access_key_id, headers, now) {
        Ok(principal) => principal.account,
        Err(CredentialError::Expired) => {
            let err = ApiError::new("ExpiredTokenException", EXPIRED_TOKEN);
            return (Err(err), String::new(), region);
        }
        Err(CredentialError::InvalidToken) => {
            let err = ApiError::new("UnrecognizedClientException", INVALID_TOKEN);
            return (Err(err), String::new(), region);
        }
    };

    let result = (|| {
        if let Admission::Fail(err) = shared.faults().admit(operation, Instant::now()) {
            return Err(err);
        }
        if let Some(err) = injected {
            return Err(err);
        }
        let input = wire::parse_body(body)?;
        Model::get().validate_input(operation, &input)?;
        let request = Request::parse(operation, &input)?;
        let caller = Caller {
            region: &region,
            account: &account,
            now,
            expirations: shared.expirations(),
        };
        shared.store().handle(&caller, request)
    })();
    (result, account, region)
}
