//! AWS identities: the operator's own (the default credential chain) and each PartnerAccount's
//! (an IAM role assumed over the default chain with aws-config's assume-role provider, whose
//! credentials the SDK caches and refreshes before they expire). Each identity knows the AWS
//! account it resolves to (STS `GetCallerIdentity`), which keys its request budget, and keeps
//! one EventBridge client per region.

use std::collections::HashMap;
use std::sync::Mutex;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_eventbridge::config::Region;
use aws_sdk_eventbridge::{Client, Config};

use crate::error::chain;
use crate::resources::{CallerIdentity, PartnerAccountSpec};

/// The budget key of an identity whose account could not be read.
pub const UNKNOWN_ACCOUNT: &str = "default";
/// The role session name when a PartnerAccount names none.
pub const SESSION_NAME: &str = "eventbridge-partner-operator";

/// One identity the operator calls EventBridge as.
#[derive(Debug)]
pub struct Identity {
    /// The PartnerAccount it belongs to; `None` for the operator's own.
    pub partner_account: Option<String>,
    /// The AWS account it resolves to.
    pub account: String,
    /// Calls per second this identity's budget allows, when its PartnerAccount sets one.
    pub rate: Option<f64>,
    config: Config,
    clients: Mutex<HashMap<String, Client>>,
}

impl Identity {
    /// An identity from an EventBridge configuration that already carries its credentials.
    pub fn new(partner_account: Option<String>, account: String, config: Config) -> Self {
        Identity {
            partner_account,
            account,
            rate: None,
            config,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The EventBridge client of `region`, made on first use.
    pub fn client(&self, region: &str) -> Client {
        // The map only caches clients; a poisoned lock still holds usable ones.
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                Client::from_conf(
                    self.config
                        .to_builder()
                        .region(Region::new(region.to_owned()))
                        .build(),
                )
            })
            .clone()
    }
}

/// Loads the AWS configuration from the default chain (IRSA web identity, EKS Pod Identity,
/// environment, profile) with the given region and endpoint overrides, a call ended after
/// `timeout`, and the SDK's own retries off: one attempt is the whole call, so every attempt
/// is one call against the budget and the operator's retry per object is the only loop.
async fn load_sdk_config(
    region: Option<&str>,
    endpoint: Option<&str>,
    timeout: Duration,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5).min(timeout))
                .operation_attempt_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        )
        .retry_config(RetryConfig::disabled());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Makes identities from the operator's SDK configuration.
#[derive(Clone, Debug)]
pub struct Identities {
    sdk: SdkConfig,
    eventbridge: Config,
}

impl Identities {
    /// `sdk` is the operator's own configuration (credentials, endpoint, region); `eventbridge`
    /// its EventBridge configuration (no SDK retries, timeouts).
    pub fn new(sdk: SdkConfig, eventbridge: Config) -> Self {
        Identities { sdk, eventbridge }
    }

    /// The identities `run` and `import` act with: the operator's own from the AWS default
    /// chain (with `--region` and `--aws-endpoint-url` when given, `--aws-timeout` per call,
    /// no SDK retries), and the partner accounts' made from it.
    pub async fn from_default_chain(
        region: Option<&str>,
        endpoint: Option<&str>,
        timeout: Duration,
    ) -> Self {
        let sdk = load_sdk_config(region, endpoint, timeout).await;
        let eventbridge = Config::from(&sdk);
        Identities::new(sdk, eventbridge)
    }

    /// The operator's default region (`--region`, else the SDK's region chain).
    pub fn region(&self) -> Option<String> {
        self.sdk.region().map(ToString::to_string)
    }

    /// The operator's own identity; its account is read from STS, or left unknown when STS
    /// cannot be reached (the budget is then keyed by region only).
    pub async fn operator(&self) -> Identity {
        let account = match caller_identity(&self.sdk).await {
            Ok(who) => who.account,
            Err(e) => {
                tracing::warn!("cannot read the operator's own AWS account from STS: {e}");
                UNKNOWN_ACCOUNT.to_owned()
            }
        };
        Identity::new(None, account, self.eventbridge.clone())
    }

    /// The identity of a PartnerAccount: its role assumed (or the operator's credentials when
    /// it names none), proven by `GetCallerIdentity`. The error is AWS's answer, which never
    /// carries the credentials or the external ID.
    pub async fn partner_account(
        &self,
        name: &str,
        spec: &PartnerAccountSpec,
    ) -> Result<(Identity, CallerIdentity), String> {
        let sdk = match &spec.role_arn {
            Some(role) => self.assumed(role, spec).await,
            None => self.sdk.clone(),
        };
        let who = caller_identity(&sdk).await?;
        let mut config = self.eventbridge.to_builder();
        if let Some(provider) = sdk.credentials_provider() {
            config = config.credentials_provider(provider);
        }
        let mut identity =
            Identity::new(Some(name.to_owned()), who.account.clone(), config.build());
        identity.rate = spec.aws_rps;
        Ok((identity, who))
    }

    /// The operator's configuration with credentials from `AssumeRole` on `role`.
    async fn assumed(&self, role: &str, spec: &PartnerAccountSpec) -> SdkConfig {
        let mut builder = AssumeRoleProvider::builder(role)
            .session_name(spec.session_name.as_deref().unwrap_or(SESSION_NAME))
            .configure(&self.sdk);
        if let Some(external_id) = &spec.external_id {
            builder = builder.external_id(external_id);
        }
        if !spec.session_tags.is_empty() {
            builder = builder.tags(spec.session_tags.clone());
        }
        if self.sdk.region().is_none() {
            // STS is global; any region reaches it.
            builder = builder.region(Region::new("us-east-1"));
        }
        let provider = builder.build().await;
        self.sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build()
    }
}

/// STS `GetCallerIdentity` with the configuration's credentials.
async fn caller_identity(sdk: &SdkConfig) -> Result<CallerIdentity, String> {
    let mut config = aws_sdk_sts::config::Builder::from(sdk);
    if sdk.region().is_none() {
        config = config.region(Region::new("us-east-1"));
    }
    let sts = aws_sdk_sts::Client::from_conf(config.build());
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| chain(&e))?;
    Ok(CallerIdentity {
        account: out.account.unwrap_or_default(),
        arn: out.arn.unwrap_or_default(),
    })
}
