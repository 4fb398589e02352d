//! What a chaos run does, decided from its seed before anything starts: the operations on the
//! objects and the disruptions, each at a moment of the run. A pure value, so a failing seed
//! repeats the same script, and the baseline run replays the operations without the faults.

use std::time::Duration;

use eventbridge_partner_operator::resources::DeletionPolicy;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The size of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// The seed everything random in the run is drawn from.
    pub seed: u64,
    /// How many objects (names) the run works with.
    pub objects: usize,
    /// How long operations keep coming.
    pub duration: Duration,
    /// Operator processes killed (SIGKILL or SIGTERM; leader or standby).
    pub kills: usize,
    /// Restarts of the kube-apiserver.
    pub api_restarts: usize,
}

/// One thing done to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Create the object (again, once its previous life is over) with this deletion policy.
    Create(DeletionPolicy),
    /// Change its deletion policy.
    SetPolicy(DeletionPolicy),
    /// Delete it.
    Delete,
}

/// A step on object `object`, not before `at` into the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// When, counted from the start of the run.
    pub at: Duration,
    /// Which object (its index).
    pub object: usize,
    /// What.
    pub step: Step,
}

/// The signal an operator process gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Dies at once, holding its Lease until it expires.
    Kill,
    /// Shuts down in order and releases its Lease.
    Term,
}

/// Which replica a kill hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The replica holding the Lease.
    Leader,
    /// The one waiting for it.
    Standby,
}

/// Something that happens to the operator or the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruption {
    /// One operator replica is stopped (a replacement starts at once, as a Deployment does).
    KillOperator(Role, Signal),
    /// The kube-apiserver stops and starts again on the same port, certificates and data.
    RestartApiServer,
}

/// The whole script of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Operations ordered by time.
    pub ops: Vec<Op>,
    /// Disruptions ordered by time.
    pub disruptions: Vec<(Duration, Disruption)>,
}

/// Operations per object after its first creation, on average.
const OPS_PER_OBJECT: f64 = 1.5;

/// The share of the run over which the objects are first created.
const CREATION_SHARE: f64 = 0.1;

impl Plan {
    /// Draws the script of a run of this size.
    pub fn new(size: &Size) -> Plan {
        let mut rng = StdRng::seed_from_u64(size.seed);
        let secs = size.duration.as_secs_f64();
        let mut ops = Vec::new();
        // Every object starts alive, created in the first tenth of the run.
        let mut alive: Vec<Option<DeletionPolicy>> = Vec::with_capacity(size.objects);
        for object in 0..size.objects {
            let policy = policy(&mut rng);
            let at = Duration::from_secs_f64(rng.random_range(0.0..secs * CREATION_SHARE));
            ops.push(Op {
                at,
                object,
                step: Step::Create(policy),
            });
            alive.push(Some(policy));
        }
        let count = (size.objects as f64 * OPS_PER_OBJECT).round() as usize;
        let mut times: Vec<f64> = (0..count)
            .map(|_| rng.random_range(secs * CREATION_SHARE..secs))
            .collect();
        times.sort_by(f64::total_cmp);
        for t in times {
            let object = rng.random_range(0..size.objects.max(1));
            let step = match alive[object] {
                None => Step::Create(policy(&mut rng)),
                Some(_) if rng.random_bool(0.45) => Step::Delete,
                Some(current) => Step::SetPolicy(other(current)),
            };
            alive[object] = match step {
                Step::Create(p) | Step::SetPolicy(p) => Some(p),
                Step::Delete => None,
            };
            ops.push(Op {
                at: Duration::from_secs_f64(t),
                object,
                step,
            });
        }
        ops.sort_by_key(|op| op.at);
        let disruptions = disruptions(&mut rng, size);
        Plan { ops, disruptions }
    }

    /// The operations on one object, in order.
    pub fn ops_of(&self, object: usize) -> Vec<Op> {
        self.ops
            .iter()
            .copied()
            .filter(|op| op.object == object)
            .collect()
    }
}

fn policy(rng: &mut StdRng) -> DeletionPolicy {
    // Mostly Delete, as most partners run; Retain often enough to leave sources behind.
    if rng.random_bool(0.7) {
        DeletionPolicy::Delete
    } else {
        DeletionPolicy::Retain
    }
}

fn other(policy: DeletionPolicy) -> DeletionPolicy {
    match policy {
        DeletionPolicy::Delete => DeletionPolicy::Retain,
        DeletionPolicy::Retain => DeletionPolicy::Delete,
    }
}

/// The kills and restarts, evenly spread over the run with some jitter. The first kills
/// cover SIGKILL and SIGTERM of the leader and SIGKILL of the standby, in a seeded order;
/// any further ones are drawn at random.
fn disruptions(rng: &mut StdRng, size: &Size) -> Vec<(Duration, Disruption)> {
    let mut kinds: Vec<Disruption> = [
        Disruption::KillOperator(Role::Leader, Signal::Kill),
        Disruption::KillOperator(Role::Standby, Signal::Kill),
        Disruption::KillOperator(Role::Leader, Signal::Term),
        Disruption::KillOperator(Role::Standby, Signal::Term),
    ]
    .into_iter()
    .take(size.kills)
    .collect();
    while kinds.len() < size.kills {
        let role = if rng.random_bool(0.5) {
            Role::Leader
        } else {
            Role::Standby
        };
        let signal = if rng.random_bool(0.5) {
            Signal::Kill
        } else {
            Signal::Term
        };
        kinds.push(Disruption::KillOperator(role, signal));
    }
    kinds.extend(std::iter::repeat_n(
        Disruption::RestartApiServer,
        size.api_restarts,
    ));
    kinds.shuffle(rng);
    let slot = size.duration.as_secs_f64() / (kinds.len() + 1) as f64;
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let jitter = rng.random_range(-0.25..0.25) * slot;
            let at = Duration::from_secs_f64(slot * (i + 1) as f64 + jitter);
            (at, kind)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(seed: u64) -> Size {
        Size {
            seed,
            objects: 50,
            duration: Duration::from_secs(100),
            kills: 3,
            api_restarts: 1,
        }
    }

    #[test]
    fn a_seed_draws_the_same_plan_and_another_seed_another() {
        assert_eq!(Plan::new(&size(1)), Plan::new(&size(1)));
        assert_ne!(Plan::new(&size(1)), Plan::new(&size(2)));
    }

    #[test]
    fn every_object_is_created_first_and_its_steps_follow_its_life() {
        let plan = Plan::new(&size(3));
        for object in 0..50 {
            let ops = plan.ops_of(object);
            assert!(matches!(ops[0].step, Step::Create(_)), "{ops:?}");
            let mut alive = false;
            for op in &ops {
                match op.step {
                    Step::Create(_) => assert!(!alive, "created twice: {ops:?}"),
                    Step::SetPolicy(_) | Step::Delete => assert!(alive, "not alive: {ops:?}"),
                }
                alive = !matches!(op.step, Step::Delete);
            }
        }
        assert!(plan.ops.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(plan.ops.iter().all(|op| op.at < Duration::from_secs(100)));
        let recreated = (0..50).any(|o| {
            plan.ops_of(o)
                .iter()
                .filter(|op| matches!(op.step, Step::Create(_)))
                .count()
                > 1
        });
        assert!(recreated, "some object is deleted and created again");
    }

    #[test]
    fn the_disruptions_cover_both_signals_both_roles_and_the_api_server() {
        let plan = Plan::new(&size(4));
        let kinds: Vec<Disruption> = plan.disruptions.iter().map(|(_, d)| *d).collect();
        assert_eq!(kinds.len(), 4);
        for wanted in [
            Disruption::KillOperator(Role::Leader, Signal::Kill),
            Disruption::KillOperator(Role::Standby, Signal::Kill),
            Disruption::KillOperator(Role::Leader, Signal::Term),
            Disruption::RestartApiServer,
        ] {
            assert!(kinds.contains(&wanted), "{wanted:?} missing from {kinds:?}");
        }
        let times: Vec<Duration> = plan.disruptions.iter().map(|(t, _)| *t).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        assert!(times.iter().all(|t| *t < Duration::from_secs(100)));
    }
}
