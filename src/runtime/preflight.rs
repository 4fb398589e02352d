//! Start-up checks, before leading: every resource the operator watches or writes is served at
//! the version it uses, and its identity may do what it needs with each. What is missing is
//! named with its fix, and after a short wait (a CRD being installed at the same moment) the
//! process exits non-zero, so that Kubernetes shows CrashLoopBackOff with the reason, instead
//! of a pod that looks healthy and never reconciles anything.
//!
//! An API server that does not answer (or answers 5xx) is not something a person must fix in
//! the operator: the checks wait for it, however long, and never exit for it.
//!
//! The pure part ([`Resource`], [`needs`], [`Problem`], [`classify`]) decides what is checked
//! and what each answer means; [`run`] asks the API server.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::error::Error;

/// A resource the operator uses, as the API server serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// `partnereventsources.eventbridgepartner.dev/v1alpha1`: watched, patched.
    PartnerEventSources,
    /// `partneraccounts.eventbridgepartner.dev/v1alpha1`: watched (cluster-wide).
    PartnerAccounts,
    /// Namespaces' metadata: watched (cluster-wide), for the grants' namespace selectors.
    Namespaces,
    /// `coordination.k8s.io/v1` Leases: leader election.
    Leases,
    /// `events.k8s.io/v1` Events: what the operator tells about each object.
    Events,
}

impl Resource {
    /// The group/version it is served at (`v1` for the core group).
    pub fn api_version(self) -> &'static str {
        match self {
            Resource::PartnerEventSources | Resource::PartnerAccounts => {
                "eventbridgepartner.dev/v1alpha1"
            }
            Resource::Namespaces => "v1",
            Resource::Leases => "coordination.k8s.io/v1",
            Resource::Events => "events.k8s.io/v1",
        }
    }

    /// The API group (empty for the core group).
    fn group(self) -> &'static str {
        self.api_version().rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// The plural name the API server lists it under.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::PartnerEventSources => "partnereventsources",
            Resource::PartnerAccounts => "partneraccounts",
            Resource::Namespaces => "namespaces",
            Resource::Leases => "leases",
            Resource::Events => "events",
        }
    }

    /// The name a person uses for it: `plural.group` (the CRD's name for the operator's own
    /// kinds), or the plural alone for the core group.
    pub fn display(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    /// Whether the operator itself defines it (a CRD the install carries).
    fn is_crd(self) -> bool {
        matches!(
            self,
            Resource::PartnerEventSources | Resource::PartnerAccounts
        )
    }
}

/// Where the operator's permissions come from, to name the role that grants a missing one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rbac {
    /// The name the roles were installed under (`--rbac-name`).
    pub name: String,
    /// The one namespace watched (`--namespace`), or `None` for all.
    pub namespace: Option<String>,
    /// The Lease's namespace, when leader election is on.
    pub lease_namespace: Option<String>,
}

impl Rbac {
    /// The role that grants the operator what it needs on `resource`.
    pub fn role_for(&self, resource: Resource) -> String {
        let name = &self.name;
        match (resource, &self.namespace) {
            (Resource::PartnerAccounts | Resource::Namespaces, _) => {
                format!("{name}-partner-accounts ClusterRole")
            }
            (Resource::Leases, _) => {
                let ns = self.lease_namespace.as_deref().unwrap_or("default");
                format!("{name}-leader-election Role in namespace {ns}")
            }
            (_, Some(ns)) => format!("{name} Role in namespace {ns}"),
            (_, None) => format!("{name} ClusterRole"),
        }
    }
}

/// One permission the operator needs: a verb on a resource, in a namespace (or all of them),
/// on one named object (the Lease) or any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// The resource.
    pub resource: Resource,
    /// A subresource (`status`), or none.
    pub subresource: Option<&'static str>,
    /// The verb.
    pub verb: &'static str,
    /// The namespace, or `None` for every namespace (or a cluster-scoped resource).
    pub namespace: Option<String>,
    /// One object's name, or `None` for any.
    pub name: Option<String>,
}

/// Every permission a pass, a watch, an Event or leader election relies on.
pub fn needs(rbac: &Rbac, lease_name: &str) -> Vec<Need> {
    use Resource::{Events, Leases, Namespaces, PartnerAccounts, PartnerEventSources};
    let watched = rbac.namespace.as_deref();
    let mut all: Vec<Need> = [
        (PartnerEventSources, None, "list", watched),
        (PartnerEventSources, None, "watch", watched),
        (PartnerEventSources, None, "patch", watched),
        (PartnerEventSources, Some("status"), "patch", watched),
        (PartnerAccounts, None, "list", None),
        (PartnerAccounts, None, "watch", None),
        (Namespaces, None, "list", None),
        (Namespaces, None, "watch", None),
        (Events, None, "create", watched),
    ]
    .into_iter()
    .map(|(resource, subresource, verb, namespace)| Need {
        resource,
        subresource,
        verb,
        namespace: namespace.map(str::to_owned),
        name: None,
    })
    .collect();
    if let Some(ns) = &rbac.lease_namespace {
        // `create` cannot be limited to a name; the other verbs are, to the one Lease.
        for (verb, name) in [
            ("create", None),
            ("get", Some(lease_name)),
            ("update", Some(lease_name)),
        ] {
            all.push(Need {
                resource: Leases,
                subresource: None,
                verb,
                namespace: Some(ns.clone()),
                name: name.map(str::to_owned),
            });
        }
    }
    all
}

/// The resources behind `needs`, each once.
fn resources(needs: &[Need]) -> BTreeSet<Resource> {
    needs.iter().map(|n| n.resource).collect()
}

/// Something a person must fix before the operator can work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The API server does not serve the resource at the version the operator uses.
    NotServed(Resource),
    /// The operator's identity may not do this.
    Forbidden(Need),
    /// The API server refused the operator's credentials.
    Unauthorized(String),
}

impl Problem {
    /// The problem and its fix, as one line for a log or a termination message.
    pub fn describe(&self, rbac: &Rbac) -> String {
        match self {
            Problem::NotServed(r) if r.is_crd() => format!(
                "CRD {} is not installed: kubectl apply -f deploy/operator.yaml, or helm \
                 upgrade with crds.install=true (the API server does not serve {} at {})",
                r.display(),
                r.plural(),
                r.api_version()
            ),
            Problem::NotServed(r) => format!(
                "the API server does not serve {} at {}: this Kubernetes version is too old \
                 for the operator",
                r.plural(),
                r.api_version()
            ),
            Problem::Forbidden(need) => {
                let what = match need.subresource {
                    Some(sub) => format!("{}/{sub}", need.resource.display()),
                    None => need.resource.display(),
                };
                let scope = match (&need.namespace, &need.name) {
                    (Some(ns), Some(name)) => format!(" {name} in namespace {ns}"),
                    (Some(ns), None) => format!(" in namespace {ns}"),
                    (None, _) => String::new(),
                };
                format!(
                    "cannot {} {what}{scope}: the ServiceAccount needs the {}",
                    need.verb,
                    rbac.role_for(need.resource)
                )
            }
            Problem::Unauthorized(answer) => format!(
                "the API server refused the operator's credentials ({answer}): check the \
                 ServiceAccount token or the kubeconfig"
            ),
        }
    }
}

/// What an API server's failed answer means for the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The resource (or the whole group version) is not served: 404.
    NotFound,
    /// The credentials were refused: 401.
    Unauthorized(String),
    /// The request was refused for this identity: 403.
    Forbidden(String),
    /// No answer, or one that says to come back later (5xx, 429, a broken connection): wait.
    Transient(String),
}

/// Classifies a failed Kubernetes API call. The one place that decides which answers are a
/// person's to fix and which are the API server's to recover from.
pub fn classify(err: &kube::Error) -> Answer {
    match err {
        kube::Error::Api(status) => match status.code {
            404 => Answer::NotFound,
            401 => Answer::Unauthorized(status.message.clone()),
            403 => Answer::Forbidden(status.message.clone()),
            _ => Answer::Transient(err.to_string()),
        },
        other => Answer::Transient(other.to_string()),
    }
}

/// The outcome of one round of checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Round {
    problems: Vec<Problem>,
    /// Answers that say nothing yet (the API server is unreachable or busy).
    transient: Vec<String>,
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.transient.join("; "))
    }
}

/// How often the checks run again while something is missing or the API server is away.
const RETRY: Duration = Duration::from_secs(2);

/// Checks until everything is in place; fails with every problem named once `timeout` has
/// passed with problems left. Waits for an unreachable API server without a deadline.
pub async fn run(
    client: &Client,
    rbac: &Rbac,
    lease_name: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let needs = needs(rbac, lease_name);
    let started = Instant::now();
    loop {
        let round = check(client, &needs).await;
        if round.problems.is_empty() && round.transient.is_empty() {
            info!("start-up checks passed: every resource is served and permitted");
            return Ok(());
        }
        if !round.transient.is_empty() {
            warn!("start-up checks: the API server did not answer, trying again: {round}");
        }
        if !round.problems.is_empty() {
            let described: Vec<String> = round.problems.iter().map(|p| p.describe(rbac)).collect();
            if started.elapsed() >= timeout {
                return Err(Error::Preflight(described.join("; ")));
            }
            warn!(
                waiting = ?timeout.saturating_sub(started.elapsed()),
                "start-up checks: {}",
                described.join("; ")
            );
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One round: discovery for every resource, then an access review for every need whose
/// resource is served.
async fn check(client: &Client, needs: &[Need]) -> Round {
    let mut round = Round::default();
    let mut served = BTreeSet::new();
    for resource in resources(needs) {
        match is_served(client, resource).await {
            Ok(true) => {
                served.insert(resource);
            }
            Ok(false) => round.problems.push(Problem::NotServed(resource)),
            Err(answer) => record(&mut round, answer, None),
        }
    }
    if !round.transient.is_empty() {
        return round;
    }
    for need in needs.iter().filter(|n| served.contains(&n.resource)) {
        match allowed(client, need).await {
            Ok(true) => {}
            Ok(false) => round.problems.push(Problem::Forbidden(need.clone())),
            Err(answer) => record(&mut round, answer, Some(need)),
        }
    }
    round
}

/// Files a failed answer under what it means.
fn record(round: &mut Round, answer: Answer, need: Option<&Need>) {
    match answer {
        Answer::Unauthorized(message) => round.problems.push(Problem::Unauthorized(message)),
        Answer::Forbidden(message) => match need {
            // The review itself was refused: the permission cannot be checked here; the
            // watches report it if it is missing.
            Some(need) => warn!(
                resource = %need.resource.display(),
                "cannot check the operator's permissions ({message}); going on"
            ),
            None => round.transient.push(message),
        },
        Answer::NotFound => {}
        Answer::Transient(message) => round.transient.push(message),
    }
}

/// Whether discovery lists `resource` at its version; a 404 for the whole group version is
/// a plain no.
async fn is_served(client: &Client, resource: Resource) -> Result<bool, Answer> {
    let list = match resource.api_version() {
        "v1" => client.list_core_api_resources("v1").await,
        version => client.list_api_group_resources(version).await,
    };
    match list {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == resource.plural())),
        Err(e) => match classify(&e) {
            Answer::NotFound => Ok(false),
            other => Err(other),
        },
    }
}

/// Asks the API server whether the operator's identity may do `need`.
async fn allowed(client: &Client, need: &Need) -> Result<bool, Answer> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(need.resource.group().to_owned()),
                resource: Some(need.resource.plural().to_owned()),
                subresource: need.subresource.map(str::to_owned),
                verb: Some(need.verb.to_owned()),
                namespace: need.namespace.clone(),
                name: need.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    match api.create(&PostParams::default(), &review).await {
        Ok(answer) => Ok(answer.status.is_some_and(|s| s.allowed)),
        Err(e) => Err(classify(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rbac(namespace: Option<&str>) -> Rbac {
        Rbac {
            name: "ebpo".into(),
            namespace: namespace.map(str::to_owned),
            lease_namespace: Some("ops".into()),
        }
    }

    #[test]
    fn a_missing_crd_is_named_with_the_command_that_installs_it() {
        let text = Problem::NotServed(Resource::PartnerAccounts).describe(&rbac(None));
        assert!(
            text.starts_with(
                "CRD partneraccounts.eventbridgepartner.dev is not installed: kubectl apply -f \
                 deploy/operator.yaml, or helm upgrade with crds.install=true"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_missing_permission_names_the_role_that_grants_it() {
        let r = rbac(None);
        let needs = needs(&r, "lease");
        let namespaces = needs
            .iter()
            .find(|n| n.resource == Resource::Namespaces && n.verb == "list")
            .unwrap();
        assert_eq!(
            Problem::Forbidden(namespaces.clone()).describe(&r),
            "cannot list namespaces: the ServiceAccount needs the ebpo-partner-accounts ClusterRole"
        );
        let status = needs
            .iter()
            .find(|n| n.subresource == Some("status"))
            .unwrap();
        assert_eq!(
            Problem::Forbidden(status.clone()).describe(&r),
            "cannot patch partnereventsources.eventbridgepartner.dev/status: the ServiceAccount \
             needs the ebpo ClusterRole"
        );
        let lease = needs
            .iter()
            .find(|n| n.resource == Resource::Leases && n.verb == "update")
            .unwrap();
        assert_eq!(
            Problem::Forbidden(lease.clone()).describe(&r),
            "cannot update leases.coordination.k8s.io lease in namespace ops: the ServiceAccount \
             needs the ebpo-leader-election Role in namespace ops"
        );
    }

    #[test]
    fn a_single_namespace_install_checks_that_namespace_and_names_its_role() {
        let r = rbac(Some("tenants"));
        let needs = needs(&r, "lease");
        let watch = needs
            .iter()
            .find(|n| n.resource == Resource::PartnerEventSources && n.verb == "watch")
            .unwrap();
        assert_eq!(watch.namespace.as_deref(), Some("tenants"));
        assert_eq!(
            Problem::Forbidden(watch.clone()).describe(&r),
            "cannot watch partnereventsources.eventbridgepartner.dev in namespace tenants: the \
             ServiceAccount needs the ebpo Role in namespace tenants"
        );
        // PartnerAccounts and namespaces are cluster-wide whatever the watched namespace.
        assert!(
            needs
                .iter()
                .filter(|n| matches!(n.resource, Resource::PartnerAccounts | Resource::Namespaces))
                .all(|n| n.namespace.is_none())
        );
    }

    #[test]
    fn leases_are_checked_only_with_leader_election() {
        let without = Rbac {
            lease_namespace: None,
            ..rbac(None)
        };
        assert!(
            !needs(&without, "lease")
                .iter()
                .any(|n| n.resource == Resource::Leases)
        );
        assert!(
            needs(&rbac(None), "lease")
                .iter()
                .any(|n| n.resource == Resource::Leases)
        );
    }

    #[test]
    fn answers_a_person_must_fix_are_told_from_ones_to_wait_for() {
        let api = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                message: format!("answer {code}"),
                ..Default::default()
            }))
        };
        assert_eq!(classify(&api(404)), Answer::NotFound);
        assert_eq!(classify(&api(403)), Answer::Forbidden("answer 403".into()));
        assert_eq!(
            classify(&api(401)),
            Answer::Unauthorized("answer 401".into())
        );
        for code in [500, 503, 429] {
            assert!(
                matches!(classify(&api(code)), Answer::Transient(_)),
                "{code}"
            );
        }
        let broken = kube::Error::Service("connection refused".into());
        assert!(matches!(classify(&broken), Answer::Transient(_)));
    }

    #[test]
    fn resources_display_as_a_person_names_them() {
        assert_eq!(
            Resource::PartnerEventSources.display(),
            "partnereventsources.eventbridgepartner.dev"
        );
        assert_eq!(Resource::Namespaces.display(), "namespaces");
        assert_eq!(Resource::Events.display(), "events.events.k8s.io");
    }
}
