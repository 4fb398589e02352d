//! Every case of the design's reconcile semantics, run against the in-memory partner API:
//! the calls each pass makes, and the status, Events and requeue it ends with.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::aws::partner_api::fake::{FakePartnerApi, arn, aws_error};
use crate::error::AwsErrorClass;
use crate::resources::conditions::PAUSED;
use crate::resources::conditions::{ACTIVATED, READY};
use crate::resources::{
    ManagementPolicy, OnExpiry, PartnerEventSourceSpec, PartnerEventSourceStatus, SourceState,
};

const NAME: &str = "aws.partner/acme.com/customer-4711/orders";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

use Operation::{Create, Delete, Describe, ListAccounts};

fn spec() -> PartnerEventSourceSpec {
    PartnerEventSourceSpec {
        name: NAME.into(),
        account: ACCOUNT.into(),
        region: None,
        deletion_policy: None,
        on_expiry: None,
        management_policy: None,
        partner_account_ref: None,
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn aws() -> FakePartnerApi {
    FakePartnerApi::at(now())
}

/// One object as the reconciler would see it.
struct Case {
    spec: PartnerEventSourceSpec,
    deleting: bool,
    ownership: Ownership,
    region: Option<&'static str>,
    status: Option<PartnerEventSourceStatus>,
    failures: u32,
    settings: Settings,
    paused: bool,
    access: Access,
    now: Timestamp,
}

impl Case {
    fn new() -> Case {
        Case {
            spec: spec(),
            deleting: false,
            ownership: Ownership::Owner,
            region: Some(REGION),
            status: None,
            failures: 0,
            settings: Settings::default(),
            paused: false,
            access: Access::Granted,
            now: now(),
        }
    }

    /// Runs one pass against `api`: apply, or cleanup when the object is being deleted.
    async fn run(&self, api: &FakePartnerApi) -> Outcome {
        let observed = Observed {
            spec: &self.spec,
            generation: Some(1),
            status: self.status.as_ref(),
            ownership: &self.ownership,
            region: self.region,
            failures: self.failures,
            jitter: 0.5,
            paused: self.paused,
            access: &self.access,
            partner_account: Some(""),
            now: self.now,
        };
        if self.deleting {
            cleanup(api, &observed, &self.settings).await
        } else {
            apply(api, &observed, &self.settings).await
        }
    }
}

fn condition<'a>(outcome: &'a Outcome, type_: &str) -> &'a Condition {
    outcome
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {outcome:?}"))
}

fn reasons(outcome: &Outcome) -> Vec<&'static str> {
    outcome.notes.iter().map(|n| n.reason.as_str()).collect()
}

/// The status of an object made Ready by a first pass.
async fn ready_status() -> (FakePartnerApi, PartnerEventSourceStatus) {
    let api = aws();
    let outcome = Case::new().run(&api).await;
    (api, outcome.status.unwrap())
}

fn known(status: PartnerEventSourceStatus) -> Case {
    Case {
        status: Some(status),
        ..Case::new()
    }
}

#[tokio::test]
async fn create_succeeds_with_one_call_and_status_carries_arn_and_state() {
    let api = aws();
    let outcome = Case::new().run(&api).await;
    assert_eq!(
        api.calls(),
        [Create],
        "the create answer is enough for Ready"
    );
    assert_eq!(outcome.result, PassResult::Ready);
    let status = outcome.status.as_ref().unwrap();
    assert_eq!(status.arn, Some(arn(REGION, NAME)));
    assert_eq!(status.state, Some(SourceState::Pending));
    assert_eq!(status.creation_time, None, "times come with the next look");
    assert_eq!(status.observed_generation, Some(1));
    let ready = condition(&outcome, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Created")
    );
    let activated = condition(&outcome, ACTIVATED);
    assert_eq!(
        (activated.status.as_str(), activated.reason.as_str()),
        ("False", "Pending")
    );
    assert_eq!(reasons(&outcome), ["Created"]);
    assert!(!outcome.notes[0].warning);
    // Requeued at the resync interval (with at most 10% jitter) to catch drift.
    let Requeue::After(d) = outcome.requeue else {
        panic!("{outcome:?}")
    };
    assert!(
        d >= Duration::from_secs(270) && d <= Duration::from_secs(330),
        "{d:?}"
    );
    assert_eq!(outcome.failures, 0);
}

#[tokio::test]
async fn the_next_look_brings_creation_and_expiration_times() {
    let (api, status) = ready_status().await;
    let outcome = known(status).run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts]);
    let status = outcome.status.as_ref().unwrap();
    assert_eq!(status.creation_time, Some(Time(now())));
    assert!(status.expiration_time.is_some());
    assert_eq!(condition(&outcome, READY).reason, "Created");
    assert!(outcome.notes.is_empty(), "nothing new to tell");
}

#[tokio::test]
async fn already_exists_for_the_same_account_is_adopted_with_the_described_arn() {
    let api = aws();
    api.insert(NAME, ACCOUNT, SourceState::Pending);
    let outcome = Case::new().run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts, Describe]);
    assert_eq!(outcome.result, PassResult::Ready);
    assert_eq!(
        outcome.status.as_ref().unwrap().arn,
        Some(arn(REGION, NAME))
    );
    assert_eq!(condition(&outcome, READY).reason, "Adopted");
    assert_eq!(reasons(&outcome), ["Adopted"]);
}

#[tokio::test]
async fn adopting_a_known_object_describes_instead_of_trusting_a_stale_arn() {
    let (_, mut status) = ready_status().await;
    status.arn = Some("arn:aws:events:eu-west-1::event-source/stale".into());
    // The source vanished and came back (made by someone else) between two passes.
    let api = aws();
    api.fail(ListAccounts, [aws_error("ResourceNotFoundException")]);
    api.insert(NAME, ACCOUNT, SourceState::Pending);
    let outcome = known(status).run(&api).await;
    assert_eq!(api.calls(), [ListAccounts, Create, ListAccounts, Describe]);
    assert_eq!(
        outcome.status.as_ref().unwrap().arn,
        Some(arn(REGION, NAME))
    );
    assert_eq!(condition(&outcome, READY).reason, "Adopted");
}

#[tokio::test]
async fn already_exists_for_another_account_is_a_name_conflict_without_retry_storm() {
    let api = aws();
    api.insert(NAME, "999999999999", SourceState::Pending);
    let outcome = Case::new().run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts]);
    assert_eq!(outcome.result, PassResult::Conflict);
    let ready = condition(&outcome, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NameConflict")
    );
    assert!(ready.message.contains("999999999999"), "{}", ready.message);
    assert_eq!(
        outcome.requeue,
        Requeue::After(Settings::default().terminal_requeue)
    );
    assert_eq!(outcome.failures, 0);
    assert!(outcome.status.as_ref().unwrap().arn.is_none());
}

#[tokio::test]
async fn a_source_gone_between_already_exists_and_its_listing_is_retried() {
    let api = aws();
    api.fail(Create, [aws_error("ResourceAlreadyExistsException")]);
    let outcome = Case::new().run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts]);
    assert_eq!(outcome.result, PassResult::Retrying);
    assert_eq!(outcome.failures, 1);
    assert!(condition(&outcome, READY).message.contains("gone now"));

    // Gone between the listing and the describe: retried too.
    let api = aws();
    api.insert(NAME, ACCOUNT, SourceState::Pending);
    api.fail(Describe, [aws_error("ResourceNotFoundException")]);
    let outcome = Case::new().run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts, Describe]);
    assert_eq!(outcome.result, PassResult::Retrying);
}

#[tokio::test]
async fn transient_errors_retry_with_growing_capped_jittered_delay() {
    for code in [
        "ConcurrentModificationException",
        "LimitExceededException",
        "ThrottlingException",
        "InternalException",
    ] {
        let mut delays = Vec::new();
        for failures in 0..12 {
            let api = aws();
            api.fail(Create, [aws_error(code)]);
            let case = Case {
                failures,
                ..Case::new()
            };
            let outcome = case.run(&api).await;
            assert_eq!(api.calls(), [Create]);
            assert_eq!(outcome.result, PassResult::Retrying, "{code}");
            assert_eq!(outcome.failures, failures + 1);
            let ready = condition(&outcome, READY);
            assert_eq!(
                (ready.status.as_str(), ready.reason.as_str()),
                ("False", "Retrying")
            );
            assert!(ready.message.contains(code), "{}", ready.message);
            assert!(outcome.notes[0].warning && outcome.notes[0].reason == Reason::Retrying);
            let Requeue::After(d) = outcome.requeue else {
                panic!()
            };
            delays.push(d);
        }
        assert!(
            delays.windows(2).all(|w| w[0] <= w[1]),
            "{code}: {delays:?}"
        );
        assert!(delays[0] < Duration::from_secs(2), "{delays:?}");
        assert!(*delays.last().unwrap() <= Settings::default().backoff_cap);
        assert!(delays[11] == delays[10], "capped: {delays:?}");
    }
}

#[tokio::test]
async fn timeouts_and_connection_errors_retry() {
    for code in ["Timeout", "ConnectionError"] {
        let api = aws();
        api.fail(
            Create,
            [AwsError {
                class: AwsErrorClass::Retryable,
                code: code.into(),
                message: "no answer".into(),
                request_id: None,
                throttling: false,
            }],
        );
        let outcome = Case::new().run(&api).await;
        assert_eq!(outcome.result, PassResult::Retrying, "{code}");
    }
}

#[tokio::test]
async fn terminal_errors_give_an_actionable_reason_and_a_slow_requeue() {
    let cases = [
        ("OperationDisabledException", "OperationDisabled"),
        ("AccessDeniedException", "AccessDenied"),
        ("ValidationException", "InvalidRequest"),
        ("UnrecognizedClientException", "InvalidCredentials"),
    ];
    for (code, reason) in cases {
        let api = aws();
        api.fail(Create, [aws_error(code)]);
        let outcome = Case::new().run(&api).await;
        assert_eq!(api.calls(), [Create]);
        assert_eq!(outcome.result, PassResult::Terminal, "{code}");
        let ready = condition(&outcome, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", reason)
        );
        assert!(ready.message.contains(code));
        assert_eq!(
            outcome.requeue,
            Requeue::After(Settings::default().terminal_requeue)
        );
        assert_eq!(outcome.failures, 0, "terminal errors do not grow a backoff");
    }
    // Reported once: the same terminal error on the next pass adds no second Event.
    let api = aws();
    api.fail(
        Create,
        [
            aws_error("AccessDeniedException"),
            aws_error("AccessDeniedException"),
        ],
    );
    let first = Case::new().run(&api).await;
    let second = known_or_not(first.status.clone()).run(&api).await;
    assert!(second.notes.is_empty());
    assert_eq!(second.status, first.status);
}

fn known_or_not(status: Option<PartnerEventSourceStatus>) -> Case {
    Case {
        status,
        ..Case::new()
    }
}

#[tokio::test]
async fn invalid_spec_is_reported_without_any_aws_call() {
    let api = aws();
    let mut case = Case::new();
    case.spec.name = "acme.com/orders".into();
    case.spec.account = "12345678901".into();
    let outcome = case.run(&api).await;
    assert!(api.calls().is_empty());
    assert_eq!(outcome.result, PassResult::InvalidSpec);
    assert_eq!(outcome.requeue, Requeue::AwaitChange, "no retry loop");
    let ready = condition(&outcome, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(ready.message.contains("spec.name") && ready.message.contains("spec.account"));
    assert_eq!(reasons(&outcome), ["InvalidSpec"]);
}

#[tokio::test]
async fn a_missing_region_is_terminal_without_aws_calls() {
    let api = aws();
    let case = Case {
        region: None,
        ..Case::new()
    };
    let outcome = case.run(&api).await;
    assert!(api.calls().is_empty());
    assert_eq!(condition(&outcome, READY).reason, "NoRegion");
}

#[tokio::test]
async fn the_non_owner_gets_name_conflict_and_never_reaches_aws() {
    let api = aws();
    let case = Case {
        ownership: Ownership::ConflictWith("team-b/orders".into()),
        ..Case::new()
    };
    let outcome = case.run(&api).await;
    assert!(api.calls().is_empty());
    assert_eq!(outcome.result, PassResult::Conflict);
    let ready = condition(&outcome, READY);
    assert_eq!(ready.reason, "NameConflict");
    assert!(ready.message.contains("team-b/orders"));
    assert_eq!(
        outcome.requeue,
        Requeue::After(Settings::default().conflict_recheck)
    );
}

#[tokio::test]
async fn resync_of_a_ready_object_reads_instead_of_creating_and_writes_nothing_new() {
    let (api, status) = ready_status().await;
    let status = known(status).run(&api).await.status.unwrap();
    let outcome = known(status.clone()).run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts, ListAccounts]);
    assert_eq!(
        outcome.status.as_ref(),
        Some(&status),
        "unchanged status, so no write"
    );
    assert!(outcome.notes.is_empty());
}

#[tokio::test]
async fn a_source_deleted_out_of_band_is_recreated_with_an_event() {
    let (api, status) = ready_status().await;
    api.remove(NAME);
    let outcome = known(status).run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts, Create]);
    assert_eq!(outcome.result, PassResult::Ready);
    assert_eq!(reasons(&outcome), ["Recreated"]);
    assert_eq!(condition(&outcome, READY).reason, "Recreated");
    assert!(api.exists(NAME));
}

#[tokio::test]
async fn a_failed_state_lookup_never_hides_a_known_arn() {
    let (api, status) = ready_status().await;
    api.fail(ListAccounts, [aws_error("ThrottlingException")]);
    let outcome = known(status).run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts]);
    let status = outcome.status.as_ref().unwrap();
    assert_eq!(status.arn, Some(arn(REGION, NAME)));
    assert_eq!(
        status.state,
        Some(SourceState::Pending),
        "last known state stays"
    );
    assert_eq!(condition(&outcome, READY).status, "True");
    assert_eq!(reasons(&outcome), ["StateLookupFailed"]);
    assert_eq!(outcome.failures, 1);
    assert!(matches!(outcome.requeue, Requeue::After(d) if d < Duration::from_secs(2)));
}

#[tokio::test]
async fn activation_flips_the_activated_condition_both_ways() {
    let (api, status) = ready_status().await;
    api.set_state(NAME, SourceState::Active);
    let outcome = known(status).run(&api).await;
    let activated = condition(&outcome, ACTIVATED);
    assert_eq!(
        (activated.status.as_str(), activated.reason.as_str()),
        ("True", "Active")
    );
    let status = outcome.status.clone().unwrap();
    assert_eq!(status.state, Some(SourceState::Active));
    assert_eq!(status.expiration_time, None);
    assert_eq!(reasons(&outcome), ["Activated"]);

    api.set_state(NAME, SourceState::Pending);
    let back = known(status).run(&api).await;
    let activated = condition(&back, ACTIVATED);
    assert_eq!(
        (activated.status.as_str(), activated.reason.as_str()),
        ("False", "Pending")
    );
    assert_eq!(reasons(&back), ["Deactivated"]);
}

#[tokio::test]
async fn a_state_aws_adds_later_is_kept_and_reported_unknown() {
    let (api, status) = ready_status().await;
    api.set_state(NAME, SourceState::Unknown("SUSPENDED".into()));
    let outcome = known(status).run(&api).await;
    assert_eq!(
        outcome.status.as_ref().unwrap().state,
        Some(SourceState::Unknown("SUSPENDED".into()))
    );
    assert_eq!(condition(&outcome, ACTIVATED).reason, "Unknown");
    assert_eq!(condition(&outcome, READY).status, "True");
}

#[tokio::test]
async fn a_new_object_is_marked_creating_until_the_answer_comes() {
    let case = Case::new();
    let observed = Observed {
        spec: &case.spec,
        generation: Some(1),
        status: None,
        ownership: &case.ownership,
        region: case.region,
        failures: 0,
        jitter: 0.5,
        paused: false,
        access: &Access::Granted,
        partner_account: None,
        now: now(),
    };
    let mark = crate::reconcile::status::creating(&observed).expect("a new object is marked");
    let ready = mark.conditions.iter().find(|c| c.type_ == READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Creating")
    );
    assert!(
        !crate::reconcile::status::is_resync(&observed),
        "new work is user-driven"
    );
    // Marked once per generation; a Ready object is a resync, not marked again.
    let marked = Observed {
        status: Some(&mark),
        ..observed.clone()
    };
    assert!(crate::reconcile::status::creating(&marked).is_none());
    let (_, ready_status) = ready_status().await;
    let settled = Observed {
        status: Some(&ready_status),
        ..observed.clone()
    };
    assert!(crate::reconcile::status::creating(&settled).is_none());
    assert!(crate::reconcile::status::is_resync(&settled));
    // A changed object is user-driven again.
    let changed = Observed {
        generation: Some(2),
        ..settled
    };
    assert!(!crate::reconcile::status::is_resync(&changed));
    // Objects that will not be created are not marked.
    let conflict = Ownership::ConflictWith("team-b/orders".into());
    let loser = Observed {
        ownership: &conflict,
        ..observed
    };
    assert!(crate::reconcile::status::creating(&loser).is_none());
}

async fn deleting(policy: Option<DeletionPolicy>) -> (FakePartnerApi, Case) {
    let (api, status) = ready_status().await;
    let mut case = known(status);
    case.deleting = true;
    case.spec.deletion_policy = policy;
    (api, case)
}

fn calls_after_create(api: &FakePartnerApi) -> Vec<Operation> {
    api.calls().split_off(1)
}

#[tokio::test]
async fn delete_policy_deletes_the_source_then_releases_the_finalizer() {
    for policy in [None, Some(DeletionPolicy::Delete)] {
        let (api, case) = deleting(policy).await;
        let outcome = case.run(&api).await;
        assert_eq!(calls_after_create(&api), [Delete]);
        assert!(!api.exists(NAME));
        assert!(outcome.release);
        assert_eq!(outcome.result, PassResult::Deleted);
        assert_eq!(reasons(&outcome), ["Deleted"]);
    }
    // Already gone counts as deleted.
    let (api, case) = deleting(None).await;
    api.remove(NAME);
    assert!(case.run(&api).await.release);
}

#[tokio::test]
async fn delete_retries_transient_errors_and_keeps_the_finalizer() {
    let (api, case) = deleting(None).await;
    api.fail(Delete, [aws_error("ConcurrentModificationException")]);
    let outcome = case.run(&api).await;
    assert!(!outcome.release);
    assert_eq!(outcome.result, PassResult::Retrying);
    assert_eq!(outcome.failures, 1);
    assert_eq!(condition(&outcome, READY).reason, "Deleting");
    assert!(api.exists(NAME));

    api.fail(Delete, [aws_error("OperationDisabledException")]);
    let outcome = case.run(&api).await;
    assert!(!outcome.release);
    assert_eq!(outcome.result, PassResult::Terminal);
    assert!(condition(&outcome, READY).message.contains("Retain"));
}

#[tokio::test]
async fn retain_policy_releases_without_touching_aws() {
    let (api, case) = deleting(Some(DeletionPolicy::Retain)).await;
    let outcome = case.run(&api).await;
    assert!(calls_after_create(&api).is_empty());
    assert!(outcome.release);
    assert_eq!(reasons(&outcome), ["Retained"]);
}

#[tokio::test]
async fn the_default_deletion_policy_comes_from_settings() {
    let (api, mut case) = deleting(None).await;
    case.settings.default_deletion_policy = DeletionPolicy::Retain;
    let outcome = case.run(&api).await;
    assert!(calls_after_create(&api).is_empty(), "must not call AWS");
    assert!(outcome.release);
    assert!(api.exists(NAME));
}

#[tokio::test]
async fn deleting_a_conflicting_object_never_deletes_the_owners_source() {
    let (api, mut case) = deleting(None).await;
    case.ownership = Ownership::ConflictWith("team-b/orders".into());
    let outcome = case.run(&api).await;
    assert!(calls_after_create(&api).is_empty());
    assert!(outcome.release);
    assert_eq!(outcome.result, PassResult::Released);

    // Nor one that lost to another AWS account.
    let api = aws();
    api.insert(NAME, "999999999999", SourceState::Pending);
    let conflict = Case::new().run(&api).await;
    let case = Case {
        deleting: true,
        status: conflict.status,
        ..Case::new()
    };
    let outcome = case.run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts], "no delete");
    assert!(outcome.release);
}

#[tokio::test]
async fn deleting_an_invalid_object_needs_no_aws_call() {
    let (api, mut case) = deleting(None).await;
    case.spec.account = "abc".into();
    let outcome = case.run(&api).await;
    assert!(calls_after_create(&api).is_empty() && outcome.release);
}

#[tokio::test]
async fn an_unchanged_condition_keeps_its_transition_time() {
    let (api, status) = ready_status().await;
    let later = known(status.clone()).run(&api).await;
    let before = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
    assert_eq!(
        condition(&later, READY).last_transition_time,
        before.last_transition_time
    );
}

/// A Ready object whose first look brought its times (pending, expiring in 14 days).
async fn looked_at() -> (FakePartnerApi, PartnerEventSourceStatus) {
    let (api, status) = ready_status().await;
    let status = known(status).run(&api).await.status.unwrap();
    (api, status)
}

fn days(n: i64) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::from_hours(24 * n)
}

#[tokio::test]
async fn a_source_gone_while_pending_past_its_expiration_is_expired_and_not_recreated() {
    let (api, status) = looked_at().await;
    api.remove(NAME);
    let mut case = known(status);
    case.now = now() + days(15);
    let outcome = case.run(&api).await;
    assert_eq!(
        api.calls(),
        [Create, ListAccounts, ListAccounts],
        "no create"
    );
    assert_eq!(outcome.result, PassResult::Expired);
    let ready = condition(&outcome, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Expired")
    );
    assert!(
        ready.message.contains("onExpiry: Recreate"),
        "{}",
        ready.message
    );
    assert_eq!(reasons(&outcome), ["Expired"]);
    assert!(outcome.notes[0].warning);
    assert_eq!(outcome.requeue, Requeue::AwaitChange);
    assert!(!api.exists(NAME));

    // Later passes neither call AWS nor repeat the Event.
    case.status = outcome.status.clone();
    let again = case.run(&api).await;
    assert_eq!(api.calls().len(), 3);
    assert!(again.notes.is_empty());
    assert_eq!(again.status, outcome.status);

    // Deleting it needs no AWS call either.
    case.deleting = true;
    assert!(case.run(&api).await.release);
    assert_eq!(api.calls().len(), 3);
}

#[tokio::test]
async fn on_expiry_recreate_creates_an_expired_source_again() {
    let (api, status) = looked_at().await;
    api.remove(NAME);
    let mut case = known(status);
    case.now = now() + days(15);
    case.spec.on_expiry = Some(OnExpiry::Recreate);
    let outcome = case.run(&api).await;
    assert_eq!(api.calls(), [Create, ListAccounts, ListAccounts, Create]);
    assert_eq!(condition(&outcome, READY).reason, "Recreated");

    // An object left Expired is revived by switching to Recreate.
    let (api, status) = looked_at().await;
    api.remove(NAME);
    let mut case = known(status);
    case.now = now() + days(15);
    case.status = case.run(&api).await.status;
    case.spec.on_expiry = Some(OnExpiry::Recreate);
    let revived = case.run(&api).await;
    assert_eq!(condition(&revived, READY).reason, "Recreated");
    assert!(api.exists(NAME));
}

#[tokio::test]
async fn a_source_gone_before_its_expiration_or_after_activation_is_recreated() {
    // Deleted out of band while pending, before expiry.
    let (api, status) = looked_at().await;
    api.remove(NAME);
    let outcome = known(status).run(&api).await;
    assert_eq!(condition(&outcome, READY).reason, "Recreated");

    // Gone while ACTIVE: never an expiry, whatever the time.
    let (api, status) = looked_at().await;
    api.set_state(NAME, SourceState::Active);
    let status = known(status).run(&api).await.status.unwrap();
    api.remove(NAME);
    let mut case = known(status);
    case.now = now() + days(30);
    let outcome = case.run(&api).await;
    assert_eq!(condition(&outcome, READY).reason, "Recreated");
}

#[tokio::test]
async fn a_pending_source_in_its_last_day_warns_once_and_is_looked_at_when_it_expires() {
    let (api, status) = looked_at().await;
    let mut case = known(status);
    case.now = now() + days(13) + k8s_openapi::jiff::SignedDuration::from_hours(1);
    let outcome = case.run(&api).await;
    let activated = condition(&outcome, ACTIVATED);
    assert_eq!(
        (activated.status.as_str(), activated.reason.as_str()),
        ("False", "ExpiringSoon")
    );
    assert_eq!(reasons(&outcome), ["ExpiringSoon"]);
    assert!(outcome.notes[0].warning);
    // The next look comes just after the expiration (23 h away), not a resync later... unless
    // the resync is sooner.
    let Requeue::After(d) = outcome.requeue else {
        panic!()
    };
    assert!(d <= Duration::from_secs(330), "{d:?}");
    case.status = outcome.status.clone();
    let again = case.run(&api).await;
    assert!(again.notes.is_empty(), "warned once");

    // With a resync longer than a day, the look comes at the warning and at the expiry.
    let (api, status) = looked_at().await;
    let mut case = known(status);
    case.settings.resync = Duration::from_secs(30 * 86_400);
    let outcome = case.run(&api).await;
    let Requeue::After(d) = outcome.requeue else {
        panic!()
    };
    assert_eq!(
        d,
        Duration::from_secs(13 * 86_400),
        "at the start of the last day"
    );
}

fn observing(status: Option<PartnerEventSourceStatus>) -> Case {
    let mut case = known_or_not(status);
    case.spec.management_policy = Some(ManagementPolicy::Observe);
    case
}

#[tokio::test]
async fn observe_reports_an_existing_source_and_never_creates_or_deletes() {
    let api = aws();
    api.insert(NAME, ACCOUNT, SourceState::Pending);
    let outcome = observing(None).run(&api).await;
    assert_eq!(api.calls(), [ListAccounts, Describe]);
    let ready = condition(&outcome, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Observed")
    );
    assert_eq!(
        outcome.status.as_ref().unwrap().arn,
        Some(arn(REGION, NAME))
    );

    // A resync only lists; deleting the object leaves the source.
    let mut case = observing(outcome.status.clone());
    let again = case.run(&api).await;
    assert_eq!(api.calls(), [ListAccounts, Describe, ListAccounts]);
    assert_eq!(again.status, outcome.status);
    case.deleting = true;
    let released = case.run(&api).await;
    assert!(released.release);
    assert_eq!(api.calls().len(), 3);
    assert!(api.exists(NAME));
}

#[tokio::test]
async fn observe_reports_a_missing_source_as_not_found_without_creating_it() {
    let api = aws();
    let outcome = observing(None).run(&api).await;
    assert_eq!(api.calls(), [ListAccounts]);
    assert_eq!(outcome.result, PassResult::NotFound);
    let ready = condition(&outcome, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NotFound")
    );
    assert!(!api.exists(NAME));
    // Another object with the name is no conflict for an observer.
    let mut case = observing(None);
    case.ownership = Ownership::ConflictWith("team-b/orders".into());
    assert_eq!(case.run(&api).await.result, PassResult::NotFound);
}

#[tokio::test]
async fn observe_then_manage_takes_over_without_a_create() {
    let api = aws();
    api.insert(NAME, ACCOUNT, SourceState::Pending);
    let observed = observing(None).run(&api).await;
    let managed = known(observed.status.unwrap()).run(&api).await;
    assert_eq!(
        api.calls(),
        [ListAccounts, Describe, ListAccounts],
        "no create"
    );
    assert_eq!(condition(&managed, READY).reason, "Adopted");
    assert_eq!(reasons(&managed), ["Adopted"]);
}

#[tokio::test]
async fn a_paused_object_makes_no_aws_call_until_the_annotation_goes() {
    let api = aws();
    let mut case = Case::new();
    case.paused = true;
    let outcome = case.run(&api).await;
    assert!(api.calls().is_empty());
    assert_eq!(outcome.result, PassResult::Paused);
    let paused = condition(&outcome, PAUSED);
    assert_eq!(
        (paused.status.as_str(), paused.reason.as_str()),
        ("True", "Paused")
    );
    assert_eq!(outcome.requeue, Requeue::AwaitChange);

    // Deleting a paused object keeps the finalizer and touches nothing.
    case.deleting = true;
    let held = case.run(&api).await;
    assert!(!held.release);
    assert!(api.calls().is_empty());

    // Unpaused: the pass goes on and the condition says so.
    let case = known_or_not(outcome.status.clone());
    let resumed = case.run(&api).await;
    assert_eq!(api.calls(), [Create]);
    let paused = condition(&resumed, PAUSED);
    assert_eq!(
        (paused.status.as_str(), paused.reason.as_str()),
        ("False", "Resumed")
    );
}

#[tokio::test]
async fn an_object_outside_its_partner_accounts_grant_never_reaches_aws() {
    let api = aws();
    let mut case = Case::new();
    case.access = Access::NotPermitted(
        "spec.name x is outside PartnerAccount prod's sourcePrefixes (aws.partner/acme.com/)"
            .into(),
    );
    let outcome = case.run(&api).await;
    assert!(api.calls().is_empty());
    assert_eq!(outcome.result, PassResult::NotPermitted);
    let ready = condition(&outcome, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NotPermitted")
    );
    assert!(
        ready.message.contains("sourcePrefixes"),
        "{}",
        ready.message
    );
    assert_eq!(outcome.requeue, Requeue::AwaitChange);
    // Deleting it never touches AWS either.
    case.deleting = true;
    let released = case.run(&api).await;
    assert!(released.release && api.calls().is_empty());
}

#[tokio::test]
async fn an_unusable_partner_account_is_reported_without_a_hot_loop() {
    let api = aws();
    let mut case = Case::new();
    case.access = Access::NotReady("PartnerAccount prod is not ready: AccessDenied".into());
    let outcome = case.run(&api).await;
    assert!(api.calls().is_empty());
    let ready = condition(&outcome, READY);
    assert_eq!(ready.reason, "PartnerAccountNotReady");
    assert_eq!(
        outcome.requeue,
        Requeue::After(Settings::default().conflict_recheck)
    );
    assert_eq!(outcome.failures, 0);
    // A deletion waits for the account: the source may exist and only it can delete it.
    case.deleting = true;
    let held = case.run(&api).await;
    assert!(!held.release && api.calls().is_empty());
}

#[tokio::test]
async fn the_resolved_partner_account_is_recorded_at_the_first_pass() {
    let api = aws();
    let outcome = Case::new().run(&api).await;
    assert_eq!(
        outcome.status.as_ref().unwrap().partner_account.as_deref(),
        Some(""),
        "the operator's own identity"
    );
}
