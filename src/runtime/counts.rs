//! The object gauges, counted from the caches at scrape time: a pure function of the cached
//! objects and the time, so that what `/metrics` shows is always the cache as it is now and
//! an object or account that is gone leaves no series behind.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::metrics::{AgeLabels, ObjectCounts, ReasonLabels};
use crate::reconcile::status;
use crate::resources::conditions::{ConditionStatus, READY};
use crate::resources::{PartnerAccount, PartnerEventSource, SourceState};

/// The reason label of an object without a `Ready` condition yet.
const NO_REASON: &str = "None";

/// Counts `objects` by `Ready` status, AWS state, namespace and `Ready` reason, with the age
/// of the oldest object per reason, and reports which of `accounts` are ready, at `now`.
pub(crate) fn object_counts(
    objects: &[Arc<PartnerEventSource>],
    accounts: &[Arc<PartnerAccount>],
    now: Timestamp,
) -> ObjectCounts {
    let mut by_ready: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_reason: BTreeMap<ReasonLabels, i64> = BTreeMap::new();
    let mut oldest: BTreeMap<AgeLabels, Timestamp> = BTreeMap::new();
    let soon = now + status::EXPIRY_WARNING;
    let mut expiring_soon = 0;
    for obj in objects {
        let st = obj.status.as_ref();
        if let Some(st) = st
            && st.state == Some(SourceState::Pending)
            && st.expiration_time.as_ref().is_some_and(|t| t.0 <= soon)
        {
            expiring_soon += 1;
        }
        let ready = obj.condition(READY);
        let status = ready.map_or(ConditionStatus::Unknown.as_str(), |c| c.status.as_str());
        *by_ready.entry(status.to_owned()).or_default() += 1;
        let state = st
            .and_then(|s| s.state.as_ref())
            .map_or("Unknown", |s| s.as_str());
        *by_state.entry(state.to_owned()).or_default() += 1;
        let namespace = obj.namespace().unwrap_or_default();
        let reason = ready.map_or(NO_REASON, |c| c.reason.as_str());
        let labels = ReasonLabels {
            namespace: namespace.clone(),
            ready: status.to_owned(),
            reason: reason.to_owned(),
        };
        *by_reason.entry(labels).or_default() += 1;
        if let Some(since) = ready.map(|c| c.last_transition_time.0) {
            let labels = AgeLabels {
                namespace,
                reason: reason.to_owned(),
            };
            let first = oldest.entry(labels).or_insert(since);
            *first = (*first).min(since);
        }
    }
    ObjectCounts {
        by_ready: by_ready.into_iter().collect(),
        by_state: by_state.into_iter().collect(),
        expiring_soon,
        by_reason: by_reason.into_iter().collect(),
        oldest_by_reason: oldest
            .into_iter()
            .map(|(labels, since)| (labels, now.duration_since(since).as_secs_f64().max(0.0)))
            .collect(),
        partner_accounts: accounts.iter().map(|a| (a.name_any(), ready(a))).collect(),
    }
}

/// Whether a PartnerAccount reports `Ready=True`.
fn ready(account: &PartnerAccount) -> bool {
    account
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .is_some_and(|c| c.status == ConditionStatus::True)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::SignedDuration;

    use super::*;
    use crate::resources::{
        PartnerAccountStatus, PartnerEventSourceSpec, PartnerEventSourceStatus,
    };

    fn now() -> Timestamp {
        Timestamp::from_second(2_000_000_000).expect("a valid time")
    }

    fn condition(status: &str, reason: &str, minutes_ago: i64) -> Condition {
        Condition {
            type_: READY.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(now() - SignedDuration::from_mins(minutes_ago)),
        }
    }

    fn object(namespace: &str, name: &str, ready: Option<Condition>) -> Arc<PartnerEventSource> {
        let spec = PartnerEventSourceSpec {
            name: format!("aws.partner/acme.com/{name}/orders"),
            account: "123456789012".into(),
            region: None,
            deletion_policy: None,
            on_expiry: None,
            management_policy: None,
            partner_account_ref: None,
        };
        let mut obj = PartnerEventSource::new(name, spec);
        obj.metadata.namespace = Some(namespace.into());
        obj.status = ready.map(|c| PartnerEventSourceStatus {
            conditions: vec![c],
            ..PartnerEventSourceStatus::default()
        });
        Arc::new(obj)
    }

    #[test]
    fn objects_are_counted_by_namespace_and_reason_with_the_oldest_age() {
        let objects = [
            object("a", "one", Some(condition("False", "Retrying", 40))),
            object("a", "two", Some(condition("False", "Retrying", 5))),
            object("a", "three", Some(condition("True", "Created", 60))),
            object("b", "four", Some(condition("False", "Retrying", 2))),
            object("b", "five", None),
        ];
        let counts = object_counts(&objects, &[], now());
        let count = |ns: &str, ready: &str, reason: &str| {
            counts
                .by_reason
                .iter()
                .find(|(l, _)| l.namespace == ns && l.ready == ready && l.reason == reason)
                .map(|(_, n)| *n)
        };
        assert_eq!(count("a", "False", "Retrying"), Some(2));
        assert_eq!(count("a", "True", "Created"), Some(1));
        assert_eq!(count("b", "False", "Retrying"), Some(1));
        assert_eq!(count("b", "Unknown", NO_REASON), Some(1));
        assert_eq!(counts.by_reason.len(), 4);
        let age = |ns: &str, reason: &str| {
            counts
                .oldest_by_reason
                .iter()
                .find(|(l, _)| l.namespace == ns && l.reason == reason)
                .map(|(_, s)| *s)
        };
        assert_eq!(
            age("a", "Retrying"),
            Some(40.0 * 60.0),
            "the oldest, not the newest"
        );
        assert_eq!(age("b", "Retrying"), Some(2.0 * 60.0));
        assert_eq!(age("b", NO_REASON), None, "no condition, no age");
        assert_eq!(
            counts.by_ready,
            vec![
                ("False".into(), 3),
                ("True".into(), 1),
                ("Unknown".into(), 1)
            ]
        );
    }

    #[test]
    fn partner_accounts_are_ready_only_with_ready_true() {
        let account = |name: &str, ready: Option<&str>| {
            let spec = serde_json::from_value(
                serde_json::json!({"sourcePrefixes": ["aws.partner/acme.com/"]}),
            )
            .expect("a valid spec");
            let mut a = PartnerAccount::new(name, spec);
            a.status = ready.map(|status| PartnerAccountStatus {
                conditions: vec![condition(status, "IdentityReady", 1)],
                ..PartnerAccountStatus::default()
            });
            Arc::new(a)
        };
        let accounts = [
            account("works", Some("True")),
            account("fails", Some("False")),
            account("unchecked", None),
        ];
        let counts = object_counts(&[], &accounts, now());
        assert_eq!(
            counts.partner_accounts,
            vec![
                ("works".into(), true),
                ("fails".into(), false),
                ("unchecked".into(), false)
            ]
        );
    }
}
