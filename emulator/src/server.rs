//! The HTTP edge: the router and the pipeline every AWS request goes through.
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
use crate::model::Model;
use crate::shared::Shared;
use crate::sigv4;
use crate::store::Caller;
use crate::wire;

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
    let operation = match wire::operation_from_target(&headers) {
        Ok(op) => op,
        Err(err) => {
            tracing::info!(%request_id, code = %err.code, "rejected request without a known operation");
            return wire::error_response(&err, &request_id);
        }
    };

    let (result, account, region) = serve(&shared, &operation, &headers, &body);
    let outcome = match &result {
        Ok(_) => OUTCOME_OK,
        Err(e) => e.code.as_str(),
    };
    shared.calls().record(&operation, outcome);
    shared.changed();
    tracing::info!(%request_id, %operation, %account, %region, %outcome, "served");

    let latency = shared.faults().latency(&operation);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match result {
        Ok(output) => wire::ok_response(output, &request_id),
        Err(err) => wire::error_response(&err, &request_id),
    }
}

/// Runs one request to its result; also returns the caller's account and region for the log.
fn serve(
    shared: &Shared,
    operation: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Result<Option<serde_json::Value>, ApiError>, String, String) {
    let now = SystemTime::now();
    if let Err(err) = wire::check_content_type(headers) {
        return (Err(err), String::new(), String::new());
    }
    let credential = match sigv4::authenticate(headers, now) {
        Ok(c) => c,
        Err(err) => return (Err(err), String::new(), String::new()),
    };
    let account = caller_account(&credential.access_key_id, &shared.config.partner_account);
    let region = credential.region;

    let result = (|| {
        if let Admission::Fail(err) = shared.faults().admit(operation, Instant::now()) {
            return Err(err);
        }
        let input = wire::parse_body(body)?;
        Model::get().validate_input(operation, &input)?;
        let caller = Caller {
            region: &region,
            account: &account,
            now,
            expirations: shared.expirations(),
        };
        shared.store().handle(operation, &caller, &input)
    })();
    (result, account, region)
}

/// The calling account: the access key id when it is an account id (12
/// digits), so tests can act as any customer; otherwise the partner.
fn caller_account(access_key_id: &str, partner_account: &str) -> String {
    if access_key_id.len() == 12 && access_key_id.bytes().all(|b| b.is_ascii_digit()) {
        access_key_id.to_owned()
    } else {
        partner_account.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_is_the_key_when_it_is_an_account_id() {
        assert_eq!(
            caller_account("222222222222", "111111111111"),
            "222222222222"
        );
        assert_eq!(
            caller_account("AKIDEXAMPLE", "111111111111"),
            "111111111111"
        );
        assert_eq!(
            caller_account("2222222222222", "111111111111"),
            "111111111111"
        );
    }
}
