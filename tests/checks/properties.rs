//! Bad input, proven by properties: for generated specs, valid and invalid, the three judges of
//! a spec give the same answer, field by field.
//!
//! - the API server's admission of the generated CRD (a server-side dry-run create against the
//!   real kube-apiserver, so its RE2 patterns, lengths in runes and CEL rules are the ones a
//!   cluster applies);
//! - the controller's own check, [`PartnerEventSourceSpec::validate`];
//! - the EventBridge model, as the emulator enforces it: `CreatePartnerEventSource` sent with
//!   the SDK, where `ValidationException` names the members AWS rejects (the model knows no
//!   region, so the region is judged by the first two only).
//!
//! The generators aim at the edges: names of 255, 256 and 257 characters, empty segments,
//! letters and digits outside ASCII (Arabic-Indic, fullwidth, mathematical digits beyond the
//! BMP), accounts with leading zeros, separators, one digit too many or too few.
//! `PROPERTY_CASES` sets the number of generated cases (default 300); the fixed edge cases run
//! first, every time.

use crate::support;

use std::collections::BTreeSet;
use std::fmt::Debug;

use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use eventbridge_partner_emulator::{Config as EmulatorConfig, Emulator};
use eventbridge_partner_operator::resources::{PartnerEventSource, PartnerEventSourceSpec};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use support::controlplane::ControlPlane;
use support::repo::crd_path;
use support::scenario::unique;

/// A spec as generated: what a manifest could say.
#[derive(Clone, Debug, PartialEq)]
struct Input {
    name: String,
    account: String,
    region: Option<String>,
}

/// Which fields a judge rejected.
type Verdict = BTreeSet<&'static str>;

const NAME: &str = "spec.name";
const ACCOUNT: &str = "spec.account";
const REGION: &str = "spec.region";

/// The three judges, with the clients they need.
struct Judges {
    api: Api<PartnerEventSource>,
    aws: aws_sdk_eventbridge::Client,
}

impl Judges {
    /// The object a manifest with this spec would make. Built from JSON, as `kubectl` sends it.
    fn object(input: &Input) -> PartnerEventSource {
        let spec: PartnerEventSourceSpec = serde_json::from_value(serde_json::json!({
            "name": input.name,
            "account": input.account,
            "region": input.region,
        }))
        .expect("any strings make a spec");
        let mut obj = PartnerEventSource::new("judged", spec);
        obj.metadata = ObjectMeta {
            name: Some("judged".to_owned()),
            ..ObjectMeta::default()
        };
        obj
    }

    /// The API server's answer to a dry-run create: the fields it names as invalid.
    async fn api_server(&self, input: &Input) -> Verdict {
        let params = PostParams {
            dry_run: true,
            field_manager: Some("properties".to_owned()),
        };
        match self.api.create(&params, &Self::object(input)).await {
            Ok(_) => Verdict::new(),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                let causes = status
                    .details
                    .as_ref()
                    .map(|d| d.causes.clone())
                    .unwrap_or_default();
                let mut fields = Verdict::new();
                for cause in &causes {
                    let field = cause.field.as_str();
                    // When a schema check fails, the API server adds a note without a field
                    // that the CEL rules were skipped: not a verdict on any field.
                    if field == "<nil>" || field.is_empty() {
                        continue;
                    }
                    let named = [NAME, ACCOUNT, REGION]
                        .into_iter()
                        .find(|f| field == *f || field.starts_with(&format!("{f}[")));
                    match named {
                        Some(f) => {
                            fields.insert(f);
                        }
                        None => panic!(
                            "the API server rejected {input:?} for a field the test does not \
                             know: {cause:?} ({})",
                            status.message
                        ),
                    }
                }
                assert!(
                    !fields.is_empty(),
                    "the API server rejected {input:?} without naming a field: {status:?}"
                );
                fields
            }
            Err(e) => panic!("dry-run create of {input:?}: {e}"),
        }
    }

    /// The controller's answer.
    fn controller(input: &Input) -> Verdict {
        match Self::object(input).spec.validate() {
            Ok(()) => Verdict::new(),
            Err(errors) => errors
                .iter()
                .map(|e| match e.field {
                    "spec.name" => NAME,
                    "spec.account" => ACCOUNT,
                    "spec.region" => REGION,
                    other => panic!("validate named an unknown field {other}"),
                })
                .collect(),
        }
    }

    /// The EventBridge model's answer (name and account only: the model has no region).
    async fn model(&self, input: &Input) -> Verdict {
        let sent = self
            .aws
            .create_partner_event_source()
            .name(&input.name)
            .account(&input.account)
            .send()
            .await;
        let Err(err) = sent else {
            return Verdict::new();
        };
        let err = err.into_service_error();
        if err.code() != Some("ValidationException") {
            // Anything else (the source exists already, for one) is not about the input.
            return Verdict::new();
        }
        let message = err.message().unwrap_or_default();
        let mut fields = Verdict::new();
        if message.contains("at 'name'") {
            fields.insert(NAME);
        }
        if message.contains("at 'account'") {
            fields.insert(ACCOUNT);
        }
        assert!(
            !fields.is_empty(),
            "ValidationException for {input:?} names neither member: {message}"
        );
        fields
    }

    /// All three answers agree, field by field.
    async fn agree(&self, input: &Input) -> Result<(), String> {
        let api_server = self.api_server(input).await;
        let controller = Self::controller(input);
        let model = self.model(input).await;
        let without_region: Verdict = controller
            .iter()
            .copied()
            .filter(|f| *f != REGION)
            .collect();
        if api_server == controller && model == without_region {
            Ok(())
        } else {
            Err(format!(
                "judges disagree on {input:?}: API server rejects {api_server:?}, the controller \
                 {controller:?}, the EventBridge model {model:?}"
            ))
        }
    }
}

const PREFIX: &str = "aws.partner/acme.com/";

/// A name of exactly `len` characters: the usual prefix, `a`s, then `last`.
fn name_of_len(len: usize, last: char) -> String {
    let fill = len.saturating_sub(PREFIX.len() + 1);
    format!("{PREFIX}{}{last}", "a".repeat(fill))
}

/// The fixed edge cases, run on every run before the generated ones.
fn edge_cases() -> Vec<Input> {
    let valid = |name: &str, account: &str| Input {
        name: name.to_owned(),
        account: account.to_owned(),
        region: None,
    };
    let good = "aws.partner/acme.com/customer-4711/orders";
    let mut cases = vec![
        valid(good, "123456789012"),
        valid(good, "000000000000"),
        valid(good, "000000000001"),
        valid(&name_of_len(255, 'z'), "123456789012"),
        valid(&name_of_len(256, 'z'), "123456789012"),
        valid(&name_of_len(257, 'z'), "123456789012"),
        valid(&name_of_len(256, '٣'), "123456789012"),
        valid(&name_of_len(256, '𝟘'), "123456789012"),
        valid(&name_of_len(255, '𝟘'), "123456789012"),
        valid("", "123456789012"),
        valid("aws.partner", "123456789012"),
        valid("aws.partner/acme.com", "123456789012"),
        valid("aws.partner//orders", "123456789012"),
        valid("aws.partner/acme.com//orders", "123456789012"),
        valid("aws.partner/acme.com/orders/", "123456789012"),
        valid("aws.partner/acme.com/orders\n", "123456789012"),
        valid("aws.partner/acme.com/ördérs", "123456789012"),
        valid("aws.partner/acme.com/orders٣", "123456789012"),
        valid("aws.partner/acme.com/orders３", "123456789012"),
        valid("AWS.partner/acme.com/orders", "123456789012"),
        valid(good, "١٢٣٤٥٦٧٨٩٠١٢"),
        valid(good, "１２３４５６７８９０１２"),
        valid(good, "12345678901٢"),
        valid(good, "1234567890𝟙𝟚"),
        valid(good, "12345678901"),
        valid(good, "1234567890123"),
        valid(good, "1234-5678-9012"),
        valid(good, " 123456789012"),
        valid(good, "123456789012\n"),
        valid(good, "+12345678901"),
        valid(good, ""),
    ];
    for region in [
        "eu-west-1",
        "us-gov-west-1",
        "ap-southeast-12",
        "eu-west-١",
        "eu-west-１",
        "EU-west-1",
        "eu-west-",
        "eu-1",
        "e-west-1",
        "eu-west-1\n",
        "",
    ] {
        cases.push(Input {
            region: Some(region.to_owned()),
            ..valid(good, "123456789012")
        });
    }
    cases
}

/// A path segment: valid, empty, or with characters outside the model's ASCII class.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[.\\-_A-Za-z0-9]{1,12}",
        1 => Just(String::new()),
        1 => "[a-z]{0,4}[é٣３ßΩ𝟘 ]{1,2}[a-z0-9]{0,4}",
        1 => "[a-z]{0,3}[!@#%+=:~/]{1,2}[a-z]{0,3}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        8 => Just("aws.partner"),
        1 => Just("AWS.partner"),
        1 => Just("aws-partner"),
        1 => Just("aws.partners"),
        1 => Just("xaws.partner"),
        1 => Just(""),
    ];
    let tail = prop_oneof![
        6 => "[a-z0-9._-]".prop_map(|s| s.chars().next().unwrap_or('a')),
        1 => prop::sample::select(vec!['٣', '３', 'é', '𝟘', ' ', '/', '\n']),
    ];
    prop_oneof![
        6 => (prefix, prop::collection::vec(segment(), 0..5))
            .prop_map(|(p, segs)| segs.iter().fold(p.to_owned(), |n, s| format!("{n}/{s}"))),
        3 => (prop::sample::select(vec![23usize, 100, 254, 255, 256, 257, 300]), tail)
            .prop_map(|(len, last)| name_of_len(len, last)),
        1 => "\\PC{0,20}",
    ]
}

fn account() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[0-9]{12}",
        2 => (0usize..12, "[1-9]{0,1}").prop_map(|(zeros, rest)| {
            let digits = format!("{}{rest}", "0".repeat(zeros));
            format!("{digits:0>12}")
        }),
        1 => "[0-9]{0,11}",
        1 => "[0-9]{13,14}",
        1 => "[0-9]{11}[٠-٩０-９]",
        1 => "[٠-٩]{12}",
        1 => "[０-９]{12}",
        1 => "[0-9]{6}[𝟘-𝟡][0-9]{5}",
        1 => "[0-9]{4}[- ][0-9]{4}[- ][0-9]{4}",
        1 => "[ +]?[0-9]{11,12}\n?",
        1 => "\\PC{0,14}",
    ]
}

fn region() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        4 => "[a-z]{2}(-[a-z]{2,9}){1,2}-[0-9]{1,2}",
        1 => "[a-z]{2}-[a-z]{3,5}-[٠-٩１-９]",
        1 => "[A-Z]{2}-west-[0-9]",
        1 => "[a-z]{1,3}-[a-z]{0,4}-?[0-9]{0,2}",
        1 => "\\PC{0,12}",
    ])
}

fn input() -> impl Strategy<Value = Input> {
    (name(), account(), region()).prop_map(|(name, account, region)| Input {
        name,
        account,
        region,
    })
}

/// Runs the generated cases with one proptest runner; the API calls run on `runtime`.
fn run_generated<S>(
    runtime: &tokio::runtime::Runtime,
    judges: &Judges,
    strategy: S,
    cases: u32,
) -> Result<(), String>
where
    S: Strategy<Value = Input>,
{
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        // Shrinking asks the API server again for every step: keep it bounded.
        max_shrink_iters: 200,
        ..RunnerConfig::default()
    });
    runner
        .run(&strategy, |input| {
            runtime
                .block_on(judges.agree(&input))
                .map_err(TestCaseError::fail)
        })
        .map_err(|e| e.to_string())
}

#[test]
fn api_server_controller_and_eventbridge_model_agree_on_every_spec() {
    let cases: u32 = std::env::var("PROPERTY_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(300);
    let cp = ControlPlane::shared();
    cp.install_crds(&[crd_path()]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (judges, namespace, emulator) = runtime.block_on(async {
        let client = cp.admin_client().await;
        let namespace = unique("properties");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .expect("create the namespace");
        let emulator = Emulator::start(EmulatorConfig::default())
            .await
            .expect("start the emulator");
        let aws = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("eu-west-1"))
                .endpoint_url(emulator.endpoint_url())
                .credentials_provider(Credentials::new(
                    "AKIAPARTNEREXAMPLE01",
                    "secret",
                    None,
                    None,
                    "properties",
                ))
                .build(),
        );
        let judges = Judges {
            api: Api::namespaced(client, &namespace),
            aws,
        };
        (judges, namespace, emulator)
    });

    let mut disagreements = Vec::new();
    for case in edge_cases() {
        if let Err(e) = runtime.block_on(judges.agree(&case)) {
            disagreements.push(e);
        }
    }
    let generated = run_generated(&runtime, &judges, input(), cases);

    runtime.block_on(async {
        let namespaces: Api<Namespace> = Api::all(judges.api.clone().into_client());
        let _ = namespaces
            .delete(&namespace, &DeleteParams::default())
            .await;
        emulator.shutdown().await;
    });
    assert!(
        disagreements.is_empty(),
        "fixed edge cases:\n{}",
        disagreements.join("\n")
    );
    if let Err(e) = generated {
        panic!("generated cases: {e}");
    }
}
