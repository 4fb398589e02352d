//! `ListPartnerEventSources` pages with opaque tokens, as AWS does.

mod common;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use common::*;

#[tokio::test]
async fn pages_through_every_source_of_the_prefix_in_order() {
    let emu = start().await;
    let partner = client(&emu, PARTNER_KEY);
    let mut expected = Vec::new();
    for i in 0..7 {
        let name = source_name(&format!("c{i}"), "orders");
        partner
            .create_partner_event_source()
            .name(&name)
            .account(CUSTOMER)
            .send()
            .await
            .expect("created");
        expected.push(name);
    }
    // Other prefixes and other partners are not listed.
    partner
        .create_partner_event_source()
        .name("aws.partner/other.com/c0/orders")
        .account(CUSTOMER)
        .send()
        .await
        .expect("created");
    client(&emu, OTHER)
        .create_partner_event_source()
        .name(source_name("zz", "orders"))
        .account(CUSTOMER)
        .send()
        .await
        .expect("created by another partner");

    let mut names = Vec::new();
    let mut page_sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = partner
            .list_partner_event_sources()
            .name_prefix("aws.partner/acme.com/")
            .limit(3)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("page");
        page_sizes.push(page.partner_event_sources().len());
        for source in page.partner_event_sources() {
            let name = source.name().expect("name").to_owned();
            assert_eq!(
                source.arn(),
                Some(format!("arn:aws:events:eu-west-1::event-source/{name}").as_str())
            );
            names.push(name);
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(page_sizes, vec![3, 3, 1]);
    assert_eq!(names, expected);

    let all = partner
        .list_partner_event_sources()
        .name_prefix("aws.partner/acme.com/c1")
        .send()
        .await
        .expect("one page");
    assert_eq!(all.partner_event_sources().len(), 1);
    assert!(all.next_token().is_none());
}

#[tokio::test]
async fn invalid_or_mismatched_tokens_are_rejected() {
    let emu = start().await;
    let partner = client(&emu, PARTNER_KEY);
    for i in 0..3 {
        partner
            .create_partner_event_source()
            .name(source_name(&format!("c{i}"), "orders"))
            .account(CUSTOMER)
            .send()
            .await
            .expect("created");
    }
    let first = partner
        .list_partner_event_sources()
        .name_prefix("aws.partner/acme.com/")
        .limit(1)
        .send()
        .await
        .expect("page");
    let token = first.next_token().expect("more pages").to_owned();

    let err = partner
        .list_partner_event_sources()
        .name_prefix("aws.partner/acme.com/")
        .next_token("not-a-token")
        .send()
        .await
        .expect_err("garbage token");
    assert_eq!(code_and_status(&err), ("InvalidToken".into(), 400));
    assert!(
        err.as_service_error()
            .expect("service error")
            .message()
            .is_some()
    );

    let err = partner
        .list_partner_event_sources()
        .name_prefix("aws.partner/acme.com/c")
        .next_token(&token)
        .send()
        .await
        .expect_err("token for another prefix");
    assert_eq!(code_and_status(&err).0, "InvalidToken");

    let err = client(&emu, OTHER)
        .list_partner_event_sources()
        .name_prefix("aws.partner/acme.com/")
        .next_token(&token)
        .send()
        .await
        .expect_err("token of another caller");
    assert_eq!(code_and_status(&err).0, "InvalidToken");

    let second = partner
        .list_partner_event_sources()
        .name_prefix("aws.partner/acme.com/")
        .limit(1)
        .next_token(&token)
        .send()
        .await
        .expect("the real token still works");
    assert_eq!(
        second.partner_event_sources()[0].name(),
        Some(source_name("c1", "orders").as_str())
    );
}

#[tokio::test]
async fn account_listing_pages_too() {
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
    let page = partner
        .list_partner_event_source_accounts()
        .event_source_name(&name)
        .limit(1)
        .send()
        .await
        .expect("page");
    assert_eq!(page.partner_event_source_accounts().len(), 1);
    assert!(page.next_token().is_none(), "one account, one page");
    let err = partner
        .list_partner_event_source_accounts()
        .event_source_name(&name)
        .next_token("bogus")
        .send()
        .await
        .expect_err("bogus token");
    assert_eq!(code_and_status(&err).0, "InvalidToken");
}
