//! The partner and customer flows, driven by the real `aws-sdk-eventbridge`.

mod common;

use std::time::Duration;

use aws_sdk_eventbridge::types::EventSourceState;
use common::*;
use eventbridge_partner_emulator::{Config, Emulator, SourceState};

#[tokio::test]
async fn create_describe_list_activate_deactivate_delete() {
    let (emu, partner) = start_with_partner().await;
    let customer = client(&emu, CUSTOMER);
    let name = source_name("c4711", "orders");

    let arn = source_arn("eu-west-1", &name);
    assert_eq!(create(&partner, &name, CUSTOMER).await, arn);

    let described = describe_partner_source(&partner, &name)
        .await
        .expect("described");
    assert_eq!(described.arn(), Some(arn.as_str()));
    assert_eq!(described.name(), Some(name.as_str()));

    let accounts = list_accounts(&partner, &name).await.expect("listed");
    let [entry] = accounts.partner_event_source_accounts() else {
        panic!("one account: {accounts:?}");
    };
    assert_eq!(entry.account(), Some(CUSTOMER));
    assert_eq!(entry.state(), Some(&EventSourceState::Pending));
    let creation = entry.creation_time().expect("creation time").as_secs_f64();
    let expiration = entry.expiration_time().expect("expiration").as_secs_f64();
    assert!(
        (expiration - creation - 7.0 * 24.0 * 3600.0).abs() < 0.01,
        "never-activated sources expire after seven days: {creation} -> {expiration}"
    );
    assert!(accounts.next_token().is_none());

    // The customer sees it pending; the partner's own account does not (it is not shared with it).
    let seen = describe_source(&customer, &name)
        .await
        .expect("customer sees it");
    assert_eq!(seen.state(), Some(&EventSourceState::Pending));
    assert_eq!(seen.arn(), Some(arn.as_str()));
    assert_eq!(seen.created_by(), Some("acme.com"));
    assert!(seen.expiration_time().is_some());
    let err = describe_source(&partner, &name)
        .await
        .expect_err("not shared with the partner account");
    assert_eq!(
        code_and_status(&err),
        ("ResourceNotFoundException".into(), 400)
    );

    // The customer's matching partner bus activates it.
    let bus = create_bus(&customer, &name, &name)
        .await
        .expect("bus created");
    assert_eq!(
        bus.event_bus_arn(),
        Some(format!("arn:aws:events:eu-west-1:{CUSTOMER}:event-bus/{name}").as_str())
    );
    let accounts = list_accounts(&partner, &name).await.expect("listed");
    let entry = &accounts.partner_event_source_accounts()[0];
    assert_eq!(entry.state(), Some(&EventSourceState::Active));
    assert!(
        entry.expiration_time().is_none(),
        "active sources do not expire"
    );
    assert_eq!(emu.source(&name).expect("held").state, SourceState::Active);

    // Deactivated: back to PENDING with a fresh expiration.
    deactivate_source(&customer, &name)
        .await
        .expect("deactivated");
    let seen = describe_source(&customer, &name).await.expect("described");
    assert_eq!(seen.state(), Some(&EventSourceState::Pending));
    assert!(seen.expiration_time().is_some());
    activate_source(&customer, &name).await.expect("activated");
    let seen = describe_source(&customer, &name).await.expect("described");
    assert_eq!(seen.state(), Some(&EventSourceState::Active));

    // The partner deletes it: gone for the partner, DELETED for the customer with a bus.
    delete_source(&partner, &name, CUSTOMER)
        .await
        .expect("deleted");
    let err = service_error(describe_partner_source(&partner, &name).await, "gone");
    assert!(err.is_resource_not_found_exception());
    let err = service_error(list_accounts(&partner, &name).await, "gone");
    assert!(err.is_resource_not_found_exception());
    let seen = describe_source(&customer, &name)
        .await
        .expect("customer still sees its matched source");
    assert_eq!(seen.state(), Some(&EventSourceState::Deleted));
    let err = service_error(
        activate_source(&customer, &name).await,
        "a deleted source cannot be activated",
    );
    assert!(err.is_invalid_state_exception());

    // Deleting again succeeds: the operation is idempotent.
    delete_source(&partner, &name, CUSTOMER)
        .await
        .expect("idempotent delete");
}

#[tokio::test]
async fn already_exists_for_any_account_and_not_found() {
    let (emu, partner, name) = start_with_pending_source("c1", "orders").await;
    for account in [CUSTOMER, OTHER] {
        let err = try_create(&partner, &name, account)
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
    let err = service_error(describe_partner_source(&partner, &missing).await, "missing");
    assert!(err.is_resource_not_found_exception());
    let err = service_error(list_accounts(&partner, &missing).await, "missing");
    assert!(err.is_resource_not_found_exception());
    let err = service_error(
        describe_source(&client(&emu, OTHER), &name).await,
        "shared with another account",
    );
    assert!(err.is_resource_not_found_exception());

    // Deleting what does not exist, or naming the wrong account, changes nothing and succeeds.
    delete_source(&partner, &missing, CUSTOMER)
        .await
        .expect("no-op");
    delete_source(&partner, &name, OTHER).await.expect("no-op");
    assert!(
        emu.source(&name).is_some(),
        "the source shared with CUSTOMER survives"
    );
}

#[tokio::test]
async fn customer_bus_and_state_errors() {
    let (emu, _partner, name) = start_with_pending_source("c2", "orders").await;
    let customer = client(&emu, CUSTOMER);

    let err = service_error(
        activate_source(&customer, &name).await,
        "no matching bus yet",
    );
    assert!(err.is_invalid_state_exception());
    let err = service_error(
        deactivate_source(&customer, &name).await,
        "nothing to deactivate",
    );
    assert!(err.is_invalid_state_exception());

    let err = create_bus(&customer, &source_name("c2", "other"), &name)
        .await
        .expect_err("bus name must equal the source name");
    assert_eq!(code_and_status(&err).0, "ValidationException");
    let err = service_error(
        create_bus(&client(&emu, OTHER), &name, &name).await,
        "not shared with OTHER",
    );
    assert!(err.is_resource_not_found_exception());
    let err = service_error(
        activate_source(&customer, &source_name("c2", "unknown")).await,
        "unknown source",
    );
    assert!(err.is_resource_not_found_exception());

    customer
        .create_event_bus()
        .name(&name)
        .event_source_name(&name)
        .description("orders from acme")
        .send()
        .await
        .expect("bus");
    let err = service_error(create_bus(&customer, &name, &name).await, "twice");
    assert!(err.is_resource_already_exists_exception());
    activate_source(&customer, &name)
        .await
        .expect("activating an active source changes nothing");
    let buses = emu.buses();
    assert_eq!(buses.len(), 1);
    assert_eq!(buses[0].account, CUSTOMER);
    assert_eq!(buses[0].event_source_name.as_deref(), Some(name.as_str()));
}

#[tokio::test]
async fn out_of_band_actions_through_the_library() {
    let (emu, partner, name) = start_with_pending_source("c3", "orders").await;
    let customer = client(&emu, CUSTOMER);

    assert!(emu.activate(&name));
    let seen = describe_source(&customer, &name).await.expect("described");
    assert_eq!(seen.state(), Some(&EventSourceState::Active));
    assert!(!emu.expire(&name), "active sources never expire");
    assert!(emu.deactivate(&name));
    let snapshot = emu.source(&name).expect("held");
    assert_eq!(snapshot.state, SourceState::Pending);
    assert!(snapshot.expiration_time.is_some());
    assert!(emu.expire(&name));
    let err = service_error(describe_partner_source(&partner, &name).await, "expired");
    assert!(err.is_resource_not_found_exception());

    // Recreated and then deleted by "someone else".
    try_create(&partner, &name, CUSTOMER)
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
    create(&partner, &name, CUSTOMER).await;
    assert!(
        emu.wait_until(Duration::from_secs(10), |e| e.source(&name).is_none())
            .await,
        "the pending source expires"
    );
    let err = service_error(describe_partner_source(&partner, &name).await, "expired");
    assert!(err.is_resource_not_found_exception());
    try_create(&partner, &name, CUSTOMER)
        .await
        .expect("the name is free again");
}

#[tokio::test]
async fn each_signing_region_has_its_own_state() {
    let emu = start().await;
    let name = source_name("c5", "orders");
    let created = create(&client_in(&emu, PARTNER_KEY, "us-east-1"), &name, CUSTOMER).await;
    assert_eq!(created, source_arn("us-east-1", &name));
    let err = service_error(
        describe_partner_source(&client(&emu, PARTNER_KEY), &name).await,
        "not in eu-west-1",
    );
    assert!(err.is_resource_not_found_exception());
    assert_eq!(emu.source(&name).expect("held").region, "us-east-1");
}

#[tokio::test]
async fn a_customer_account_can_also_be_a_partner() {
    let emu = start().await;
    let name = source_name("c6", "orders");
    try_create(&client(&emu, OTHER), &name, CUSTOMER)
        .await
        .expect("created by OTHER");
    // The default partner has its own namespace, so the same name is free there.
    try_create(&client(&emu, PARTNER_KEY), &name, CUSTOMER)
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
