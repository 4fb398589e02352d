//! The AWS edge of `import`: the partner API as the operator calls it (the same SDK
//! configuration without the SDK's retries, the request budget of the run flags, the
//! `aws_requests_total` metrics), and the listing of every source under a prefix with every
//! account it is shared with.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use super::ImportError;
use super::manifests::Found;
use crate::aws::budget::Budgets;
use crate::aws::eventbridge::EventBridge;
use crate::aws::identity::Identities;
use crate::aws::partner_api::{Operation, PartnerApi};
use crate::cli::config::RunArgs;
use crate::error::{AwsError, AwsErrorClass};
use crate::metrics::Metrics;
use crate::reconcile::backoff::retry_delay;

/// Attempts of one listing before a retryable error is the answer: as many as the SDK's
/// standard retry mode made when `import` relied on it, before it called through the budget.
const ATTEMPTS: u32 = 3;
/// First delay before a retry (the standard mode's initial backoff).
const RETRY_BASE: Duration = Duration::from_secs(1);
/// The most a delay grows to (the standard mode's maximum backoff).
const RETRY_CAP: Duration = Duration::from_secs(20);

/// How many `ListPartnerEventSourceAccounts` listings run at the same time. The budget paces
/// them; this only keeps a large import from taking one round trip per source in sequence.
const ACCOUNT_LISTINGS_AT_ONCE: usize = 4;

/// The partner API as `import` calls it, acting as the operator's own identity (the AWS
/// default chain with the global `--region` and `--aws-endpoint-url`), and the region it
/// lists in.
pub(crate) async fn eventbridge(aws: &RunArgs) -> Result<(EventBridge, String), ImportError> {
    // As `run` configures it: no SDK retries, so `retried` is the only loop.
    let identities = Identities::from_default_chain(
        aws.region.as_deref(),
        aws.aws_endpoint_url.as_deref(),
        aws.aws_timeout,
    )
    .await;
    let Some(region) = identities.region() else {
        return Err(ImportError::Usage(
            "no AWS region: set --region (or AWS_REGION, or a profile's region)".into(),
        ));
    };
    let budgets = Budgets::new(aws.budget()).map_err(ImportError::Usage)?;
    let operator = identities.operator().await;
    let eventbridge = EventBridge::new(operator, Arc::new(budgets), Arc::new(Metrics::new()));
    Ok((eventbridge, region))
}

/// Every source in `region` starting with `prefix` (`ListPartnerEventSources`, every page),
/// then every account each is shared with (`ListPartnerEventSourceAccounts`, every page).
pub(crate) async fn list(
    api: &impl PartnerApi,
    region: &str,
    prefix: &str,
) -> Result<Vec<Found>, ImportError> {
    let sources = retried(Operation::ListSources, || api.list_sources(region, prefix)).await?;
    let per_source: Vec<Vec<Found>> = futures::stream::iter(sources)
        .map(|source| async move {
            let accounts = retried(Operation::ListAccounts, || {
                api.list_accounts(region, &source.name)
            })
            .await?;
            Ok::<_, ImportError>(
                accounts
                    .into_iter()
                    // An entry without an account names no one an object could be made for.
                    .filter(|a| !a.account.is_empty())
                    .map(|a| Found {
                        source: source.name.clone(),
                        account: a.account,
                        arn: source.arn.clone(),
                    })
                    .collect(),
            )
        })
        .buffered(ACCOUNT_LISTINGS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(per_source.into_iter().flatten().collect())
}

/// `call` until it succeeds, fails for good, or has failed [`ATTEMPTS`] times, with jittered
/// exponential delays between. A retry of a paged listing starts it over from its first page:
/// listings are short, and a throttling answer has already slowed the budget that spaces the
/// pages out.
async fn retried<T, Fut>(
    operation: Operation,
    mut call: impl FnMut() -> Fut,
) -> Result<T, ImportError>
where
    Fut: Future<Output = Result<T, AwsError>>,
{
    let mut failures = 0;
    loop {
        match call().await {
            Err(e) if e.class == AwsErrorClass::Retryable && failures + 1 < ATTEMPTS => {
                let delay = retry_delay(failures, rand::random(), RETRY_BASE, RETRY_CAP);
                tokio::time::sleep(delay).await;
                failures += 1;
            }
            result => {
                return result.map_err(|error| ImportError::Aws {
                    operation: operation.name(),
                    error,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::partner_api::fake::{FakePartnerApi, arn, aws_error};
    use crate::resources::SourceState;

    const A: &str = "aws.partner/acme.com/a/x";
    const B: &str = "aws.partner/acme.com/b/x";
    const PREFIX: &str = "aws.partner/acme.com/";
    const REGION: &str = "eu-west-1";

    /// Source A shared with two accounts, B with one, and another partner's source.
    fn partner() -> FakePartnerApi {
        let api = FakePartnerApi::default();
        api.share(A, "111111111111", SourceState::Pending);
        api.share(A, "222222222222", SourceState::Active);
        api.share(B, "123456789012", SourceState::Pending);
        api.share(
            "aws.partner/acme.community/a/x",
            "123456789012",
            SourceState::Pending,
        );
        api
    }

    fn pairs(found: &[Found]) -> Vec<(&str, &str)> {
        found
            .iter()
            .map(|f| (f.source.as_str(), f.account.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn every_source_under_the_prefix_and_every_account_is_listed() {
        let api = partner();
        let mut listed = list(&api, REGION, PREFIX).await.unwrap();
        listed.sort();
        assert_eq!(
            pairs(&listed),
            [
                (A, "111111111111"),
                (A, "222222222222"),
                (B, "123456789012")
            ]
        );
        assert_eq!(listed[2].arn, Some(arn(REGION, B)));
        assert_eq!(
            api.calls(),
            [
                Operation::ListSources,
                Operation::ListAccounts,
                Operation::ListAccounts
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_listing_names_the_operation() {
        let api = partner();
        api.fail(
            Operation::ListSources,
            [aws_error("OperationDisabledException")],
        );
        let err = list(&api, REGION, PREFIX).await.unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let text = err.to_string();
        assert!(
            text.starts_with("ListPartnerEventSources failed: OperationDisabledException"),
            "{text}"
        );
        assert_eq!(api.calls(), [Operation::ListSources], "terminal: no retry");
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_tried_again_a_bounded_number_of_times() {
        let api = partner();
        api.fail(
            Operation::ListSources,
            [
                aws_error("ThrottlingException"),
                aws_error("InternalException"),
            ],
        );
        assert_eq!(list(&api, REGION, PREFIX).await.unwrap().len(), 3);

        let api = partner();
        api.fail(
            Operation::ListAccounts,
            (0..ATTEMPTS).map(|_| aws_error("InternalException")),
        );
        // One source, so that the scripted failures all fall on its listing.
        let text = list(&api, REGION, A).await.unwrap_err().to_string();
        assert!(
            text.starts_with("ListPartnerEventSourceAccounts failed: InternalException"),
            "{text}"
        );
        let mut expected = vec![Operation::ListSources];
        expected.extend((0..ATTEMPTS).map(|_| Operation::ListAccounts));
        assert_eq!(api.calls(), expected);
    }
}
