//! The STS side (`AssumeRole`, `GetCallerIdentity`) driven by the real
//! `aws-sdk-sts`, and EventBridge calls signed with the credentials it hands out.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_sts::types::Credentials as StsCredentials;
use common::*;
use eventbridge_partner_emulator::{Emulator, Role};
use serde_json::json;

const ROLE_ACCOUNT: &str = "444444444444";
const ROLE: &str = "arn:aws:iam::444444444444:role/partners/acme-prod";

/// A real STS client signed with `credentials`, SDK retries off.
fn sts(emulator: &Emulator, credentials: Credentials) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(
            emulator.region().to_owned(),
        ))
        .credentials_provider(credentials)
        .endpoint_url(emulator.endpoint_url())
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

fn static_keys(access_key_id: &str) -> Credentials {
    Credentials::new(access_key_id, "not-checked-secret", None, None, "tests")
}

fn temporary(creds: &StsCredentials) -> Credentials {
    Credentials::new(
        creds.access_key_id(),
        creds.secret_access_key(),
        Some(creds.session_token().to_owned()),
        None,
        "assumed",
    )
}

/// An EventBridge client signed with `credentials`.
fn events(emulator: &Emulator, credentials: Credentials) -> aws_sdk_eventbridge::Client {
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(emulator.region().to_owned()))
        .credentials_provider(credentials)
        .endpoint_url(emulator.endpoint_url())
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

async fn assume(
    client: &aws_sdk_sts::Client,
    role: &str,
    external_id: Option<&str>,
) -> Result<
    aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
    aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>,
> {
    client
        .assume_role()
        .role_arn(role)
        .role_session_name("operator")
        .set_external_id(external_id.map(str::to_owned))
        .send()
        .await
}

#[tokio::test]
async fn get_caller_identity_of_static_keys() {
    let emu = start().await;
    let me = sts(&emu, static_keys(PARTNER_KEY))
        .get_caller_identity()
        .send()
        .await
        .expect("identity");
    assert_eq!(me.account(), Some(PARTNER));
    assert_eq!(me.arn(), Some("arn:aws:iam::111111111111:root"));
    assert_eq!(me.user_id(), Some(PARTNER));
    let customer = sts(&emu, static_keys(CUSTOMER))
        .get_caller_identity()
        .send()
        .await
        .expect("identity");
    assert_eq!(customer.account(), Some(CUSTOMER));
    assert_eq!(emu.calls("GetCallerIdentity"), 2);
}

#[tokio::test]
async fn assumed_role_credentials_act_as_the_role_account() {
    let emu = start().await;
    emu.add_role(Role::new(ROLE).with_external_id("tenant-acme"));
    let base = sts(&emu, static_keys(PARTNER_KEY));
    let out = assume(&base, ROLE, Some("tenant-acme"))
        .await
        .expect("assumed");
    let creds = out.credentials().expect("credentials");
    assert!(creds.access_key_id().starts_with("ASIA"));
    let user = out.assumed_role_user().expect("assumed role user");
    assert_eq!(
        user.arn(),
        "arn:aws:sts::444444444444:assumed-role/acme-prod/operator"
    );
    assert!(user.assumed_role_id().ends_with(":operator"));
    let lifetime = creds.expiration().as_secs_f64()
        - SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
    assert!(
        (3590.0..=3601.0).contains(&lifetime),
        "one hour: {lifetime}"
    );

    let me = sts(&emu, temporary(creds))
        .get_caller_identity()
        .send()
        .await
        .expect("identity");
    assert_eq!(me.account(), Some(ROLE_ACCOUNT));
    assert_eq!(me.arn(), Some(user.arn()));
    assert_eq!(me.user_id(), Some(user.assumed_role_id()));

    // EventBridge calls signed with them act as the role's account.
    let partner = events(&emu, temporary(creds));
    let name = source_name("sts1", "orders");
    assert_eq!(
        create(&partner, &name, CUSTOMER).await,
        source_arn("eu-west-1", &name)
    );
    let held = emu.source(&name).expect("held");
    assert_eq!(held.partner_account, ROLE_ACCOUNT);
    let listed = list_sources(&partner, "aws.partner/acme.com/")
        .await
        .expect("listed");
    assert_eq!(listed.partner_event_sources().len(), 1);
    // The default partner account has no such source.
    let default_partner = client(&emu, PARTNER_KEY);
    let err = service_error(
        describe_partner_source(&default_partner, &name).await,
        "another partner account",
    );
    assert!(err.is_resource_not_found_exception());

    let sessions = emu.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].account, ROLE_ACCOUNT);
    assert_eq!(sessions[0].access_key_id, creds.access_key_id());
}

#[tokio::test]
async fn unknown_role_wrong_external_id_and_untrusted_role_are_access_denied() {
    let emu = start().await;
    let base = sts(&emu, static_keys(PARTNER_KEY));
    let err = assume(&base, ROLE, None).await.expect_err("unknown role");
    assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));
    assert_eq!(
        err.as_service_error().and_then(|e| e.message()),
        Some(
            "User: arn:aws:iam::111111111111:root is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::444444444444:role/partners/acme-prod"
        )
    );

    emu.add_role(Role::new(ROLE).with_external_id("tenant-acme"));
    for wrong in [None, Some("tenant-other")] {
        let err = assume(&base, ROLE, wrong).await.expect_err("external id");
        assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));
    }
    emu.add_role(Role::new(ROLE).not_assumable());
    let err = assume(&base, ROLE, None).await.expect_err("not assumable");
    assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));

    emu.add_role(Role::new(ROLE));
    let err = base
        .assume_role()
        .role_arn(ROLE)
        .role_session_name("operator")
        .duration_seconds(7200)
        .send()
        .await
        .expect_err("longer than the role allows");
    assert_eq!(code_and_status(&err), ("ValidationError".into(), 400));
    assert_eq!(
        emu.calls_with_outcome("AssumeRole", "AccessDenied"),
        4,
        "every refusal is counted"
    );
}

#[tokio::test]
async fn expired_credentials_are_refused_on_both_sides() {
    let emu = start().await;
    emu.add_role(Role::new(ROLE).with_max_session_duration(Duration::from_secs(1)));
    let out = assume(&sts(&emu, static_keys(PARTNER_KEY)), ROLE, None)
        .await
        .expect("assumed");
    let creds = out.credentials().expect("credentials").clone();
    let partner = events(&emu, temporary(&creds));
    list_sources(&partner, "aws.partner/acme.com/")
        .await
        .expect("valid for now");

    let expires = SystemTime::try_from(*creds.expiration()).expect("a time");
    if let Ok(left) = expires.duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(50)).await;
    }
    let err = list_sources(&partner, "aws.partner/acme.com/")
        .await
        .expect_err("expired");
    assert_eq!(code_and_status(&err), ("ExpiredTokenException".into(), 400));
    assert_eq!(
        error_message(&err),
        Some("The security token included in the request is expired")
    );
    let err = sts(&emu, temporary(&creds))
        .get_caller_identity()
        .send()
        .await
        .expect_err("expired");
    assert_eq!(code_and_status(&err), ("ExpiredToken".into(), 403));

    // Without its session token a temporary key is not recognised at all.
    let err = list_sources(
        &events(
            &emu,
            Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                None,
                None,
                "no token",
            ),
        ),
        "aws.partner/acme.com/",
    )
    .await
    .expect_err("no token");
    assert_eq!(
        code_and_status(&err),
        ("UnrecognizedClientException".into(), 400)
    );
}

#[tokio::test]
async fn aws_configs_assume_role_provider_works_against_the_emulator() {
    let emu = start().await;
    emu.add_role(Role::new(ROLE).with_external_id("tenant-acme"));
    // The loader supplies the time source and sleep the provider needs.
    let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(emu.region().to_owned()))
        .endpoint_url(emu.endpoint_url())
        .credentials_provider(static_keys(PARTNER_KEY))
        .load()
        .await;
    let provider = aws_config::sts::AssumeRoleProvider::builder(ROLE)
        .session_name("provider")
        .external_id("tenant-acme")
        .configure(&sdk_config)
        .build_from_provider(static_keys(PARTNER_KEY))
        .await;
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(emu.region().to_owned()))
        .credentials_provider(provider)
        .endpoint_url(emu.endpoint_url())
        .retry_config(RetryConfig::disabled())
        .build();
    let partner = aws_sdk_eventbridge::Client::from_conf(config);
    let name = source_name("sts2", "orders");
    create(&partner, &name, CUSTOMER).await;
    assert_eq!(
        emu.source(&name).expect("held").partner_account,
        ROLE_ACCOUNT
    );
    assert!(emu.calls_with_outcome("AssumeRole", eventbridge_partner_emulator::OUTCOME_OK) >= 1);
}

#[tokio::test]
async fn injected_faults_reach_sts_callers() {
    let emu = start().await;
    emu.add_role(Role::new(ROLE));
    emu.inject_errors("AssumeRole", &["InternalFailure"]);
    let base = sts(&emu, static_keys(PARTNER_KEY));
    let err = assume(&base, ROLE, None).await.expect_err("injected");
    assert_eq!(code_and_status(&err), ("InternalFailure".into(), 500));
    assume(&base, ROLE, None).await.expect("then it works");
}

/// A raw STS request signed (shape only) as the partner.
async fn sts_form(addr: std::net::SocketAddr, body: &str) -> Raw {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDPARTNER/20240102/eu-west-1/sts/aws4_request, \
                SignedHeaders=content-type;host, Signature=00";
    raw(
        addr,
        "POST",
        "/",
        &[
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Date", "Tue, 02 Jan 2024 03:04:05 GMT"),
            ("Authorization", auth),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn sts_over_raw_http_and_the_admin_api() {
    let emu = start().await;
    let r = admin_post(
        &emu,
        "roles",
        &json!({
            "arn": ROLE,
            "external_id": "tenant-acme",
            "max_session_duration_secs": 120,
        })
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["account"], ROLE_ACCOUNT);
    let r = admin_post(&emu, "roles", r#"{"arn": "arn:aws:iam::1:role/x"}"#).await;
    assert_eq!(r.status, 400);
    let roles = admin_get(&emu, "roles").await.json();
    assert_eq!(roles["roles"][0]["arn"], ROLE);
    assert_eq!(roles["roles"][0]["account"], ROLE_ACCOUNT);
    assert_eq!(roles["roles"][0]["external_id"], "tenant-acme");
    assert_eq!(roles["roles"][0]["max_session_duration_secs"], 120.0);
    assert_eq!(roles["roles"][0]["assumable"], true);
    assert_eq!(
        emu.roles()[0].max_session_duration,
        Some(Duration::from_secs(120))
    );

    let addr = emu.local_addr();
    let r = sts_form(
        addr,
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A444444444444%3Arole%2Fpartners%2Facme-prod&RoleSessionName=raw&ExternalId=tenant-acme&DurationSeconds=900",
    )
    .await;
    assert_eq!(
        r.status, 400,
        "900 s is more than the role's 120 s: {}",
        r.body
    );
    let r = sts_form(
        addr,
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A444444444444%3Arole%2Fpartners%2Facme-prod&RoleSessionName=raw&ExternalId=tenant-acme",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/xml"));
    assert!(r.body.starts_with(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
    ));
    for element in [
        "<Credentials><AccessKeyId>ASIA",
        "<SecretAccessKey>",
        "<SessionToken>",
        "<Expiration>",
        "<AssumedRoleUser><AssumedRoleId>AROA",
        "<Arn>arn:aws:sts::444444444444:assumed-role/acme-prod/raw</Arn>",
        "<ResponseMetadata><RequestId>",
    ] {
        assert!(r.body.contains(element), "{element} in {}", r.body);
    }
    let r = sts_form(
        addr,
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A444444444444%3Arole%2Fpartners%2Facme-prod&RoleSessionName=raw&ExternalId=wrong",
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.body.starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::111111111111:root is not authorized"), "{}", r.body);
    assert!(r.header("x-amzn-requestid").is_some());
    let r = sts_form(addr, "Action=GetSessionToken&Version=2011-06-15").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("<Code>InvalidAction</Code>"), "{}", r.body);
    let r = raw(
        emu.local_addr(),
        "POST",
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{}",
        r.body
    );

    let sessions = admin_get(&emu, "roles").await.json()["sessions"].clone();
    assert_eq!(sessions.as_array().map(Vec::len), Some(1));
    assert_eq!(sessions[0]["account"], ROLE_ACCOUNT);
    assert_eq!(
        admin_post(&emu, "roles/delete", &json!({ "arn": ROLE }).to_string())
            .await
            .status,
        200
    );
    assert!(emu.roles().is_empty());
    admin_post(&emu, "reset", "").await;
    assert!(emu.sessions().is_empty());
}
