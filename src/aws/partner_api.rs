//! The EventBridge partner operations the operator and `import` use, as a trait: the real SDK
//! wrapper ([`crate::aws::eventbridge::EventBridge`]) implements it in production, an in-memory
//! fake in the unit tests. Results are plain values (a paged listing gives every page's
//! entries at once); every failure is an [`AwsError`] already classified by
//! [`crate::error::classify`].

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::jiff::Timestamp;

use crate::error::AwsError;
use crate::resources::SourceState;
use crate::resources::conditions::EventAction;

/// One account a source is shared with, from `ListPartnerEventSourceAccounts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceAccount {
    /// The customer account.
    pub account: String,
    /// The source's state for that account.
    pub state: Option<SourceState>,
    /// When the source was created.
    pub creation_time: Option<Timestamp>,
    /// When a pending source expires.
    pub expiration_time: Option<Timestamp>,
}

/// One partner event source, from `ListPartnerEventSources`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedSource {
    /// The source's name.
    pub name: String,
    /// The source's ARN, when AWS gave it (the model does not promise it).
    pub arn: Option<String>,
}

/// An EventBridge partner operation, for metrics, logs and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `CreatePartnerEventSource`.
    Create,
    /// `ListPartnerEventSourceAccounts`.
    ListAccounts,
    /// `DescribePartnerEventSource`.
    Describe,
    /// `DeletePartnerEventSource`.
    Delete,
    /// `ListPartnerEventSources`.
    ListSources,
}

impl Operation {
    /// The EventBridge operation name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "CreatePartnerEventSource",
            Operation::ListAccounts => "ListPartnerEventSourceAccounts",
            Operation::Describe => "DescribePartnerEventSource",
            Operation::Delete => "DeletePartnerEventSource",
            Operation::ListSources => "ListPartnerEventSources",
        }
    }

    /// The Event `action` of a step that made this call.
    pub fn action(self) -> EventAction {
        match self {
            Operation::Create => EventAction::Create,
            Operation::ListAccounts => EventAction::ListAccounts,
            Operation::Describe => EventAction::Describe,
            Operation::Delete => EventAction::Delete,
            Operation::ListSources => EventAction::ListSources,
        }
    }
}

/// The partner side of EventBridge, in one region per call.
pub trait PartnerApi: Sync {
    /// `CreatePartnerEventSource(name, account)`; the new source's ARN.
    fn create(
        &self,
        region: &str,
        name: &str,
        account: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// `ListPartnerEventSourceAccounts(name)`, every page.
    fn list_accounts(
        &self,
        region: &str,
        name: &str,
    ) -> impl Future<Output = Result<Vec<SourceAccount>, AwsError>> + Send;

    /// `DescribePartnerEventSource(name)`; the source's ARN.
    fn describe(
        &self,
        region: &str,
        name: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// `DeletePartnerEventSource(name, account)`.
    fn delete(
        &self,
        region: &str,
        name: &str,
        account: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// `ListPartnerEventSources(NamePrefix = prefix)`, every page: the sources whose names
    /// start with `prefix`.
    fn list_sources(
        &self,
        region: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ListedSource>, AwsError>> + Send;
}

/// A partner API that counts the calls made through it, for the log line of a pass.
pub struct Counted<'a, A> {
    inner: &'a A,
    calls: AtomicU32,
}

impl<'a, A: PartnerApi> Counted<'a, A> {
    /// Counts the calls made to `inner` from now on.
    pub fn new(inner: &'a A) -> Self {
        Counted {
            inner,
            calls: AtomicU32::new(0),
        }
    }

    /// Calls made so far (a listing of every page counts once).
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) -> &'a A {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner
    }
}

impl<A: PartnerApi> PartnerApi for Counted<'_, A> {
    async fn create(&self, region: &str, name: &str, account: &str) -> Result<String, AwsError> {
        self.count().create(region, name, account).await
    }

    async fn list_accounts(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Vec<SourceAccount>, AwsError> {
        self.count().list_accounts(region, name).await
    }

    async fn describe(&self, region: &str, name: &str) -> Result<String, AwsError> {
        self.count().describe(region, name).await
    }

    async fn delete(&self, region: &str, name: &str, account: &str) -> Result<(), AwsError> {
        self.count().delete(region, name, account).await
    }

    async fn list_sources(
        &self,
        region: &str,
        prefix: &str,
    ) -> Result<Vec<ListedSource>, AwsError> {
        self.count().list_sources(region, prefix).await
    }
}

/// An in-memory partner API for unit tests: sources with their accounts, scripted failures
/// per operation, and a log of every call.
#[cfg(test)]
pub mod fake {
    use std::collections::{BTreeMap, HashMap, VecDeque};
    use std::sync::Mutex;

    use super::*;
    use crate::error::{classify, is_throttling};

    /// The fake's state.
    #[derive(Default)]
    struct State {
        /// Source name → the accounts it is shared with.
        sources: BTreeMap<String, Vec<SourceAccount>>,
        /// Failures to answer with, per operation, before the normal behaviour.
        script: HashMap<&'static str, VecDeque<AwsError>>,
        calls: Vec<Operation>,
    }

    /// A partner API in memory.
    #[derive(Default)]
    pub struct FakePartnerApi {
        state: Mutex<State>,
        /// The time sources are created at.
        pub now: Option<Timestamp>,
    }

    /// An error as AWS would answer it with this code (HTTP 400 unless it is a 5xx code).
    pub fn aws_error(code: &str) -> AwsError {
        let status = if code == "InternalException" {
            500
        } else {
            400
        };
        AwsError {
            class: classify(code, Some(status)),
            code: code.into(),
            message: format!("{code} message"),
            request_id: Some("req-1".into()),
            throttling: is_throttling(code, Some(status)),
        }
    }

    /// The ARN EventBridge gives a source in `region`.
    pub fn arn(region: &str, name: &str) -> String {
        format!("arn:aws:events:{region}::event-source/{name}")
    }

    impl FakePartnerApi {
        /// An empty partner API whose sources are created at `now`.
        pub fn at(now: Timestamp) -> Self {
            FakePartnerApi {
                now: Some(now),
                ..Default::default()
            }
        }

        fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.state
                .lock()
                .expect("a test panicked while holding the fake")
        }

        /// Makes the next calls of `operation` fail with these errors, in order.
        pub fn fail(&self, operation: Operation, errors: impl IntoIterator<Item = AwsError>) {
            self.state()
                .script
                .entry(operation.name())
                .or_default()
                .extend(errors);
        }

        /// Puts a source in place, shared with `account` in `state`, as if made earlier.
        pub fn insert(&self, name: &str, account: &str, state: SourceState) {
            let entry = SourceAccount {
                account: account.into(),
                state: Some(state),
                creation_time: self.now,
                expiration_time: self.now.map(|t| t + jiff_days(14)),
            };
            self.state().sources.insert(name.into(), vec![entry]);
        }

        /// Shares a source with one more account (making the source if missing), as a partner
        /// that offers one source to several customers did.
        pub fn share(&self, name: &str, account: &str, state: SourceState) {
            let entry = SourceAccount {
                account: account.into(),
                state: Some(state),
                creation_time: self.now,
                expiration_time: None,
            };
            self.state()
                .sources
                .entry(name.into())
                .or_default()
                .push(entry);
        }

        /// Changes the state of a source for every account, as a customer would.
        pub fn set_state(&self, name: &str, state: SourceState) {
            for entry in self.state().sources.get_mut(name).into_iter().flatten() {
                if state == SourceState::Active {
                    entry.expiration_time = None;
                }
                entry.state = Some(state.clone());
            }
        }

        /// Removes a source behind the operator's back.
        pub fn remove(&self, name: &str) {
            self.state().sources.remove(name);
        }

        /// Whether a source exists.
        pub fn exists(&self, name: &str) -> bool {
            self.state().sources.contains_key(name)
        }

        /// Every call made so far, in order.
        pub fn calls(&self) -> Vec<Operation> {
            self.state().calls.clone()
        }

        /// Logs the call and returns the scripted failure for it, if any.
        fn begin(&self, operation: Operation) -> Result<(), AwsError> {
            let mut state = self.state();
            state.calls.push(operation);
            match state
                .script
                .get_mut(operation.name())
                .and_then(VecDeque::pop_front)
            {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }

    fn jiff_days(days: i64) -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::from_hours(24 * days)
    }

    impl PartnerApi for FakePartnerApi {
        async fn create(
            &self,
            region: &str,
            name: &str,
            account: &str,
        ) -> Result<String, AwsError> {
            self.begin(Operation::Create)?;
            if self.exists(name) {
                return Err(aws_error("ResourceAlreadyExistsException"));
            }
            self.insert(name, account, SourceState::Pending);
            Ok(arn(region, name))
        }

        async fn list_accounts(
            &self,
            _region: &str,
            name: &str,
        ) -> Result<Vec<SourceAccount>, AwsError> {
            self.begin(Operation::ListAccounts)?;
            self.state()
                .sources
                .get(name)
                .cloned()
                .ok_or_else(|| aws_error("ResourceNotFoundException"))
        }

        async fn describe(&self, region: &str, name: &str) -> Result<String, AwsError> {
            self.begin(Operation::Describe)?;
            match self.exists(name) {
                true => Ok(arn(region, name)),
                false => Err(aws_error("ResourceNotFoundException")),
            }
        }

        async fn delete(&self, _region: &str, name: &str, _account: &str) -> Result<(), AwsError> {
            self.begin(Operation::Delete)?;
            match self.state().sources.remove(name) {
                Some(_) => Ok(()),
                None => Err(aws_error("ResourceNotFoundException")),
            }
        }

        /// In name order, as the map keeps them; paging is the production side's concern.
        async fn list_sources(
            &self,
            region: &str,
            prefix: &str,
        ) -> Result<Vec<ListedSource>, AwsError> {
            self.begin(Operation::ListSources)?;
            Ok(self
                .state()
                .sources
                .keys()
                .filter(|name| name.starts_with(prefix))
                .map(|name| ListedSource {
                    name: name.clone(),
                    arn: Some(arn(region, name)),
                })
                .collect())
        }
    }
}
