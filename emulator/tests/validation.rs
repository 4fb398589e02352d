//! Inputs are validated against the service model, with AWS's messages.

mod common;

use common::*;

const NAME_PATTERN: &str = r"aws\.partner(/[\.\-_A-Za-z0-9]+){2,}";

#[tokio::test]
async fn bad_names_and_accounts_name_the_member_and_constraint() {
    let (emu, partner) = start_with_partner().await;
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
        let err = try_create(&partner, &name, account)
            .await
            .expect_err("invalid input");
        assert_eq!(
            code_and_status(&err),
            ("ValidationException".into(), 400),
            "{name} / {account}"
        );
        assert_eq!(
            error_message(&err),
            Some(expected.as_str()),
            "{name} / {account}"
        );
    }
    // The 11-digit account also fails its pattern: both violations are reported.
    let err = try_create(&partner, &source_name("c1", "orders"), "12345678901")
        .await
        .expect_err("invalid");
    let message = error_message(&err).expect("message");
    assert!(message.contains("at 'account'"), "{message}");
    assert!(emu.sources().is_empty(), "nothing invalid was created");
    assert_eq!(
        emu.calls_with_outcome("CreatePartnerEventSource", "ValidationException"),
        5
    );
}

#[tokio::test]
async fn limits_and_prefixes_are_checked() {
    let (emu, partner) = start_with_partner().await;
    for (limit, bound) in [
        (0, "greater than or equal to 1"),
        (101, "less than or equal to 100"),
    ] {
        let err = list_sources_page(&partner, "aws.partner/acme.com/", Some(limit), None)
            .await
            .expect_err("limit out of range");
        assert_eq!(
            error_message(&err),
            Some(
                format!(
                    "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: \
                     Member must have value {bound}"
                )
                .as_str()
            )
        );
    }
    let err = list_sources(&partner, "aws.partner/")
        .await
        .expect_err("prefix needs the partner name");
    let message = error_message(&err).expect("message");
    assert!(message.contains("at 'namePrefix'"), "{message}");
    let err = list_accounts_page(&partner, &source_name("c1", "orders"), Some(1000), None)
        .await
        .expect_err("limit");
    assert_eq!(code_and_status(&err).0, "ValidationException");
    let err = describe_source(&client(&emu, CUSTOMER), "aws.partner/only-one-segment")
        .await
        .expect_err("name");
    let message = error_message(&err).expect("message");
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
