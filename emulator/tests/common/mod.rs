//! Helpers shared by the emulator's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::fmt::Debug;
use std::net::SocketAddr;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::operation::activate_event_source::{
    ActivateEventSourceError, ActivateEventSourceOutput,
};
use aws_sdk_eventbridge::operation::create_event_bus::{CreateEventBusError, CreateEventBusOutput};
use aws_sdk_eventbridge::operation::create_partner_event_source::{
    CreatePartnerEventSourceError, CreatePartnerEventSourceOutput,
};
use aws_sdk_eventbridge::operation::deactivate_event_source::{
    DeactivateEventSourceError, DeactivateEventSourceOutput,
};
use aws_sdk_eventbridge::operation::delete_partner_event_source::{
    DeletePartnerEventSourceError, DeletePartnerEventSourceOutput,
};
use aws_sdk_eventbridge::operation::describe_event_source::{
    DescribeEventSourceError, DescribeEventSourceOutput,
};
use aws_sdk_eventbridge::operation::describe_partner_event_source::{
    DescribePartnerEventSourceError, DescribePartnerEventSourceOutput,
};
use aws_sdk_eventbridge::operation::list_partner_event_source_accounts::{
    ListPartnerEventSourceAccountsError, ListPartnerEventSourceAccountsOutput,
};
use aws_sdk_eventbridge::operation::list_partner_event_sources::{
    ListPartnerEventSourcesError, ListPartnerEventSourcesOutput,
};
use eventbridge_partner_emulator::{Config, Emulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The partner's access key id: not 12 digits, so the emulator maps it to the partner account.
pub const PARTNER_KEY: &str = "AKIDPARTNEREXAMPLE";
/// The default partner account.
pub const PARTNER: &str = "111111111111";
/// A customer account (also used as its access key id).
pub const CUSTOMER: &str = "222222222222";
/// Another customer account.
pub const OTHER: &str = "333333333333";

pub async fn start() -> Emulator {
    Emulator::start(Config::default())
        .await
        .expect("emulator starts")
}

/// A started emulator and a client signed as the partner.
pub async fn start_with_partner() -> (Emulator, Client) {
    let emulator = start().await;
    let partner = client(&emulator, PARTNER_KEY);
    (emulator, partner)
}

/// Like [`start_with_partner`], with the partner's source `aws.partner/acme.com/{customer}/{event}`
/// created for [`CUSTOMER`] (pending); its name comes third.
pub async fn start_with_pending_source(customer: &str, event: &str) -> (Emulator, Client, String) {
    let (emulator, partner) = start_with_partner().await;
    let name = source_name(customer, event);
    create(&partner, &name, CUSTOMER).await;
    (emulator, partner, name)
}

/// A real SDK client with SDK retries disabled, so every call is exactly one request.
pub fn client(emulator: &Emulator, access_key_id: &str) -> Client {
    client_in(emulator, access_key_id, emulator.region())
}

/// Like [`client`], signing for `region`.
pub fn client_in(emulator: &Emulator, access_key_id: &str, region: &str) -> Client {
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            access_key_id,
            "not-checked-secret",
            None,
            None,
            "emulator-tests",
        ))
        .endpoint_url(emulator.endpoint_url())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// A source name unique to a test.
pub fn source_name(customer: &str, event: &str) -> String {
    format!("aws.partner/acme.com/{customer}/{event}")
}

/// The ARN of the partner event source `name` in `region`.
pub fn source_arn(region: &str, name: &str) -> String {
    format!("arn:aws:events:{region}::event-source/{name}")
}

/// What one SDK call answers.
pub type Answer<O, E> = Result<O, SdkError<E>>;

/// `CreatePartnerEventSource` of `name`, shared with `account`.
pub async fn try_create(
    client: &Client,
    name: &str,
    account: &str,
) -> Answer<CreatePartnerEventSourceOutput, CreatePartnerEventSourceError> {
    client
        .create_partner_event_source()
        .name(name)
        .account(account)
        .send()
        .await
}

/// Like [`try_create`], which must succeed; the new source's ARN.
pub async fn create(client: &Client, name: &str, account: &str) -> String {
    try_create(client, name, account)
        .await
        .expect("created")
        .event_source_arn()
        .expect("an event source ARN")
        .to_owned()
}

/// `DescribePartnerEventSource`: the partner's view of its source.
pub async fn describe_partner_source(
    client: &Client,
    name: &str,
) -> Answer<DescribePartnerEventSourceOutput, DescribePartnerEventSourceError> {
    client
        .describe_partner_event_source()
        .name(name)
        .send()
        .await
}

/// `DeletePartnerEventSource` of `name` for `account`.
pub async fn delete_source(
    client: &Client,
    name: &str,
    account: &str,
) -> Answer<DeletePartnerEventSourceOutput, DeletePartnerEventSourceError> {
    client
        .delete_partner_event_source()
        .name(name)
        .account(account)
        .send()
        .await
}

/// `ListPartnerEventSourceAccounts` of `name`, first page, default limit.
pub async fn list_accounts(
    client: &Client,
    name: &str,
) -> Answer<ListPartnerEventSourceAccountsOutput, ListPartnerEventSourceAccountsError> {
    list_accounts_page(client, name, None, None).await
}

/// `ListPartnerEventSourceAccounts` of `name`, with the limit and token only where given.
pub async fn list_accounts_page(
    client: &Client,
    name: &str,
    limit: Option<i32>,
    token: Option<&str>,
) -> Answer<ListPartnerEventSourceAccountsOutput, ListPartnerEventSourceAccountsError> {
    client
        .list_partner_event_source_accounts()
        .event_source_name(name)
        .set_limit(limit)
        .set_next_token(token.map(str::to_owned))
        .send()
        .await
}

/// `ListPartnerEventSources` under `prefix`, first page, default limit.
pub async fn list_sources(
    client: &Client,
    prefix: &str,
) -> Answer<ListPartnerEventSourcesOutput, ListPartnerEventSourcesError> {
    list_sources_page(client, prefix, None, None).await
}

/// `ListPartnerEventSources` under `prefix`, with the limit and token only where given.
pub async fn list_sources_page(
    client: &Client,
    prefix: &str,
    limit: Option<i32>,
    token: Option<&str>,
) -> Answer<ListPartnerEventSourcesOutput, ListPartnerEventSourcesError> {
    client
        .list_partner_event_sources()
        .name_prefix(prefix)
        .set_limit(limit)
        .set_next_token(token.map(str::to_owned))
        .send()
        .await
}

/// `DescribeEventSource`: the customer's view of a source shared with it.
pub async fn describe_source(
    client: &Client,
    name: &str,
) -> Answer<DescribeEventSourceOutput, DescribeEventSourceError> {
    client.describe_event_source().name(name).send().await
}

/// `CreateEventBus` named `name` for the partner source `source`.
pub async fn create_bus(
    client: &Client,
    name: &str,
    source: &str,
) -> Answer<CreateEventBusOutput, CreateEventBusError> {
    client
        .create_event_bus()
        .name(name)
        .event_source_name(source)
        .send()
        .await
}

/// `ActivateEventSource` of `name`, as the customer.
pub async fn activate_source(
    client: &Client,
    name: &str,
) -> Answer<ActivateEventSourceOutput, ActivateEventSourceError> {
    client.activate_event_source().name(name).send().await
}

/// `DeactivateEventSource` of `name`, as the customer.
pub async fn deactivate_source(
    client: &Client,
    name: &str,
) -> Answer<DeactivateEventSourceOutput, DeactivateEventSourceError> {
    client.deactivate_event_source().name(name).send().await
}

/// The modeled service error of a call that must fail (`why` says why); any
/// other failure (timeout, dispatch, unparsable answer) panics.
#[track_caller]
pub fn service_error<T: Debug, E: Debug, R: Debug>(
    result: Result<T, SdkError<E, R>>,
    why: &str,
) -> E {
    match result.expect_err(why) {
        SdkError::ServiceError(service) => service.into_err(),
        other => panic!("service error: {other:?}"),
    }
}

/// The message of a failed SDK call's service error.
#[track_caller]
pub fn error_message<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata + Debug,
    R: Debug,
{
    err.as_service_error()
        .unwrap_or_else(|| panic!("not a service error: {err:?}"))
        .message()
}

/// The error code and HTTP status of a failed SDK call.
pub fn code_and_status<E, R>(err: &SdkError<E, R>) -> (String, u16)
where
    E: ProvideErrorMetadata + Debug,
    R: Debug + HttpStatus,
{
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .unwrap_or_else(|| panic!("not a service error: {err:?}"))
        .to_owned();
    let status = err.raw_response().map(HttpStatus::status_u16).unwrap_or(0);
    (code, status)
}

/// The HTTP status of a raw SDK response.
pub trait HttpStatus {
    fn status_u16(&self) -> u16;
}

impl HttpStatus for aws_sdk_eventbridge::config::http::HttpResponse {
    fn status_u16(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends one HTTP/1.1 request over a fresh connection and reads the whole answer.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Raw {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8(answer).expect("utf-8 answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A SigV4-shaped header for `access_key_id` (the emulator accepts any signature).
pub fn authorization(access_key_id: &str, region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/20240102/{region}/events/aws4_request, \
         SignedHeaders=content-type;host;x-amz-target, Signature=0123456789abcdef"
    )
}

/// Calls an AWS operation with raw HTTP, signed as `access_key_id` (dated by a
/// `Date` header, which the emulator does not check against its clock).
pub async fn raw_call(
    emulator: &Emulator,
    access_key_id: &str,
    operation: &str,
    body: &str,
) -> Raw {
    raw_call_at(
        emulator.local_addr(),
        emulator.region(),
        access_key_id,
        operation,
        body,
    )
    .await
}

/// Like [`raw_call`], against any address.
pub async fn raw_call_at(
    addr: SocketAddr,
    region: &str,
    access_key_id: &str,
    operation: &str,
    body: &str,
) -> Raw {
    let auth = authorization(access_key_id, region);
    let target = format!("AWSEvents.{operation}");
    raw(
        addr,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", &target),
            ("Date", "Tue, 02 Jan 2024 03:04:05 GMT"),
            ("Authorization", &auth),
        ],
        body,
    )
    .await
}

/// `GET` of an admin API path.
pub async fn admin_get(emulator: &Emulator, path: &str) -> Raw {
    admin(emulator, "GET", path, "").await
}

/// `POST` of a JSON body to an admin API path.
pub async fn admin_post(emulator: &Emulator, path: &str, body: &str) -> Raw {
    admin(emulator, "POST", path, body).await
}

/// Calls the admin API with a JSON body (or none for GET).
pub async fn admin(emulator: &Emulator, method: &str, path: &str, body: &str) -> Raw {
    raw(
        emulator.local_addr(),
        method,
        &format!("/_emulator/{path}"),
        &[("Content-Type", "application/json")],
        body,
    )
    .await
}
