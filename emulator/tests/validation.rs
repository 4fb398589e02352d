//! Inputs are validated against the service model, with AWS's messages.

mod common;

use common::*;

const NAME_PATTERN: &str = r"aws\.partner(/[\.\-_A-Za-z0-9]+){2,}";

#[tokio::test]
async fn bad_names_and_accounts_name_the_member_and_constraint() {
    let emu = start().await;
    let partner = client(&emu, PARTNER_KEY);
    let cases = [
        (
            source_name("c1", "orders"),
            "12345678901",
            "2 validation errors detected: Value '12345678901' at 'account' failed to satisfy constraint: \
             Member must have length greater than or equal to 12; Value '12345678901' at 'account' failed to \
             satisfy constraint: Member must satisfy regular expression pattern: \\d{12}"
                .to_owned(),
        ),
        (
            "acme.com/c1/orders".to_owned(),
            CUSTOMER,
            format!(
                "1 validation error detected: Value 'acme.com/c1/orders' at 'name' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: {NAME_PATTERN}"
            ),
        ),
        (
            "aws.partner/acme.com".to_owned(),
            CUSTOMER,
            format!(
                "1 validation error detected: Value 'aws.partner/acme.com' at 'name' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: {NAME_PATTERN}"
            ),
        ),
        (
            source_name("c1", "orders"),
            "12345678901a",
            "1 validation error detected: Value '12345678901a' at 'account' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: \\d{12}"
                .to_owned(),
        ),
    ];
    for (name, account, expected) in cases {
        let err = partner
            .create_partner_event_source()
            .name(&name)
            .account(account)
            .send()
            .await
            .expect_err("invalid input");
        let service = err.as_service_error().expect("service error");
        assert_eq!(
            aws_sdk_eventbridge::error::ProvideErrorMetadata::code(service),
            Some("ValidationException")
        );
        assert_eq!(
            aws_sdk_eventbridge::error::ProvideErrorMetadata::message(service),
            Some(expected.as_str()),
            "{name} / {account}"
        );
        assert_eq!(code_and_status(&err).1, 400);
    }
    // The 11-digit account also fails its pattern: both violations are reported.
    let err = partner
        .create_partner_event_source()
        .name(source_name("c1", "orders"))
        .account("12345678901")
        .send()
        .await
        .expect_err("invalid");
    let message = aws_sdk_eventbridge::error::ProvideErrorMetadata::message(
        err.as_service_error().expect("service error"),
    )
    .expect("message")
    .to_owned();
    assert!(message.contains("at 'account'"), "{message}");
    assert!(emu.sources().is_empty(), "nothing invalid was created");
    assert_eq!(
        emu.calls_with_outcome("CreatePartnerEventSource", "ValidationException"),
        5
    );
}

#[tokio::test]
async fn limits_and_prefixes_are_checked() {
    let emu = start().await;
    let partner = client(&emu, PARTNER_KEY);
    for (limit, bound) in [
        (0, "greater than or equal to 1"),
        (101, "less than or equal to 100"),
    ] {
        let err = partner
            .list_partner_event_sources()
            .name_prefix("aws.partner/acme.com/")
            .limit(limit)
            .send()
            .await
            .expect_err("limit out of range");
        let service = err.as_service_error().expect("service error");
        assert_eq!(
            aws_sdk_eventbridge::error::ProvideErrorMetadata::message(service),
            Some(
                format!(
                    "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: \
                     Member must have value {bound}"
                )
                .as_str()
            )
        );
    }
    let err = partner
        .list_partner_event_sources()
        .name_prefix("aws.partner/")
        .send()
        .await
        .expect_err("prefix needs the partner name");
    let message = aws_sdk_eventbridge::error::ProvideErrorMetadata::message(
        err.as_service_error().expect("service error"),
    )
    .expect("message")
    .to_owned();
    assert!(message.contains("at 'namePrefix'"), "{message}");
    let err = partner
        .list_partner_event_source_accounts()
        .event_source_name(source_name("c1", "orders"))
        .limit(1000)
        .send()
        .await
        .expect_err("limit");
    assert_eq!(code_and_status(&err).0, "ValidationException");
    let err = client(&emu, CUSTOMER)
        .describe_event_source()
        .name("aws.partner/only-one-segment")
        .send()
        .await
        .expect_err("name");
    let message = aws_sdk_eventbridge::error::ProvideErrorMetadata::message(
        err.as_service_error().expect("service error"),
    )
    .expect("message")
    .to_owned();
    assert!(message.contains("at 'name'"), "{message}");
}

#[tokio::test]
async fn missing_members_and_wrong_types_over_raw_http() {
    let emu = start().await;
    let r = raw_call(
        &emu,
        PARTNER_KEY,
        "CreatePartnerEventSource",
        r#"{"Name":"aws.partner/acme.com/c1/x"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "ValidationException");
    assert_eq!(
        r.json()["message"],
        "1 validation error detected: Value null at 'account' failed to satisfy constraint: Member must not be null"
    );

    let r = raw_call(
        &emu,
        PARTNER_KEY,
        "DescribePartnerEventSource",
        r#"{"Name":42}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "SerializationException");

    let r = raw_call(&emu, PARTNER_KEY, "DescribePartnerEventSource", "{not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "SerializationException");

    // Unknown members are ignored, as the service does.
    let r = raw_call(
        &emu,
        PARTNER_KEY,
        "CreatePartnerEventSource",
        r#"{"Name":"aws.partner/acme.com/c1/x","Account":"222222222222","Extra":true}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["EventSourceArn"],
        "arn:aws:events:eu-west-1::event-source/aws.partner/acme.com/c1/x"
    );
}
