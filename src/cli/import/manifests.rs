//! Rendering: one `PartnerEventSource` manifest per listed (source, account), led by a
//! comment saying where it came from. Pure: what AWS listed in, YAML out.

use std::fmt::Write as _;

use kube::Resource;
use serde::Serialize;

use super::names::object_names;
use crate::resources::{DeletionPolicy, PartnerEventSource};

/// One partner event source shared with one customer account, as AWS listed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Found {
    /// The source's name.
    pub source: String,
    /// The customer account it is shared with.
    pub account: String,
    /// The source's ARN, for the provenance comment.
    pub arn: Option<String>,
}

/// Where the written objects go and what they say besides the source itself.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The prefix the sources were listed with, for the provenance comment.
    pub prefix: String,
    /// The region the sources were listed in; written as `spec.region`, so the objects adopt
    /// the sources where they are whatever the operator's default region.
    pub region: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.deletionPolicy`.
    pub deletion_policy: DeletionPolicy,
}

/// One rendered object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// `metadata.name`.
    pub name: String,
    /// The YAML document, led by its provenance comment, without a `---` separator.
    pub yaml: String,
}

/// Replaces line breaks and other control characters, so that a value from AWS cannot end
/// the comment it is quoted in.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: Metadata<'a>,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    namespace: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    name: &'a str,
    account: &'a str,
    region: &'a str,
    deletion_policy: DeletionPolicy,
}

/// One manifest per found (source, account), sorted by source and account, duplicates
/// dropped, each led by a comment naming the source, its ARN and region, the account, and
/// the command that wrote it.
pub(crate) fn manifests(found: &[Found], target: &Target) -> Result<Vec<Manifest>, String> {
    let mut found = found.to_vec();
    found.sort();
    found.dedup_by(|a, b| a.source == b.source && a.account == b.account);
    let pairs: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.source.as_str(), f.account.as_str()))
        .collect();
    let names = object_names(&pairs)?;
    let api_version = PartnerEventSource::api_version(&());
    let kind = PartnerEventSource::kind(&());
    found
        .iter()
        .zip(names)
        .map(|(f, name)| {
            let document = Document {
                api_version: &api_version,
                kind: &kind,
                metadata: Metadata {
                    name: &name,
                    namespace: &target.namespace,
                },
                spec: Spec {
                    name: &f.source,
                    account: &f.account,
                    region: &target.region,
                    deletion_policy: target.deletion_policy,
                },
            };
            let body = serde_yaml::to_string(&document)
                .map_err(|e| format!("cannot render {name} as YAML: {e}"))?;
            let mut yaml = String::new();
            // Writing to a String cannot fail.
            let _ = writeln!(
                yaml,
                "# Imported by `eventbridge-partner-operator import --prefix {}`:",
                one_line(&target.prefix)
            );
            let _ = writeln!(
                yaml,
                "# partner event source {} in {}, shared with account {}.",
                one_line(&f.source),
                one_line(&target.region),
                one_line(&f.account)
            );
            if let Some(arn) = &f.arn {
                let _ = writeln!(yaml, "# ARN: {}", one_line(arn));
            }
            yaml.push_str(&body);
            Ok(Manifest { name, yaml })
        })
        .collect()
}

/// The manifests as one multi-document YAML stream.
pub(crate) fn yaml_stream(manifests: &[Manifest]) -> String {
    manifests
        .iter()
        .map(|m| format!("---\n{}", m.yaml))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    fn target() -> Target {
        Target {
            prefix: "aws.partner/acme.com/".into(),
            region: "eu-west-1".into(),
            namespace: "tenants".into(),
            deletion_policy: DeletionPolicy::Retain,
        }
    }

    fn found(source: &str, account: &str) -> Found {
        Found {
            source: source.into(),
            account: account.into(),
            arn: Some(format!("arn:aws:events:eu-west-1::event-source/{source}")),
        }
    }

    #[test]
    fn manifests_are_valid_objects_with_their_provenance() {
        let found = [
            found("aws.partner/acme.com/c2/orders", ACCOUNT),
            found("aws.partner/acme.com/c1/orders", ACCOUNT),
            found("aws.partner/acme.com/c1/orders", ACCOUNT),
        ];
        let manifests = manifests(&found, &target()).unwrap();
        assert_eq!(
            manifests
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["c1-orders", "c2-orders"]
        );
        let m = &manifests[0];
        assert!(m.yaml.starts_with(
            "# Imported by `eventbridge-partner-operator import --prefix aws.partner/acme.com/`:\n\
             # partner event source aws.partner/acme.com/c1/orders in eu-west-1, shared with account 123456789012.\n\
             # ARN: arn:aws:events:eu-west-1::event-source/aws.partner/acme.com/c1/orders\n\
             apiVersion: eventbridgepartner.dev/v1alpha1\n\
             kind: PartnerEventSource\n"
        ), "{}", m.yaml);
        let obj: PartnerEventSource = serde_yaml::from_str(&m.yaml).unwrap();
        assert_eq!(obj.metadata.name.as_deref(), Some("c1-orders"));
        assert_eq!(obj.metadata.namespace.as_deref(), Some("tenants"));
        assert_eq!(obj.spec.name, "aws.partner/acme.com/c1/orders");
        assert_eq!(obj.spec.account, ACCOUNT);
        assert_eq!(obj.spec.region.as_deref(), Some("eu-west-1"));
        assert_eq!(obj.spec.deletion_policy, Some(DeletionPolicy::Retain));
        assert_eq!(obj.spec.validate(), Ok(()));
        assert!(obj.status.is_none());
    }

    #[test]
    fn the_stream_holds_one_document_per_manifest() {
        let found: Vec<Found> = (0..3)
            .map(|i| found(&format!("aws.partner/acme.com/c{i}/orders"), ACCOUNT))
            .collect();
        let stream = yaml_stream(&manifests(&found, &target()).unwrap());
        let objects: Vec<PartnerEventSource> = serde_yaml::Deserializer::from_str(&stream)
            .map(|doc| <PartnerEventSource as serde::Deserialize>::deserialize(doc).unwrap())
            .collect();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[2].spec.name, "aws.partner/acme.com/c2/orders");
        assert_eq!(yaml_stream(&[]), "");
    }

    #[test]
    fn comments_stay_on_one_line() {
        let mut f = found("aws.partner/acme.com/c/orders", ACCOUNT);
        f.arn = Some("arn\n- injected: true".into());
        let m = &manifests(&[f], &target()).unwrap()[0];
        let obj: serde_yaml::Value = serde_yaml::from_str(&m.yaml).unwrap();
        assert!(obj.get("injected").is_none(), "{}", m.yaml);
        assert!(
            m.yaml.contains("# ARN: arn - injected: true\n"),
            "{}",
            m.yaml
        );
    }
}
