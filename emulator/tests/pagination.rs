//! `ListPartnerEventSources` pages with opaque tokens, as AWS does.

mod common;

use common::*;

const ACME: &str = "aws.partner/acme.com/";

#[tokio::test]
async fn pages_through_every_source_of_the_prefix_in_order() {
    let (emu, partner) = start_with_partner().await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let name = source_name(&format!("c{i}"), "orders");
        create(&partner, &name, CUSTOMER).await;
        expected.push(name);
    }
    // Other prefixes and other partners are not listed.
    create(&partner, "aws.partner/other.com/c0/orders", CUSTOMER).await;
    try_create(&client(&emu, OTHER), &source_name("zz", "orders"), CUSTOMER)
        .await
        .expect("created by another partner");

    let mut names = Vec::new();
    let mut page_sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = list_sources_page(&partner, ACME, Some(3), token.as_deref())
            .await
            .expect("page");
        page_sizes.push(page.partner_event_sources().len());
        for source in page.partner_event_sources() {
            let name = source.name().expect("name").to_owned();
            assert_eq!(source.arn(), Some(source_arn("eu-west-1", &name).as_str()));
            names.push(name);
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(page_sizes, vec![3, 3, 1]);
    assert_eq!(names, expected);

    let all = list_sources(&partner, "aws.partner/acme.com/c1")
        .await
        .expect("one page");
    assert_eq!(all.partner_event_sources().len(), 1);
    assert!(all.next_token().is_none());
}

#[tokio::test]
async fn invalid_or_mismatched_tokens_are_rejected() {
    let (emu, partner) = start_with_partner().await;
    for i in 0..3 {
        create(&partner, &source_name(&format!("c{i}"), "orders"), CUSTOMER).await;
    }
    let first = list_sources_page(&partner, ACME, Some(1), None)
        .await
        .expect("page");
    let token = first.next_token().expect("more pages").to_owned();

    let err = list_sources_page(&partner, ACME, None, Some("not-a-token"))
        .await
        .expect_err("garbage token");
    assert_eq!(code_and_status(&err), ("InvalidToken".into(), 400));
    assert!(error_message(&err).is_some());

    let err = list_sources_page(&partner, "aws.partner/acme.com/c", None, Some(&token))
        .await
        .expect_err("token for another prefix");
    assert_eq!(code_and_status(&err).0, "InvalidToken");

    let err = list_sources_page(&client(&emu, OTHER), ACME, None, Some(&token))
        .await
        .expect_err("token of another caller");
    assert_eq!(code_and_status(&err).0, "InvalidToken");

    let second = list_sources_page(&partner, ACME, Some(1), Some(&token))
        .await
        .expect("the real token still works");
    assert_eq!(
        second.partner_event_sources()[0].name(),
        Some(source_name("c1", "orders").as_str())
    );
}

#[tokio::test]
async fn account_listing_pages_too() {
    let (_emu, partner, name) = start_with_pending_source("c1", "orders").await;
    let page = list_accounts_page(&partner, &name, Some(1), None)
        .await
        .expect("page");
    assert_eq!(page.partner_event_source_accounts().len(), 1);
    assert!(page.next_token().is_none(), "one account, one page");
    let err = list_accounts_page(&partner, &name, None, Some("bogus"))
        .await
        .expect_err("bogus token");
    assert_eq!(code_and_status(&err).0, "InvalidToken");
}
