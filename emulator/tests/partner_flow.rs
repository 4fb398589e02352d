//! The partner and customer flows, driven by the real `aws-sdk-eventbridge`.

mod common;

use std::time::Duration;

use aws_sdk_eventbridge::types::EventSourceState;
use common::*;
use eventbridge_partner_emulator::{Config, Emulator, SourceState};

#[tokio::test]
async fn create_describe_list_activate_deactivate_delete() {
    let emu = start().await;
    let partner = client(&emu, PARTNER_KEY);
    let customer = client(&emu, CUSTOMER);
    let name = source_name("c4711", "orders");

    let created = partner
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("created");
    let arn = format!("arn:aws:events:eu-west-1::event-source/{name}");
    assert_eq!(created.event_source_arn(), Some(arn.as_str()));

    let described = partner
        .describe_partner_event_source()
        .name(&name)
        .send()
        .await
        .expect("described");
    assert_eq!(described.arn(), Some(arn.as_str()));
    assert_eq!(described.name(), Some(name.as_str()));

    let accounts = partner
        .list_partner_event_source_accounts()
        .event_source_name(&name)
        .send()
        .await
        .expect("listed");
    let [entry] = accounts.partner_event_source_accounts() else {
        panic!("one account: {accounts:?}");
    };
    assert_eq!(entry.account(), Some(CUSTOMER));
    assert_eq!(entry.state(), Some(&EventSourceState::Pending));
    let creation = entry.creation_time().expect("creation time").as_secs_f64();
    let expiration = entry.expiration_time().expect("expiration").as_secs_f64();
    assert!(
        (expiration - creation - 14.0 * 24.0 * 3600.0).abs() < 0.01,
        "pending sources expire after two weeks: {creation} -> {expiration}"
    );
    assert!(accounts.next_token().is_none());

    // The customer sees it pending; the partner's own account does not (it is not shared with it).
    let seen = customer
        .describe_event_source()
        .name(&name)
        .send()
        .await
        .expect("customer sees it");
    assert_eq!(seen.state(), Some(&EventSourceState::Pending));
    assert_eq!(seen.arn(), Some(arn.as_str()));
    assert_eq!(seen.created_by(), Some("acme.com"));
    assert!(seen.expiration_time().is_some());
    let err = partner
        .describe_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("not shared with the partner account");
    assert_eq!(
        code_and_status(&err),
        ("ResourceNotFoundException".into(), 400)
    );

    // The customer's matching partner bus activates it.
    let bus = customer
        .create_event_bus()
        .name(&name)
        .event_source_name(&name)
        .send()
        .await
        .expect("bus created");
    assert_eq!(
        bus.event_bus_arn(),
        Some(format!("arn:aws:events:eu-west-1:{CUSTOMER}:event-bus/{name}").as_str())
    );
    let accounts = partner
        .list_partner_event_source_accounts()
        .event_source_name(&name)
        .send()
        .await
        .expect("listed");
    let entry = &accounts.partner_event_source_accounts()[0];
    assert_eq!(entry.state(), Some(&EventSourceState::Active));
    assert!(
        entry.expiration_time().is_none(),
        "active sources do not expire"
    );
    assert_eq!(emu.source(&name).expect("held").state, SourceState::Active);

    // Deactivated: back to PENDING with a fresh expiration.
    customer
        .deactivate_event_source()
        .name(&name)
        .send()
        .await
        .expect("deactivated");
    let seen = customer
        .describe_event_source()
        .name(&name)
        .send()
        .await
        .expect("described");
    assert_eq!(seen.state(), Some(&EventSourceState::Pending));
    assert!(seen.expiration_time().is_some());
    customer
        .activate_event_source()
        .name(&name)
        .send()
        .await
        .expect("activated");
    let seen = customer
        .describe_event_source()
        .name(&name)
        .send()
        .await
        .expect("described");
    assert_eq!(seen.state(), Some(&EventSourceState::Active));

    // The partner deletes it: gone for the partner, DELETED for the customer with a bus.
    partner
        .delete_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("deleted");
    let err = partner
        .describe_partner_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("gone");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );
    let err = partner
        .list_partner_event_source_accounts()
        .event_source_name(&name)
        .send()
        .await
        .expect_err("gone");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );
    let seen = customer
        .describe_event_source()
        .name(&name)
        .send()
        .await
        .expect("customer still sees its matched source");
    assert_eq!(seen.state(), Some(&EventSourceState::Deleted));
    let err = customer
        .activate_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("a deleted source cannot be activated");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_invalid_state_exception()
    );

    // Deleting again succeeds: the operation is idempotent.
    partner
        .delete_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("idempotent delete");
}

#[tokio::test]
async fn already_exists_for_any_account_and_not_found() {
    let emu = start().await;
    let partner = client(&emu, PARTNER_KEY);
    let name = source_name("c1", "orders");
    partner
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("created");
    for account in [CUSTOMER, OTHER] {
        let err = partner
            .create_partner_event_source()
            .name(&name)
            .account(account)
            .send()
            .await
            .expect_err("name taken");
        assert!(
            err.as_service_error()
                .expect("service error")
                .is_resource_already_exists_exception(),
            "{err:?}"
        );
        assert_eq!(
            code_and_status(&err),
            ("ResourceAlreadyExistsException".into(), 400)
        );
    }

    let missing = source_name("c1", "nothing");
    let err = partner
        .describe_partner_event_source()
        .name(&missing)
        .send()
        .await
        .expect_err("missing");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );
    let err = partner
        .list_partner_event_source_accounts()
        .event_source_name(&missing)
        .send()
        .await
        .expect_err("missing");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );
    let err = client(&emu, OTHER)
        .describe_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("shared with another account");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );

    // Deleting what does not exist, or naming the wrong account, changes nothing and succeeds.
    partner
        .delete_partner_event_source()
        .name(&missing)
        .account(CUSTOMER)
        .send()
        .await
        .expect("no-op");
    partner
        .delete_partner_event_source()
        .name(&name)
        .account(OTHER)
        .send()
        .await
        .expect("no-op");
    assert!(
        emu.source(&name).is_some(),
        "the source shared with CUSTOMER survives"
    );
}

#[tokio::test]
async fn customer_bus_and_state_errors() {
    let emu = start().await;
    let partner = client(&emu, PARTNER_KEY);
    let customer = client(&emu, CUSTOMER);
    let name = source_name("c2", "orders");
    partner
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("created");

    let err = customer
        .activate_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("no matching bus yet");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_invalid_state_exception()
    );
    let err = customer
        .deactivate_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("nothing to deactivate");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_invalid_state_exception()
    );

    let err = customer
        .create_event_bus()
        .name(source_name("c2", "other"))
        .event_source_name(&name)
        .send()
        .await
        .expect_err("bus name must equal the source name");
    assert_eq!(code_and_status(&err).0, "ValidationException");
    let err = client(&emu, OTHER)
        .create_event_bus()
        .name(&name)
        .event_source_name(&name)
        .send()
        .await
        .expect_err("not shared with OTHER");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );
    let err = customer
        .activate_event_source()
        .name(source_name("c2", "unknown"))
        .send()
        .await
        .expect_err("unknown source");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );

    customer
        .create_event_bus()
        .name(&name)
        .event_source_name(&name)
        .description("orders from acme")
        .send()
        .await
        .expect("bus");
    let err = customer
        .create_event_bus()
        .name(&name)
        .event_source_name(&name)
        .send()
        .await
        .expect_err("twice");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_already_exists_exception()
    );
    customer
        .activate_event_source()
        .name(&name)
        .send()
        .await
        .expect("activating an active source changes nothing");
    let buses = emu.buses();
    assert_eq!(buses.len(), 1);
    assert_eq!(buses[0].account, CUSTOMER);
    assert_eq!(buses[0].event_source_name.as_deref(), Some(name.as_str()));
}

#[tokio::test]
async fn out_of_band_actions_through_the_library() {
    let emu = start().await;
    let partner = client(&emu, PARTNER_KEY);
    let customer = client(&emu, CUSTOMER);
    let name = source_name("c3", "orders");
    partner
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("created");

    assert!(emu.activate(&name));
    let seen = customer
        .describe_event_source()
        .name(&name)
        .send()
        .await
        .expect("described");
    assert_eq!(seen.state(), Some(&EventSourceState::Active));
    assert!(!emu.expire(&name), "active sources never expire");
    assert!(emu.deactivate(&name));
    let snapshot = emu.source(&name).expect("held");
    assert_eq!(snapshot.state, SourceState::Pending);
    assert!(snapshot.expiration_time.is_some());
    assert!(emu.expire(&name));
    let err = partner
        .describe_partner_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("expired");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );

    // Recreated and then deleted by "someone else".
    partner
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("recreated");
    assert!(emu.delete_out_of_band(&name));
    assert!(!emu.delete_out_of_band(&name));
    assert!(emu.sources().is_empty());
}

#[tokio::test]
async fn pending_sources_expire_after_the_configured_period() {
    // That active sources never expire is pinned by the store's unit tests,
    // where time is a parameter rather than a race against this short period.
    let emu = Emulator::start(Config {
        pending_expiration: Duration::from_millis(200),
        ..Config::default()
    })
    .await
    .expect("starts");
    let partner = client(&emu, PARTNER_KEY);
    let name = source_name("c4", "pending");
    partner
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("created");
    assert!(
        emu.wait_until(Duration::from_secs(10), |e| e.source(&name).is_none())
            .await,
        "the pending source expires"
    );
    let err = partner
        .describe_partner_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("expired");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );
    partner
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("the name is free again");
}

#[tokio::test]
async fn each_signing_region_has_its_own_state() {
    let emu = start().await;
    let name = source_name("c5", "orders");
    let created = client_in(&emu, PARTNER_KEY, "us-east-1")
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("created");
    assert_eq!(
        created.event_source_arn(),
        Some(format!("arn:aws:events:us-east-1::event-source/{name}").as_str())
    );
    let err = client(&emu, PARTNER_KEY)
        .describe_partner_event_source()
        .name(&name)
        .send()
        .await
        .expect_err("not in eu-west-1");
    assert!(
        err.as_service_error()
            .expect("service error")
            .is_resource_not_found_exception()
    );
    assert_eq!(emu.source(&name).expect("held").region, "us-east-1");
}

#[tokio::test]
async fn a_customer_account_can_also_be_a_partner() {
    let emu = start().await;
    let name = source_name("c6", "orders");
    client(&emu, OTHER)
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("created by OTHER");
    // The default partner has its own namespace, so the same name is free there.
    client(&emu, PARTNER_KEY)
        .create_partner_event_source()
        .name(&name)
        .account(CUSTOMER)
        .send()
        .await
        .expect("created by the partner");
    let partners: Vec<String> = emu
        .sources()
        .into_iter()
        .map(|s| s.partner_account)
        .collect();
    assert_eq!(partners, vec![PARTNER.to_owned(), OTHER.to_owned()]);
}

#[tokio::test]
async fn put_partner_events_accepts_complete_entries() {
    let emu = start().await;
    let out = client(&emu, PARTNER_KEY)
        .put_partner_events()
        .entries(
            aws_sdk_eventbridge::types::PutPartnerEventsRequestEntry::builder()
                .source(source_name("c7", "orders"))
                .detail_type("OrderPlaced")
                .detail("{}")
                .build(),
        )
        .entries(
            aws_sdk_eventbridge::types::PutPartnerEventsRequestEntry::builder()
                .detail_type("Incomplete")
                .build(),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(out.failed_entry_count(), 1);
    assert!(out.entries()[0].event_id().is_some());
    assert_eq!(out.entries()[1].error_code(), Some("InvalidArgument"));
}
