//! Read-only views of the state for the library handle and the admin API:
//! every live source and every bus, with the state AWS would report, so tests
//! can look at the emulator without going through the API.

use std::time::SystemTime;

use serde::Serialize;

use super::{Store, serialize_opt_time, serialize_time};

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

impl Store {
    /// Every live source, sorted by region, partner and name.
    pub(crate) fn sources(&mut self, now: SystemTime) -> Vec<SourceSnapshot> {
        // Expired sources must not show, exactly as in the API.
        self.sweep(now);
        self.sources
            .iter()
            .map(|(k, s)| SourceSnapshot {
                region: k.region.clone(),
                partner_account: k.partner.clone(),
                name: k.name.clone(),
                arn: s.arn.clone(),
                account: s.account.clone(),
                state: s.state(),
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
