//! The partner event source lifecycle AWS applies on its own: expiry of
//! sources left `PENDING` (never activated, deactivated, or whose matching bus
//! the customer deleted), driven by the real `aws-sdk-eventbridge`.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_eventbridge::types::EventSourceState;
use common::*;
use eventbridge_partner_emulator::{Config, Emulator, SourceState};
use serde_json::json;

const DAY: f64 = 24.0 * 3600.0;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

async fn start_with(pending: Duration, deactivated: Duration) -> Emulator {
    Emulator::start(Config {
        pending_expiration: pending,
        deactivated_expiration: deactivated,
        ..Config::default()
    })
    .await
    .expect("starts")
}

/// The expiration time the partner reads for `name` (epoch seconds).
async fn partner_expiration(partner: &aws_sdk_eventbridge::Client, name: &str) -> Option<f64> {
    let listed = list_accounts(partner, name).await.expect("listed");
    listed.partner_event_source_accounts()[0]
        .expiration_time()
        .map(|t| t.as_secs_f64())
}

#[tokio::test]
async fn default_periods_are_seven_days_new_and_two_weeks_after_deactivation() {
    let (emu, partner, name) = start_with_pending_source("c1", "periods").await;
    assert_eq!(emu.pending_expiration(), Duration::from_secs(604_800));
    assert_eq!(emu.deactivated_expiration(), Duration::from_secs(1_209_600));
    let customer = client(&emu, CUSTOMER);

    let seen = describe_source(&customer, &name).await.expect("described");
    let created = seen.creation_time().expect("creation").as_secs_f64();
    let expires = seen.expiration_time().expect("expiration").as_secs_f64();
    assert!(
        (expires - created - 7.0 * DAY).abs() < 0.01,
        "{created} {expires}"
    );

    create_bus(&customer, &name, &name).await.expect("bus");
    let before = now_secs();
    deactivate_source(&customer, &name)
        .await
        .expect("deactivated");
    let expires = partner_expiration(&partner, &name)
        .await
        .expect("pending again");
    assert!(
        expires >= before + 14.0 * DAY - 0.01 && expires <= now_secs() + 14.0 * DAY + 0.01,
        "two weeks after the deactivation: {before} -> {expires}"
    );
}

#[tokio::test]
async fn a_never_activated_source_vanishes_at_its_expiration_time() {
    let emu = start_with(Duration::from_secs(1), Duration::from_secs(3600)).await;
    let partner = client(&emu, PARTNER_KEY);
    let customer = client(&emu, CUSTOMER);
    let name = source_name("c2", "never");
    create(&partner, &name, CUSTOMER).await;
    let expires = partner_expiration(&partner, &name).await.expect("pending");
    assert!(expires > now_secs() - 0.01);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Nothing ran in between: the first look after the expiration time finds it gone.
    assert!(now_secs() > expires);
    let err = service_error(describe_partner_source(&partner, &name).await, "expired");
    assert!(err.is_resource_not_found_exception());
    let err = service_error(list_accounts(&partner, &name).await, "expired");
    assert!(err.is_resource_not_found_exception());
    let listed = list_sources(&partner, "aws.partner/acme.com/c2/")
        .await
        .expect("listed");
    assert!(listed.partner_event_sources().is_empty());
    let err = service_error(describe_source(&customer, &name).await, "no bus: unknown");
    assert!(err.is_resource_not_found_exception());
    assert!(emu.source(&name).is_none());
    try_create(&partner, &name, CUSTOMER)
        .await
        .expect("the name is free again");
}

#[tokio::test]
async fn a_deactivated_source_expires_after_the_deactivation_period() {
    let emu = start_with(Duration::from_secs(3600), Duration::from_secs(1)).await;
    let partner = client(&emu, PARTNER_KEY);
    let customer = client(&emu, CUSTOMER);
    let name = source_name("c3", "deactivated");
    create(&partner, &name, CUSTOMER).await;
    create_bus(&customer, &name, &name).await.expect("bus");
    deactivate_source(&customer, &name)
        .await
        .expect("deactivated");
    let seen = describe_source(&customer, &name).await.expect("described");
    assert_eq!(seen.state(), Some(&EventSourceState::Pending));
    let expires = seen.expiration_time().expect("expiration").as_secs_f64();
    assert!(expires <= now_secs() + 1.01);

    assert!(
        emu.wait_until(Duration::from_secs(10), |e| e.source(&name).is_none())
            .await,
        "the deactivated source expires"
    );
    let err = service_error(describe_partner_source(&partner, &name).await, "expired");
    assert!(err.is_resource_not_found_exception());
    // The customer still has its bus, so it sees the source DELETED.
    let seen = describe_source(&customer, &name)
        .await
        .expect("customer sees it deleted");
    assert_eq!(seen.state(), Some(&EventSourceState::Deleted));
}

#[tokio::test]
async fn deleting_the_matched_bus_returns_the_source_to_pending_then_it_expires() {
    let (emu, partner, name) = start_with_pending_source("c4", "bus").await;
    let customer = client(&emu, CUSTOMER);
    create_bus(&customer, &name, &name).await.expect("bus");
    assert_eq!(emu.source(&name).expect("held").state, SourceState::Active);
    assert_eq!(partner_expiration(&partner, &name).await, None);

    // Tests shorten the period at run time; it applies to what happens next.
    emu.set_deactivated_expiration(Duration::from_secs(2));
    let before = now_secs();
    customer
        .delete_event_bus()
        .name(&name)
        .send()
        .await
        .expect("bus deleted");
    assert!(emu.buses().is_empty());
    let listed = list_accounts(&partner, &name).await.expect("listed");
    let entry = &listed.partner_event_source_accounts()[0];
    assert_eq!(entry.state(), Some(&EventSourceState::Pending));
    let expires = entry
        .expiration_time()
        .expect("new expiration")
        .as_secs_f64();
    assert!(expires >= before + 2.0 - 0.01 && expires <= now_secs() + 2.01);
    let seen = describe_source(&customer, &name).await.expect("described");
    assert_eq!(seen.state(), Some(&EventSourceState::Pending));
    let err = service_error(
        activate_source(&customer, &name).await,
        "no matching bus to activate with",
    );
    assert!(err.is_invalid_state_exception());

    // Deleting a bus that does not exist succeeds; the default bus cannot go.
    customer
        .delete_event_bus()
        .name(&name)
        .send()
        .await
        .expect("idempotent");
    let err = customer
        .delete_event_bus()
        .name("default")
        .send()
        .await
        .expect_err("default bus");
    assert_eq!(code_and_status(&err), ("ValidationException".into(), 400));

    assert!(
        emu.wait_until(Duration::from_secs(10), |e| e.source(&name).is_none())
            .await,
        "the source expires after the bus deletion"
    );
    let err = service_error(describe_partner_source(&partner, &name).await, "expired");
    assert!(err.is_resource_not_found_exception());
    let err = service_error(describe_source(&customer, &name).await, "no bus any more");
    assert!(err.is_resource_not_found_exception());
}

#[tokio::test]
async fn a_new_bus_after_the_deletion_activates_the_source_again() {
    let (emu, partner, name) = start_with_pending_source("c5", "again").await;
    let customer = client(&emu, CUSTOMER);
    assert!(emu.activate(&name));
    assert!(emu.delete_bus(&name));
    assert!(!emu.delete_bus(&name), "no bus left to delete");
    assert_eq!(emu.source(&name).expect("held").state, SourceState::Pending);
    create_bus(&customer, &name, &name)
        .await
        .expect("bus again");
    assert_eq!(
        list_accounts(&partner, &name)
            .await
            .expect("listed")
            .partner_event_source_accounts()[0]
            .state(),
        Some(&EventSourceState::Active)
    );
}

#[tokio::test]
async fn expire_in_shows_the_new_expiration_time_before_the_source_vanishes() {
    let (emu, partner, name) = start_with_pending_source("c6", "soon").await;
    let before = now_secs();
    assert!(emu.expire_in(&name, Duration::from_secs(1)));
    let expires = partner_expiration(&partner, &name)
        .await
        .expect("still pending");
    assert!(expires >= before + 1.0 - 0.01 && expires <= now_secs() + 1.01);
    assert!(
        emu.wait_until(Duration::from_secs(10), |e| e.source(&name).is_none())
            .await
    );
    let err = service_error(describe_partner_source(&partner, &name).await, "expired");
    assert!(err.is_resource_not_found_exception());
}

#[tokio::test]
async fn admin_api_for_the_lifecycle() {
    let (emu, partner, name) = start_with_pending_source("c7", "admin").await;
    let by_name = json!({ "name": name }).to_string();

    let config = admin_post(
        &emu,
        "config",
        r#"{"pending_expiration_secs": 60, "deactivated_expiration_secs": 1.5}"#,
    )
    .await;
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(config.json()["pending_expiration_secs"], 60.0);
    assert_eq!(config.json()["deactivated_expiration_secs"], 1.5);
    assert_eq!(emu.pending_expiration(), Duration::from_secs(60));
    assert_eq!(emu.deactivated_expiration(), Duration::from_millis(1500));
    let r = admin_post(&emu, "config", r#"{"pending_expiration_secs": -1}"#).await;
    assert_eq!(r.status, 400);

    let r = admin_post(&emu, "sources/delete-bus", &by_name).await;
    assert_eq!(r.status, 404, "no bus yet: {}", r.body);
    assert_eq!(
        admin_post(&emu, "sources/activate", &by_name).await.status,
        200
    );
    let r = admin_post(&emu, "sources/delete-bus", &by_name).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["affected"], 1);
    let state = admin_get(&emu, "state").await.json();
    assert_eq!(state["buses"], json!([]));
    assert_eq!(state["sources"][0]["state"], "PENDING");
    let expires = state["sources"][0]["expiration_time"]
        .as_f64()
        .expect("expiration time");
    assert!(expires <= now_secs() + 1.51);

    // The expire shortcut moves the expiration time; the source vanishes at the next look.
    let r = admin_post(
        &emu,
        "sources/expire",
        &json!({ "name": name, "in_secs": 3600 }).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let later = partner_expiration(&partner, &name).await.expect("pending");
    assert!(later > now_secs() + 3590.0);
    assert_eq!(
        admin_post(&emu, "sources/expire", &by_name).await.status,
        200
    );
    let err = service_error(describe_partner_source(&partner, &name).await, "expired");
    assert!(err.is_resource_not_found_exception());
    assert_eq!(admin_get(&emu, "state").await.json()["sources"], json!([]));
}
