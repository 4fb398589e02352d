//! The STS side of the emulator on the same listener: `AssumeRole` and
//! `GetCallerIdentity` in the AWS query protocol (a form-encoded `POST /` with
//! `Action` and `Version`, XML answers in STS's response shapes, XML
//! `ErrorResponse` for errors).
//!
//! This module is the protocol only: it reads the form, runs the action on
//! [`Identities`] and writes XML. Authentication, faults and call counting
//! happen in `server`, as for EventBridge.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::error::ApiError;
use crate::identity::{AssumeRoleRequest, Identities, Principal};

/// The STS operations the emulator serves.
pub(crate) const OPERATIONS: [&str; 2] = ["AssumeRole", "GetCallerIdentity"];
/// The API version every STS request names.
const VERSION: &str = "2011-06-15";
/// The XML namespace of STS answers.
const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The query protocol's request content type.
const FORM: &str = "application/x-www-form-urlencoded";

/// Whether a request is meant for STS: no `X-Amz-Target` (every EventBridge
/// request has one) and a form-encoded body or a SigV4 scope for `sts`.
pub(crate) fn is_sts_request(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-amz-target") {
        return false;
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(FORM));
    form || crate::sigv4::scope_service(headers).as_deref() == Some("sts")
}

/// A parsed query-protocol request body.
#[derive(Debug, Clone, Default)]
pub(crate) struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Form {
        Form {
            params: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The operation the form names, or the error STS answers without one.
    pub(crate) fn action(&self) -> Result<&'static str, ApiError> {
        let Some(action) = self.get("Action") else {
            return Err(ApiError::new("MissingAction", "Missing Action"));
        };
        let version = self.get("Version").unwrap_or(VERSION);
        OPERATIONS
            .into_iter()
            .find(|op| *op == action && version == VERSION)
            .ok_or_else(|| {
                ApiError::new(
                    "InvalidAction",
                    format!("Could not find operation {action} for version {version}"),
                )
            })
    }
}

/// Runs an authenticated STS action for `caller`; the answer's XML result element.
pub(crate) fn handle(
    action: &str,
    form: &Form,
    caller: &Principal,
    identities: &mut Identities,
    now: SystemTime,
) -> Result<String, ApiError> {
    match action {
        "GetCallerIdentity" => Ok(format!(
            "<GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult>",
            xml(&caller.arn),
            xml(&caller.user_id),
            xml(&caller.account)
        )),
        "AssumeRole" => {
            let request = assume_role_request(form)?;
            let issued = identities.assume_role(caller, &request, now)?;
            Ok(format!(
                "<AssumeRoleResult><AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>\
                 <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
                 <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials></AssumeRoleResult>",
                xml(&issued.assumed_role_id),
                xml(&issued.arn),
                xml(&issued.access_key_id),
                xml(&issued.secret_access_key),
                xml(&issued.session_token),
                iso8601(issued.expiration)
            ))
        }
        other => Err(ApiError::new(
            "InvalidAction",
            format!("Could not find operation {other} for version {VERSION}"),
        )),
    }
}

/// `AssumeRole`'s parameters; the missing required ones answer AWS's
/// "must not be null" validation error.
fn assume_role_request(form: &Form) -> Result<AssumeRoleRequest<'_>, ApiError> {
    let mut missing = Vec::new();
    for (param, member) in [
        ("RoleArn", "roleArn"),
        ("RoleSessionName", "roleSessionName"),
    ] {
        if form.get(param).is_none() {
            missing.push(format!(
                "Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ));
        }
    }
    if !missing.is_empty() {
        let n = missing.len();
        let errors = if n == 1 { "error" } else { "errors" };
        return Err(ApiError::new(
            "ValidationError",
            format!("{n} validation {errors} detected: {}", missing.join("; ")),
        ));
    }
    let duration = form
        .get("DurationSeconds")
        .map(|v| {
            v.parse::<u64>().map(Duration::from_secs).map_err(|_| {
                ApiError::new(
                    "ValidationError",
                    format!("Value '{v}' for parameter DurationSeconds is invalid."),
                )
            })
        })
        .transpose()?;
    Ok(AssumeRoleRequest {
        role_arn: form.get("RoleArn").unwrap_or_default(),
        session_name: form.get("RoleSessionName").unwrap_or_default(),
        external_id: form.get("ExternalId"),
        duration,
    })
}

/// A successful answer: `<{Action}Response>` around the result and the request id.
pub(crate) fn ok_response(action: &str, result: &str, request_id: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{NAMESPACE}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>\n",
        xml(request_id)
    );
    build(StatusCode::OK, body, request_id)
}

/// An error answer in the query protocol's `ErrorResponse` shape.
pub(crate) fn error_response(err: &ApiError, request_id: &str) -> Response {
    let kind = if err.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>\n",
        xml(&err.code),
        xml(&err.message),
        xml(request_id)
    );
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    build(status, body, request_id)
}

/// The query protocol's name for an authentication error the EventBridge
/// side names with an `Exception` suffix (`MissingAuthenticationToken`, ...).
pub(crate) fn query_error(mut err: ApiError) -> ApiError {
    if err.code == "UnrecognizedClientException" {
        err.code = "InvalidClientTokenId".to_owned();
        err.status = 403;
    } else if let Some(code) = err.code.strip_suffix("Exception") {
        err.code = code.to_owned();
    }
    err
}

fn build(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// A time as STS writes it: `2024-01-02T03:04:05Z`.
fn iso8601(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Escapes text for an XML element.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_versions() {
        assert_eq!(
            Form::parse(b"Action=GetCallerIdentity&Version=2011-06-15").action(),
            Ok("GetCallerIdentity")
        );
        assert_eq!(
            Form::parse(b"Action=AssumeRoot&Version=2011-06-15")
                .action()
                .expect_err("not emulated")
                .code,
            "InvalidAction"
        );
        assert_eq!(
            Form::parse(b"Version=2011-06-15")
                .action()
                .expect_err("no action")
                .code,
            "MissingAction"
        );
    }

    #[test]
    fn missing_parameters_are_validation_errors() {
        let form = Form::parse(b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=s");
        let err = assume_role_request(&form).expect_err("no role");
        assert_eq!(err.code, "ValidationError");
        assert_eq!(
            err.message,
            "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
        );
        let form = Form::parse(
            b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A444444444444%3Arole%2Fr&RoleSessionName=s&DurationSeconds=900",
        );
        let request = assume_role_request(&form).expect("complete");
        assert_eq!(request.role_arn, "arn:aws:iam::444444444444:role/r");
        assert_eq!(request.duration, Some(Duration::from_secs(900)));
    }

    #[test]
    fn errors_are_query_protocol_xml() {
        assert_eq!(xml("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
        assert_eq!(
            query_error(ApiError::new("MissingAuthenticationTokenException", "m")).code,
            "MissingAuthenticationToken"
        );
        assert_eq!(
            iso8601(std::time::UNIX_EPOCH + Duration::from_secs(86_400)),
            "1970-01-02T00:00:00Z"
        );
    }
}
