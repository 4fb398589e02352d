//! The wire protocol at the HTTP level, the admin API, shutdown and the binary.

mod common;

use std::time::{Duration, Instant};

use common::*;
use eventbridge_partner_emulator::Emulator;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

const CREATE_BODY: &str = r#"{"Name":"aws.partner/acme.com/c1/orders","Account":"222222222222"}"#;
const NAME: &str = "aws.partner/acme.com/c1/orders";

async fn post(emu: &Emulator, headers: &[(&str, &str)]) -> Raw {
    raw(emu.local_addr(), "POST", "/", headers, "{}").await
}

/// `CreatePartnerEventSource` of [`NAME`] for the customer, over raw HTTP as the partner.
async fn create_raw(emu: &Emulator) -> Raw {
    raw_call(emu, PARTNER_KEY, "CreatePartnerEventSource", CREATE_BODY).await
}

/// Calls `operation` on [`NAME`] over raw HTTP, as `access_key_id`.
async fn call_on_name(emu: &Emulator, access_key_id: &str, operation: &str) -> Raw {
    let body = json!({ "Name": NAME }).to_string();
    raw_call(emu, access_key_id, operation, &body).await
}

#[tokio::test]
async fn authentication_errors_have_aws_shapes() {
    let emu = start().await;
    let target = ("X-Amz-Target", "AWSEvents.ListPartnerEventSources");
    let json_type = ("Content-Type", "application/x-amz-json-1.1");
    let date = ("X-Amz-Date", "20240102T030405Z");

    let r = post(&emu, &[target, json_type]).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
    );
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    assert!(r.header("x-amzn-requestid").is_some());

    let r = post(
        &emu,
        &[
            target,
            json_type,
            date,
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20240102/eu-west-1/events/aws4_request",
            ),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "IncompleteSignatureException");

    let r = post(
        &emu,
        &[target, json_type, date, ("Authorization", "Bearer abc")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "IncompleteSignatureException");

    let wrong_service = authorization("AKID", "eu-west-1").replace("/events/", "/sqs/");
    let r = post(
        &emu,
        &[target, json_type, date, ("Authorization", &wrong_service)],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "InvalidSignatureException");

    // A request dated long ago: AWS's 15-minute window.
    let auth = authorization("AKID", "eu-west-1");
    let r = post(&emu, &[target, json_type, date, ("Authorization", &auth)]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "InvalidSignatureException");
    let message = r.json()["message"].as_str().expect("message").to_owned();
    assert!(
        message.starts_with("Signature expired: 20240102T030405Z is now earlier than"),
        "{message}"
    );

    // All of these count as calls of the operation, by outcome.
    assert_eq!(emu.calls("ListPartnerEventSources"), 5);
    assert_eq!(
        emu.calls_with_outcome("ListPartnerEventSources", "IncompleteSignatureException"),
        2
    );
}

#[tokio::test]
async fn unknown_operations_and_content_types() {
    let emu = start().await;
    let auth = authorization("AKID", "eu-west-1");
    let date = ("Date", "Tue, 02 Jan 2024 03:04:05 GMT");
    let json_type = ("Content-Type", "application/x-amz-json-1.1");

    let r = post(
        &emu,
        &[
            json_type,
            date,
            ("Authorization", &auth),
            ("X-Amz-Target", "AWSEvents.NoSuchThing"),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "UnknownOperationException");
    let r = post(&emu, &[json_type, date, ("Authorization", &auth)]).await;
    assert_eq!(r.json()["__type"], "UnknownOperationException");
    let r = post(
        &emu,
        &[
            json_type,
            date,
            ("Authorization", &auth),
            ("X-Amz-Target", "DynamoDB_20120810.ListTables"),
        ],
    )
    .await;
    assert_eq!(r.json()["__type"], "UnknownOperationException");
    let r = post(
        &emu,
        &[
            ("Content-Type", "text/plain"),
            date,
            ("Authorization", &auth),
            ("X-Amz-Target", "AWSEvents.ListPartnerEventSources"),
        ],
    )
    .await;
    assert_eq!(r.json()["__type"], "UnknownOperationException");
    let r = raw(emu.local_addr(), "GET", "/", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["__type"], "UnknownOperationException");
}

#[tokio::test]
async fn answers_carry_unique_request_ids_and_epoch_timestamps() {
    let emu = start().await;
    let a = create_raw(&emu).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let b = create_raw(&emu).await;
    assert_eq!(b.status, 400);
    assert_eq!(b.json()["__type"], "ResourceAlreadyExistsException");
    assert_eq!(
        b.header("x-amzn-errortype"),
        Some("ResourceAlreadyExistsException")
    );
    let (ida, idb) = (a.header("x-amzn-requestid"), b.header("x-amzn-requestid"));
    assert!(ida.is_some() && idb.is_some() && ida != idb);

    let r = raw_call(
        &emu,
        PARTNER_KEY,
        "ListPartnerEventSourceAccounts",
        &json!({ "EventSourceName": NAME }).to_string(),
    )
    .await;
    let entry = &r.json()["PartnerEventSourceAccounts"][0];
    assert!(entry["CreationTime"].is_number(), "{entry}");
    assert!(entry["ExpirationTime"].is_number(), "{entry}");

    // Operations without output answer 200 with an empty body.
    let r = raw_call(&emu, PARTNER_KEY, "DeletePartnerEventSource", CREATE_BODY).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "");
}

#[tokio::test]
async fn admin_api_injects_faults() {
    let emu = start().await;
    let r = admin_post(
        &emu,
        "faults/errors",
        &json!({
            "operation": "CreatePartnerEventSource",
            "errors": ["LimitExceededException", {"code": "InternalException", "message": "boom"}]
        })
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["queued"], 2);
    let faults = admin_get(&emu, "faults").await.json();
    assert_eq!(
        faults["operations"]["CreatePartnerEventSource"]["pending_errors"][0]["code"],
        "LimitExceededException"
    );

    let first = create_raw(&emu).await;
    assert_eq!(
        (first.status, first.json()["__type"].clone()),
        (400, json!("LimitExceededException"))
    );
    let second = create_raw(&emu).await;
    assert_eq!(second.status, 500);
    assert_eq!(
        second.json(),
        json!({"__type": "InternalException", "message": "boom"})
    );
    let third = create_raw(&emu).await;
    assert_eq!(third.status, 200);

    let r = admin_post(
        &emu,
        "faults/latency",
        &json!({"operation": "DescribePartnerEventSource", "latency_ms": 150}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    let started = Instant::now();
    let r = call_on_name(&emu, PARTNER_KEY, "DescribePartnerEventSource").await;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let r = admin_post(
        &emu,
        "faults/quota",
        &json!({"operation": "ListPartnerEventSources", "rate_per_sec": 0.001, "burst": 1})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    let list = json!({"NamePrefix": "aws.partner/acme.com/"}).to_string();
    let list_sources = || raw_call(&emu, PARTNER_KEY, "ListPartnerEventSources", &list);
    assert_eq!(list_sources().await.status, 200);
    let throttled = list_sources().await;
    assert_eq!(throttled.status, 400);
    assert_eq!(throttled.json()["__type"], "ThrottlingException");

    let calls = admin_get(&emu, "calls").await.json();
    assert_eq!(calls["CreatePartnerEventSource"]["total"], 3);
    assert_eq!(calls["CreatePartnerEventSource"]["outcomes"]["ok"], 1);
    assert_eq!(
        calls["CreatePartnerEventSource"]["outcomes"]["InternalException"],
        1
    );
    assert_eq!(
        calls["ListPartnerEventSources"]["outcomes"]["ThrottlingException"],
        1
    );

    let list_operation = r#"{"operation":"ListPartnerEventSources"}"#;
    let r = admin_post(&emu, "faults/clear", list_operation).await;
    assert_eq!(r.status, 200);
    assert_eq!(list_sources().await.status, 200);
    let r = admin_post(&emu, "faults/clear", "").await;
    assert_eq!(r.status, 200);
    // Cleared, and the three error answers (two scripted, one throttled) stay counted.
    assert_eq!(
        admin_get(&emu, "faults").await.json(),
        json!({
            "operations": {},
            "random": null,
            "injected": {"errors": 3, "timeouts": 0, "spikes": 0}
        })
    );

    // Mistakes are reported, not ignored.
    let unknown = r#"{"operation":"Nope","errors":["X"]}"#;
    let r = admin_post(&emu, "faults/errors", unknown).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .expect("error")
            .contains("unknown operation")
    );
    let r = admin_post(&emu, "faults/quota", list_operation).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn admin_api_draws_random_faults_and_lists_changes() {
    let emu = start().await;
    let bad = admin_post(&emu, "faults/random", r#"{"seed":1,"error_rate":1.5,"spike_rate":0,"spike_ms":0,"timeout_rate":0,"timeout_ms":0}"#).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("error_rate must be within [0, 1]"),
        "{}",
        bad.body
    );

    // Every call fails with a retryable error while the rate is 1.
    let always = json!({"seed": 9, "error_rate": 1.0, "spike_rate": 0.0, "spike_ms": 0, "timeout_rate": 0.0, "timeout_ms": 0});
    let r = admin_post(&emu, "faults/random", &always.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let retryable = [
        "InternalException",
        "ConcurrentModificationException",
        "LimitExceededException",
        "ThrottlingException",
        "ServiceUnavailable",
    ];
    for _ in 0..10 {
        let failed = create_raw(&emu).await;
        let code = failed.json()["__type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            retryable.contains(&code.as_str()),
            "{code}: {}",
            failed.body
        );
    }
    assert!(
        emu.sources().is_empty(),
        "no injected failure creates anything"
    );
    assert_eq!(
        admin_get(&emu, "faults").await.json()["injected"]["errors"],
        10
    );

    let r = admin_post(&emu, "faults/random", r#"{"off":true}"#).await;
    assert_eq!(r.status, 200);
    assert_eq!(create_raw(&emu).await.status, 200);
    let deleted = json!({"Name": NAME, "Account": CUSTOMER}).to_string();
    let r = raw_call(&emu, PARTNER_KEY, "DeletePartnerEventSource", &deleted).await;
    assert_eq!(r.status, 200);
    let changes = admin_get(&emu, "changes").await.json();
    let kinds: Vec<&str> = changes["changes"]
        .as_array()
        .expect("a list of changes")
        .iter()
        .map(|c| c["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["Created", "Deleted"]);
    assert_eq!(changes["changes"][0]["name"], NAME);
    assert_eq!(emu.changes().len(), 2);
}

#[tokio::test]
async fn admin_api_state_and_out_of_band_actions() {
    let emu = start().await;
    assert_eq!(create_raw(&emu).await.status, 200);

    let config = admin_get(&emu, "config").await.json();
    assert_eq!(config["region"], "eu-west-1");
    assert_eq!(config["partner_account"], PARTNER);
    assert_eq!(config["pending_expiration_secs"], 7.0 * 24.0 * 3600.0);
    assert_eq!(config["deactivated_expiration_secs"], 14.0 * 24.0 * 3600.0);

    let state = admin_get(&emu, "state").await.json();
    let source = &state["sources"][0];
    assert_eq!(source["name"], NAME);
    assert_eq!(source["account"], CUSTOMER);
    assert_eq!(source["partner_account"], PARTNER);
    assert_eq!(source["state"], "PENDING");
    assert!(source["creation_time"].is_number());
    assert!(source["expiration_time"].is_number());

    let by_name = json!({ "name": NAME }).to_string();
    assert_eq!(
        admin_post(&emu, "sources/activate", &by_name).await.status,
        200
    );
    let state = admin_get(&emu, "state").await.json();
    assert_eq!(state["sources"][0]["state"], "ACTIVE");
    assert_eq!(state["sources"][0]["expiration_time"], Value::Null);
    assert_eq!(state["buses"][0]["account"], CUSTOMER);
    assert_eq!(state["buses"][0]["event_source_name"], NAME);
    let r = admin_post(&emu, "sources/expire", &by_name).await;
    assert_eq!(r.status, 404, "active sources do not expire");
    assert_eq!(
        admin_post(&emu, "sources/deactivate", &by_name)
            .await
            .status,
        200
    );
    assert_eq!(
        admin_post(&emu, "sources/expire", &by_name).await.status,
        200
    );
    assert_eq!(admin_get(&emu, "state").await.json()["sources"], json!([]));

    // The customer now sees its matched source as DELETED.
    let seen = call_on_name(&emu, CUSTOMER, "DescribeEventSource").await;
    assert_eq!(seen.json()["State"], "DELETED");

    assert_eq!(create_raw(&emu).await.status, 200);
    let r = admin_post(
        &emu,
        "sources/delete",
        &json!({ "name": NAME, "region": "us-east-1" }).to_string(),
    )
    .await;
    assert_eq!(r.status, 404, "no such source in us-east-1");
    let r = admin_post(&emu, "sources/delete", &by_name).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["affected"], 1);
    let gone = call_on_name(&emu, PARTNER_KEY, "DescribePartnerEventSource").await;
    assert_eq!(gone.json()["__type"], "ResourceNotFoundException");

    assert_eq!(admin_post(&emu, "reset", "").await.status, 200);
    let state = admin_get(&emu, "state").await.json();
    assert_eq!(state, json!({"sources": [], "buses": []}));
    assert_eq!(admin_get(&emu, "calls").await.json(), json!({}));
}

#[tokio::test]
async fn dropping_the_emulator_stops_the_server() {
    let emu = start().await;
    let addr = emu.local_addr();
    assert_eq!(admin_get(&emu, "config").await.status, 200);
    drop(emu);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let emu = start().await;
    let addr = emu.local_addr();
    emu.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn the_binary_announces_its_url_and_stops_on_sigterm() {
    let mut child =
        tokio::process::Command::new(env!("CARGO_BIN_EXE_eventbridge-partner-emulator"))
            .args(["--region", "us-west-2", "--partner-account", "444444444444"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("announces in time")
        .expect("reads")
        .expect("a line");
    let url = line
        .strip_prefix("LISTENING http://")
        .expect("LISTENING line");
    let addr: std::net::SocketAddr = url.parse().expect("address");
    assert!(addr.ip().is_loopback());

    let r = raw_call_at(
        addr,
        "us-west-2",
        PARTNER_KEY,
        "CreatePartnerEventSource",
        CREATE_BODY,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["EventSourceArn"],
        format!("arn:aws:events:us-west-2::event-source/{NAME}")
    );
    let config = raw(addr, "GET", "/_emulator/config", &[], "").await.json();
    assert_eq!(config["partner_account"], "444444444444");

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}
