//! SigV4 `Authorization` header checks.
//!
//! The emulator holds no secrets, so it accepts any signature; it still
//! insists on a well-formed SigV4 header scoped to the service being called
//! (`events`, or `sts` for the STS side) and
//! a request date within AWS's 15-minute window, answering with the errors
//! AWS gives when those are wrong. The access key id and region of the
//! credential scope are what the rest of the emulator uses.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, header};

use crate::error::ApiError;

/// The signing algorithm AWS SigV4 header authentication uses.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's date may be from the server clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// What a request's credential scope says about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credential {
    /// The access key id (`Credential=<AKID>/...`).
    pub access_key_id: String,
    /// The region the request was signed for.
    pub region: String,
}

/// The service of the request's credential scope, if it has a readable one.
pub(crate) fn scope_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth
        .split([' ', ','])
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    credential.split('/').nth(3).map(str::to_owned)
}

/// Checks the request's SigV4 header, which must be scoped to `service`, and
/// returns its credential scope.
///
/// The checks run in the order AWS applies them, so a request with several
/// faults gets the error AWS would give: the header itself, its parameters
/// (and the presence of a date), the credential scope, the signed headers,
/// then the date.
pub(crate) fn authenticate(
    headers: &HeaderMap,
    now: SystemTime,
    service: &str,
) -> Result<Credential, ApiError> {
    let auth = authorization(headers)?;
    let date = headers.get("x-amz-date").and_then(|v| v.to_str().ok());
    let params = Params::parse(auth, date.is_some() || headers.contains_key(header::DATE))?;
    let scope = CredentialScope::parse(params.credential)?;
    scope.check(service)?;
    check_signed_headers(params.signed_headers)?;
    if let Some(date) = date {
        check_date(date, scope.date, now)?;
    }
    Ok(Credential {
        access_key_id: scope.access_key_id.to_owned(),
        region: scope.region.to_owned(),
    })
}

/// The `Authorization` header, which must be there and be ASCII.
fn authorization(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    auth.to_str().map_err(|_| {
        ApiError::new(
            "IncompleteSignatureException",
            "Authorization header is not valid ASCII",
        )
    })
}

/// The parameters of an `Authorization` header the emulator reads.
struct Params<'a> {
    /// `Credential=<AKID>/<date>/<region>/<service>/aws4_request`.
    credential: &'a str,
    /// `SignedHeaders=host;x-amz-date;...`.
    signed_headers: &'a str,
}

impl<'a> Params<'a> {
    /// Reads the header `auth`: the SigV4 algorithm with `Credential`,
    /// `SignedHeaders` and a `Signature` (any signature), on a request that is
    /// `dated` (has an `X-Amz-Date` or `Date` header). Every missing part is
    /// named in one message, as AWS does.
    fn parse(auth: &'a str, dated: bool) -> Result<Params<'a>, ApiError> {
        let (algorithm, params) = auth.trim().split_once(' ').unwrap_or((auth.trim(), ""));
        if algorithm != ALGORITHM {
            return Err(ApiError::new(
                "IncompleteSignatureException",
                format!("Unsupported Authorization Type: '{algorithm}'. Authorization={auth}"),
            ));
        }
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in params.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v.trim()),
                Some(("SignedHeaders", v)) => signed_headers = Some(v.trim()),
                Some(("Signature", v)) => signature = Some(v.trim()),
                _ => {}
            }
        }
        let mut missing = String::new();
        for (name, value) in [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ] {
            if value.is_none_or(str::is_empty) {
                missing.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        if !dated {
            missing.push_str(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
            );
        }
        if !missing.is_empty() {
            return Err(ApiError::new(
                "IncompleteSignatureException",
                format!("{missing}Authorization={auth}"),
            ));
        }
        Ok(Params {
            credential: credential.unwrap_or(""),
            signed_headers: signed_headers.unwrap_or(""),
        })
    }
}

/// The five parts of a `Credential`.
struct CredentialScope<'a> {
    access_key_id: &'a str,
    /// `YYYYMMDD`.
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
}

impl<'a> CredentialScope<'a> {
    /// Splits `keyid/date/region/service/term`.
    fn parse(credential: &'a str) -> Result<CredentialScope<'a>, ApiError> {
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminator] = scope[..] else {
            return Err(ApiError::new(
                "IncompleteSignatureException",
                format!(
                    "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
                ),
            ));
        };
        Ok(CredentialScope {
            access_key_id,
            date,
            region,
            service,
            terminator,
        })
    }

    /// A scope with a key id, for `service`, with AWS's terminator and a region.
    fn check(&self, service: &str) -> Result<(), ApiError> {
        if self.access_key_id.is_empty() {
            return Err(ApiError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        if self.service != service {
            return Err(ApiError::new(
                "InvalidSignatureException",
                format!("Credential should be scoped to correct service: '{service}'. "),
            ));
        }
        if self.terminator != "aws4_request" {
            return Err(ApiError::new(
                "InvalidSignatureException",
                format!(
                    "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
                    self.terminator
                ),
            ));
        }
        if self.region.is_empty() {
            return Err(ApiError::new(
                "InvalidSignatureException",
                "Credential should be scoped to a valid region. ",
            ));
        }
        Ok(())
    }
}

/// The host must be signed (as `host`, or `:authority` over HTTP/2).
fn check_signed_headers(signed_headers: &str) -> Result<(), ApiError> {
    if signed_headers
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("host") || h == ":authority")
    {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ))
    }
}

/// An `X-Amz-Date` in ISO 8601 basic format, on the day of the credential
/// scope, within the allowed skew of `now`.
fn check_date(date: &str, scope_date: &str, now: SystemTime) -> Result<(), ApiError> {
    let Some(signed_at) = parse_amz_date(date) else {
        return Err(ApiError::new(
            "IncompleteSignatureException",
            format!(
                "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ),
        ));
    };
    if !date.starts_with(scope_date) || scope_date.len() != 8 {
        return Err(ApiError::new(
            "InvalidSignatureException",
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}', from '{date}'.",
                // A parsed date is 16 ASCII characters: the slice is in bounds.
                &date[..8]
            ),
        ));
    }
    check_skew(date, signed_at, now)
}

/// Rejects a request dated more than 15 minutes from `now`, with AWS's wording.
fn check_skew(date: &str, signed_at: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    if signed_at + MAX_SKEW < now {
        return Err(ApiError::new(
            "InvalidSignatureException",
            format!(
                "Signature expired: {date} is now earlier than {} ({} - 15 min.)",
                format_amz_date(now - MAX_SKEW),
                format_amz_date(now)
            ),
        ));
    }
    if signed_at > now + MAX_SKEW {
        return Err(ApiError::new(
            "InvalidSignatureException",
            format!(
                "Signature not yet current: {date} is still later than {} ({} + 15 min.)",
                format_amz_date(now + MAX_SKEW),
                format_amz_date(now)
            ),
        ));
    }
    Ok(())
}

/// The layout of `X-Amz-Date` and of dates in AWS's signature messages.
const AMZ_DATE: &str = "%Y%m%dT%H%M%SZ";

/// Parses `YYYYMMDDTHHMMSSZ` (ISO 8601 basic format, UTC).
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    // strptime takes numbers of fewer digits too; the header's layout is fixed.
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !digits(0..8) || !digits(9..15) {
        return None;
    }
    let civil = jiff::civil::DateTime::strptime(AMZ_DATE, s).ok()?;
    let at = jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()?;
    Some(SystemTime::from(at))
}

/// Formats a time as `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(t: SystemTime) -> String {
    // Times outside jiff's range (years beyond ±9999) never come from a clock.
    jiff::Timestamp::try_from(t)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime(AMZ_DATE)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: Option<&str>, date: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(a).expect("ascii"),
            );
        }
        if let Some(d) = date {
            h.insert("x-amz-date", HeaderValue::from_str(d).expect("ascii"));
        }
        h
    }

    fn at(date: &str) -> SystemTime {
        parse_amz_date(date).expect("valid date")
    }

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=123456789012/20240102/eu-west-1/events/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=abcdef";

    #[test]
    fn accepts_any_signature_and_reads_the_scope() {
        let cred = authenticate(
            &headers(Some(GOOD), Some("20240102T030405Z")),
            at("20240102T030405Z"),
            "events",
        )
        .expect("valid");
        assert_eq!(cred.access_key_id, "123456789012");
        assert_eq!(cred.region, "eu-west-1");
    }

    #[test]
    fn missing_header_is_missing_token() {
        let err =
            authenticate(&headers(None, None), SystemTime::now(), "events").expect_err("missing");
        assert_eq!(err.code, "MissingAuthenticationTokenException");
        assert_eq!(err.status, 403);
    }

    #[test]
    fn incomplete_header_names_what_is_missing() {
        let err = authenticate(
            &headers(
                Some("AWS4-HMAC-SHA256 Credential=a/20240102/eu-west-1/events/aws4_request"),
                Some("20240102T030405Z"),
            ),
            at("20240102T030405Z"),
            "events",
        )
        .expect_err("incomplete");
        assert_eq!(err.code, "IncompleteSignatureException");
        assert_eq!(err.status, 400);
        assert!(err.message.contains("requires 'Signature' parameter"));
        assert!(err.message.contains("requires 'SignedHeaders' parameter"));
    }

    #[test]
    fn scope_service_is_readable_before_authentication() {
        let h = headers(Some(&GOOD.replace("/events/", "/sts/")), None);
        assert_eq!(scope_service(&h).as_deref(), Some("sts"));
        assert_eq!(scope_service(&headers(None, None)), None);
        let err = authenticate(
            &headers(Some(GOOD), Some("20240102T030405Z")),
            at("20240102T030405Z"),
            "sts",
        )
        .expect_err("events scope on the STS side");
        assert_eq!(
            err.message,
            "Credential should be scoped to correct service: 'sts'. "
        );
    }

    #[test]
    fn scope_must_be_events() {
        let auth = GOOD.replace("/events/", "/s3/");
        let err = authenticate(
            &headers(Some(&auth), Some("20240102T030405Z")),
            at("20240102T030405Z"),
            "events",
        )
        .expect_err("wrong service");
        assert_eq!(err.code, "InvalidSignatureException");
        let auth = GOOD.replace("/events/aws4_request", "/aws4_request");
        let err = authenticate(
            &headers(Some(&auth), Some("20240102T030405Z")),
            at("20240102T030405Z"),
            "events",
        )
        .expect_err("4 elements");
        assert_eq!(err.code, "IncompleteSignatureException");
    }

    #[test]
    fn dates_outside_fifteen_minutes_are_rejected() {
        let h = headers(Some(GOOD), Some("20240102T030405Z"));
        let err = authenticate(&h, at("20240102T032006Z"), "events").expect_err("expired");
        assert_eq!(
            err.message,
            "Signature expired: 20240102T030405Z is now earlier than 20240102T030506Z (20240102T032006Z - 15 min.)"
        );
        authenticate(&h, at("20240102T031905Z"), "events").expect("within the window");
        let err = authenticate(&h, at("20240102T024000Z"), "events").expect_err("future");
        assert!(err.message.starts_with("Signature not yet current"));
    }

    #[test]
    fn date_round_trips() {
        for d in ["19700101T000000Z", "20240229T235959Z", "21000301T120000Z"] {
            assert_eq!(format_amz_date(at(d)), d);
        }
        assert!(parse_amz_date("2024-01-02T03:04:05Z").is_none());
        assert!(parse_amz_date("20240230T000000Z").is_none(), "no such day");
        assert!(parse_amz_date("2024010T0304050Z").is_none());
    }
}
