//! Fault injection as the real SDK sees it.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::operation::create_partner_event_source::CreatePartnerEventSourceError as CreateError;
use common::*;
use eventbridge_partner_emulator::{OUTCOME_OK, ScriptedError};

const CREATE: &str = "CreatePartnerEventSource";
const DESCRIBE: &str = "DescribePartnerEventSource";

#[tokio::test]
async fn scripted_sequence_then_success() {
    let (emu, partner) = start_with_partner().await;
    let name = source_name("c1", "orders");
    emu.inject_errors(CREATE, &["ConcurrentModificationException"; 3]);
    for attempt in 1..=3 {
        let err = try_create(&partner, &name, CUSTOMER)
            .await
            .expect_err("scripted failure");
        assert!(
            err.as_service_error()
                .expect("service error")
                .is_concurrent_modification_exception(),
            "attempt {attempt}: {err:?}"
        );
    }
    try_create(&partner, &name, CUSTOMER)
        .await
        .expect("the script is used up");
    assert_eq!(emu.calls(CREATE), 4);
    assert_eq!(
        emu.calls_with_outcome(CREATE, "ConcurrentModificationException"),
        3
    );
    assert_eq!(emu.calls_with_outcome(CREATE, OUTCOME_OK), 1);
    assert!(
        emu.source(&name).is_some(),
        "failed calls changed nothing, the last created it"
    );
}

#[tokio::test]
async fn the_sdk_parses_every_injected_code() {
    let (emu, partner) = start_with_partner().await;
    let name = source_name("c1", "orders");
    type Check = fn(&CreateError) -> bool;
    let cases: [(&str, u16, Option<Check>); 8] = [
        (
            "ConcurrentModificationException",
            400,
            Some(CreateError::is_concurrent_modification_exception),
        ),
        (
            "LimitExceededException",
            400,
            Some(CreateError::is_limit_exceeded_exception),
        ),
        (
            "InternalException",
            500,
            Some(CreateError::is_internal_exception),
        ),
        (
            "OperationDisabledException",
            400,
            Some(CreateError::is_operation_disabled_exception),
        ),
        (
            "ResourceAlreadyExistsException",
            400,
            Some(CreateError::is_resource_already_exists_exception),
        ),
        ("ThrottlingException", 400, None),
        ("AccessDeniedException", 400, None),
        ("ValidationException", 400, None),
    ];
    for (code, status, modeled) in cases {
        emu.inject_errors(CREATE, &[code]);
        let err = try_create(&partner, &name, CUSTOMER)
            .await
            .expect_err("injected");
        assert_eq!(code_and_status(&err), (code.to_owned(), status), "{code}");
        let service = err.as_service_error().expect("service error");
        assert!(
            service.message().is_some_and(|m| !m.is_empty()),
            "{code} has a message"
        );
        if let Some(is_variant) = modeled {
            assert!(
                is_variant(service),
                "{code} maps to its modeled variant: {service:?}"
            );
        } else {
            assert_eq!(
                service.meta().code(),
                Some(code),
                "{code} surfaces as an unmodeled error with its code"
            );
        }
        assert!(
            err.raw_response()
                .and_then(|r| r.headers().get("x-amzn-requestid"))
                .is_some(),
            "{code} carries a request id"
        );
    }
    assert_eq!(emu.calls_with_outcome(CREATE, OUTCOME_OK), 0);

    // Custom message and status.
    emu.inject(
        CREATE,
        [ScriptedError {
            code: "ServiceUnavailable".into(),
            message: Some("try later".into()),
            status: Some(503),
        }],
    );
    let err = try_create(&partner, &name, CUSTOMER)
        .await
        .expect_err("injected");
    assert_eq!(code_and_status(&err), ("ServiceUnavailable".into(), 503));
    assert_eq!(
        err.as_service_error().and_then(|e| e.message()),
        Some("try later")
    );
}

#[tokio::test]
async fn sdk_retries_see_transient_errors_then_success() {
    let emu = start().await;
    let retrying = aws_sdk_eventbridge::Client::from_conf(
        client(&emu, PARTNER_KEY)
            .config()
            .to_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(5))
                    .with_max_backoff(Duration::from_millis(20)),
            )
            .build(),
    );
    emu.inject_errors(CREATE, &["ThrottlingException", "InternalException"]);
    try_create(&retrying, &source_name("c1", "orders"), CUSTOMER)
        .await
        .expect("the SDK retried throttling and 500 to success");
    assert_eq!(emu.calls(CREATE), 3);
    assert_eq!(emu.calls_with_outcome(CREATE, "ThrottlingException"), 1);
    assert_eq!(emu.calls_with_outcome(CREATE, "InternalException"), 1);
}

#[tokio::test]
async fn latency_is_added_to_the_answer() {
    let (emu, partner, name) = start_with_pending_source("c1", "orders").await;
    let latency = Duration::from_millis(300);
    emu.set_latency(DESCRIBE, latency);
    let started = Instant::now();
    describe_partner_source(&partner, &name)
        .await
        .expect("described");
    assert!(started.elapsed() >= latency, "took {:?}", started.elapsed());

    // The change takes effect before the delayed answer: a client that gives
    // up early still leaves the source behind.
    emu.set_latency(CREATE, Duration::from_secs(30));
    let impatient = aws_sdk_eventbridge::Client::from_conf(
        partner
            .config()
            .to_builder()
            .timeout_config(
                aws_sdk_eventbridge::config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(1))
                    .build(),
            )
            .build(),
    );
    let late = source_name("c2", "orders");
    let err = try_create(&impatient, &late, CUSTOMER)
        .await
        .expect_err("timed out");
    assert!(
        matches!(err, aws_sdk_eventbridge::error::SdkError::TimeoutError(_)),
        "{err:?}"
    );
    assert!(
        emu.wait_until(Duration::from_secs(10), |e| e.source(&late).is_some())
            .await
    );
    emu.set_latency(CREATE, Duration::ZERO);
    let err = service_error(
        try_create(&partner, &late, CUSTOMER).await,
        "already exists",
    );
    assert!(err.is_resource_already_exists_exception());
}

#[tokio::test]
async fn quota_throttles_beyond_the_burst() {
    let (emu, partner, name) = start_with_pending_source("c1", "orders").await;
    // A negligible refill rate makes the outcome independent of timing.
    emu.set_quota(DESCRIBE, 0.001, 3);
    for _ in 0..3 {
        describe_partner_source(&partner, &name)
            .await
            .expect("within the burst");
    }
    for _ in 0..2 {
        let err = partner
            .describe_partner_event_source()
            .name(&name)
            .send()
            .await
            .expect_err("throttled");
        assert_eq!(code_and_status(&err), ("ThrottlingException".into(), 400));
    }
    assert_eq!(emu.calls_with_outcome(DESCRIBE, OUTCOME_OK), 3);
    assert_eq!(emu.calls_with_outcome(DESCRIBE, "ThrottlingException"), 2);
    // Other operations have their own quota (none here).
    try_create(&partner, &source_name("c2", "orders"), CUSTOMER)
        .await
        .expect("not throttled");
    emu.clear_quota(DESCRIBE);
    describe_partner_source(&partner, &name)
        .await
        .expect("quota removed");
}

#[tokio::test]
async fn quota_refills_at_its_rate() {
    let (emu, partner, name) = start_with_pending_source("c1", "orders").await;
    emu.set_quota(DESCRIBE, 20.0, 1);
    let describe = || describe_partner_source(&partner, &name);
    describe().await.expect("the one token");
    // Wait on the condition "a token came back", not on a fixed sleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match describe().await {
            Ok(_) => break,
            Err(err) => {
                assert_eq!(code_and_status(&err).0, "ThrottlingException");
                assert!(Instant::now() < deadline, "the bucket never refilled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test]
async fn clear_faults_and_reset() {
    let (emu, partner) = start_with_partner().await;
    emu.inject_errors(CREATE, &["InternalException"]);
    emu.set_quota(CREATE, 0.0, 0);
    emu.clear_faults();
    try_create(&partner, &source_name("c1", "orders"), CUSTOMER)
        .await
        .expect("no faults left");
    emu.reset();
    assert_eq!(emu.calls(CREATE), 0);
    assert!(emu.sources().is_empty());
}

#[tokio::test]
#[should_panic(expected = "unknown EventBridge operation")]
async fn typos_in_operation_names_fail_loudly() {
    let emu = start().await;
    emu.inject_errors("CreatePartnerEventSourc", &["InternalException"]);
}
