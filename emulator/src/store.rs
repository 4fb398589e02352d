//! The emulated service state and the semantics of each operation.
//!
//! Pure logic over plain values: every call gets the caller's account, region
//! and the current time, so behaviour (expiry included) is tested without a
//! server or a clock.
//!
//! State is kept per region (the region of the request's SigV4 scope), per
//! partner account (sources) and per customer account (event buses), as AWS
//! keeps it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::pagination::{Scope, Tokens, page};
use crate::wire::RequestIds;

/// Page size when a list call gives no `Limit` (the model's maximum).
const DEFAULT_PAGE_SIZE: usize = 100;

/// The state of a partner event source as AWS reports it (`EventSourceState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SourceState {
    /// No matching, active event bus in the customer account.
    Pending,
    /// The customer's matching event bus exists and is active.
    Active,
    /// The customer had a matching bus, but the partner's source is gone
    /// (only customers see this; the partner no longer sees the source).
    Deleted,
}

impl SourceState {
    /// The wire name: `PENDING`, `ACTIVE` or `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Pending => "PENDING",
            SourceState::Active => "ACTIVE",
            SourceState::Deleted => "DELETED",
        }
    }
}

/// What a partner call did to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChangeKind {
    /// `CreatePartnerEventSource` created it.
    Created,
    /// `DeletePartnerEventSource` removed it.
    Deleted,
}

/// One source created or deleted by a partner call, in the order the emulator served them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceChange {
    /// Created or deleted.
    pub kind: ChangeKind,
    /// The source name.
    pub name: String,
    /// The customer account it was (or is) shared with.
    pub account: String,
    /// The partner account that made the call.
    pub partner_account: String,
    /// When the change took effect.
    #[serde(serialize_with = "serialize_time")]
    pub at: SystemTime,
}

/// How many changes the history keeps (the oldest go first): enough for any test run, and a
/// bound for an emulator left running for days.
const CHANGES_KEPT: usize = 100_000;

/// A partner event source as the emulator holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceSnapshot {
    /// The region the source lives in.
    pub region: String,
    /// The partner account that created it.
    pub partner_account: String,
    /// The source name (`aws.partner/...`).
    pub name: String,
    /// `arn:aws:events:<region>::event-source/<name>`.
    pub arn: String,
    /// The customer account it is shared with.
    pub account: String,
    /// `Pending` or `Active` (a deleted source is gone from this list).
    pub state: SourceState,
    /// When it was created.
    #[serde(serialize_with = "serialize_time")]
    pub creation_time: SystemTime,
    /// When it expires if still pending; `None` while active.
    #[serde(serialize_with = "serialize_opt_time")]
    pub expiration_time: Option<SystemTime>,
}

/// An event bus in a customer account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusSnapshot {
    /// The region the bus lives in.
    pub region: String,
    /// The account that owns it.
    pub account: String,
    /// The bus name (for a partner bus, the source name).
    pub name: String,
    /// `arn:aws:events:<region>:<account>:event-bus/<name>`.
    pub arn: String,
    /// The partner event source it was matched with, for a partner bus.
    pub event_source_name: Option<String>,
    /// When it was created.
    #[serde(serialize_with = "serialize_time")]
    pub creation_time: SystemTime,
}

/// How long a `PENDING` source lives before AWS deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expirations {
    /// From its creation, for a source its customer never activated.
    pub pending: Duration,
    /// From a deactivation, or from the deletion of the customer's matching bus.
    pub deactivated: Duration,
}

/// Who is calling, from where, and when.
#[derive(Debug, Clone)]
pub(crate) struct Caller<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub now: SystemTime,
    /// The expiration periods in force.
    pub expirations: Expirations,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SourceKey {
    region: String,
    partner: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Source {
    account: String,
    arn: String,
    created: SystemTime,
    active: bool,
    expires: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BusKey {
    region: String,
    account: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Bus {
    arn: String,
    created: SystemTime,
    /// The partner source this bus was matched with; kept after the source is
    /// deleted so the customer sees it as `DELETED`.
    source: Option<SourceLink>,
}

#[derive(Debug, Clone)]
struct SourceLink {
    name: String,
    arn: String,
    created: SystemTime,
}

/// All state of the emulated service.
#[derive(Debug)]
pub(crate) struct Store {
    sources: BTreeMap<SourceKey, Source>,
    changes: VecDeque<SourceChange>,
    buses: BTreeMap<BusKey, Bus>,
    tokens: Tokens,
    event_ids: RequestIds,
}

impl Store {
    pub(crate) fn new() -> Store {
        Store {
            sources: BTreeMap::new(),
            changes: VecDeque::new(),
            buses: BTreeMap::new(),
            tokens: Tokens::new(),
            event_ids: RequestIds::new(),
        }
    }

    /// Runs one (already validated) operation.
    pub(crate) fn handle(
        &mut self,
        operation: &str,
        caller: &Caller<'_>,
        input: &Value,
    ) -> Result<Option<Value>, ApiError> {
        self.sweep(caller.now);
        match operation {
            "CreatePartnerEventSource" => self
                .create_partner_event_source(
                    caller,
                    required(input, "Name")?,
                    required(input, "Account")?,
                )
                .map(Some),
            "DescribePartnerEventSource" => self
                .describe_partner_event_source(caller, required(input, "Name")?)
                .map(Some),
            "DeletePartnerEventSource" => {
                self.delete_partner_event_source(
                    caller,
                    required(input, "Name")?,
                    required(input, "Account")?,
                );
                Ok(None)
            }
            "ListPartnerEventSourceAccounts" => self
                .list_partner_event_source_accounts(caller, input)
                .map(Some),
            "ListPartnerEventSources" => self.list_partner_event_sources(caller, input).map(Some),
            "DescribeEventSource" => self
                .describe_event_source(caller, required(input, "Name")?)
                .map(Some),
            "CreateEventBus" => self.create_event_bus(caller, input).map(Some),
            "ActivateEventSource" => self
                .activate_event_source(caller, required(input, "Name")?)
                .map(|()| None),
            "DeactivateEventSource" => self
                .deactivate_event_source(caller, required(input, "Name")?)
                .map(|()| None),
            "DeleteEventBus" => self
                .delete_event_bus(caller, required(input, "Name")?)
                .map(|()| None),
            "PutPartnerEvents" => self.put_partner_events(input).map(Some),
            other => Err(ApiError::unknown_operation(format!(
                "Operation {other} is not emulated"
            ))),
        }
    }

    /// Deletes pending sources whose expiration time has come, as AWS does.
    ///
    /// Every request and inspection sweeps first, so expiry needs no
    /// background task: a source is gone from the first look at or after its
    /// `ExpirationTime`. A customer whose bus was matched with it then sees it
    /// `DELETED`, exactly as after a deletion by the partner.
    pub(crate) fn sweep(&mut self, now: SystemTime) {
        self.sources
            .retain(|_, s| s.expires.is_none_or(|expires| expires > now));
    }

    // --- partner side ---

    fn create_partner_event_source(
        &mut self,
        caller: &Caller<'_>,
        name: &str,
        account: &str,
    ) -> Result<Value, ApiError> {
        let key = source_key(caller, name);
        if self.sources.contains_key(&key) {
            return Err(ApiError::already_exists(format!(
                "Event source {name} already exists."
            )));
        }
        let arn = format!("arn:aws:events:{}::event-source/{name}", caller.region);
        self.record(ChangeKind::Created, caller, name, account);
        self.sources.insert(
            key,
            Source {
                account: account.to_owned(),
                arn: arn.clone(),
                created: caller.now,
                active: false,
                expires: Some(caller.now + caller.expirations.pending),
            },
        );
        Ok(json!({ "EventSourceArn": arn }))
    }

    fn describe_partner_event_source(
        &self,
        caller: &Caller<'_>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let source = self
            .sources
            .get(&source_key(caller, name))
            .ok_or_else(|| source_not_found(name))?;
        Ok(json!({ "Arn": source.arn, "Name": name }))
    }

    /// Deletes the source `name` shared with `account`.
    ///
    /// The model lists no `ResourceNotFoundException` for this operation, so
    /// deleting a source that does not exist — or exists but is shared with
    /// another account — succeeds and changes nothing: the call is idempotent
    /// and never deletes a source that another account's pairing owns.
    fn delete_partner_event_source(&mut self, caller: &Caller<'_>, name: &str, account: &str) {
        let key = source_key(caller, name);
        if self.sources.get(&key).is_some_and(|s| s.account == account) {
            self.sources.remove(&key);
            self.record(ChangeKind::Deleted, caller, name, account);
        }
    }

    fn record(&mut self, kind: ChangeKind, caller: &Caller<'_>, name: &str, account: &str) {
        if self.changes.len() == CHANGES_KEPT {
            self.changes.pop_front();
        }
        self.changes.push_back(SourceChange {
            kind,
            name: name.to_owned(),
            account: account.to_owned(),
            partner_account: caller.account.to_owned(),
            at: caller.now,
        });
    }

    /// The sources created and deleted by partner calls, oldest first.
    pub(crate) fn changes(&self) -> Vec<SourceChange> {
        self.changes.iter().cloned().collect()
    }

    fn list_partner_event_source_accounts(
        &self,
        caller: &Caller<'_>,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let name = required(input, "EventSourceName")?;
        let source = self
            .sources
            .get(&source_key(caller, name))
            .ok_or_else(|| source_not_found(name))?;
        let scope = list_scope("ListPartnerEventSourceAccounts", caller, name);
        let after = self.resume(&scope, input)?;
        let entry = {
            let mut e = Map::new();
            e.insert("Account".into(), json!(source.account));
            e.insert("CreationTime".into(), epoch_seconds(source.created));
            if let Some(expires) = source.expires {
                e.insert("ExpirationTime".into(), epoch_seconds(expires));
            }
            e.insert("State".into(), json!(state_of(source).as_str()));
            Value::Object(e)
        };
        let (items, next) = page(
            [(source.account.clone(), entry)],
            after.as_deref(),
            limit(input),
        );
        Ok(self.page_output("PartnerEventSourceAccounts", items, &scope, next))
    }

    fn list_partner_event_sources(
        &self,
        caller: &Caller<'_>,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let prefix = required(input, "NamePrefix")?;
        let scope = list_scope("ListPartnerEventSources", caller, prefix);
        let after = self.resume(&scope, input)?;
        // BTreeMap order is region, partner, name: the caller's sources come sorted by name.
        let matching = self
            .sources
            .iter()
            .filter(|(k, _)| {
                k.region == caller.region
                    && k.partner == caller.account
                    && k.name.starts_with(prefix)
            })
            .map(|(k, s)| (k.name.clone(), json!({ "Arn": s.arn, "Name": k.name })));
        let (items, next) = page(matching, after.as_deref(), limit(input));
        Ok(self.page_output("PartnerEventSources", items, &scope, next))
    }

    fn resume(&self, scope: &Scope, input: &Value) -> Result<Option<String>, ApiError> {
        input
            .get("NextToken")
            .and_then(Value::as_str)
            .map(|token| self.tokens.resume(scope, token))
            .transpose()
    }

    fn page_output(
        &self,
        member: &str,
        items: Vec<Value>,
        scope: &Scope,
        next: Option<String>,
    ) -> Value {
        let mut out = Map::new();
        out.insert(member.to_owned(), Value::Array(items));
        if let Some(after) = next {
            out.insert("NextToken".into(), json!(self.tokens.issue(scope, &after)));
        }
        Value::Object(out)
    }

    fn put_partner_events(&mut self, input: &Value) -> Result<Value, ApiError> {
        let entries = input
            .get("Entries")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let complete = |e: &Value| {
            ["Source", "DetailType", "Detail"]
                .iter()
                .all(|m| e.get(m).is_some())
        };
        if !entries.iter().any(complete) {
            return Err(ApiError::validation(
                "Parameters Detail, DetailType and Source are required for at least one entry.",
            ));
        }
        let mut failed = 0;
        let results: Vec<Value> = entries
            .iter()
            .map(|e| {
                if complete(e) {
                    json!({ "EventId": self.event_ids.next() })
                } else {
                    failed += 1;
                    json!({
                        "ErrorCode": "InvalidArgument",
                        "ErrorMessage": "Parameters Detail, DetailType and Source are required."
                    })
                }
            })
            .collect();
        Ok(json!({ "Entries": results, "FailedEntryCount": failed }))
    }

    // --- customer side ---

    /// The live source named `name` that is shared with the caller's account.
    fn shared_source_key(&self, caller: &Caller<'_>, name: &str) -> Option<SourceKey> {
        self.sources
            .iter()
            .find(|(k, s)| {
                k.region == caller.region && k.name == name && s.account == caller.account
            })
            .map(|(k, _)| k.clone())
    }

    fn describe_event_source(&self, caller: &Caller<'_>, name: &str) -> Result<Value, ApiError> {
        if let Some(key) = self.shared_source_key(caller, name) {
            let source = &self.sources[&key];
            let mut out = Map::new();
            out.insert("Arn".into(), json!(source.arn));
            out.insert("CreatedBy".into(), json!(partner_name(name)));
            out.insert("CreationTime".into(), epoch_seconds(source.created));
            if let Some(expires) = source.expires {
                out.insert("ExpirationTime".into(), epoch_seconds(expires));
            }
            out.insert("Name".into(), json!(name));
            out.insert("State".into(), json!(state_of(source).as_str()));
            return Ok(Value::Object(out));
        }
        match self.deleted_link(caller, name) {
            Some(link) => Ok(json!({
                "Arn": link.arn,
                "CreatedBy": partner_name(&link.name),
                "CreationTime": epoch_seconds(link.created),
                "Name": link.name,
                "State": SourceState::Deleted.as_str(),
            })),
            None => Err(source_not_found(name)),
        }
    }

    /// The caller's matched bus for a source that no longer exists.
    fn deleted_link(&self, caller: &Caller<'_>, name: &str) -> Option<&SourceLink> {
        self.buses
            .get(&bus_key(caller.region, caller.account, name))
            .and_then(|b| b.source.as_ref())
            .filter(|link| link.name == name)
    }

    fn create_event_bus(&mut self, caller: &Caller<'_>, input: &Value) -> Result<Value, ApiError> {
        let name = required(input, "Name")?;
        let source_name = input.get("EventSourceName").and_then(Value::as_str);
        let key = bus_key(caller.region, caller.account, name);
        match source_name {
            Some(source_name) if source_name != name => {
                return Err(ApiError::validation(format!(
                    "Event bus name {name} must match the name of the partner event source {source_name}."
                )));
            }
            None if name.contains('/') => {
                return Err(ApiError::validation(format!(
                    "Event bus name {name} is not valid: custom event bus names can't contain the '/' character."
                )));
            }
            _ => {}
        }
        if name == "default" || self.buses.contains_key(&key) {
            return Err(ApiError::already_exists(format!(
                "Event bus {name} already exists."
            )));
        }
        let arn = format!(
            "arn:aws:events:{}:{}:event-bus/{name}",
            caller.region, caller.account
        );
        let link = match source_name {
            Some(source_name) => {
                let source_key = self
                    .shared_source_key(caller, source_name)
                    .ok_or_else(|| source_not_found(source_name))?;
                let source = self
                    .sources
                    .get_mut(&source_key)
                    .ok_or_else(|| source_not_found(source_name))?;
                source.active = true;
                source.expires = None;
                Some(SourceLink {
                    name: source_name.to_owned(),
                    arn: source.arn.clone(),
                    created: source.created,
                })
            }
            None => None,
        };
        self.buses.insert(
            key,
            Bus {
                arn: arn.clone(),
                created: caller.now,
                source: link,
            },
        );
        let mut out = Map::new();
        out.insert("EventBusArn".into(), json!(arn));
        for echoed in [
            "Description",
            "KmsKeyIdentifier",
            "DeadLetterConfig",
            "LogConfig",
        ] {
            if let Some(v) = input.get(echoed).filter(|v| !v.is_null()) {
                out.insert(echoed.into(), v.clone());
            }
        }
        Ok(Value::Object(out))
    }

    /// Activates a deactivated (pending) source.
    ///
    /// Activating an `ACTIVE` source changes nothing. A source can only be
    /// active while the customer's matching bus exists (the model's `State`
    /// documentation), so activating without one, or activating a deleted
    /// source, is `InvalidStateException`.
    fn activate_event_source(&mut self, caller: &Caller<'_>, name: &str) -> Result<(), ApiError> {
        let Some(key) = self.shared_source_key(caller, name) else {
            return Err(self.missing_or_deleted(caller, name));
        };
        let bus = bus_key(caller.region, caller.account, name);
        let has_bus = self.buses.contains_key(&bus);
        let source = self
            .sources
            .get_mut(&key)
            .ok_or_else(|| source_not_found(name))?;
        if source.active {
            return Ok(());
        }
        if !has_bus {
            return Err(ApiError::invalid_state(format!(
                "Event source {name} has no matching event bus; create the partner event bus to activate it."
            )));
        }
        source.active = true;
        source.expires = None;
        let link = SourceLink {
            name: name.to_owned(),
            arn: source.arn.clone(),
            created: source.created,
        };
        if let Some(b) = self.buses.get_mut(&bus) {
            b.source = Some(link);
        }
        Ok(())
    }

    /// Deactivates an active source: it goes back to `PENDING` (the model's
    /// documentation) and expires after the pending period unless activated.
    ///
    /// Deactivating an already deactivated source changes nothing; a pending
    /// source without a matching bus has nothing to deactivate and a deleted
    /// one cannot change state, both `InvalidStateException`.
    fn deactivate_event_source(&mut self, caller: &Caller<'_>, name: &str) -> Result<(), ApiError> {
        let Some(key) = self.shared_source_key(caller, name) else {
            return Err(self.missing_or_deleted(caller, name));
        };
        let has_bus = self
            .buses
            .contains_key(&bus_key(caller.region, caller.account, name));
        let source = self
            .sources
            .get_mut(&key)
            .ok_or_else(|| source_not_found(name))?;
        if source.active {
            source.active = false;
            source.expires = Some(caller.now + caller.expirations.deactivated);
            Ok(())
        } else if has_bus {
            Ok(())
        } else {
            Err(ApiError::invalid_state(format!(
                "Event source {name} is PENDING and has no matching event bus to deactivate."
            )))
        }
    }

    /// Deletes the caller's event bus `name`.
    ///
    /// The model lists no `ResourceNotFoundException`, so deleting a bus that
    /// does not exist succeeds; the account's `default` bus cannot be deleted
    /// (`ValidationException`). When the bus was matched with a live partner
    /// event source shared with the caller, that source returns to `PENDING`
    /// with a new expiration time (the deactivation period from now), as the
    /// partner FAQ describes, and expires unless a new bus activates it.
    fn delete_event_bus(&mut self, caller: &Caller<'_>, name: &str) -> Result<(), ApiError> {
        if name == "default" {
            return Err(ApiError::validation("Cannot delete event bus default."));
        }
        let key = bus_key(caller.region, caller.account, name);
        if self.buses.remove(&key).is_some()
            && let Some(source_key) = self.shared_source_key(caller, name)
            && let Some(source) = self.sources.get_mut(&source_key)
        {
            source.active = false;
            source.expires = Some(caller.now + caller.expirations.deactivated);
        }
        Ok(())
    }

    fn missing_or_deleted(&self, caller: &Caller<'_>, name: &str) -> ApiError {
        if self.deleted_link(caller, name).is_some() {
            ApiError::invalid_state(format!(
                "Event source {name} is DELETED; its state cannot be changed."
            ))
        } else {
            source_not_found(name)
        }
    }

    // --- out-of-band actions (admin API) ---

    /// Deletes every live source named `name` (in `region` if given), as if
    /// someone else had deleted it. Returns how many were deleted.
    pub(crate) fn delete_out_of_band(
        &mut self,
        name: &str,
        region: Option<&str>,
        now: SystemTime,
    ) -> usize {
        self.sweep(now);
        let before = self.sources.len();
        self.sources.retain(|k, _| !matches_name(k, name, region));
        before - self.sources.len()
    }

    /// Moves the expiration time of every *pending* source named `name` to
    /// `at` (AWS never expires an active source); the next look at or after
    /// `at` removes them, the same way as at a natural expiry. Returns how
    /// many pending sources matched.
    pub(crate) fn expire_at(
        &mut self,
        name: &str,
        region: Option<&str>,
        now: SystemTime,
        at: SystemTime,
    ) -> usize {
        self.sweep(now);
        let mut count = 0;
        for (_, s) in self
            .sources
            .iter_mut()
            .filter(|(k, s)| !s.active && matches_name(k, name, region))
        {
            count += 1;
            s.expires = Some(at);
        }
        self.sweep(now);
        count
    }

    /// Acts as the customer: deletes the event bus matched with every source
    /// named `name` (in `region` if given), which returns a live source to
    /// `PENDING` with a new expiration time, as `DeleteEventBus` does. Returns
    /// how many buses were deleted.
    pub(crate) fn delete_bus(
        &mut self,
        name: &str,
        region: Option<&str>,
        now: SystemTime,
        deactivated: Duration,
    ) -> usize {
        self.sweep(now);
        let doomed: Vec<BusKey> = self
            .buses
            .iter()
            .filter(|(k, b)| {
                k.name == name
                    && region.is_none_or(|r| r == k.region)
                    && b.source.as_ref().is_some_and(|l| l.name == name)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for bus in &doomed {
            self.buses.remove(bus);
            for (_, s) in self.sources.iter_mut().filter(|(k, s)| {
                k.region == bus.region && k.name == bus.name && s.account == bus.account
            }) {
                s.active = false;
                s.expires = Some(now + deactivated);
            }
        }
        doomed.len()
    }

    /// Acts as the customer: creates the matching bus if missing and makes
    /// every live source named `name` active. Returns how many matched.
    pub(crate) fn activate(&mut self, name: &str, region: Option<&str>, now: SystemTime) -> usize {
        self.sweep(now);
        let mut count = 0;
        for (k, s) in self
            .sources
            .iter_mut()
            .filter(|(k, _)| matches_name(k, name, region))
        {
            count += 1;
            s.active = true;
            s.expires = None;
            let link = SourceLink {
                name: k.name.clone(),
                arn: s.arn.clone(),
                created: s.created,
            };
            let bus = bus_key(&k.region, &s.account, &k.name);
            let arn = format!(
                "arn:aws:events:{}:{}:event-bus/{}",
                k.region, s.account, k.name
            );
            self.buses
                .entry(bus)
                .and_modify(|b| b.source = Some(link.clone()))
                .or_insert(Bus {
                    arn,
                    created: now,
                    source: Some(link),
                });
        }
        count
    }

    /// Acts as the customer: deactivates every active source named `name`
    /// (back to pending, expiring after the deactivation period). Returns how
    /// many matched.
    pub(crate) fn deactivate(
        &mut self,
        name: &str,
        region: Option<&str>,
        now: SystemTime,
        deactivated: Duration,
    ) -> usize {
        self.sweep(now);
        let mut count = 0;
        for (_, s) in self
            .sources
            .iter_mut()
            .filter(|(k, _)| matches_name(k, name, region))
        {
            count += 1;
            if s.active {
                s.active = false;
                s.expires = Some(now + deactivated);
            }
        }
        count
    }

    // --- inspection ---

    /// Every live source, sorted by region, partner and name.
    pub(crate) fn sources(&mut self, now: SystemTime) -> Vec<SourceSnapshot> {
        self.sweep(now);
        self.sources
            .iter()
            .map(|(k, s)| SourceSnapshot {
                region: k.region.clone(),
                partner_account: k.partner.clone(),
                name: k.name.clone(),
                arn: s.arn.clone(),
                account: s.account.clone(),
                state: state_of(s),
                creation_time: s.created,
                expiration_time: s.expires,
            })
            .collect()
    }

    /// Every event bus, sorted by region, account and name.
    pub(crate) fn buses(&self) -> Vec<BusSnapshot> {
        self.buses
            .iter()
            .map(|(k, b)| BusSnapshot {
                region: k.region.clone(),
                account: k.account.clone(),
                name: k.name.clone(),
                arn: b.arn.clone(),
                event_source_name: b.source.as_ref().map(|l| l.name.clone()),
                creation_time: b.created,
            })
            .collect()
    }
}

fn state_of(source: &Source) -> SourceState {
    if source.active {
        SourceState::Active
    } else {
        SourceState::Pending
    }
}

fn source_key(caller: &Caller<'_>, name: &str) -> SourceKey {
    SourceKey {
        region: caller.region.to_owned(),
        partner: caller.account.to_owned(),
        name: name.to_owned(),
    }
}

fn bus_key(region: &str, account: &str, name: &str) -> BusKey {
    BusKey {
        region: region.to_owned(),
        account: account.to_owned(),
        name: name.to_owned(),
    }
}

fn matches_name(key: &SourceKey, name: &str, region: Option<&str>) -> bool {
    key.name == name && region.is_none_or(|r| r == key.region)
}

fn list_scope(operation: &str, caller: &Caller<'_>, filter: &str) -> Scope {
    Scope {
        operation: operation.to_owned(),
        region: caller.region.to_owned(),
        caller: caller.account.to_owned(),
        filter: filter.to_owned(),
    }
}

fn limit(input: &Value) -> usize {
    input
        .get("Limit")
        .and_then(Value::as_u64)
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(DEFAULT_PAGE_SIZE)
}

fn source_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Event source {name} does not exist."))
}

/// The partner name of a source (`aws.partner/<partner_name>/...`), which AWS
/// reports as `CreatedBy`.
fn partner_name(source_name: &str) -> &str {
    source_name.split('/').nth(1).unwrap_or(source_name)
}

/// A required string member; validation has already ensured it is present.
fn required<'a>(input: &'a Value, member: &str) -> Result<&'a str, ApiError> {
    input
        .get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::internal(format!("{member} missing after validation")))
}

/// A timestamp as the JSON protocol sends it: epoch seconds, millisecond precision.
pub(crate) fn epoch_seconds(t: SystemTime) -> Value {
    json!(epoch_seconds_f64(t))
}

fn epoch_seconds_f64(t: SystemTime) -> f64 {
    let millis = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    // Millisecond counts of real dates fit f64 exactly.
    millis as f64 / 1000.0
}

fn serialize_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(epoch_seconds_f64(*t))
}

fn serialize_opt_time<S: serde::Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_f64(epoch_seconds_f64(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTNER: &str = "111111111111";
    const CUSTOMER: &str = "222222222222";
    const OTHER: &str = "333333333333";
    const NAME: &str = "aws.partner/acme.com/c1/orders";
    const ONE_WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
    const TWO_WEEKS: Duration = Duration::from_secs(14 * 24 * 3600);

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn caller(account: &str, now: SystemTime) -> Caller<'_> {
        Caller {
            region: "eu-west-1",
            account,
            now,
            expirations: Expirations {
                pending: ONE_WEEK,
                deactivated: TWO_WEEKS,
            },
        }
    }

    fn call(
        store: &mut Store,
        who: &Caller<'_>,
        op: &str,
        input: Value,
    ) -> Result<Option<Value>, ApiError> {
        store.handle(op, who, &input)
    }

    fn create(store: &mut Store, now: SystemTime) {
        call(
            store,
            &caller(PARTNER, now),
            "CreatePartnerEventSource",
            json!({"Name": NAME, "Account": CUSTOMER}),
        )
        .expect("created");
    }

    fn customer_state(store: &mut Store, now: SystemTime) -> Value {
        call(
            store,
            &caller(CUSTOMER, now),
            "DescribeEventSource",
            json!({"Name": NAME}),
        )
        .expect("described")
        .expect("output")
    }

    #[test]
    fn create_is_pending_with_one_week_expiry_and_unique_per_partner() {
        let mut store = Store::new();
        create(&mut store, at(0));
        let listed = call(
            &mut store,
            &caller(PARTNER, at(1)),
            "ListPartnerEventSourceAccounts",
            json!({"EventSourceName": NAME}),
        )
        .expect("listed")
        .expect("output");
        let entry = &listed["PartnerEventSourceAccounts"][0];
        assert_eq!(entry["State"], "PENDING");
        assert_eq!(entry["Account"], CUSTOMER);
        assert_eq!(
            entry["ExpirationTime"].as_f64().expect("number")
                - entry["CreationTime"].as_f64().expect("number"),
            ONE_WEEK.as_secs_f64()
        );
        let err = call(
            &mut store,
            &caller(PARTNER, at(2)),
            "CreatePartnerEventSource",
            json!({"Name": NAME, "Account": OTHER}),
        )
        .expect_err("taken");
        assert_eq!(err.code, "ResourceAlreadyExistsException");
        // Another partner account has its own namespace.
        call(
            &mut store,
            &caller(OTHER, at(2)),
            "CreatePartnerEventSource",
            json!({"Name": NAME, "Account": CUSTOMER}),
        )
        .expect("other partner");
    }

    #[test]
    fn only_the_shared_account_sees_the_source() {
        let mut store = Store::new();
        create(&mut store, at(0));
        assert_eq!(customer_state(&mut store, at(1))["State"], "PENDING");
        assert_eq!(customer_state(&mut store, at(1))["CreatedBy"], "acme.com");
        for who in [OTHER, PARTNER] {
            let err = call(
                &mut store,
                &caller(who, at(1)),
                "DescribeEventSource",
                json!({"Name": NAME}),
            )
            .expect_err("not shared");
            assert_eq!(err.code, "ResourceNotFoundException");
        }
    }

    #[test]
    fn bus_activates_deactivate_pends_activate_restores() {
        let mut store = Store::new();
        create(&mut store, at(0));
        let cust = caller(CUSTOMER, at(10));
        let err = call(
            &mut store,
            &cust,
            "ActivateEventSource",
            json!({"Name": NAME}),
        )
        .expect_err("no bus");
        assert_eq!(err.code, "InvalidStateException");
        let err = call(
            &mut store,
            &cust,
            "DeactivateEventSource",
            json!({"Name": NAME}),
        )
        .expect_err("no bus");
        assert_eq!(err.code, "InvalidStateException");
        let out = call(
            &mut store,
            &cust,
            "CreateEventBus",
            json!({"Name": NAME, "EventSourceName": NAME}),
        )
        .expect("bus")
        .expect("output");
        assert_eq!(
            out["EventBusArn"],
            format!("arn:aws:events:eu-west-1:{CUSTOMER}:event-bus/{NAME}")
        );
        let described = customer_state(&mut store, at(11));
        assert_eq!(described["State"], "ACTIVE");
        assert!(described.get("ExpirationTime").is_none());
        call(
            &mut store,
            &cust,
            "ActivateEventSource",
            json!({"Name": NAME}),
        )
        .expect("already active is a no-op");

        call(
            &mut store,
            &caller(CUSTOMER, at(20)),
            "DeactivateEventSource",
            json!({"Name": NAME}),
        )
        .expect("deactivated");
        let described = customer_state(&mut store, at(21));
        assert_eq!(described["State"], "PENDING");
        assert_eq!(
            described["ExpirationTime"].as_f64().expect("number"),
            epoch_seconds_f64(at(20) + TWO_WEEKS)
        );
        call(
            &mut store,
            &caller(CUSTOMER, at(22)),
            "DeactivateEventSource",
            json!({"Name": NAME}),
        )
        .expect("already deactivated is a no-op");
        call(
            &mut store,
            &caller(CUSTOMER, at(30)),
            "ActivateEventSource",
            json!({"Name": NAME}),
        )
        .expect("activated");
        assert_eq!(customer_state(&mut store, at(31))["State"], "ACTIVE");
    }

    #[test]
    fn bus_rules() {
        let mut store = Store::new();
        create(&mut store, at(0));
        let cust = caller(CUSTOMER, at(1));
        let err = call(
            &mut store,
            &cust,
            "CreateEventBus",
            json!({"Name": "aws.partner/acme.com/c1/other", "EventSourceName": NAME}),
        )
        .expect_err("mismatch");
        assert_eq!(err.code, "ValidationException");
        let err = call(
            &mut store,
            &caller(OTHER, at(1)),
            "CreateEventBus",
            json!({"Name": NAME, "EventSourceName": NAME}),
        )
        .expect_err("not shared with OTHER");
        assert_eq!(err.code, "ResourceNotFoundException");
        let err =
            call(&mut store, &cust, "CreateEventBus", json!({"Name": NAME})).expect_err("slash");
        assert_eq!(err.code, "ValidationException");
        let err = call(
            &mut store,
            &cust,
            "CreateEventBus",
            json!({"Name": "default"}),
        )
        .expect_err("default");
        assert_eq!(err.code, "ResourceAlreadyExistsException");
        call(
            &mut store,
            &cust,
            "CreateEventBus",
            json!({"Name": "custom"}),
        )
        .expect("custom bus");
        call(
            &mut store,
            &cust,
            "CreateEventBus",
            json!({"Name": NAME, "EventSourceName": NAME}),
        )
        .expect("bus");
        let err = call(
            &mut store,
            &cust,
            "CreateEventBus",
            json!({"Name": NAME, "EventSourceName": NAME}),
        )
        .expect_err("twice");
        assert_eq!(err.code, "ResourceAlreadyExistsException");
    }

    #[test]
    fn delete_is_idempotent_scoped_to_account_and_leaves_customer_deleted() {
        let mut store = Store::new();
        create(&mut store, at(0));
        call(
            &mut store,
            &caller(CUSTOMER, at(1)),
            "CreateEventBus",
            json!({"Name": NAME, "EventSourceName": NAME}),
        )
        .expect("bus");
        let partner = caller(PARTNER, at(2));
        call(
            &mut store,
            &partner,
            "DeletePartnerEventSource",
            json!({"Name": NAME, "Account": OTHER}),
        )
        .expect("other account: no-op");
        assert_eq!(store.sources(at(2)).len(), 1);
        call(
            &mut store,
            &partner,
            "DeletePartnerEventSource",
            json!({"Name": NAME, "Account": CUSTOMER}),
        )
        .expect("deleted");
        call(
            &mut store,
            &partner,
            "DeletePartnerEventSource",
            json!({"Name": NAME, "Account": CUSTOMER}),
        )
        .expect("again: no-op");
        assert!(store.sources(at(3)).is_empty());
        // The history has the create and the one delete that removed something.
        let changes: Vec<(ChangeKind, SystemTime)> =
            store.changes().iter().map(|c| (c.kind, c.at)).collect();
        assert_eq!(
            changes,
            [(ChangeKind::Created, at(0)), (ChangeKind::Deleted, at(2))]
        );
        assert!(
            store
                .changes()
                .iter()
                .all(|c| c.name == NAME && c.account == CUSTOMER)
        );
        let err = call(
            &mut store,
            &partner,
            "DescribePartnerEventSource",
            json!({"Name": NAME}),
        )
        .expect_err("gone");
        assert_eq!(err.code, "ResourceNotFoundException");
        let err = call(
            &mut store,
            &partner,
            "ListPartnerEventSourceAccounts",
            json!({"EventSourceName": NAME}),
        )
        .expect_err("gone");
        assert_eq!(err.code, "ResourceNotFoundException");
        assert_eq!(customer_state(&mut store, at(3))["State"], "DELETED");
        let err = call(
            &mut store,
            &caller(CUSTOMER, at(3)),
            "ActivateEventSource",
            json!({"Name": NAME}),
        )
        .expect_err("deleted");
        assert_eq!(err.code, "InvalidStateException");
        // Recreated: pending again until the customer activates it with its existing bus.
        create(&mut store, at(4));
        assert_eq!(customer_state(&mut store, at(5))["State"], "PENDING");
        call(
            &mut store,
            &caller(CUSTOMER, at(6)),
            "ActivateEventSource",
            json!({"Name": NAME}),
        )
        .expect("re-activated");
        assert_eq!(customer_state(&mut store, at(7))["State"], "ACTIVE");
    }

    #[test]
    fn pending_sources_expire_active_ones_do_not() {
        let mut store = Store::new();
        create(&mut store, at(0));
        let just_before = at(0) + ONE_WEEK - Duration::from_secs(1);
        assert_eq!(store.sources(just_before).len(), 1);
        assert!(store.sources(at(0) + ONE_WEEK).is_empty());
        let err = call(
            &mut store,
            &caller(PARTNER, at(0) + ONE_WEEK),
            "DescribePartnerEventSource",
            json!({"Name": NAME}),
        )
        .expect_err("expired");
        assert_eq!(err.code, "ResourceNotFoundException");

        create(&mut store, at(0));
        assert_eq!(store.activate(NAME, None, at(1)), 1);
        assert_eq!(store.sources(at(0) + TWO_WEEKS * 10).len(), 1);
        assert_eq!(
            store.expire_at(NAME, None, at(2), at(2)),
            0,
            "active sources never expire"
        );
        assert_eq!(store.deactivate(NAME, None, at(3), TWO_WEEKS), 1);
        assert_eq!(store.expire_at(NAME, None, at(4), at(4)), 1);
        assert!(store.sources(at(4)).is_empty());
    }

    #[test]
    fn expire_at_a_later_time_shows_the_new_expiration_first() {
        let mut store = Store::new();
        create(&mut store, at(0));
        assert_eq!(store.expire_at(NAME, None, at(1), at(5)), 1);
        let sources = store.sources(at(4));
        assert_eq!(sources[0].expiration_time, Some(at(5)));
        assert!(store.sources(at(5)).is_empty());
    }

    #[test]
    fn a_deactivated_source_expires_after_two_weeks_and_the_customer_sees_deleted() {
        let mut store = Store::new();
        create(&mut store, at(0));
        call(
            &mut store,
            &caller(CUSTOMER, at(1)),
            "CreateEventBus",
            json!({"Name": NAME, "EventSourceName": NAME}),
        )
        .expect("bus");
        call(
            &mut store,
            &caller(CUSTOMER, at(10)),
            "DeactivateEventSource",
            json!({"Name": NAME}),
        )
        .expect("deactivated");
        let described = customer_state(&mut store, at(11));
        assert_eq!(
            described["ExpirationTime"].as_f64().expect("number"),
            epoch_seconds_f64(at(10) + TWO_WEEKS)
        );
        assert_eq!(store.sources(at(10) + ONE_WEEK).len(), 1, "not one week");
        assert!(store.sources(at(10) + TWO_WEEKS).is_empty());
        assert_eq!(
            customer_state(&mut store, at(10) + TWO_WEEKS)["State"],
            "DELETED"
        );
    }

    #[test]
    fn deleting_the_matched_bus_returns_the_source_to_pending_until_it_expires() {
        let mut store = Store::new();
        create(&mut store, at(0));
        let cust = caller(CUSTOMER, at(1));
        call(
            &mut store,
            &cust,
            "CreateEventBus",
            json!({"Name": NAME, "EventSourceName": NAME}),
        )
        .expect("bus");
        assert_eq!(customer_state(&mut store, at(2))["State"], "ACTIVE");
        call(
            &mut store,
            &caller(CUSTOMER, at(100)),
            "DeleteEventBus",
            json!({"Name": NAME}),
        )
        .expect("bus deleted");
        assert!(store.buses().is_empty());
        let described = customer_state(&mut store, at(101));
        assert_eq!(described["State"], "PENDING");
        assert_eq!(
            described["ExpirationTime"].as_f64().expect("number"),
            epoch_seconds_f64(at(100) + TWO_WEEKS)
        );
        let err = call(
            &mut store,
            &caller(CUSTOMER, at(102)),
            "ActivateEventSource",
            json!({"Name": NAME}),
        )
        .expect_err("no bus any more");
        assert_eq!(err.code, "InvalidStateException");
        // A missing bus is no error (the model lists no ResourceNotFoundException).
        call(
            &mut store,
            &caller(CUSTOMER, at(103)),
            "DeleteEventBus",
            json!({"Name": NAME}),
        )
        .expect("idempotent");
        let err = call(
            &mut store,
            &caller(CUSTOMER, at(103)),
            "DeleteEventBus",
            json!({"Name": "default"}),
        )
        .expect_err("default");
        assert_eq!(err.code, "ValidationException");
        // Expired: gone for the partner, and the customer has no bus to see it DELETED.
        assert!(store.sources(at(100) + TWO_WEEKS).is_empty());
        let err = call(
            &mut store,
            &caller(CUSTOMER, at(100) + TWO_WEEKS),
            "DescribeEventSource",
            json!({"Name": NAME}),
        )
        .expect_err("gone");
        assert_eq!(err.code, "ResourceNotFoundException");
    }

    #[test]
    fn another_accounts_bus_deletion_leaves_the_source_alone() {
        let mut store = Store::new();
        create(&mut store, at(0));
        assert_eq!(store.activate(NAME, None, at(1)), 1);
        call(
            &mut store,
            &caller(OTHER, at(2)),
            "DeleteEventBus",
            json!({"Name": NAME}),
        )
        .expect("no such bus in OTHER: no-op");
        assert_eq!(customer_state(&mut store, at(3))["State"], "ACTIVE");
        assert_eq!(
            store.delete_bus(NAME, Some("us-east-1"), at(4), TWO_WEEKS),
            0
        );
        assert_eq!(store.delete_bus(NAME, None, at(5), TWO_WEEKS), 1);
        let described = customer_state(&mut store, at(6));
        assert_eq!(described["State"], "PENDING");
        assert_eq!(
            described["ExpirationTime"].as_f64().expect("number"),
            epoch_seconds_f64(at(5) + TWO_WEEKS)
        );
    }

    #[test]
    fn lists_paginate_by_name_within_the_partner() {
        let mut store = Store::new();
        let partner = caller(PARTNER, at(0));
        for i in 0..5 {
            call(
                &mut store,
                &partner,
                "CreatePartnerEventSource",
                json!({"Name": format!("aws.partner/acme.com/c{i}/orders"), "Account": CUSTOMER}),
            )
            .expect("created");
        }
        call(
            &mut store,
            &partner,
            "CreatePartnerEventSource",
            json!({"Name": "aws.partner/other.com/c1/orders", "Account": CUSTOMER}),
        )
        .expect("created");
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut input = json!({"NamePrefix": "aws.partner/acme.com/", "Limit": 2});
            if let Some(t) = &token {
                input["NextToken"] = json!(t);
            }
            let out = call(&mut store, &partner, "ListPartnerEventSources", input)
                .expect("listed")
                .expect("output");
            pages += 1;
            for s in out["PartnerEventSources"].as_array().expect("array") {
                names.push(s["Name"].as_str().expect("name").to_owned());
            }
            match out.get("NextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(
            names,
            (0..5)
                .map(|i| format!("aws.partner/acme.com/c{i}/orders"))
                .collect::<Vec<_>>()
        );
        let err = call(
            &mut store,
            &partner,
            "ListPartnerEventSources",
            json!({"NamePrefix": "aws.partner/acme.com/", "NextToken": "nonsense"}),
        )
        .expect_err("bad token");
        assert_eq!(err.code, "InvalidToken");
        assert_eq!(err.status, 400);
    }

    #[test]
    fn regions_are_separate() {
        let mut store = Store::new();
        create(&mut store, at(0));
        let us = Caller {
            region: "us-east-1",
            ..caller(PARTNER, at(1))
        };
        let err = call(
            &mut store,
            &us,
            "DescribePartnerEventSource",
            json!({"Name": NAME}),
        )
        .expect_err("other region");
        assert_eq!(err.code, "ResourceNotFoundException");
        let out = call(
            &mut store,
            &us,
            "CreatePartnerEventSource",
            json!({"Name": NAME, "Account": CUSTOMER}),
        )
        .expect("created")
        .expect("output");
        assert_eq!(
            out["EventSourceArn"],
            format!("arn:aws:events:us-east-1::event-source/{NAME}")
        );
    }
}
