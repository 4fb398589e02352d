//! SigV4 `Authorization` header checks.
//!
//! The emulator holds no secrets, so it accepts any signature; it still
//! insists on a well-formed SigV4 header scoped to the `events` service and
//! a request date within AWS's 15-minute window, answering with the errors
//! AWS gives when those are wrong. The access key id and region of the
//! credential scope are what the rest of the emulator uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};

use crate::wire::ApiError;

/// The signing algorithm AWS SigV4 header authentication uses.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name in the credential scope.
const SERVICE: &str = "events";
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

/// Checks the request's SigV4 header and returns its credential scope.
pub(crate) fn authenticate(headers: &HeaderMap, now: SystemTime) -> Result<Credential, ApiError> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let auth = auth.to_str().map_err(|_| {
        ApiError::new(
            "IncompleteSignatureException",
            "Authorization header is not valid ASCII",
        )
    })?;
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
    let date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if date.is_none() && !headers.contains_key(header::DATE) {
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
    let (credential, signed_headers) = (credential.unwrap_or(""), signed_headers.unwrap_or(""));

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = scope[..] else {
        return Err(ApiError::new(
            "IncompleteSignatureException",
            format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            ),
        ));
    };
    if access_key_id.is_empty() {
        return Err(ApiError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if service != SERVICE {
        return Err(ApiError::new(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{SERVICE}'. "),
        ));
    }
    if terminator != "aws4_request" {
        return Err(ApiError::new(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
            ),
        ));
    }
    if region.is_empty() {
        return Err(ApiError::new(
            "InvalidSignatureException",
            "Credential should be scoped to a valid region. ",
        ));
    }
    if !signed_headers
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("host") || h == ":authority")
    {
        return Err(ApiError::new(
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }

    if let Some(date) = date {
        let Some(signed_at) = parse_amz_date(&date) else {
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
                    &date[..8]
                ),
            ));
        }
        check_skew(&date, signed_at, now)?;
    }

    Ok(Credential {
        access_key_id: access_key_id.to_owned(),
        region: region.to_owned(),
    })
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

/// Parses `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Formats a time as `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
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
        )
        .expect("valid");
        assert_eq!(cred.access_key_id, "123456789012");
        assert_eq!(cred.region, "eu-west-1");
    }

    #[test]
    fn missing_header_is_missing_token() {
        let err = authenticate(&headers(None, None), SystemTime::now()).expect_err("missing");
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
        )
        .expect_err("incomplete");
        assert_eq!(err.code, "IncompleteSignatureException");
        assert_eq!(err.status, 400);
        assert!(err.message.contains("requires 'Signature' parameter"));
        assert!(err.message.contains("requires 'SignedHeaders' parameter"));
    }

    #[test]
    fn scope_must_be_events() {
        let auth = GOOD.replace("/events/", "/s3/");
        let err = authenticate(
            &headers(Some(&auth), Some("20240102T030405Z")),
            at("20240102T030405Z"),
        )
        .expect_err("wrong service");
        assert_eq!(err.code, "InvalidSignatureException");
        let auth = GOOD.replace("/events/aws4_request", "/aws4_request");
        let err = authenticate(
            &headers(Some(&auth), Some("20240102T030405Z")),
            at("20240102T030405Z"),
        )
        .expect_err("4 elements");
        assert_eq!(err.code, "IncompleteSignatureException");
    }

    #[test]
    fn dates_outside_fifteen_minutes_are_rejected() {
        let h = headers(Some(GOOD), Some("20240102T030405Z"));
        let err = authenticate(&h, at("20240102T032006Z")).expect_err("expired");
        assert_eq!(
            err.message,
            "Signature expired: 20240102T030405Z is now earlier than 20240102T030506Z (20240102T032006Z - 15 min.)"
        );
        authenticate(&h, at("20240102T031905Z")).expect("within the window");
        let err = authenticate(&h, at("20240102T024000Z")).expect_err("future");
        assert!(err.message.starts_with("Signature not yet current"));
    }

    #[test]
    fn date_round_trips() {
        for d in ["19700101T000000Z", "20240229T235959Z", "21000301T120000Z"] {
            assert_eq!(format_amz_date(at(d)), d);
        }
        assert!(parse_amz_date("2024-01-02T03:04:05Z").is_none());
    }
}
