//! PartnerAccounts at run time: the reconciler that assumes each account's role and reports
//! whether it works, and the lookup a PartnerEventSource pass makes to learn which identity it
//! acts as and whether the account's grant permits it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;
use tracing::{info, warn};

mod grant;

pub use grant::{Access, OwnIdentity, Resolution, permits, resolve};

use crate::aws::identity::{Identities, Identity};
use crate::error::Error;
use crate::resources::conditions::{ConditionStatus, DEFAULT, READY, Reason};
use crate::resources::{FIELD_MANAGER, PartnerAccount, PartnerAccountStatus, PartnerEventSource};

/// Whether a PartnerAccount's identity can be used.
#[derive(Clone, Debug)]
pub enum IdentityState {
    /// Its role was assumed (or it uses the operator's credentials).
    Ready(Arc<Identity>),
    /// Assuming its role failed, with AWS's answer.
    NotReady(String),
}

/// The identity a PartnerEventSource acts with, and what its partner account allows: one
/// variant per state that can happen, each with what that state knows.
#[derive(Clone, Debug)]
pub enum Acting {
    /// The object may act, with this identity.
    Granted {
        /// The operator's own identity, or the partner account's.
        identity: Arc<Identity>,
        /// The partner account to record in the status (empty: the operator's own identity).
        partner_account: String,
        /// The partner account's default region.
        region: Option<String>,
    },
    /// The partner account's grant does not cover the object.
    NotPermitted {
        /// The rule the object breaks.
        rule: String,
        /// The partner account.
        partner_account: String,
        /// The partner account's default region.
        region: Option<String>,
    },
    /// No usable partner account: none resolves, or the one named cannot be used.
    NotReady {
        /// Why, for the status.
        why: String,
        /// The partner account, when one resolved.
        partner_account: Option<String>,
        /// The partner account's default region.
        region: Option<String>,
    },
    /// The partner account was not checked yet (the operator just started): look again in a
    /// moment rather than report it not ready.
    Unchecked {
        /// The partner account.
        partner_account: String,
    },
}

impl Acting {
    /// What the object's partner account allows, as the pure core sees it.
    pub fn access(&self) -> Access {
        match self {
            Acting::Granted { .. } => Access::Granted,
            Acting::NotPermitted { rule, .. } => Access::NotPermitted(rule.clone()),
            Acting::NotReady { why, .. } => Access::NotReady(why.clone()),
            Acting::Unchecked { partner_account } => Access::NotReady(format!(
                "PartnerAccount {partner_account} has not been checked yet"
            )),
        }
    }

    /// The identity to act with, when the object may act.
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        match self {
            Acting::Granted { identity, .. } => Some(identity),
            _ => None,
        }
    }

    /// The partner account to record in the status (empty: the operator's own identity);
    /// `None` while none resolves.
    pub fn partner_account(&self) -> Option<&str> {
        match self {
            Acting::Granted {
                partner_account, ..
            }
            | Acting::NotPermitted {
                partner_account, ..
            }
            | Acting::Unchecked { partner_account } => Some(partner_account),
            Acting::NotReady {
                partner_account, ..
            } => partner_account.as_deref(),
        }
    }

    /// The partner account's default region.
    pub fn region(&self) -> Option<&str> {
        match self {
            Acting::Granted { region, .. }
            | Acting::NotPermitted { region, .. }
            | Acting::NotReady { region, .. } => region.as_deref(),
            Acting::Unchecked { .. } => None,
        }
    }
}

/// What PartnerAccount handling shares with the rest of the operator.
pub struct Accounts {
    /// Every PartnerAccount.
    pub store: Store<PartnerAccount>,
    /// Every namespace's metadata, for the grants' namespace selectors.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Makes identities.
    pub identities: Identities,
    /// The operator's own identity.
    pub operator: Arc<Identity>,
    /// When objects that name no PartnerAccount may use the operator's own identity.
    own: OwnIdentity,
    states: Mutex<HashMap<String, IdentityState>>,
}

impl Accounts {
    /// Nothing known about any PartnerAccount yet.
    pub fn new(
        store: Store<PartnerAccount>,
        namespaces: Store<PartialObjectMeta<Namespace>>,
        identities: Identities,
        operator: Arc<Identity>,
        own: OwnIdentity,
    ) -> Self {
        Accounts {
            store,
            namespaces,
            identities,
            operator,
            own,
            states: Mutex::new(HashMap::new()),
        }
    }

    fn states(&self) -> MutexGuard<'_, HashMap<String, IdentityState>> {
        // Only whole values are stored; a poisoned lock still holds usable ones.
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn labels_of(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default()
    }

    /// Which partner account an object resolves to.
    pub fn resolution(&self, obj: &PartnerEventSource) -> Resolution {
        let accounts = self.store.state();
        let (recorded, reference) = (
            obj.recorded_partner_account(),
            obj.partner_account_reference(),
        );
        let names: Vec<String> = accounts.iter().map(|a| a.name_any()).collect();
        resolve(
            recorded,
            reference,
            names
                .iter()
                .map(String::as_str)
                .zip(accounts.iter().map(|a| &a.spec)),
            self.own,
        )
    }

    /// The identity an object acts with and whether it may.
    pub fn acting(&self, obj: &PartnerEventSource) -> Acting {
        let not_ready = |why: String| Acting::NotReady {
            why,
            partner_account: None,
            region: None,
        };
        let name = match self.resolution(obj) {
            Resolution::Operator => {
                return Acting::Granted {
                    identity: self.operator.clone(),
                    partner_account: String::new(),
                    region: None,
                };
            }
            Resolution::Missing(name) => {
                return not_ready(format!("PartnerAccount {name} does not exist"));
            }
            Resolution::AmbiguousDefault(names) => {
                let message = format!(
                    "more than one PartnerAccount is marked default ({}), so none is used: \
                     set spec.partnerAccountRef or leave one default",
                    names.join(", ")
                );
                return not_ready(message);
            }
            Resolution::Unnamed => {
                let message = "no PartnerAccount is named and none is marked default, so no \
                               identity is used: set spec.partnerAccountRef, or mark one \
                               PartnerAccount default (spec.default: true); the operator's own \
                               identity serves such objects only while no PartnerAccount exists, \
                               or with --own-identity fallback";
                return not_ready(message.to_owned());
            }
            Resolution::Account(name) => name,
        };
        match self.store.get(&ObjectRef::new(&name)) {
            Some(account) => self.within(obj, &name, &account),
            None => not_ready(format!("PartnerAccount {name} does not exist")),
        }
    }

    /// The identity of partner account `name`, when its grant permits the object and it is
    /// ready.
    fn within(&self, obj: &PartnerEventSource, name: &str, account: &PartnerAccount) -> Acting {
        let labels = self.labels_of(&obj.namespace().unwrap_or_default());
        let (partner_account, region) = (name.to_owned(), account.spec.region.clone());
        if let Err(rule) = permits(&account.spec, name, &labels, &obj.spec) {
            return Acting::NotPermitted {
                rule,
                partner_account,
                region,
            };
        }
        match self.states().get(name) {
            Some(IdentityState::Ready(identity)) => Acting::Granted {
                identity: identity.clone(),
                partner_account,
                region,
            },
            Some(IdentityState::NotReady(why)) => Acting::NotReady {
                why: format!("PartnerAccount {name} is not ready: {why}"),
                partner_account: Some(partner_account),
                region,
            },
            None => Acting::Unchecked { partner_account },
        }
    }
}

/// What the PartnerAccount reconciler needs.
pub struct AccountContext {
    /// Kubernetes client.
    pub client: Client,
    /// The shared PartnerAccount state.
    pub accounts: Arc<Accounts>,
    /// Every PartnerEventSource, to count users and to re-check them.
    pub sources: Store<PartnerEventSource>,
    /// Where to send PartnerEventSource objects that must be looked at again.
    pub recheck: mpsc::UnboundedSender<ObjectRef<PartnerEventSource>>,
}

/// Assumes the account's role, proves it with `GetCallerIdentity`, records the identity for
/// the PartnerEventSource passes, and reports it in the status.
pub async fn reconcile_account(
    account: Arc<PartnerAccount>,
    ctx: Arc<AccountContext>,
) -> Result<Action, Error> {
    let name = account.name_any();
    let (state, mut status) = match ctx
        .accounts
        .identities
        .partner_account(&name, &account.spec)
        .await
    {
        Ok((identity, who)) => {
            info!(partner_account = %name, account = %who.account, "partner account identity ready");
            let status = account_status(
                &account,
                ConditionStatus::True,
                Reason::IdentityReady,
                "STS GetCallerIdentity answered for this identity",
            );
            (
                IdentityState::Ready(Arc::new(identity)),
                PartnerAccountStatus {
                    caller_identity: Some(who),
                    ..status
                },
            )
        }
        Err(why) => {
            warn!(partner_account = %name, "cannot use the partner account's identity: {why}");
            let status = account_status(
                &account,
                ConditionStatus::False,
                Reason::AssumeRoleFailed,
                &why,
            );
            (IdentityState::NotReady(why), status)
        }
    };
    let ready = matches!(state, IdentityState::Ready(_));
    if let Some(condition) = default_conflict(&ctx.accounts.store, &account) {
        status.conditions.push(condition);
    }
    ctx.accounts.states().insert(name.clone(), state);
    status.sources = Some(users(&ctx.sources, &name) as i64);
    if account.status.as_ref() != Some(&status) {
        write_account_status(&ctx.client, &name, &status).await?;
    }
    recheck_users(&ctx, &account);
    // A failing role is looked at again every minute; a working one is refreshed (and its
    // source count updated) every few minutes. Never a hot loop.
    Ok(Action::requeue(if ready {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(60)
    }))
}

/// The status for a check that ended with `Ready=value`, keeping the condition's transition
/// time when its value did not change.
fn account_status(
    account: &PartnerAccount,
    value: ConditionStatus,
    reason: Reason,
    message: &str,
) -> PartnerAccountStatus {
    let previous = account
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
    let transition = match previous {
        Some(p) if p.status == value => p.last_transition_time.clone(),
        _ => Time(
            Timestamp::from_second(Timestamp::now().as_second())
                .unwrap_or_else(|_| Timestamp::now()),
        ),
    };
    PartnerAccountStatus {
        caller_identity: None,
        sources: None,
        observed_generation: account.meta().generation,
        conditions: vec![Condition {
            type_: READY.into(),
            status: value.as_str().into(),
            reason: reason.as_str().into(),
            message: message.chars().take(32 * 1024).collect(),
            observed_generation: account.meta().generation,
            last_transition_time: transition,
        }],
    }
}

/// A `Default=False, reason=AmbiguousDefault` condition when this account and another both say
/// they are the default (then neither is used for objects that name no account).
fn default_conflict(store: &Store<PartnerAccount>, account: &PartnerAccount) -> Option<Condition> {
    if !account.spec.default {
        return None;
    }
    let mut defaults: Vec<String> = store
        .state()
        .iter()
        .filter(|a| a.spec.default)
        .map(|a| a.name_any())
        .collect();
    if defaults.len() < 2 {
        return None;
    }
    defaults.sort();
    let previous = account
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == DEFAULT));
    Some(Condition {
        type_: DEFAULT.into(),
        status: ConditionStatus::False.as_str().into(),
        reason: Reason::AmbiguousDefault.as_str().into(),
        message: format!(
            "PartnerAccounts {} are all marked default, so none is used for objects without \
             spec.partnerAccountRef",
            defaults.join(", ")
        ),
        observed_generation: account.meta().generation,
        last_transition_time: previous
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| {
                Time(
                    Timestamp::from_second(Timestamp::now().as_second())
                        .unwrap_or_else(|_| Timestamp::now()),
                )
            }),
    })
}

async fn write_account_status(
    client: &Client,
    name: &str,
    status: &PartnerAccountStatus,
) -> Result<(), Error> {
    let api: Api<PartnerAccount> = Api::all(client.clone());
    let patch = serde_json::json!({
        "apiVersion": PartnerAccount::api_version(&()),
        "kind": PartnerAccount::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// The objects that resolved to this partner account.
fn users(sources: &Store<PartnerEventSource>, name: &str) -> usize {
    sources
        .state()
        .iter()
        .filter(|o| o.status.as_ref().and_then(|s| s.partner_account.as_deref()) == Some(name))
        .count()
}

/// Asks for a pass over every object this account's change may affect: those that resolved
/// to it, name it, or (for a default account) name none.
fn recheck_users(ctx: &AccountContext, account: &PartnerAccount) {
    let name = account.name_any();
    for obj in ctx.sources.state() {
        let (recorded, reference) = (
            obj.recorded_partner_account(),
            obj.partner_account_reference(),
        );
        let affected = recorded == Some(name.as_str())
            || reference == Some(name.as_str())
            || (reference.is_none() && recorded.is_none_or(str::is_empty) && account.spec.default);
        if affected {
            let _ = ctx.recheck.send(ObjectRef::from_obj(&*obj));
        }
    }
}

/// Looks again after a failed PartnerAccount pass (a Kubernetes error).
pub fn account_error_policy(
    account: Arc<PartnerAccount>,
    error: &Error,
    _ctx: Arc<AccountContext>,
) -> Action {
    warn!(partner_account = %account.name_any(), "partner account reconcile failed: {error}");
    Action::requeue(Duration::from_secs(30))
}
