//! The partner side of the API: `CreatePartnerEventSource`,
//! `DescribePartnerEventSource`, `DeletePartnerEventSource`,
//! `ListPartnerEventSources` and `ListPartnerEventSourceAccounts`, over the
//! sources of the calling partner account in the caller's region, and the
//! paging the two lists share.

use serde_json::{Map, Value, json};

use super::journal::ChangeKind;
use super::request::{ListAccounts, ListSources, SourceForAccount};
use super::{Caller, Source, Store, epoch_seconds, source_key, source_not_found};
use crate::error::ApiError;
use crate::pagination::{Scope, page};

/// Page size when a list call gives no `Limit` (the model's maximum).
const DEFAULT_PAGE_SIZE: usize = 100;

impl Store {
    /// Creates a `PENDING` source that expires after the pending period
    /// unless its customer activates it; names are unique per partner account
    /// and region.
    pub(super) fn create_partner_event_source(
        &mut self,
        caller: &Caller<'_>,
        input: &SourceForAccount,
    ) -> Result<Value, ApiError> {
        let SourceForAccount { name, account } = input;
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
                account: account.clone(),
                arn: arn.clone(),
                created: caller.now,
                active: false,
                expires: Some(caller.now + caller.expirations.pending),
            },
        );
        Ok(json!({ "EventSourceArn": arn }))
    }

    /// The ARN and name of one of the caller's sources.
    pub(super) fn describe_partner_event_source(
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
    pub(super) fn delete_partner_event_source(
        &mut self,
        caller: &Caller<'_>,
        input: &SourceForAccount,
    ) {
        let SourceForAccount { name, account } = input;
        let key = source_key(caller, name);
        if self
            .sources
            .get(&key)
            .is_some_and(|s| &s.account == account)
        {
            self.sources.remove(&key);
            self.record(ChangeKind::Deleted, caller, name, account);
        }
    }

    /// The one account a source is shared with, as a (single-entry) page.
    pub(super) fn list_partner_event_source_accounts(
        &self,
        caller: &Caller<'_>,
        input: &ListAccounts,
    ) -> Result<Value, ApiError> {
        let name = &input.event_source_name;
        let source = self
            .sources
            .get(&source_key(caller, name))
            .ok_or_else(|| source_not_found(name))?;
        let scope = list_scope("ListPartnerEventSourceAccounts", caller, name);
        let after = self.resume(&scope, input.next_token.as_deref())?;
        let entry = {
            let mut e = Map::new();
            e.insert("Account".into(), json!(source.account));
            e.insert("CreationTime".into(), epoch_seconds(source.created));
            if let Some(expires) = source.expires {
                e.insert("ExpirationTime".into(), epoch_seconds(expires));
            }
            e.insert("State".into(), json!(source.state().as_str()));
            Value::Object(e)
        };
        let (items, next) = page(
            [(source.account.clone(), entry)],
            after.as_deref(),
            limit(input.limit),
        );
        Ok(self.page_output("PartnerEventSourceAccounts", items, &scope, next))
    }

    /// The caller's sources whose name starts with the prefix, one page at a time.
    pub(super) fn list_partner_event_sources(
        &self,
        caller: &Caller<'_>,
        input: &ListSources,
    ) -> Result<Value, ApiError> {
        let prefix = &input.name_prefix;
        let scope = list_scope("ListPartnerEventSources", caller, prefix);
        let after = self.resume(&scope, input.next_token.as_deref())?;
        // BTreeMap order is region, partner, name: the caller's sources come sorted by name.
        let matching = self
            .sources
            .iter()
            .filter(|(k, _)| {
                k.region == caller.region
                    && k.partner == caller.account
                    && k.name.starts_with(prefix.as_str())
            })
            .map(|(k, s)| (k.name.clone(), json!({ "Arn": s.arn, "Name": k.name })));
        let (items, next) = page(matching, after.as_deref(), limit(input.limit));
        Ok(self.page_output("PartnerEventSources", items, &scope, next))
    }

    /// The key a `NextToken` resumes after, checked against the list's scope.
    fn resume(&self, scope: &Scope, token: Option<&str>) -> Result<Option<String>, ApiError> {
        token
            .map(|token| self.tokens.resume(scope, token))
            .transpose()
    }

    /// A list answer: the page under `member`, and a `NextToken` if more follow.
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
}

fn list_scope(operation: &str, caller: &Caller<'_>, filter: &str) -> Scope {
    Scope {
        operation: operation.to_owned(),
        region: caller.region.to_owned(),
        caller: caller.account.to_owned(),
        filter: filter.to_owned(),
    }
}

fn limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use serde_json::{Value, json};

    use super::super::test_support::*;
    use super::*;

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
