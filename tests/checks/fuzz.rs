//! Fuzz targets for the operator's error classification, on the stable toolchain: proptest
//! generates the inputs, and each target asserts that classification never panics and always
//! lands in the class the rules in `src/error.rs` give.
//!
//! - `fuzz_classify`: arbitrary error codes (known ones, their near misses, and any text) with
//!   arbitrary HTTP statuses.
//! - `fuzz_sdk_errors_from_the_wire`: arbitrary HTTP answers (any status, any body, AWS's error
//!   headers or not) fed to the real SDK through `aws-smithy-mocks`, for each partner operation
//!   the operator calls; every error the SDK returns goes through `AwsError::from_sdk`.
//!
//! Each target runs 256 cases under `cargo test`; with `FUZZ_SECONDS=N` it keeps generating
//! fresh cases for N seconds (`make fuzz`, and CI, run each target for 60 s).

use std::fmt::Debug;
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::Config;
use aws_sdk_eventbridge::error::SdkError;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use eventbridge_partner_operator::error::{AwsError, AwsErrorClass, TerminalCause, classify};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

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
        // A runner stops after `cases`: a fresh one (with a fresh random seed) per round.
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

/// Codes the classification names, and codes AWS services send that it does not.
const CODES: &[&str] = &[
    "ResourceAlreadyExistsException",
    "ResourceNotFoundException",
    "OperationDisabledException",
    "ConcurrentModificationException",
    "LimitExceededException",
    "ThrottlingException",
    "InternalException",
    "ServiceUnavailableException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "ValidationException",
    "SerializationException",
    "InvalidStateException",
    "UnknownOperationException",
    "InvalidToken",
];

/// An error code: a known one, a known one with a prefix or suffix AWS sometimes sends
/// (`namespace#Code`, `Code:uri`), a near miss, or any text.
fn code() -> impl Strategy<Value = String> {
    let known = prop::sample::select(CODES).prop_map(str::to_owned);
    prop_oneof![
        3 => known.clone(),
        1 => known.clone().prop_map(|c| format!("com.amazonaws.events#{c}")),
        1 => known.clone().prop_map(|c| format!("{c}:http://internal.amazon.com/coral/")),
        1 => known.clone().prop_map(|c| c.to_lowercase()),
        1 => (known, "[ -~]{0,2}").prop_map(|(c, extra)| format!("{c}{extra}")),
        1 => "[A-Za-z]{0,30}",
        1 => any::<String>(),
    ]
}

/// What `classify` must answer for a code and a status, spelled out independently of it.
fn expected(code: &str, status: Option<u16>) -> Option<AwsErrorClass> {
    Some(match code {
        "ResourceAlreadyExistsException" => AwsErrorClass::AlreadyExists,
        "ResourceNotFoundException" => AwsErrorClass::NotFound,
        "OperationDisabledException" => AwsErrorClass::Terminal(TerminalCause::OperationDisabled),
        "ConcurrentModificationException"
        | "LimitExceededException"
        | "ThrottlingException"
        | "InternalException"
        | "ServiceUnavailableException" => AwsErrorClass::Retryable,
        "AccessDeniedException" => AwsErrorClass::Terminal(TerminalCause::AccessDenied),
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "IncompleteSignatureException" => {
            AwsErrorClass::Terminal(TerminalCause::InvalidCredentials)
        }
        "ValidationException" | "SerializationException" => {
            AwsErrorClass::Terminal(TerminalCause::InvalidRequest)
        }
        c if CODES.contains(&c) => match status {
            Some(s) if s >= 500 || s == 429 => AwsErrorClass::Retryable,
            _ => AwsErrorClass::Terminal(TerminalCause::Other),
        },
        // Codes outside the list: only the status rule is certain, and only for 5xx/429.
        _ => return None,
    })
}

#[test]
fn fuzz_classify() {
    let status = prop_oneof![
        Just(None),
        (100u16..=599).prop_map(Some),
        any::<u16>().prop_map(Some),
    ];
    fuzz("classify", (code(), status), |(code, status)| {
        let class = classify(&code, status);
        if let Some(want) = expected(&code, status) {
            prop_assert_eq!(class, want, "{:?} with {:?}", code, status);
        }
        // The two outcomes the reconcile decision treats as success paths are exact.
        prop_assert_eq!(
            class == AwsErrorClass::AlreadyExists,
            code == "ResourceAlreadyExistsException"
        );
        prop_assert_eq!(
            class == AwsErrorClass::NotFound,
            code == "ResourceNotFoundException"
        );
        // A code the operator does not know is retried exactly when the status is 5xx or 429.
        if matches!(status, Some(s) if s >= 500 || s == 429) {
            prop_assert!(
                !matches!(class, AwsErrorClass::Terminal(TerminalCause::Other)),
                "{code:?} {status:?} -> {class:?}"
            );
        }
        Ok(())
    });
}

/// One HTTP answer from "AWS".
#[derive(Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    error_type_header: Option<String>,
    request_id: Option<String>,
    json_content_type: bool,
}

/// Shows the body as text, so that a failing case reads at a glance.
impl Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("error_type_header", &self.error_type_header)
            .field("request_id", &self.request_id)
            .field("json_content_type", &self.json_content_type)
            .finish()
    }
}

impl Answer {
    fn response(&self) -> HttpResponse {
        let status = StatusCode::try_from(self.status).expect("the strategy makes valid statuses");
        let mut response = HttpResponse::new(status, SdkBody::from(self.body.clone()));
        if let Some(t) = &self.error_type_header {
            response.headers_mut().insert("x-amzn-errortype", t.clone());
        }
        if let Some(id) = &self.request_id {
            response
                .headers_mut()
                .insert("x-amzn-requestid", id.clone());
        }
        if self.json_content_type {
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.1");
        }
        response
    }
}

/// A header value the HTTP types accept (visible ASCII and spaces).
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        code().prop_filter("a valid header value", |c| {
            c.bytes().all(|b| (b' '..=b'~').contains(&b))
        }),
        "[ -~]{0,20}",
    ]
}

/// A body: AWS's JSON error shape with any code and message, other JSON, or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (code(), any::<String>(), any::<bool>()).prop_map(|(code, message, lower)| {
            let key = if lower { "message" } else { "Message" };
            serde_json::json!({ "__type": code, key: message }).to_string().into_bytes()
        }),
        1 => code().prop_map(|code| serde_json::json!({ "code": code }).to_string().into_bytes()),
        1 => Just(b"{}".to_vec()),
        1 => Just(b"<html><body>502 Bad Gateway</body></html>".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(Vec::new()),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    (
        prop_oneof![3 => 400u16..=599, 1 => 100u16..=999],
        body(),
        prop::option::of(header_text()),
        prop::option::of("[a-f0-9-]{0,36}"),
        any::<bool>(),
    )
        .prop_map(
            |(status, body, error_type_header, request_id, json_content_type)| Answer {
                status,
                body,
                error_type_header,
                request_id,
                json_content_type,
            },
        )
}

/// An SDK client whose only HTTP answer is `rule`'s, configured as the operator's is (no SDK
/// retries: the operator's backoff is the only loop).
fn client(rule: &Rule) -> Client {
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(rule);
    let config = Config::builder()
        .with_test_defaults_v2()
        .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    Client::from_conf(config)
}

/// Classifies an SDK result the way the operator does, and checks the answer.
fn check<O: Debug, E>(
    answer: &Answer,
    result: Result<O, SdkError<E, HttpResponse>>,
) -> Result<(), TestCaseError>
where
    E: aws_sdk_eventbridge::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let Err(err) = result else {
        // The SDK took the answer as a success; nothing to classify.
        return Ok(());
    };
    let service_error = matches!(err, SdkError::ServiceError(_));
    let error = AwsError::from_sdk(err);
    prop_assert!(!error.code.is_empty(), "no code: {error:?}");
    let _ = error.to_string();
    if service_error {
        prop_assert_eq!(
            error.class,
            classify(&error.code, Some(answer.status)),
            "{:?}",
            error
        );
    }
    // Whatever the SDK made of it, only `ResourceAlreadyExistsException` reads as "already
    // exists", and a 5xx or 429 answer is never given up on as an unknown error.
    if error.class == AwsErrorClass::AlreadyExists {
        prop_assert_eq!(error.code.as_str(), "ResourceAlreadyExistsException");
    }
    if error.class == AwsErrorClass::NotFound {
        prop_assert_eq!(error.code.as_str(), "ResourceNotFoundException");
    }
    if answer.status >= 500 || answer.status == 429 {
        prop_assert!(
            !matches!(error.class, AwsErrorClass::Terminal(TerminalCause::Other)),
            "{error:?}"
        );
    }
    Ok(())
}

#[test]
fn fuzz_sdk_errors_from_the_wire() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let name = "aws.partner/acme.com/c/orders";
    let account = "123456789012";
    fuzz(
        "sdk-errors",
        (answer(), 0usize..5),
        |(answer, operation)| {
            runtime.block_on(async {
                let a = answer.clone();
                let respond = move || a.response();
                match operation {
                    0 => {
                        let rule =
                            mock!(Client::create_partner_event_source).then_http_response(respond);
                        let result = client(&rule)
                            .create_partner_event_source()
                            .name(name)
                            .account(account)
                            .send()
                            .await;
                        check(&answer, result)
                    }
                    1 => {
                        let rule = mock!(Client::describe_partner_event_source)
                            .then_http_response(respond);
                        let result = client(&rule)
                            .describe_partner_event_source()
                            .name(name)
                            .send()
                            .await;
                        check(&answer, result)
                    }
                    2 => {
                        let rule =
                            mock!(Client::delete_partner_event_source).then_http_response(respond);
                        let result = client(&rule)
                            .delete_partner_event_source()
                            .name(name)
                            .account(account)
                            .send()
                            .await;
                        check(&answer, result)
                    }
                    3 => {
                        let rule = mock!(Client::list_partner_event_source_accounts)
                            .then_http_response(respond);
                        let result = client(&rule)
                            .list_partner_event_source_accounts()
                            .event_source_name(name)
                            .send()
                            .await;
                        check(&answer, result)
                    }
                    _ => {
                        let rule =
                            mock!(Client::list_partner_event_sources).then_http_response(respond);
                        let result = client(&rule)
                            .list_partner_event_sources()
                            .name_prefix("aws.partner/acme.com/")
                            .send()
                            .await;
                        check(&answer, result)
                    }
                }
            })
        },
    );
}

/// The first thing the wire target found: a blank `x-amzn-errortype` header made the SDK
/// report an empty error code (the header wins over the body's `__type`), which classified as
/// an unknown error with nothing to show for a code.
#[test]
fn a_blank_error_type_header_does_not_make_an_empty_code() {
    let answer = Answer {
        status: 400,
        body: br#"{"__type":"ResourceAlreadyExistsException","Message":""}"#.to_vec(),
        error_type_header: Some(String::new()),
        request_id: None,
        json_content_type: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let a = answer.clone();
    let rule = mock!(Client::create_partner_event_source).then_http_response(move || a.response());
    let err = runtime
        .block_on(
            client(&rule)
                .create_partner_event_source()
                .name("aws.partner/acme.com/c/orders")
                .account("123456789012")
                .send(),
        )
        .expect_err("a 400 answer");
    let error = AwsError::from_sdk(err);
    assert_eq!(error.code, "UnknownError");
    assert_eq!(error.class, AwsErrorClass::Terminal(TerminalCause::Other));
}
