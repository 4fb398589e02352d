//! The change journal: every source a partner call created or deleted, in the
//! order the emulator served them, so tests can check what the operator did
//! (and how often) after the fact.
//!
//! Only partner calls are journalled; expiry and the admin API's out-of-band
//! changes are not, since the operator did not make them.

use std::time::SystemTime;

use serde::Serialize;

use super::{Caller, Store, serialize_time};

/// How many changes the history keeps (the oldest go first): enough for any test run, and a
/// bound for an emulator left running for days.
const CHANGES_KEPT: usize = 100_000;

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

impl Store {
    /// Journals a change the caller's partner call made to source `name`.
    pub(super) fn record(
        &mut self,
        kind: ChangeKind,
        caller: &Caller<'_>,
        name: &str,
        account: &str,
    ) {
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
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn the_journal_keeps_the_newest_changes() {
        let mut store = Store::new();
        let partner = caller(PARTNER, at(0));
        for i in 0..=CHANGES_KEPT {
            let kind = if i % 2 == 0 {
                ChangeKind::Created
            } else {
                ChangeKind::Deleted
            };
            store.record(
                kind,
                &partner,
                &format!("aws.partner/acme.com/{i}"),
                CUSTOMER,
            );
        }
        let changes = store.changes();
        assert_eq!(changes.len(), CHANGES_KEPT);
        assert_eq!(
            changes[0].name, "aws.partner/acme.com/1",
            "the oldest went first"
        );
        assert_eq!(changes[0].kind, ChangeKind::Deleted);
        assert_eq!(changes[0].partner_account, PARTNER);
        assert_eq!(
            changes[CHANGES_KEPT - 1].name,
            format!("aws.partner/acme.com/{CHANGES_KEPT}")
        );
    }
}
