//! The `PartnerEventSource` custom resource (`eventbridgepartner.dev/v1alpha1`) and the
//! validation of its spec.
//!
//! The same rules live in two places on purpose: the generated OpenAPI schema makes the API
//! server reject a bad manifest at `kubectl apply` time, and [`PartnerEventSourceSpec::validate`]
//! checks again in the controller, because a schema can be bypassed (an older CRD, a
//! `--validate=false` client, an object written before the CRD tightened).

use std::fmt;
use std::sync::LazyLock;

use clap::ValueEnum;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of a partner event source name, from the EventBridge model's `EventSourceName`
/// shape, anchored over the whole value.
pub const NAME_PATTERN: &str = r"^aws\.partner(/[.\-_A-Za-z0-9]+){2,}$";
/// Longest partner event source name EventBridge accepts.
pub const NAME_MAX_LEN: usize = 256;
/// Pattern of an AWS account ID, from the model's `AccountId` shape (`\d{12}`).
///
/// Digits are spelled `[0-9]` on purpose: AWS (Java) and the API server (Go's RE2, also
/// behind CEL) read `\d` as ASCII digits only, while the `regex` crate's `\d` is any Unicode
/// digit, so `^\d{12}$` here would accept an account of Arabic-Indic or fullwidth digits that
/// both of them reject. Every class in these patterns is ASCII so all three agree.
pub const ACCOUNT_PATTERN: &str = r"^[0-9]{12}$";
/// Pattern of an AWS region name such as `eu-west-1` or `us-gov-west-1` (ASCII only, as
/// [`ACCOUNT_PATTERN`] explains).
pub const REGION_PATTERN: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$";

static NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(NAME_PATTERN).expect("NAME_PATTERN is a valid regex"));
static ACCOUNT_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(ACCOUNT_PATTERN).expect("ACCOUNT_PATTERN is a valid regex"));
static REGION_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(REGION_PATTERN).expect("REGION_PATTERN is a valid regex"));

/// Desired state of one partner event source, offered to one customer AWS account.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "eventbridgepartner.dev",
    version = "v1alpha1",
    kind = "PartnerEventSource",
    plural = "partnereventsources",
    shortname = "pes",
    category = "eventbridge",
    namespaced,
    status = "PartnerEventSourceStatus",
    derive = "PartialEq",
    doc = "A partner event source in Amazon EventBridge, offered to one customer AWS account and kept in line by eventbridge-partner-operator.",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.name"}"#,
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".spec.account"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"ARN","type":"string","jsonPath":".status.arn","priority":1}"#
)]
#[x_kube(validation = Rule::new(
    "has(self.region) == has(oldSelf.region) && (!has(self.region) || self.region == oldSelf.region)"
).message("spec.region is immutable"))]
#[x_kube(validation = Rule::new(
    "has(self.partnerAccountRef) == has(oldSelf.partnerAccountRef) && (!has(self.partnerAccountRef) || self.partnerAccountRef == oldSelf.partnerAccountRef)"
).message("spec.partnerAccountRef is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct PartnerEventSourceSpec {
    /// Name of the partner event source in EventBridge:
    /// `aws.partner/<partner_name>/<event_namespace>/<event_name>`. Immutable.
    #[schemars(length(min = 1, max = NAME_MAX_LEN), regex(pattern = NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.name is immutable"))]
    pub name: String,

    /// The customer's 12-digit AWS account ID that may create the matching partner event bus.
    /// Immutable.
    #[schemars(regex(pattern = ACCOUNT_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.account is immutable"))]
    pub account: String,

    /// AWS region that holds the source. Defaults to the operator's `--region`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: Option<String>,

    /// What happens to the source in AWS when this object is deleted: `Delete` removes it,
    /// `Retain` leaves it. Defaults to the operator's `--default-deletion-policy` (`Delete`
    /// unless the platform team changed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// What to do when AWS expires the source because its customer never activated it:
    /// `Stop` (the default) reports `Ready=False, reason=Expired` and creates nothing; `Recreate`
    /// creates it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_expiry: Option<OnExpiry>,

    /// `Manage` (the default) creates, keeps and deletes the source; `Observe` only reports
    /// whether it exists for `spec.account`, never creates or deletes it, and claims no name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,

    /// The PartnerAccount whose identity creates the source, and whose grant must allow it.
    /// Defaults to the PartnerAccount marked `default`, else the operator's own identity.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_account_ref: Option<PartnerAccountRef>,
}

/// A reference to a cluster-scoped PartnerAccount.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct PartnerAccountRef {
    /// The PartnerAccount's name.
    pub name: String,
}

/// What the operator does when AWS expires a source its customer never activated.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum OnExpiry {
    /// Report `Expired` and leave it: no one is listening.
    #[default]
    Stop,
    /// Create the source again.
    Recreate,
}

/// Whether the operator manages the source or only reports on it.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum ManagementPolicy {
    /// Create, keep and delete the source.
    #[default]
    Manage,
    /// Only report whether the source exists; never create or delete it.
    Observe,
}

/// The annotation that stops every AWS call for an object while it is `"true"`.
pub const PAUSED_ANNOTATION: &str = "eventbridgepartner.dev/paused";

// The same type is the operator's `--default-deletion-policy` value (clap's ValueEnum).
/// Whether deleting the Kubernetes object deletes the partner event source in AWS.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default, ValueEnum,
)]
#[value(rename_all = "PascalCase")]
pub enum DeletionPolicy {
    /// Delete the partner event source in AWS.
    #[default]
    Delete,
    /// Leave the partner event source in AWS.
    Retain,
}

/// The state of a partner event source for one customer account, as
/// `ListPartnerEventSourceAccounts` reports it. Stored as AWS spells it; a state AWS adds later
/// is kept verbatim as [`SourceState::Unknown`] (the schema is a plain string for that reason).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(from = "String", into = "String")]
pub enum SourceState {
    /// The customer has not created the matching event bus yet.
    Pending,
    /// The customer's matching event bus exists.
    Active,
    /// The source was deleted under the customer's bus.
    Deleted,
    /// A state this operator does not know, as AWS spelled it.
    Unknown(String),
}

impl SourceState {
    /// The state as AWS spells it.
    pub fn as_str(&self) -> &str {
        match self {
            SourceState::Pending => "PENDING",
            SourceState::Active => "ACTIVE",
            SourceState::Deleted => "DELETED",
            SourceState::Unknown(other) => other,
        }
    }
}

/// A state reads as the string AWS sent, so it compares with AWS's spelling directly.
impl std::ops::Deref for SourceState {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for SourceState {
    fn from(s: String) -> Self {
        match s.as_str() {
            "PENDING" => SourceState::Pending,
            "ACTIVE" => SourceState::Active,
            "DELETED" => SourceState::Deleted,
            _ => SourceState::Unknown(s),
        }
    }
}

impl From<SourceState> for String {
    fn from(s: SourceState) -> Self {
        match s {
            SourceState::Unknown(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

/// Observed state of the partner event source, written by the operator.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerEventSourceStatus {
    /// ARN of the partner event source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// State of the source for `spec.account`: `PENDING` until the customer creates the
    /// matching event bus, then `ACTIVE`; `DELETED` once the source is gone under the bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub state: Option<SourceState>,
    /// When EventBridge created the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Time>,
    /// When a pending source expires if the customer never activates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<Time>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The PartnerAccount the object resolved to at its first pass, kept from then on; empty
    /// for the operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_account: Option<String>,
    /// `Ready` (the source exists in AWS for `spec.account`) and `Activated` (the customer
    /// created the matching event bus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One reason a spec is unacceptable, naming the field and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.account`.
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl PartnerEventSourceSpec {
    /// Checks the spec against the rules EventBridge enforces, so that a bad value never
    /// reaches AWS. Returns every problem found, not only the first.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.name.is_empty() || self.name.chars().count() > NAME_MAX_LEN {
            errors.push(FieldError {
                field: "spec.name",
                message: format!(
                    "must be 1 to {NAME_MAX_LEN} characters long (got {})",
                    self.name.chars().count()
                ),
            });
        } else if !NAME_RE.is_match(&self.name) {
            errors.push(FieldError {
                field: "spec.name",
                message: format!(
                    "{:?} must look like aws.partner/<partner_name>/<event_namespace>/<event_name>: \
                     the prefix aws.partner, then at least two segments of letters, digits, '.', '-' or '_'",
                    self.name
                ),
            });
        }
        if !ACCOUNT_RE.is_match(&self.account) {
            errors.push(FieldError {
                field: "spec.account",
                message: format!(
                    "{:?} must be a 12-digit AWS account ID (digits only, no dashes)",
                    self.account
                ),
            });
        }
        if let Some(region) = &self.region
            && !REGION_RE.is_match(region)
        {
            errors.push(FieldError {
                field: "spec.region",
                message: format!("{region:?} must be an AWS region name such as eu-west-1"),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl PartnerEventSource {
    /// The PartnerAccount recorded in the status at the first pass (empty: the operator's own
    /// identity).
    pub fn recorded_partner_account(&self) -> Option<&str> {
        self.status.as_ref()?.partner_account.as_deref()
    }

    /// The PartnerAccount the spec names.
    pub fn partner_account_reference(&self) -> Option<&str> {
        Some(self.spec.partner_account_ref.as_ref()?.name.as_str())
    }

    /// Whether the paused annotation says `"true"`.
    pub fn paused(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PAUSED_ANNOTATION))
            .is_some_and(|v| v == "true")
    }

    /// The condition of the given type, if the status carries one.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, account: &str) -> PartnerEventSourceSpec {
        PartnerEventSourceSpec {
            name: name.into(),
            account: account.into(),
            region: None,
            deletion_policy: None,
            on_expiry: None,
            management_policy: None,
            partner_account_ref: None,
        }
    }

    fn fields(result: Result<(), Vec<FieldError>>) -> Vec<&'static str> {
        result
            .err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn accepts_a_well_formed_spec() {
        assert_eq!(
            spec("aws.partner/acme.com/customer-4711/orders", "123456789012").validate(),
            Ok(())
        );
        assert_eq!(
            spec("aws.partner/acme.com/orders", "000000000000").validate(),
            Ok(())
        );
    }

    #[test]
    fn rejects_names_outside_the_model_pattern() {
        for bad in [
            "",
            "acme.com/customer/orders",
            "aws.partner/acme.com",
            "aws.partner/acme.com/cust omer/orders",
            "aws.partner/acme.com/customer/orders!",
            "aws.partner//orders",
            "aws.partner/acme.com/orders/",
        ] {
            let errors = spec(bad, "123456789012").validate().unwrap_err();
            assert_eq!(errors.len(), 1, "{bad:?}");
            assert_eq!(errors[0].field, "spec.name", "{bad:?}");
        }
        let long = format!("aws.partner/acme.com/{}", "a".repeat(250));
        assert_eq!(
            fields(spec(&long, "123456789012").validate()),
            ["spec.name"]
        );
        let errors = spec(&long, "123456789012").validate().unwrap_err();
        assert!(
            errors[0].message.contains("1 to 256"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn rejects_accounts_that_are_not_twelve_digits() {
        for bad in [
            "12345678901",
            "1234567890123",
            "12345678901a",
            "1234-5678-9012",
            "",
        ] {
            assert_eq!(
                fields(spec("aws.partner/acme.com/c/orders", bad).validate()),
                ["spec.account"],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn digits_are_ascii_only_as_for_aws_and_the_api_server() {
        // Arabic-Indic and fullwidth digits are Unicode digits, but not `\d` for AWS or RE2.
        for bad in ["١٢٣٤٥٦٧٨٩٠١٢", "１２３４５６７８９０１２", "12345678901٢"]
        {
            assert_eq!(
                fields(spec("aws.partner/acme.com/c/orders", bad).validate()),
                ["spec.account"],
                "{bad:?}"
            );
        }
        let mut s = spec("aws.partner/acme.com/c/orders", "123456789012");
        s.region = Some("eu-west-١".into());
        assert_eq!(fields(s.validate()), ["spec.region"]);
    }

    #[test]
    fn reports_every_bad_field_at_once() {
        let mut s = spec("orders", "42");
        s.region = Some("Europe".into());
        assert_eq!(
            fields(s.validate()),
            ["spec.name", "spec.account", "spec.region"]
        );
    }

    #[test]
    fn source_states_keep_their_aws_spelling_and_unknown_ones_survive() {
        for (text, state) in [
            ("PENDING", SourceState::Pending),
            ("ACTIVE", SourceState::Active),
            ("DELETED", SourceState::Deleted),
            ("SUSPENDED", SourceState::Unknown("SUSPENDED".into())),
        ] {
            assert_eq!(SourceState::from(text.to_owned()), state);
            assert_eq!(serde_json::to_value(&state).unwrap(), text);
            let back: SourceState = serde_json::from_value(text.into()).unwrap();
            assert_eq!(back, state);
        }
    }

    #[test]
    fn messages_name_the_field_and_what_is_allowed() {
        let errors = spec("aws.partner/acme.com/orders", "12345")
            .validate()
            .unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "spec.account: \"12345\" must be a 12-digit AWS account ID (digits only, no dashes)"
        );
    }
}
