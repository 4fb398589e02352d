//! The customer side of the API: `DescribeEventSource`, `CreateEventBus`,
//! `ActivateEventSource`, `DeactivateEventSource` and `DeleteEventBus`, over
//! the sources shared with the calling account and that account's event
//! buses, including how a partner event bus activates its source and what a
//! customer sees of a source its partner deleted.

use serde_json::{Map, Value, json};

use super::request::CreateEventBus;
use super::{
    Bus, Caller, SourceKey, SourceLink, SourceState, Store, bus_arn, bus_key, epoch_seconds,
    source_not_found,
};
use crate::error::ApiError;

impl Store {
    /// The live source named `name` that is shared with the caller's account.
    fn shared_source_key(&self, caller: &Caller<'_>, name: &str) -> Option<SourceKey> {
        self.sources
            .iter()
            .find(|(k, s)| {
                k.region == caller.region && k.name == name && s.account == caller.account
            })
            .map(|(k, _)| k.clone())
    }

    /// A source shared with the caller, or one its matched bus remembers as
    /// `DELETED`.
    pub(super) fn describe_event_source(
        &self,
        caller: &Caller<'_>,
        name: &str,
    ) -> Result<Value, ApiError> {
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
            out.insert("State".into(), json!(source.state().as_str()));
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

    /// Creates a custom bus, or a partner bus (`EventSourceName` given) that
    /// activates the source of the same name shared with the caller.
    ///
    /// The checks run in AWS's order: the name rules, then an existing bus
    /// (`default` always exists), then the source.
    pub(super) fn create_event_bus(
        &mut self,
        caller: &Caller<'_>,
        input: CreateEventBus,
    ) -> Result<Value, ApiError> {
        let CreateEventBus {
            name,
            event_source_name,
            description,
            kms_key_identifier,
            dead_letter_config,
            log_config,
        } = input;
        check_bus_name(&name, event_source_name.as_deref())?;
        let key = bus_key(caller.region, caller.account, &name);
        if name == "default" || self.buses.contains_key(&key) {
            return Err(ApiError::already_exists(format!(
                "Event bus {name} already exists."
            )));
        }
        let arn = bus_arn(caller.region, caller.account, &name);
        let link = match event_source_name.as_deref() {
            Some(source_name) => Some(self.activate_for_bus(caller, source_name)?),
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
        // The answer repeats the optional settings the request gave.
        let echoed = [
            ("Description", description.map(Value::String)),
            ("KmsKeyIdentifier", kms_key_identifier.map(Value::String)),
            ("DeadLetterConfig", dead_letter_config),
            ("LogConfig", log_config),
        ];
        for (member, value) in echoed {
            if let Some(value) = value {
                out.insert(member.into(), value);
            }
        }
        Ok(Value::Object(out))
    }

    /// Makes the source `source_name` shared with the caller active for its
    /// new partner bus, and returns what the bus keeps of it.
    fn activate_for_bus(
        &mut self,
        caller: &Caller<'_>,
        source_name: &str,
    ) -> Result<SourceLink, ApiError> {
        let source_key = self
            .shared_source_key(caller, source_name)
            .ok_or_else(|| source_not_found(source_name))?;
        let source = self
            .sources
            .get_mut(&source_key)
            .ok_or_else(|| source_not_found(source_name))?;
        source.active = true;
        source.expires = None;
        Ok(source.link(source_name))
    }

    /// Activates a deactivated (pending) source.
    ///
    /// Activating an `ACTIVE` source changes nothing. A source can only be
    /// active while the customer's matching bus exists (the model's `State`
    /// documentation), so activating without one, or activating a deleted
    /// source, is `InvalidStateException`.
    pub(super) fn activate_event_source(
        &mut self,
        caller: &Caller<'_>,
        name: &str,
    ) -> Result<(), ApiError> {
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
        let link = source.link(name);
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
    pub(super) fn deactivate_event_source(
        &mut self,
        caller: &Caller<'_>,
        name: &str,
    ) -> Result<(), ApiError> {
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
    pub(super) fn delete_event_bus(
        &mut self,
        caller: &Caller<'_>,
        name: &str,
    ) -> Result<(), ApiError> {
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

    /// The error for a state change of a source the caller cannot see: a
    /// deleted source its bus remembers cannot change state, any other is unknown.
    fn missing_or_deleted(&self, caller: &Caller<'_>, name: &str) -> ApiError {
        if self.deleted_link(caller, name).is_some() {
            ApiError::invalid_state(format!(
                "Event source {name} is DELETED; its state cannot be changed."
            ))
        } else {
            source_not_found(name)
        }
    }
}

/// A partner bus must be named after its source; a custom bus name has no `/`.
fn check_bus_name(name: &str, source_name: Option<&str>) -> Result<(), ApiError> {
    match source_name {
        Some(source_name) if source_name != name => Err(ApiError::validation(format!(
            "Event bus name {name} must match the name of the partner event source {source_name}."
        ))),
        None if name.contains('/') => Err(ApiError::validation(format!(
            "Event bus name {name} is not valid: custom event bus names can't contain the '/' character."
        ))),
        _ => Ok(()),
    }
}

/// The partner name of a source (`aws.partner/<partner_name>/...`), which AWS
/// reports as `CreatedBy`.
fn partner_name(source_name: &str) -> &str {
    source_name.split('/').nth(1).unwrap_or(source_name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::{Store, epoch_seconds_f64};

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
    fn a_new_bus_echoes_the_optional_settings_it_was_given() {
        let mut store = Store::new();
        let out = call(
            &mut store,
            &caller(CUSTOMER, at(1)),
            "CreateEventBus",
            json!({
                "Name": "custom",
                "Description": "orders",
                "KmsKeyIdentifier": null,
                "DeadLetterConfig": {"Arn": "arn:aws:sqs:eu-west-1:222222222222:dlq"},
                "LogConfig": {"Level": "INFO"},
                "Tags": [{"Key": "team", "Value": "a"}],
            }),
        )
        .expect("bus")
        .expect("output");
        assert_eq!(
            out,
            json!({
                "EventBusArn": format!("arn:aws:events:eu-west-1:{CUSTOMER}:event-bus/custom"),
                "Description": "orders",
                "DeadLetterConfig": {"Arn": "arn:aws:sqs:eu-west-1:222222222222:dlq"},
                "LogConfig": {"Level": "INFO"},
            })
        );
    }
}
