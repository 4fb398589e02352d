//! The `PartnerAccount` custom resource (cluster-scoped): the AWS identity sources are created
//! with, and the grant that says who may use it for what — source-name prefixes, namespaces,
//! customer accounts. Which account an object resolves to and whether the grant permits it is
//! decided in [`crate::accounts::grant`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of an IAM role ARN.
pub const ROLE_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$";

/// An AWS identity the operator acts as, and what it may be used for.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "eventbridgepartner.dev",
    version = "v1alpha1",
    kind = "PartnerAccount",
    plural = "partneraccounts",
    shortname = "pa",
    category = "eventbridge",
    status = "PartnerAccountStatus",
    derive = "PartialEq",
    doc = "An AWS identity (an IAM role to assume, or the operator's own) that PartnerEventSource objects are created with, and the grant that limits who may use it for which sources.",
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.roleArn"}"#,
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".status.callerIdentity.account"}"#,
    printcolumn = r#"{"name":"Default","type":"boolean","jsonPath":".spec.default"}"#,
    printcolumn = r#"{"name":"Sources","type":"integer","jsonPath":".status.sources"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PartnerAccountSpec {
    /// IAM role to assume for this partner account; the operator's own credentials when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN))]
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy requires. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224))]
    pub external_id: Option<String>,
    /// The role session name; defaults to `eventbridge-partner-operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), regex(pattern = r"^[\w+=,.@-]+$"))]
    pub session_name: Option<String>,
    /// Session tags passed to `AssumeRole`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub session_tags: BTreeMap<String, String>,
    /// Source-name prefixes this account owns, e.g. `aws.partner/acme.com/`; a source outside
    /// every prefix is refused.
    #[schemars(length(min = 1))]
    pub source_prefixes: Vec<String>,
    /// Namespaces whose objects may use this account; every namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Customer accounts sources may be offered to; any account when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_accounts: Option<Vec<String>>,
    /// Region for objects that name none; the operator's `--region` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// This account's own EventBridge request rate (calls per second); the operator's
    /// `--aws-rps` when unset. Two partner accounts that are one AWS account share one budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_rps: Option<f64>,
    /// Objects that name no partner account use this one. More than one default: none is used.
    #[serde(default)]
    pub default: bool,
}

/// What the operator observed about a partner account.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerAccountStatus {
    /// Who the identity is, from STS `GetCallerIdentity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_identity: Option<CallerIdentity>,
    /// How many PartnerEventSource objects use this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<i64>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the identity works (the role can be assumed); `Default`: a conflict between
    /// default accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The identity STS reports for a partner account.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallerIdentity {
    /// The AWS account ID.
    pub account: String,
    /// The caller's ARN (an assumed-role ARN when a role is assumed).
    pub arn: String,
}
