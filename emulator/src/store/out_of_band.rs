//! Changes made out of band, through the admin API and the library handle:
//! what someone other than the operator does to a source — the partner's
//! console deleting it, AWS expiring it, the customer activating,
//! deactivating or deleting its bus — so tests can make those happen on cue.
//!
//! Each change selects sources by name (in one region, or in all of them),
//! follows the same rules as the API call it stands for, and reports how many
//! sources or buses it affected.

use std::time::{Duration, SystemTime};

use super::{Bus, BusKey, SourceKey, Store, bus_arn, bus_key};

impl Store {
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
            let link = s.link(&k.name);
            let arn = bus_arn(&k.region, &s.account, &k.name);
            self.buses
                .entry(bus_key(&k.region, &s.account, &k.name))
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
}

/// Whether an out-of-band change named `name` (in `region`, or anywhere) selects the source.
fn matches_name(key: &SourceKey, name: &str, region: Option<&str>) -> bool {
    key.name == name && region.is_none_or(|r| r == key.region)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::super::test_support::*;
    use super::super::{Store, epoch_seconds_f64};

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
}
