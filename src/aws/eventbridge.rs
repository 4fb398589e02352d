//! The EventBridge side of the operator, in one place: every partner API call goes through
//! [`EventBridge`], the production [`PartnerApi`], which waits on the shared rate limiter,
//! records metrics, logs failures, and turns SDK results into plain values.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::jiff::Timestamp;

use crate::aws::budget::{Budget, BudgetKey, Budgets, Priority};
use crate::aws::identity::Identity;
use crate::aws::paging::{MAX_PAGES, Page, all_pages};
use crate::aws::partner_api::{ListedSource, Operation, PartnerApi, SourceAccount};
use crate::error::{AwsError, AwsErrorClass};
use crate::metrics::Metrics;
use crate::resources::SourceState;

/// The partner API of EventBridge, shared by all reconciles.
pub struct EventBridge {
    /// The operator's own identity.
    operator: Arc<Identity>,
    /// The request budgets, one per (AWS account, region).
    budgets: Arc<Budgets>,
    metrics: Arc<Metrics>,
}

/// The partner API as seen by one reconcile pass: the identity it acts as, and the pass's
/// priority, which decides its place in the budget's queue.
pub struct Calls<'a> {
    eb: &'a EventBridge,
    identity: Arc<Identity>,
    priority: Priority,
}

impl EventBridge {
    /// Acts as `operator` unless a pass names another identity. The SDK's own retries should
    /// be off: the operator retries per object with its own backoff, and counts every attempt
    /// against the budget.
    pub fn new(operator: Identity, budgets: Arc<Budgets>, metrics: Arc<Metrics>) -> Self {
        EventBridge {
            operator: Arc::new(operator),
            budgets,
            metrics,
        }
    }

    /// The operator's own identity.
    pub fn operator(&self) -> Arc<Identity> {
        self.operator.clone()
    }

    /// The calls of a pass acting as `identity` with this priority.
    pub fn calls(&self, identity: Arc<Identity>, priority: Priority) -> Calls<'_> {
        Calls {
            eb: self,
            identity,
            priority,
        }
    }

    /// The budget that calls of `identity` in `region` draw from: one per AWS account and
    /// region, so partner accounts that are one AWS account share it.
    pub fn budget(&self, identity: &Identity, region: &str) -> Arc<Budget> {
        let key = BudgetKey {
            account: identity.account.clone(),
            region: region.to_owned(),
        };
        self.budgets.get_with_rate(&key, identity.rate)
    }

    /// Waits for a token, then times and counts the call.
    /// Failures other than "already exists" and "not found" (answers the reconcile expects)
    /// are logged with AWS's request id.
    /// AIMD: a throttled call slows the budget down, a successful one speeds it back up.
    async fn measured<T>(
        &self,
        calls: &Calls<'_>,
        region: &str,
        operation: Operation,
        call: impl Future<Output = Result<T, AwsError>>,
    ) -> Result<T, AwsError> {
        let budget = self.budget(&calls.identity, region);
        budget.acquire(calls.priority).await;
        let started = Instant::now();
        let result = call.await;
        match &result {
            Ok(_) => budget.succeeded(),
            Err(e) if e.throttling => budget.throttled(),
            Err(_) => {}
        }
        let outcome = match &result {
            Ok(_) => "success",
            Err(e) => e.code.as_str(),
        };
        self.metrics
            .aws_call(operation.name(), outcome, started.elapsed());
        if let Err(e) = &result
            && !matches!(
                e.class,
                AwsErrorClass::AlreadyExists | AwsErrorClass::NotFound
            )
        {
            tracing::warn!(
                operation = operation.name(),
                code = %e.code,
                request_id = e.request_id.as_deref().unwrap_or("-"),
                "EventBridge call failed: {}",
                e.message
            );
        }
        result
    }
}

impl PartnerApi for Calls<'_> {
    async fn create(&self, region: &str, name: &str, account: &str) -> Result<String, AwsError> {
        let client = self.identity.client(region);
        self.eb
            .measured(self, region, Operation::Create, async {
                let out = client
                    .create_partner_event_source()
                    .name(name)
                    .account(account)
                    .send()
                    .await
                    .map_err(AwsError::from_sdk)?;
                out.event_source_arn
                    .ok_or_else(|| missing("CreatePartnerEventSource", "EventSourceArn"))
            })
            .await
    }

    async fn describe(&self, region: &str, name: &str) -> Result<String, AwsError> {
        let client = self.identity.client(region);
        self.eb
            .measured(self, region, Operation::Describe, async {
                let out = client
                    .describe_partner_event_source()
                    .name(name)
                    .send()
                    .await
                    .map_err(AwsError::from_sdk)?;
                out.arn
                    .ok_or_else(|| missing("DescribePartnerEventSource", "Arn"))
            })
            .await
    }

    /// Every page, through [`all_pages`]; each page is one call against the budget.
    async fn list_accounts(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Vec<SourceAccount>, AwsError> {
        let client = &self.identity.client(region);
        all_pages(MAX_PAGES, |token| async move {
            let page = self
                .eb
                .measured(self, region, Operation::ListAccounts, async {
                    client
                        .list_partner_event_source_accounts()
                        .event_source_name(name)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(AwsError::from_sdk)
                })
                .await?;
            Ok(Page {
                items: page
                    .partner_event_source_accounts()
                    .iter()
                    .map(source_account)
                    .collect(),
                next_token: page.next_token,
            })
        })
        .await
    }

    async fn delete(&self, region: &str, name: &str, account: &str) -> Result<(), AwsError> {
        let client = self.identity.client(region);
        self.eb
            .measured(self, region, Operation::Delete, async {
                client
                    .delete_partner_event_source()
                    .name(name)
                    .account(account)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(AwsError::from_sdk)
            })
            .await
    }

    /// Every page of the largest size the model allows, through [`all_pages`]; each page is
    /// one call against the budget. A source listed without a name cannot be addressed by
    /// any other call, so it is left out.
    async fn list_sources(
        &self,
        region: &str,
        prefix: &str,
    ) -> Result<Vec<ListedSource>, AwsError> {
        let client = &self.identity.client(region);
        all_pages(MAX_PAGES, |token| async move {
            let page = self
                .eb
                .measured(self, region, Operation::ListSources, async {
                    client
                        .list_partner_event_sources()
                        .name_prefix(prefix)
                        .limit(SOURCES_PER_PAGE)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(AwsError::from_sdk)
                })
                .await?;
            Ok(Page {
                items: page
                    .partner_event_sources()
                    .iter()
                    .filter_map(|s| {
                        Some(ListedSource {
                            name: s.name()?.to_owned(),
                            arn: s.arn().map(str::to_owned),
                        })
                    })
                    .collect(),
                next_token: page.next_token,
            })
        })
        .await
    }
}

/// Calls made outside a reconcile pass (tools, tests) are user-driven.
impl PartnerApi for EventBridge {
    async fn create(&self, region: &str, name: &str, account: &str) -> Result<String, AwsError> {
        self.calls(self.operator(), Priority::User)
            .create(region, name, account)
            .await
    }

    async fn list_accounts(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Vec<SourceAccount>, AwsError> {
        self.calls(self.operator(), Priority::User)
            .list_accounts(region, name)
            .await
    }

    async fn describe(&self, region: &str, name: &str) -> Result<String, AwsError> {
        self.calls(self.operator(), Priority::User)
            .describe(region, name)
            .await
    }

    async fn delete(&self, region: &str, name: &str, account: &str) -> Result<(), AwsError> {
        self.calls(self.operator(), Priority::User)
            .delete(region, name, account)
            .await
    }

    async fn list_sources(
        &self,
        region: &str,
        prefix: &str,
    ) -> Result<Vec<ListedSource>, AwsError> {
        self.calls(self.operator(), Priority::User)
            .list_sources(region, prefix)
            .await
    }
}

/// `Limit` of `ListPartnerEventSources`: the most the model allows (`LimitMax100`), so that a
/// listing takes as few calls from the budget as it can.
const SOURCES_PER_PAGE: i32 = 100;

/// One entry of `ListPartnerEventSourceAccounts` as a plain value.
fn source_account(a: &aws_sdk_eventbridge::types::PartnerEventSourceAccount) -> SourceAccount {
    SourceAccount {
        account: a.account().unwrap_or_default().to_owned(),
        state: a.state().map(|s| SourceState::from(s.as_str().to_owned())),
        creation_time: a.creation_time().and_then(timestamp),
        expiration_time: a.expiration_time().and_then(timestamp),
    }
}

/// AWS answered without a member the model promises; treat it as a transient fault.
fn missing(operation: &str, member: &str) -> AwsError {
    AwsError {
        class: AwsErrorClass::Retryable,
        code: "IncompleteResponse".into(),
        message: format!("{operation} answered without {member}"),
        request_id: None,
        throttling: false,
    }
}

/// Kubernetes keeps times to the second; so do we, so that unchanged times compare equal.
fn timestamp(t: &aws_smithy_types::DateTime) -> Option<Timestamp> {
    Timestamp::from_second(t.secs()).ok()
}

#[cfg(test)]
mod tests {
    //! Every exception the model lists for each operation the operator uses, plus the common
    //! AWS errors, sent through the real SDK as wire responses (`aws-smithy-mocks` stands in
    //! for the HTTP layer), must land in the class the reconcile decision expects.

    use super::*;
    use aws_sdk_eventbridge::Client as SdkClient;
    use aws_sdk_eventbridge::operation::list_partner_event_source_accounts::ListPartnerEventSourceAccountsOutput;
    use aws_sdk_eventbridge::operation::list_partner_event_sources::{
        ListPartnerEventSourcesInput, ListPartnerEventSourcesOutput,
    };
    use aws_sdk_eventbridge::types::{
        EventSourceState, PartnerEventSource as PartnerSource, PartnerEventSourceAccount,
    };
    use aws_smithy_mocks::{Rule, RuleMode, create_mock_http_client, mock};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use crate::aws::budget::BudgetSettings;
    use crate::aws::identity::UNKNOWN_ACCOUNT;
    use crate::error::TerminalCause;
    use aws_sdk_eventbridge::Config;

    const NAME: &str = "aws.partner/acme.com/c/orders";
    const ACCOUNT: &str = "123456789012";

    fn eventbridge(rules: &[&Rule]) -> EventBridge {
        let mut interceptor =
            aws_smithy_mocks::MockResponseInterceptor::new().rule_mode(RuleMode::Sequential);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        // As in production, the SDK does not retry: the operator's backoff is the only loop.
        let config = Config::builder()
            .with_test_defaults_v2()
            .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .build();
        let budgets = Budgets::new(BudgetSettings {
            rate: 1000.0,
            burst: 1000,
            resync_share: 0.2,
        })
        .unwrap();
        let operator = Identity::new(None, UNKNOWN_ACCOUNT.to_owned(), config);
        EventBridge::new(operator, Arc::new(budgets), Arc::new(Metrics::new()))
    }

    /// A JSON 1.1 error response as EventBridge sends it.
    fn wire_error(status: u16, code: &str) -> HttpResponse {
        let body = format!(r#"{{"__type":"{code}","message":"{code} from the wire"}}"#);
        let mut response =
            HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
        response.headers_mut().insert("x-amzn-requestid", "req-42");
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        response
    }

    /// The model's exceptions for an operation, then the common ones every AWS API can return.
    fn cases(modeled: &[&'static str]) -> Vec<(u16, &'static str, AwsErrorClass)> {
        let mut all: Vec<(u16, &'static str, AwsErrorClass)> = modeled
            .iter()
            .map(|code| {
                let class = match *code {
                    "ResourceAlreadyExistsException" => AwsErrorClass::AlreadyExists,
                    "ResourceNotFoundException" => AwsErrorClass::NotFound,
                    "OperationDisabledException" => {
                        AwsErrorClass::Terminal(TerminalCause::OperationDisabled)
                    }
                    "InternalException"
                    | "ConcurrentModificationException"
                    | "LimitExceededException" => AwsErrorClass::Retryable,
                    other => panic!("no expectation for {other}"),
                };
                let status = if *code == "InternalException" {
                    500
                } else {
                    400
                };
                (status, *code, class)
            })
            .collect();
        all.extend([
            (400, "ThrottlingException", AwsErrorClass::Retryable),
            (503, "ServiceUnavailableException", AwsErrorClass::Retryable),
            (
                400,
                "AccessDeniedException",
                AwsErrorClass::Terminal(TerminalCause::AccessDenied),
            ),
            (
                400,
                "UnrecognizedClientException",
                AwsErrorClass::Terminal(TerminalCause::InvalidCredentials),
            ),
            (
                403,
                "InvalidSignatureException",
                AwsErrorClass::Terminal(TerminalCause::InvalidCredentials),
            ),
            (
                400,
                "ValidationException",
                AwsErrorClass::Terminal(TerminalCause::InvalidRequest),
            ),
            (502, "BadGatewayFromAProxy", AwsErrorClass::Retryable),
        ]);
        all
    }

    fn check(
        operation: &str,
        code: &str,
        result: Result<impl std::fmt::Debug, AwsError>,
        class: AwsErrorClass,
    ) {
        let e = result.expect_err(code);
        assert_eq!(e.class, class, "{operation} {code}: {e:?}");
        assert_eq!(e.code, code, "{operation}");
        assert_eq!(
            e.request_id.as_deref(),
            Some("req-42"),
            "{operation} {code}"
        );
        assert!(
            e.message.contains("from the wire"),
            "{operation} {code}: {e:?}"
        );
    }

    #[tokio::test]
    async fn create_partner_event_source_errors_are_classified() {
        let modeled = [
            "ResourceAlreadyExistsException",
            "InternalException",
            "ConcurrentModificationException",
            "LimitExceededException",
            "OperationDisabledException",
        ];
        for (status, code, class) in cases(&modeled) {
            let rule = mock!(SdkClient::create_partner_event_source)
                .then_http_response(move || wire_error(status, code));
            let eb = eventbridge(&[&rule]);
            check(
                "Create",
                code,
                eb.create("eu-west-1", NAME, ACCOUNT).await,
                class,
            );
        }
    }

    #[tokio::test]
    async fn describe_partner_event_source_errors_are_classified() {
        let modeled = [
            "ResourceNotFoundException",
            "InternalException",
            "OperationDisabledException",
        ];
        for (status, code, class) in cases(&modeled) {
            let rule = mock!(SdkClient::describe_partner_event_source)
                .then_http_response(move || wire_error(status, code));
            let eb = eventbridge(&[&rule]);
            check(
                "Describe",
                code,
                eb.describe("eu-west-1", NAME).await,
                class,
            );
        }
    }

    #[tokio::test]
    async fn list_partner_event_source_accounts_errors_are_classified() {
        let modeled = [
            "ResourceNotFoundException",
            "InternalException",
            "OperationDisabledException",
        ];
        for (status, code, class) in cases(&modeled) {
            let rule = mock!(SdkClient::list_partner_event_source_accounts)
                .then_http_response(move || wire_error(status, code));
            let eb = eventbridge(&[&rule]);
            check(
                "ListAccounts",
                code,
                eb.list_accounts("eu-west-1", NAME).await,
                class,
            );
        }
    }

    #[tokio::test]
    async fn delete_partner_event_source_errors_are_classified() {
        let modeled = [
            "InternalException",
            "ConcurrentModificationException",
            "OperationDisabledException",
        ];
        for (status, code, class) in cases(&modeled) {
            let rule = mock!(SdkClient::delete_partner_event_source)
                .then_http_response(move || wire_error(status, code));
            let eb = eventbridge(&[&rule]);
            check(
                "Delete",
                code,
                eb.delete("eu-west-1", NAME, ACCOUNT).await,
                class,
            );
        }
    }

    #[tokio::test]
    async fn successful_calls_become_plain_values() {
        let arn = "arn:aws:events:eu-west-1::event-source/aws.partner/acme.com/c/orders";
        let create = mock!(SdkClient::create_partner_event_source)
            .match_requests(|r| r.name() == Some(NAME) && r.account() == Some(ACCOUNT))
            .then_http_response(move || {
                HttpResponse::new(
                    StatusCode::try_from(200).unwrap(),
                    SdkBody::from(format!(r#"{{"EventSourceArn":"{arn}"}}"#)),
                )
            });
        let describe =
            mock!(SdkClient::describe_partner_event_source).then_http_response(move || {
                HttpResponse::new(
                    StatusCode::try_from(200).unwrap(),
                    SdkBody::from(format!(r#"{{"Arn":"{arn}","Name":"{NAME}"}}"#)),
                )
            });
        let delete = mock!(SdkClient::delete_partner_event_source).then_http_response(|| {
            HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::from("{}"))
        });
        let eb = eventbridge(&[&create, &describe, &delete]);
        assert_eq!(eb.create("eu-west-1", NAME, ACCOUNT).await.unwrap(), arn);
        assert_eq!(eb.describe("eu-west-1", NAME).await.unwrap(), arn);
        eb.delete("eu-west-1", NAME, ACCOUNT).await.unwrap();
    }

    #[tokio::test]
    async fn account_listing_follows_every_page() {
        let page = |account: &str, state: EventSourceState, token: Option<&str>| {
            let entry = PartnerEventSourceAccount::builder()
                .account(account)
                .state(state)
                .creation_time(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                .build();
            ListPartnerEventSourceAccountsOutput::builder()
                .partner_event_source_accounts(entry)
                .set_next_token(token.map(str::to_owned))
                .build()
        };
        let first = mock!(SdkClient::list_partner_event_source_accounts)
            .match_requests(|r| r.next_token().is_none())
            .then_output(move || page("111111111111", EventSourceState::Pending, Some("page-2")));
        let second = mock!(SdkClient::list_partner_event_source_accounts)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(move || page(ACCOUNT, EventSourceState::Active, None));
        let eb = eventbridge(&[&first, &second]);
        let accounts = eb.list_accounts("eu-west-1", NAME).await.unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[1].account, ACCOUNT);
        assert_eq!(accounts[1].state, Some(SourceState::Active));
        assert_eq!(
            accounts[0].creation_time.map(|t| t.as_second()),
            Some(1_800_000_000)
        );
    }

    #[tokio::test]
    async fn list_partner_event_sources_errors_are_classified() {
        let modeled = ["InternalException", "OperationDisabledException"];
        for (status, code, class) in cases(&modeled) {
            let rule = mock!(SdkClient::list_partner_event_sources)
                .then_http_response(move || wire_error(status, code));
            let eb = eventbridge(&[&rule]);
            check(
                "ListSources",
                code,
                eb.list_sources("eu-west-1", "aws.partner/acme.com/").await,
                class,
            );
        }
    }

    #[tokio::test]
    async fn source_listing_follows_every_page_a_call_each() {
        const PREFIX: &str = "aws.partner/acme.com/";
        let page = |names: &[&str], token: Option<&str>| {
            let sources = names.iter().map(|n| {
                let source = PartnerSource::builder().name(*n);
                // The model does not promise the ARN; one entry comes without it.
                match n.ends_with("b") {
                    true => source.build(),
                    false => source.arn(format!("arn:{n}")).build(),
                }
            });
            ListPartnerEventSourcesOutput::builder()
                .set_partner_event_sources(Some(sources.collect()))
                .set_next_token(token.map(str::to_owned))
                .build()
        };
        let asked = |token: Option<&'static str>| {
            move |r: &ListPartnerEventSourcesInput| {
                r.name_prefix() == Some(PREFIX)
                    && r.limit() == Some(SOURCES_PER_PAGE)
                    && r.next_token() == token
            }
        };
        let first = mock!(SdkClient::list_partner_event_sources)
            .match_requests(asked(None))
            .then_output(move || page(&["aws.partner/acme.com/a"], Some("p2")));
        let empty = mock!(SdkClient::list_partner_event_sources)
            .match_requests(asked(Some("p2")))
            .then_output(move || page(&[], Some("p3")));
        let last = mock!(SdkClient::list_partner_event_sources)
            .match_requests(asked(Some("p3")))
            .then_output(move || page(&["aws.partner/acme.com/b"], None));
        let eb = eventbridge(&[&first, &empty, &last]);
        let sources = eb.list_sources("eu-west-1", PREFIX).await.unwrap();
        assert_eq!(
            sources,
            [
                ListedSource {
                    name: "aws.partner/acme.com/a".into(),
                    arn: Some("arn:aws.partner/acme.com/a".into()),
                },
                ListedSource {
                    name: "aws.partner/acme.com/b".into(),
                    arn: None,
                },
            ]
        );
        let text = eb.metrics.render(&Default::default());
        assert!(
            text.contains(
                r#"aws_requests_total{operation="ListPartnerEventSources",outcome="success"} 3"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_token_that_comes_back_ends_the_account_listing() {
        let looping = mock!(SdkClient::list_partner_event_source_accounts)
            .match_requests(|r| r.event_source_name() == Some(NAME))
            .sequence()
            .output(|| {
                ListPartnerEventSourceAccountsOutput::builder()
                    .next_token("same")
                    .build()
            })
            .times(2)
            .build();
        let eb = eventbridge(&[&looping]);
        let e = eb.list_accounts("eu-west-1", NAME).await.unwrap_err();
        assert_eq!(e.code, "RepeatedNextToken");
        assert_eq!(looping.num_calls(), 2);
    }

    #[tokio::test]
    async fn every_call_is_counted_by_operation_and_outcome() {
        let rule = mock!(SdkClient::create_partner_event_source)
            .then_http_response(|| wire_error(400, "ThrottlingException"));
        let eb = eventbridge(&[&rule]);
        let _ = eb.create("eu-west-1", NAME, ACCOUNT).await;
        let text = eb.metrics.render(&Default::default());
        assert!(text.contains(
            r#"aws_requests_total{operation="CreatePartnerEventSource",outcome="ThrottlingException"} 1"#
        ), "{text}");
    }

    #[test]
    fn timeouts_are_retryable() {
        let err: aws_sdk_eventbridge::error::SdkError<
            aws_sdk_eventbridge::operation::create_partner_event_source::CreatePartnerEventSourceError,
            HttpResponse,
        > = aws_sdk_eventbridge::error::SdkError::timeout_error("operation timed out");
        let e = AwsError::from_sdk(err);
        assert_eq!(
            (e.class, e.code.as_str()),
            (AwsErrorClass::Retryable, "Timeout")
        );
    }

    #[tokio::test]
    async fn throttling_slows_the_budget_and_success_speeds_it_up() {
        let throttled = mock!(SdkClient::create_partner_event_source)
            .then_http_response(|| wire_error(400, "ThrottlingException"));
        let ok = mock!(SdkClient::delete_partner_event_source).then_output(|| {
            aws_sdk_eventbridge::operation::delete_partner_event_source::DeletePartnerEventSourceOutput::builder().build()
        });
        let eb = eventbridge(&[&throttled, &ok]);
        let _ = eb.create("eu-west-1", NAME, ACCOUNT).await;
        let me = eb.operator();
        assert_eq!(eb.budget(&me, "eu-west-1").rate(), 500.0);
        eb.delete("eu-west-1", NAME, ACCOUNT).await.unwrap();
        assert_eq!(eb.budget(&me, "eu-west-1").rate(), 510.0);
        assert_eq!(
            eb.budget(&me, "us-east-1").rate(),
            1000.0,
            "other regions untouched"
        );
    }

    #[tokio::test]
    async fn every_throttling_answer_slows_the_budget() {
        for (status, code) in [
            (400, "ThrottlingException"),
            (400, "Throttling"),
            (400, "TooManyRequestsException"),
            (400, "RequestLimitExceeded"),
            (400, "ThrottledException"),
            (400, "SlowDown"),
            (429, "SomethingNewFromAws"),
        ] {
            let throttled = mock!(SdkClient::create_partner_event_source)
                .then_http_response(move || wire_error(status, code));
            let eb = eventbridge(&[&throttled]);
            let _ = eb.create("eu-west-1", NAME, ACCOUNT).await;
            let me = eb.operator();
            assert_eq!(eb.budget(&me, "eu-west-1").rate(), 500.0, "{status} {code}");
        }
    }

    #[tokio::test]
    async fn other_retryable_answers_leave_the_rate_alone() {
        for (status, code) in [
            (400, "LimitExceededException"),
            (400, "ConcurrentModificationException"),
            (500, "InternalException"),
        ] {
            let failed = mock!(SdkClient::create_partner_event_source)
                .then_http_response(move || wire_error(status, code));
            let eb = eventbridge(&[&failed]);
            let _ = eb.create("eu-west-1", NAME, ACCOUNT).await;
            let me = eb.operator();
            assert_eq!(
                eb.budget(&me, "eu-west-1").rate(),
                1000.0,
                "{status} {code}"
            );
        }
    }
}
