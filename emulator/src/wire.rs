//! The AWS JSON 1.1 wire protocol: operation dispatch by `X-Amz-Target`,
//! request bodies, and the answers' body and headers (errors in AWS's
//! `{"__type", "message"}` shape).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::error::ApiError;
use crate::model::Model;

/// The JSON protocol's content type, sent and expected.
pub(crate) const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The target prefix of the EventBridge service (`AWSEvents.<Operation>`).
pub(crate) const TARGET_PREFIX: &str = "AWSEvents.";

/// Finds the operation named by `X-Amz-Target`.
pub(crate) fn operation_from_target(headers: &HeaderMap) -> Result<String, ApiError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match target.strip_prefix(TARGET_PREFIX) {
        Some(op) if Model::get().has_operation(op) => Ok(op.to_owned()),
        _ if target.is_empty() => Err(ApiError::unknown_operation(
            "Missing required header: X-Amz-Target",
        )),
        _ => Err(ApiError::unknown_operation(format!(
            "Unknown operation: {target}"
        ))),
    }
}

/// Whether the request declares the JSON protocol's content type.
///
/// The service picks its protocol from the content type, so a request
/// without it cannot be dispatched to an operation at all.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = declared.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(CONTENT_TYPE)
        || media.eq_ignore_ascii_case("application/x-amz-json-1.0")
    {
        Ok(())
    } else {
        Err(ApiError::unknown_operation(format!(
            "Unsupported Content-Type {declared:?}; the EventBridge API expects {CONTENT_TYPE}"
        )))
    }
}

/// Reads a request body as a JSON object (an empty body is `{}`).
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("Unable to parse request body: {e}")))
}

/// Makes unique `x-amzn-RequestId` values in the UUID layout AWS uses.
#[derive(Debug)]
pub(crate) struct RequestIds {
    counter: AtomicU64,
    keys: std::hash::RandomState,
}

impl RequestIds {
    pub(crate) fn new() -> RequestIds {
        RequestIds {
            counter: AtomicU64::new(0),
            keys: std::hash::RandomState::new(),
        }
    }

    /// The next id: random-looking, and unique because the counter is part of it.
    pub(crate) fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let a = self.keys.hash_one(n);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((n >> 48) & 0x3fff),
            n & 0xffff_ffff_ffff
        )
    }
}

/// A successful answer: the output as JSON, or an empty body for operations without output.
pub(crate) fn ok_response(output: Option<Value>, request_id: &str) -> Response {
    let body = output.map(|v| v.to_string()).unwrap_or_default();
    build(StatusCode::OK, body, request_id, None)
}

/// An error answer in the JSON 1.1 error shape.
pub(crate) fn error_response(err: &ApiError, request_id: &str) -> Response {
    let body = serde_json::json!({"__type": err.code, "message": err.message}).to_string();
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    build(status, body, request_id, Some(&err.code))
}

fn build(status: StatusCode, body: String, request_id: &str, error: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(code) = error.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_uuid_shaped() {
        let ids = RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn target_dispatch() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            operation_from_target(&headers).expect_err("missing").code,
            "UnknownOperationException"
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("AWSEvents.PutRuleX"),
        );
        assert!(operation_from_target(&headers).is_err());
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("AWSEvents.CreatePartnerEventSource"),
        );
        assert_eq!(
            operation_from_target(&headers).expect("known"),
            "CreatePartnerEventSource"
        );
    }
}
