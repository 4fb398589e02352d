use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::resources::{PartnerEventSourceSpec, PartnerEventSourceStatus};

const NAME: &str = "aws.partner/acme.com/customer-4711/orders";
const ACCOUNT: &str = "123456789012";
const ARN: &str =
    "arn:aws:events:eu-west-1::event-source/aws.partner/acme.com/customer-4711/orders";

fn condition(status: &str, reason: &str) -> Condition {
    Condition {
        type_: READY.into(),
        status: status.into(),
        reason: reason.into(),
        message: format!("{reason} message"),
        observed_generation: Some(1),
        last_transition_time: Time(Timestamp::from_second(1_900_000_000).expect("a time")),
    }
}

fn object(
    name: &str,
    ready: Option<(&str, &str)>,
    arn: Option<&str>,
    state: Option<&str>,
) -> PartnerEventSource {
    let spec = PartnerEventSourceSpec {
        name: NAME.into(),
        account: ACCOUNT.into(),
        region: None,
        deletion_policy: None,
        on_expiry: None,
        management_policy: None,
        partner_account_ref: None,
    };
    let mut obj = PartnerEventSource::new(name, spec);
    obj.metadata.namespace = Some("tenants".into());
    obj.metadata.generation = Some(1);
    obj.status = Some(PartnerEventSourceStatus {
        arn: arn.map(str::to_owned),
        state: state.map(|s| SourceState::from(s.to_owned())),
        observed_generation: Some(1),
        conditions: ready
            .map(|(status, reason)| vec![condition(status, reason)])
            .unwrap_or_default(),
        ..PartnerEventSourceStatus::default()
    });
    obj
}

fn aws(arn: Option<&str>, accounts: &[(&str, &str)]) -> AwsSource {
    AwsSource {
        arn: arn.map(str::to_owned),
        accounts: accounts
            .iter()
            .map(|(account, state)| AwsAccount {
                account: (*account).into(),
                state: Some((*state).into()),
            })
            .collect(),
    }
}

fn facts<'a>(obj: &'a PartnerEventSource, view: AwsView) -> Facts<'a> {
    Facts {
        object: obj,
        events: &[],
        region: Some("eu-west-1".into()),
        account: AccountView {
            resolution: "the operator's own identity".into(),
            ready: None,
            grant: "permitted".into(),
        },
        budget: None,
        aws: view,
        last_events: 10,
    }
}

#[test]
fn a_ready_source_that_aws_agrees_with_is_healthy() {
    let obj = object("one", Some(("True", "Created")), Some(ARN), Some("PENDING"));
    let view = AwsView::Checked(aws(Some(ARN), &[(ACCOUNT, "PENDING")]));
    let report = assess(facts(&obj, view));
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(report.healthy);
    let text = render_text(&report);
    assert!(text.contains("the status agrees with AWS"), "{text}");
    assert!(
        text.contains("what to do: re-checked every resync interval"),
        "{text}"
    );
    assert!(text.ends_with("Verdict: healthy\n"), "{text}");
}

#[test]
fn each_kind_of_drift_is_named() {
    let cases = [
        (aws(None, &[]), "source missing in AWS"),
        (aws(Some("arn:other"), &[(ACCOUNT, "PENDING")]), "other ARN"),
        (
            aws(Some(ARN), &[("210987654321", "PENDING")]),
            "other account: AWS shares the source with 210987654321",
        ),
        (
            aws(Some(ARN), &[(ACCOUNT, "ACTIVE")]),
            "other state: the status records PENDING, AWS answers ACTIVE",
        ),
    ];
    for (view, expected) in cases {
        let obj = object("one", Some(("True", "Created")), Some(ARN), Some("PENDING"));
        let report = assess(facts(&obj, AwsView::Checked(view)));
        assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
        assert!(
            report.differences[0].contains(expected),
            "{:?}",
            report.differences
        );
        assert!(!report.healthy, "a drifted source is not healthy");
        assert!(render_text(&report).contains(&format!("DIFFERENCE: {expected}")));
    }
}

#[test]
fn a_source_not_created_yet_is_no_difference_and_aws_unasked_is_none_either() {
    let obj = object("new", Some(("False", "Creating")), None, None);
    assert!(differences(&obj, &aws(None, &[])).is_empty());
    let report = assess(facts(
        &obj,
        AwsView::NotChecked {
            why: "--no-aws".into(),
        },
    ));
    assert!(report.differences.is_empty());
    assert!(!report.healthy, "not Ready is not healthy");
    assert!(render_text(&report).contains("not checked: --no-aws"));
}

#[test]
fn the_listing_keeps_only_objects_that_are_not_ready_when_asked() {
    let objects = [
        object("b-ready", Some(("True", "Created")), Some(ARN), None),
        object("a-denied", Some(("False", "NotPermitted")), None, None),
        object("c-new", None, None, None),
    ];
    let all = rows(&objects, false);
    assert_eq!(all.len(), 3);
    let not_ready = rows(&objects, true);
    let names: Vec<&str> = not_ready.iter().map(|r| r.object.as_str()).collect();
    assert_eq!(names, ["tenants/a-denied", "tenants/c-new"]);
    assert_eq!(not_ready[1].ready, "Unknown");
    let table = render_rows(&not_ready);
    assert!(table.starts_with("OBJECT"), "{table}");
    assert!(table.contains("NotPermitted"), "{table}");
}
