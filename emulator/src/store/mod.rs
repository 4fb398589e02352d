//! The emulated service state and the semantics of each operation.
//!
//! Pure logic over plain values: every call gets the caller's account, region
//! and the current time, so behaviour (expiry included) is tested without a
//! server or a clock.
//!
//! State is kept per region (the region of the request's SigV4 scope), per
//! partner account (sources) and per customer account (event buses), as AWS
//! keeps it.
//!
//! This module owns the state types, expiry and the dispatch of a typed
//! [`Request`]; each concern adds its methods to [`Store`] in its own module:
//! `request` reads validated input into typed requests, `partner` serves the
//! partner's source operations, `customer` the customer's event buses and
//! activation, `events` `PutPartnerEvents`, `out_of_band` the changes the
//! admin API and the library handle make, `journal` the history of partner
//! changes and `snapshot` the read-only views tests inspect.

mod customer;
mod events;
mod journal;
mod out_of_band;
mod partner;
mod request;
mod snapshot;
#[cfg(test)]
mod test_support;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::pagination::Tokens;
use crate::wire::RequestIds;

pub use journal::{ChangeKind, SourceChange};
pub(crate) use request::Request;
pub use snapshot::{BusSnapshot, SourceSnapshot, SourceState};

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
    /// The region of the request's SigV4 scope.
    pub region: &'a str,
    /// The account the request acts as.
    pub account: &'a str,
    /// When the request is served.
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

impl Source {
    /// The state the partner sees: a live source is active or pending.
    fn state(&self) -> SourceState {
        if self.active {
            SourceState::Active
        } else {
            SourceState::Pending
        }
    }

    /// What a matched bus remembers of this source once it is gone.
    fn link(&self, name: &str) -> SourceLink {
        SourceLink {
            name: name.to_owned(),
            arn: self.arn.clone(),
            created: self.created,
        }
    }
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
    /// An empty service: no sources, buses or history.
    pub(crate) fn new() -> Store {
        Store {
            sources: BTreeMap::new(),
            changes: VecDeque::new(),
            buses: BTreeMap::new(),
            tokens: Tokens::new(),
            event_ids: RequestIds::new(),
        }
    }

    /// Runs one operation, read from input the model has validated.
    pub(crate) fn handle(
        &mut self,
        caller: &Caller<'_>,
        request: Request,
    ) -> Result<Option<Value>, ApiError> {
        self.sweep(caller.now);
        match request {
            Request::CreatePartnerEventSource(input) => {
                self.create_partner_event_source(caller, &input).map(Some)
            }
            Request::DescribePartnerEventSource(input) => self
                .describe_partner_event_source(caller, &input.name)
                .map(Some),
            Request::DeletePartnerEventSource(input) => {
                self.delete_partner_event_source(caller, &input);
                Ok(None)
            }
            Request::ListPartnerEventSourceAccounts(input) => self
                .list_partner_event_source_accounts(caller, &input)
                .map(Some),
            Request::ListPartnerEventSources(input) => {
                self.list_partner_event_sources(caller, &input).map(Some)
            }
            Request::DescribeEventSource(input) => {
                self.describe_event_source(caller, &input.name).map(Some)
            }
            Request::CreateEventBus(input) => self.create_event_bus(caller, input).map(Some),
            Request::ActivateEventSource(input) => self
                .activate_event_source(caller, &input.name)
                .map(|()| None),
            Request::DeactivateEventSource(input) => self
                .deactivate_event_source(caller, &input.name)
                .map(|()| None),
            Request::DeleteEventBus(input) => {
                self.delete_event_bus(caller, &input.name).map(|()| None)
            }
            Request::PutPartnerEvents(input) => self.put_partner_events(&input).map(Some),
        }
    }

    /// Deletes pending sources whose expiration time has come, as AWS does.
    ///
    /// Every request and inspection sweeps first, so expiry needs no
    /// background task: a source is gone from the first look at or after its
    /// `ExpirationTime`. A customer whose bus was matched with it then sees it
    /// `DELETED`, exactly as after a deletion by the partner.
    fn sweep(&mut self, now: SystemTime) {
        self.sources
            .retain(|_, s| s.expires.is_none_or(|expires| expires > now));
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

/// The `arn:aws:events:<region>:<account>:event-bus/<name>` of a bus.
fn bus_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/{name}")
}

/// The error of every operation that names a source the caller cannot see.
fn source_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Event source {name} does not exist."))
}

/// A timestamp as the JSON protocol sends it: epoch seconds, millisecond precision.
fn epoch_seconds(t: SystemTime) -> Value {
    json!(epoch_seconds_f64(t))
}

fn epoch_seconds_f64(t: SystemTime) -> f64 {
    let millis = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    // Millisecond counts of real dates fit f64 exactly.
    millis as f64 / 1000.0
}

/// Writes a time the way the admin API's JSON shows it: epoch seconds.
fn serialize_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(epoch_seconds_f64(*t))
}

/// [`serialize_time`] for a time that may be absent (`null`).
fn serialize_opt_time<S: serde::Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_f64(epoch_seconds_f64(*t)),
        None => s.serialize_none(),
    }
}
