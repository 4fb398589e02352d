//! Fuzz targets for the request parsers, on the stable toolchain: proptest generates the
//! inputs, and each target asserts that the parser never panics and always answers either a
//! result or one of the AWS errors it is meant to produce.
//!
//! Each target runs 256 cases under `cargo test`; with `FUZZ_SECONDS=N` it keeps generating
//! fresh cases for N seconds (`make fuzz`, and CI, run each target for 60 s). A failure is
//! shrunk to a small input by proptest and printed.
//!
//! The targets: JSON request bodies against every operation of the model (a body the model
//! accepts must also read into the operation's typed request), the SigV4 `Authorization`
//! header and request date, `NextToken`s (issued, altered and made up), the `X-Amz-Target`
//! and `Content-Type` checks, and whole requests through the pipeline the listener runs
//! (authentication, faults, validation, the store), which must never fail inside the emulator.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::error::ApiError;
use crate::model::Model;
use crate::pagination::{Scope, Tokens};
use crate::server::serve;
use crate::shared::Shared;
use crate::store::Request;
use crate::{sigv4, wire};

/// Cases per round; `cargo test` runs one round per target.
const CASES_PER_ROUND: u32 = 256;

/// Runs `test` on inputs from `strategy`: one round of [`CASES_PER_ROUND`], or rounds until
/// `FUZZ_SECONDS` have passed when that is set.
fn fuzz<S>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let config = RunnerConfig {
        cases: CASES_PER_ROUND,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let mut rounds = 0u64;
    loop {
        // A runner counts its cases and stops at `cases`: a fresh one (with a fresh random
        // seed) per round.
        let mut runner = TestRunner::new(config.clone());
        if let Err(failure) = runner.run(&strategy, &test) {
            panic!("fuzz target {target} failed: {failure}");
        }
        rounds += 1;
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    eprintln!(
        "fuzz target {target}: {} cases",
        rounds * u64::from(CASES_PER_ROUND)
    );
}

/// The error codes the HTTP edge may answer before an operation runs, and every code of the
/// model's exceptions and the store's answers: an answer outside this set is unclassified.
fn assert_classified(err: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(!err.code.is_empty(), "an error without a code: {err:?}");
    prop_assert!(
        err.code.chars().all(|c| c.is_ascii_alphanumeric()),
        "an error code that is not a plain name: {err:?}"
    );
    prop_assert!(
        (400..600).contains(&err.status),
        "an error with a non-error status: {err:?}"
    );
    Ok(())
}

/// A short string from a mix of the protocol's own pieces and arbitrary text, so inputs get
/// past the first checks often enough to reach the later ones.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just("aws.partner/acme.com/c1/orders".to_owned()),
        Just("aws.partner/acme.com/".to_owned()),
        Just("123456789012".to_owned()),
        Just("١٢٣٤٥٦٧٨٩٠١٢".to_owned()),
        "[0-9]{0,14}",
        "aws\\.partner(/[.a-z0-9_-]{0,6}){0,4}",
        "[ -~]{0,24}",
        any::<String>(),
    ]
    .boxed()
}

/// Arbitrary JSON whose object keys are often the model's member names.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("Name".to_owned()),
        Just("Account".to_owned()),
        Just("NamePrefix".to_owned()),
        Just("EventSourceName".to_owned()),
        Just("NextToken".to_owned()),
        Just("Limit".to_owned()),
        Just("Entries".to_owned()),
        Just("EventSourceArn".to_owned()),
        Just("Tags".to_owned()),
        Just("Key".to_owned()),
        Just("Value".to_owned()),
        "[A-Za-z]{0,10}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-200i64..200).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<u64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object with some of the members the partner operations take, each a likely value.
fn shaped() -> impl Strategy<Value = Value> {
    let member = |name: &'static str, value: BoxedStrategy<Value>| {
        prop::option::of(value).prop_map(move |v| v.map(|v| (name.to_owned(), v)))
    };
    let name = prop_oneof!["aws\\.partner/acme\\.com/c[0-9]/[a-z]{1,3}", text(),]
        .prop_map(Value::from)
        .boxed();
    (
        member("Name", name.clone()),
        member("EventSourceName", name.clone()),
        member(
            "NamePrefix",
            Just(Value::from("aws.partner/acme.com/")).boxed(),
        ),
        member(
            "Account",
            prop_oneof!["12345678901[0-3]", text()]
                .prop_map(Value::from)
                .boxed(),
        ),
        member("Limit", (-1i64..4).prop_map(Value::from).boxed()),
    )
        .prop_map(|(a, b, c, d, e)| Value::Object([a, b, c, d, e].into_iter().flatten().collect()))
}

/// A request body: serialized JSON, JSON with bytes spliced in, or arbitrary bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => (json(), any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(v, at, bytes)| {
                let mut text = v.to_string().into_bytes();
                let i = at.index(text.len() + 1);
                text.splice(i..i, bytes);
                text
            }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(Vec::new()),
    ]
}

/// The date format of `X-Amz-Date`.
fn amz_date(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// A well-formed SigV4 header for `date` (YYYYMMDD), scoped to `service`.
fn good_authorization(date: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAPARTNEREXAMPLE01/{date}/eu-west-1/{service}/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123abcd"
    )
}

/// An `Authorization` value: a good one, one with an edit, or one assembled from SigV4's
/// pieces and arbitrary bytes (including obs-text, which is not valid UTF-8).
fn authorization(date: String) -> impl Strategy<Value = Vec<u8>> {
    let good = good_authorization(&date[..8.min(date.len())], "events");
    let piece = prop_oneof![
        Just("AWS4-HMAC-SHA256 ".to_owned()),
        Just("Credential=".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("Signature=".to_owned()),
        Just("aws4_request".to_owned()),
        Just("events".to_owned()),
        Just("host".to_owned()),
        Just(date.clone()),
        Just(date.chars().take(8).collect::<String>()),
        Just("/".to_owned()),
        Just(",".to_owned()),
        Just(";".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        "[ -~]{0,8}",
    ];
    let edited = (
        any::<prop::sample::Index>(),
        0usize..8,
        prop::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map({
            let good = good.clone();
            move |(at, cut, insert)| {
                let mut bytes = good.clone().into_bytes();
                let i = at.index(bytes.len() + 1);
                let end = (i + cut).min(bytes.len());
                bytes.splice(i..end, insert);
                bytes
            }
        });
    prop_oneof![
        1 => Just(good.into_bytes()),
        3 => edited,
        3 => prop::collection::vec(piece, 0..12).prop_map(|p| p.concat().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..48),
    ]
}

/// Inserts a header when its bytes are a valid header value (the HTTP layer refuses the rest
/// before the emulator sees them).
fn insert(headers: &mut HeaderMap, name: HeaderName, value: &[u8]) {
    if let Ok(value) = HeaderValue::from_bytes(value) {
        headers.insert(name, value);
    }
}

#[test]
fn fuzz_json_bodies_against_every_operation() {
    let operations: Vec<String> = Model::get().operation_names().map(str::to_owned).collect();
    fuzz("json-bodies", body(), |bytes| {
        let input = match wire::parse_body(&bytes) {
            Ok(input) => input,
            Err(err) => {
                prop_assert_eq!(err.code.as_str(), "SerializationException");
                return Ok(());
            }
        };
        for op in &operations {
            match Model::get().validate_input(op, &input) {
                Err(invalid) => {
                    prop_assert!(
                        matches!(
                            invalid.code,
                            "SerializationException" | "ValidationException"
                        ),
                        "{op}: {invalid:?}"
                    );
                    prop_assert!(!invalid.message.is_empty());
                }
                // What the model accepts, the typed inputs read.
                Ok(()) => prop_assert!(Request::parse(op, &input).is_ok(), "{op}: {input}"),
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_sigv4_authorization_header() {
    let now = SystemTime::now();
    let today = amz_date(now);
    let dates = prop_oneof![
        3 => Just(today.clone()),
        1 => "[0-9]{8}T[0-9]{6}Z",
        1 => "[0-9TZ:-]{0,20}",
        1 => "[ -~]{0,20}",
    ];
    let strategy = (
        authorization(today.clone()),
        prop::option::of(dates),
        any::<bool>(),
        prop_oneof![Just("events"), Just("sts")],
        0u64..=253_402_300_799,
    );
    fuzz(
        "sigv4-authorization",
        strategy,
        |(auth, date, http_date, service, clock)| {
            let mut headers = HeaderMap::new();
            insert(&mut headers, header::AUTHORIZATION, &auth);
            if let Some(date) = &date {
                insert(
                    &mut headers,
                    HeaderName::from_static("x-amz-date"),
                    date.as_bytes(),
                );
            }
            if http_date {
                headers.insert(
                    header::DATE,
                    HeaderValue::from_static("Tue, 02 Jan 2024 03:04:05 GMT"),
                );
            }
            let _ = sigv4::scope_service(&headers);
            // The server's clock and an arbitrary one (any time up to the year 9999).
            for at in [now, SystemTime::UNIX_EPOCH + Duration::from_secs(clock)] {
                match sigv4::authenticate(&headers, at, service) {
                    Ok(credential) => {
                        prop_assert!(!credential.access_key_id.is_empty());
                        prop_assert!(!credential.region.is_empty());
                    }
                    Err(err) => {
                        assert_classified(&err)?;
                        prop_assert!(
                            matches!(
                                err.code.as_str(),
                                "MissingAuthenticationTokenException"
                                    | "IncompleteSignatureException"
                                    | "InvalidSignatureException"
                                    | "UnrecognizedClientException"
                            ),
                            "{err:?}"
                        );
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_pagination_tokens() {
    let tokens = Tokens::new();
    let scope =
        (text(), text(), text(), text()).prop_map(|(operation, region, caller, filter)| Scope {
            operation,
            region,
            caller,
            filter,
        });
    let strategy = (
        scope.clone(),
        scope,
        text(),
        any::<prop::sample::Index>(),
        0usize..4,
        "[ -~]{0,3}",
        any::<String>(),
    );
    fuzz(
        "pagination-tokens",
        strategy,
        |(issued_for, asked_for, after, at, cut, insert, made_up)| {
            let token = tokens.issue(&issued_for, &after);
            // Issued and resumed with the same arguments: the same place.
            prop_assert_eq!(
                tokens.resume(&issued_for, &token).map_err(|e| e.code),
                Ok(after.clone())
            );
            // With other arguments: refused.
            if asked_for != issued_for {
                let err = tokens.resume(&asked_for, &token).expect_err("other scope");
                prop_assert_eq!(err.code.as_str(), "InvalidToken");
            }
            // Altered: refused unless the edit changed nothing.
            let mut altered = token.clone();
            let i = at.index(altered.len() + 1);
            let end = (i + cut).min(altered.len());
            altered.replace_range(i..end, &insert);
            match tokens.resume(&issued_for, &altered) {
                Ok(resumed) => prop_assert!(
                    altered == token && resumed == after,
                    "an altered token was accepted: {altered:?}"
                ),
                Err(err) => prop_assert_eq!(err.code.as_str(), "InvalidToken"),
            }
            // Made up: refused.
            let err = tokens
                .resume(&issued_for, &made_up)
                .expect_err("a made-up token");
            prop_assert_eq!(err.code.as_str(), "InvalidToken");
            Ok(())
        },
    );
}

#[test]
fn fuzz_target_and_content_type_headers() {
    let value = prop_oneof![
        Just(b"AWSEvents.CreatePartnerEventSource".to_vec()),
        Just(b"application/x-amz-json-1.1".to_vec()),
        "AWSEvents\\.[A-Za-z]{0,30}".prop_map(String::into_bytes),
        "application/[a-z0-9.-]{0,20}(; ?charset=[a-z0-9-]{0,8})?".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    fuzz(
        "target-and-content-type",
        (value.clone(), value),
        |(target, content_type)| {
            let mut headers = HeaderMap::new();
            insert(
                &mut headers,
                HeaderName::from_static("x-amz-target"),
                &target,
            );
            insert(&mut headers, header::CONTENT_TYPE, &content_type);
            match wire::operation_from_target(&headers) {
                Ok(op) => prop_assert!(Model::get().has_operation(&op)),
                Err(err) => {
                    assert_classified(&err)?;
                    prop_assert_eq!(err.code.as_str(), "UnknownOperationException");
                }
            }
            if let Err(err) = wire::check_content_type(&headers) {
                assert_classified(&err)?;
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_whole_requests_through_the_pipeline() {
    // One emulator state for all cases, so that sources made by earlier cases are listed,
    // paged and deleted by later ones, and the tokens they issue are replayed and altered.
    let shared = Shared::new(Config::default());
    let issued: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let outcomes: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
    let operations: Vec<&'static str> = Model::get().operation_names().collect();
    let operation = prop::sample::select(operations);
    let token = prop_oneof![
        2 => any::<prop::sample::Index>().prop_map(Some),
        1 => Just(None),
    ];
    let strategy = (
        operation,
        prop_oneof![1 => json(), 3 => shaped()],
        any::<bool>(),
        token,
        "[ -~]{0,4}",
        0usize..3,
        any::<bool>(),
    );
    fuzz(
        "whole-requests",
        strategy,
        |(op, mut input, as_object, token, splice, auth_kind, partner)| {
            let now = SystemTime::now();
            let date = amz_date(now);
            // Mostly objects with the members the operations take, sometimes anything.
            if as_object && !input.is_object() {
                input = Value::Object(Map::new());
            }
            if let (Some(object), Some(pick)) = (input.as_object_mut(), token) {
                let issued = issued.lock().unwrap_or_else(|e| e.into_inner());
                if !issued.is_empty() {
                    let mut t = issued[pick.index(issued.len())].clone();
                    if !splice.is_empty() {
                        let i = pick.index(t.len() + 1);
                        t.insert_str(i, &splice);
                    }
                    object.insert("NextToken".into(), Value::from(t));
                }
            }
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(wire::CONTENT_TYPE),
            );
            headers.insert(
                "x-amz-date",
                HeaderValue::from_str(&date).expect("an ASCII date"),
            );
            headers.insert(
                "x-amz-target",
                HeaderValue::from_str(&format!("{}{op}", wire::TARGET_PREFIX))
                    .expect("an ASCII target"),
            );
            let auth = match auth_kind {
                0 if partner => good_authorization(&date[..8], "events"),
                0 => good_authorization(&date[..8], "events")
                    .replace("AKIAPARTNEREXAMPLE01", "123456789012"),
                1 => good_authorization(&date[..8], "s3"),
                _ => "AWS4-HMAC-SHA256 Credential=/x".to_owned(),
            };
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&auth).expect("an ASCII header"),
            );
            let body = input.to_string();
            let (result, _, _) = serve(&shared, op, &headers, body.as_bytes(), None);
            let outcome = match &result {
                Ok(_) => format!("{op} ok"),
                Err(err) => format!("{op} {}", err.code),
            };
            *outcomes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(outcome)
                .or_default() += 1;
            match result {
                Ok(None) => {}
                Ok(Some(output)) => {
                    prop_assert!(output.is_object(), "{op}: {output}");
                    if let Some(next) = output.get("NextToken").and_then(Value::as_str) {
                        let mut issued = issued.lock().unwrap_or_else(|e| e.into_inner());
                        if issued.len() < 64 {
                            issued.push(next.to_owned());
                        }
                    }
                }
                Err(err) => {
                    // No fault is injected here: an internal error would be the emulator's own.
                    prop_assert_ne!(err.code.as_str(), "InternalException", "{}: {:?}", op, err);
                    assert_classified(&err)?;
                }
            }
            Ok(())
        },
    );
    // What the cases reached, so a run shows that they got past authentication and
    // validation into the store (and its paging) rather than stopping at the door.
    let outcomes = outcomes.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("whole-requests outcomes: {outcomes:?}");
}
