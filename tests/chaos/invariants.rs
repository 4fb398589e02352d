//! The promises a chaos run checks once it has quiesced, as a pure function of what was
//! recorded: the lives of the objects, the sources the emulator created and deleted, the final
//! objects and sources, and the AWS calls of the run and of its fault-free baseline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::SystemTime;

use eventbridge_partner_emulator::{ChangeKind, SourceChange, SourceSnapshot};
use eventbridge_partner_operator::resources::{DeletionPolicy, PartnerEventSource};
use kube::ResourceExt;

/// One life of one object: from its creation to the moment it was seen gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Life {
    /// The object's source name (each object index has its own).
    pub source: String,
    /// The object's UID in this life.
    pub uid: String,
    /// Taken just before the create request: no call for this life can come earlier.
    pub created: SystemTime,
    /// Taken just before the delete request, with the deletion policy the object then had.
    pub deleted: Option<(SystemTime, DeletionPolicy)>,
    /// When the object was first seen gone (`None`: still there at the end).
    pub gone: Option<SystemTime>,
    /// The operator took the object on: it was seen with the operator's finalizer. An object
    /// deleted before that is released by Kubernetes alone and never acts on its source.
    pub taken: bool,
}

impl Life {
    fn holds(&self, at: SystemTime) -> bool {
        self.created <= at && self.gone.is_none_or(|gone| at <= gone)
    }

    fn deleting_with(&self, policy: DeletionPolicy, at: SystemTime) -> bool {
        self.deleted
            .is_some_and(|(asked, p)| p == policy && asked <= at)
            && self.holds(at)
    }
}

/// AWS calls of the run and what bounds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    /// Every call the chaos run made.
    pub chaos: u64,
    /// Every call the fault-free baseline of the same operations made.
    pub baseline: u64,
    /// Calls the emulator failed on purpose (errors and timeouts).
    pub faults: u64,
}

impl Calls {
    /// The most calls the run may make: twice the baseline, plus one per injected fault.
    pub fn bound(&self) -> u64 {
        2 * self.baseline + self.faults
    }
}

/// What the run left and recorded.
#[derive(Debug, Clone)]
pub struct Record {
    /// Every life of every object of the run.
    pub lives: Vec<Life>,
    /// Sources created and deleted by partner calls, in order.
    pub changes: Vec<SourceChange>,
    /// The run's objects at the end.
    pub objects: Vec<PartnerEventSource>,
    /// The sources in the emulator at the end.
    pub sources: Vec<SourceSnapshot>,
    /// The AWS calls.
    pub calls: Calls,
}

/// A broken promise, in words a reader can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks every invariant of the record.
pub fn check(record: &Record) -> Vec<Violation> {
    let mut found = Vec::new();
    found.extend(objects_settled(record));
    found.extend(no_orphan_sources(record));
    found.extend(creates_within_lives(record));
    found.extend(deletes_by_their_owner(record));
    if record.calls.chaos > record.calls.bound() {
        found.push(Violation(format!(
            "{} AWS calls, more than 2 × {} (the fault-free baseline) + {} injected faults = {}",
            record.calls.chaos,
            record.calls.baseline,
            record.calls.faults,
            record.calls.bound()
        )));
    }
    found
}

/// Every live object is Ready with its source in the emulator; none is stuck with a finalizer
/// or without a status.
fn objects_settled(record: &Record) -> Vec<Violation> {
    let sources: BTreeMap<&str, &SourceSnapshot> = record
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let mut found = Vec::new();
    for obj in &record.objects {
        let name = obj.name_any();
        if obj.metadata.deletion_timestamp.is_some() {
            found.push(Violation(format!(
                "{name} is stuck being deleted, finalizers {:?}",
                obj.finalizers()
            )));
            continue;
        }
        let Some(ready) = obj.condition("Ready") else {
            found.push(Violation(format!("{name} is stuck without a status")));
            continue;
        };
        if ready.status != "True" {
            found.push(Violation(format!(
                "{name} is not Ready: {} {}",
                ready.reason, ready.message
            )));
            continue;
        }
        let arn = obj.status.as_ref().and_then(|s| s.arn.as_deref());
        match sources.get(obj.spec.name.as_str()) {
            None => found.push(Violation(format!(
                "{name} is Ready but its source {} is not in EventBridge",
                obj.spec.name
            ))),
            Some(source)
                if Some(source.arn.as_str()) != arn || source.account != obj.spec.account =>
            {
                found.push(Violation(format!(
                    "{name} says ARN {arn:?} for account {}; EventBridge has {} for {}",
                    obj.spec.account, source.arn, source.account
                )))
            }
            Some(_) => {}
        }
    }
    found
}

/// A source without a live object was left on purpose: the last object of its name that the
/// operator took on was deleted with `Retain`.
fn no_orphan_sources(record: &Record) -> Vec<Violation> {
    let live: BTreeSet<&str> = record
        .objects
        .iter()
        .map(|o| o.spec.name.as_str())
        .collect();
    let mut found = Vec::new();
    for source in &record.sources {
        if live.contains(source.name.as_str()) {
            continue;
        }
        let last = record
            .lives
            .iter()
            .filter(|l| l.source == source.name && l.taken)
            .max_by_key(|l| l.created);
        let retained = last.is_some_and(|l| matches!(l.deleted, Some((_, DeletionPolicy::Retain))));
        if !retained {
            found.push(Violation(format!(
                "source {} exists without an object, and the last object the operator took on was not deleted with Retain ({:?})",
                source.name,
                last.and_then(|l| l.deleted)
            )));
        }
    }
    found
}

/// Each successful create falls within a life of its object, and no life has two.
fn creates_within_lives(record: &Record) -> Vec<Violation> {
    let mut per_life: BTreeMap<&str, usize> = BTreeMap::new();
    let mut found = Vec::new();
    for change in record
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Created)
    {
        let life = record
            .lives
            .iter()
            .find(|l| l.source == change.name && l.holds(change.at));
        match life {
            None => found.push(Violation(format!(
                "{} was created while no object of that name existed",
                change.name
            ))),
            Some(life) => *per_life.entry(life.uid.as_str()).or_default() += 1,
        }
    }
    for (uid, creates) in per_life {
        if creates > 1 {
            let source = record
                .lives
                .iter()
                .find(|l| l.uid == uid)
                .map_or("", |l| l.source.as_str());
            found.push(Violation(format!(
                "{source} was created {creates} times during one life of its object (uid {uid})"
            )));
        }
    }
    found
}

/// Each successful delete comes from the deletion of the object that held the source, with
/// `Delete`: never while a later life of the name (another object) owns it.
fn deletes_by_their_owner(record: &Record) -> Vec<Violation> {
    record
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Deleted)
        .filter(|change| {
            !record.lives.iter().any(|l| {
                l.source == change.name && l.deleting_with(DeletionPolicy::Delete, change.at)
            })
        })
        .map(|change| {
            let owner = record
                .lives
                .iter()
                .find(|l| l.source == change.name && l.holds(change.at));
            Violation(format!(
                "{} was deleted while no object of that name was being deleted with Delete (alive then: {:?})",
                change.name,
                owner.map(|l| &l.uid)
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use eventbridge_partner_emulator::SourceState;
    use eventbridge_partner_operator::resources::{
        PartnerEventSourceSpec, PartnerEventSourceStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;

    const NAME: &str = "aws.partner/acme.com/chaos-0/orders";
    const ACCOUNT: &str = "123456789012";

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn life(
        uid: &str,
        created: u64,
        deleted: Option<(u64, DeletionPolicy)>,
        gone: Option<u64>,
    ) -> Life {
        Life {
            source: NAME.to_owned(),
            uid: uid.to_owned(),
            created: t(created),
            deleted: deleted.map(|(at, p)| (t(at), p)),
            gone: gone.map(t),
            taken: true,
        }
    }

    fn change(kind: ChangeKind, at: u64) -> SourceChange {
        SourceChange {
            kind,
            name: NAME.to_owned(),
            account: ACCOUNT.to_owned(),
            partner_account: "111111111111".to_owned(),
            at: t(at),
        }
    }

    fn arn() -> String {
        format!("arn:aws:events:eu-west-1::event-source/{NAME}")
    }

    fn source() -> SourceSnapshot {
        SourceSnapshot {
            region: "eu-west-1".to_owned(),
            partner_account: "111111111111".to_owned(),
            name: NAME.to_owned(),
            arn: arn(),
            account: ACCOUNT.to_owned(),
            state: SourceState::Pending,
            creation_time: t(1),
            expiration_time: None,
        }
    }

    fn object(ready: Option<&str>) -> PartnerEventSource {
        let mut obj = PartnerEventSource::new(
            "chaos-0",
            PartnerEventSourceSpec {
                name: NAME.to_owned(),
                account: ACCOUNT.to_owned(),
                region: None,
                deletion_policy: None,
                on_expiry: None,
                management_policy: None,
                partner_account_ref: None,
            },
        );
        obj.status = ready.map(|status| PartnerEventSourceStatus {
            arn: Some(arn()),
            conditions: vec![Condition {
                type_: "Ready".to_owned(),
                status: status.to_owned(),
                reason: "Created".to_owned(),
                message: String::new(),
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                observed_generation: None,
            }],
            ..PartnerEventSourceStatus::default()
        });
        obj
    }

    fn calm() -> Calls {
        Calls {
            chaos: 10,
            baseline: 10,
            faults: 0,
        }
    }

    fn record(
        lives: Vec<Life>,
        changes: Vec<SourceChange>,
        objects: Vec<PartnerEventSource>,
        sources: Vec<SourceSnapshot>,
    ) -> Record {
        Record {
            lives,
            changes,
            objects,
            sources,
            calls: calm(),
        }
    }

    #[test]
    fn a_clean_history_has_no_violation() {
        // Created, deleted with Delete, created again and Ready.
        let r = record(
            vec![
                life("a", 0, Some((10, DeletionPolicy::Delete)), Some(12)),
                life("b", 13, None, None),
            ],
            vec![
                change(ChangeKind::Created, 1),
                change(ChangeKind::Deleted, 11),
                change(ChangeKind::Created, 14),
            ],
            vec![object(Some("True"))],
            vec![source()],
        );
        assert_eq!(check(&r), []);
    }

    #[test]
    fn a_second_create_in_one_life_is_caught() {
        let r = record(
            vec![life("a", 0, None, None)],
            vec![
                change(ChangeKind::Created, 1),
                change(ChangeKind::Deleted, 2),
                change(ChangeKind::Created, 3),
            ],
            vec![object(Some("True"))],
            vec![source()],
        );
        let found = check(&r);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].0.contains("created 2 times during one life"),
            "{found:?}"
        );
        assert!(
            found[1]
                .0
                .contains("while no object of that name was being deleted"),
            "{found:?}"
        );
    }

    #[test]
    fn a_delete_of_the_next_lifes_source_is_caught() {
        // The old life was deleted with Retain; something deleted the source the new life holds.
        let r = record(
            vec![
                life("a", 0, Some((10, DeletionPolicy::Retain)), Some(11)),
                life("b", 12, None, None),
            ],
            vec![
                change(ChangeKind::Created, 1),
                change(ChangeKind::Deleted, 20),
            ],
            vec![object(Some("True"))],
            vec![],
        );
        let found = check(&r);
        assert!(
            found
                .iter()
                .any(|v| v.0.contains("deleted while no object")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.0.contains("not in EventBridge")),
            "{found:?}"
        );
    }

    #[test]
    fn leaked_sources_stuck_objects_and_missing_statuses_are_caught() {
        let leaked = record(
            vec![life("a", 0, Some((10, DeletionPolicy::Delete)), Some(12))],
            vec![change(ChangeKind::Created, 1)],
            vec![],
            vec![source()],
        );
        assert!(check(&leaked)[0].0.contains("exists without an object"));
        let retained = record(
            vec![life("a", 0, Some((10, DeletionPolicy::Retain)), Some(12))],
            vec![change(ChangeKind::Created, 1)],
            vec![],
            vec![source()],
        );
        assert_eq!(check(&retained), []);
        // A later object, deleted before the operator took it on, does not change that.
        let mut untaken = life("b", 20, Some((20, DeletionPolicy::Delete)), Some(21));
        untaken.taken = false;
        let mut retained_then_untaken = retained.clone();
        retained_then_untaken.lives.push(untaken);
        assert_eq!(check(&retained_then_untaken), []);

        let mut stuck = object(Some("True"));
        stuck.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let r = record(
            vec![life("a", 0, None, None)],
            vec![],
            vec![stuck, object(None)],
            vec![source()],
        );
        let found: Vec<String> = check(&r).into_iter().map(|v| v.0).collect();
        assert!(found[0].contains("stuck being deleted"), "{found:?}");
        assert!(found[1].contains("stuck without a status"), "{found:?}");
    }

    #[test]
    fn calls_beyond_twice_the_baseline_plus_faults_are_caught() {
        let mut r = record(vec![], vec![], vec![], vec![]);
        r.calls = Calls {
            chaos: 25,
            baseline: 10,
            faults: 5,
        };
        assert_eq!(check(&r), []);
        r.calls.chaos = 26;
        assert!(check(&r)[0].0.contains("more than 2 × 10"));
    }
}
