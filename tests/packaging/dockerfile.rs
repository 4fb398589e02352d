//! The Dockerfile: its final stage runs the binary the way the chart expects, its builder
//! is recent enough for the crate, and hadolint (pinned, from `hack/tools.sh`) accepts it.

use crate::support;

use serde_json::json;
use support::chart::{BINARY, CI_VALUES, Render, ci_values, container};
use support::command::output_of;
use support::repo::{read, root};
use support::tools::tool;

const IMAGE_BINARY_PATH: &str = "/usr/local/bin/eventbridge-partner-operator";

/// The instructions of the Dockerfile's last stage, as (instruction, rest of the line),
/// continuation lines joined.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let instructions: Vec<(String, String)> = logical
        .into_iter()
        .map(|line| {
            let (instruction, rest) = line.split_once(' ').unwrap_or((&line, ""));
            (instruction.to_uppercase(), rest.trim().to_owned())
        })
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|(instruction, _)| instruction == "FROM")
        .expect("a FROM");
    instructions[last_from..].to_vec()
}

fn dockerfile() -> String {
    read("Dockerfile")
}

#[test]
fn dockerfile_matches_the_chart() {
    let text = dockerfile();
    let stage = final_stage(&text);
    let get = |wanted: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(instruction, _)| instruction == wanted)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    let exec_form = |wanted: &str| -> Vec<String> {
        let found = get(wanted);
        assert_eq!(found.len(), 1, "one {wanted} in the final stage");
        serde_json::from_str(found[0])
            .unwrap_or_else(|e| panic!("{wanted} in exec (JSON) form: {e}"))
    };
    let entrypoint = exec_form("ENTRYPOINT");
    let cmd = exec_form("CMD");
    assert_eq!(entrypoint, [IMAGE_BINARY_PATH]);
    assert_eq!(cmd, ["run"]);
    assert!(
        get("COPY")
            .iter()
            .any(|copy| copy.starts_with("--from=") && copy.ends_with(IMAGE_BINARY_PATH)),
        "the final stage copies the binary to {IMAGE_BINARY_PATH}"
    );
    assert_eq!(get("USER"), ["65532:65532"]);
    assert!(get("FROM")[0].contains(":nonroot"), "a non-root base image");
    assert!(
        text.contains(&format!("cargo build --locked --release --bin {BINARY}")),
        "the builder builds the release binary from the locked dependencies"
    );

    // The chart relies on the image: no command (so the ENTRYPOINT runs), the same args,
    // the same user, the port the image exposes.
    for values in CI_VALUES {
        let docs = Render::new().values(ci_values(values)).docs();
        let container = container(&docs);
        assert!(
            container.get("command").is_none(),
            "{values}: keep the ENTRYPOINT"
        );
        assert_eq!(container["args"], json!(cmd), "{values}");
        assert_eq!(container["securityContext"]["runAsUser"], json!(65532));
        assert_eq!(container["securityContext"]["runAsGroup"], json!(65532));
    }
    let defaults = Render::new().docs();
    let port = container(&defaults)["ports"][0]["containerPort"].clone();
    assert_eq!(get("EXPOSE"), [port.to_string()]);

    let ignored = read(".dockerignore");
    for dir in ["target/", ".cache/", ".git/"] {
        assert!(
            ignored.lines().any(|line| line.trim() == dir),
            ".dockerignore leaves out {dir}"
        );
    }
}

#[test]
fn builder_image_is_at_least_the_minimum_rust_version() {
    let text = dockerfile();
    let builder = text
        .lines()
        .find_map(|line| line.strip_prefix("FROM rust:"))
        .expect("a rust builder stage");
    let tag = builder.split_whitespace().next().expect("a tag");
    let version = |v: &str| -> (u32, u32) {
        let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    assert!(
        version(tag) >= version(env!("CARGO_PKG_RUST_VERSION")),
        "builder rust:{tag} is older than rust-version {}",
        env!("CARGO_PKG_RUST_VERSION")
    );
}

#[test]
fn hadolint_accepts_the_dockerfile() {
    let output = output_of(
        tool("hadolint")
            .arg("--no-color")
            .arg(root().join("Dockerfile")),
    );
    assert!(
        output.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
