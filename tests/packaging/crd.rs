//! The committed CRD must be exactly what the binary generates from the Rust types.

use crate::support;

use support::repo::{crd_path, read};

#[test]
fn committed_crd_matches_the_generated_one() {
    let path = crd_path();
    let committed = read(&path);
    let generated = eventbridge_partner_operator::crd_yaml().expect("render the CRD");
    assert!(
        committed == generated,
        "{} is out of date: run `make crds` (cargo run -- crd > {})",
        path.display(),
        path.display()
    );
}

#[test]
fn the_binary_prints_the_same_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eventbridge-partner-operator"))
        .arg("crd")
        .output()
        .expect("run the operator binary");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        eventbridge_partner_operator::crd_yaml().unwrap()
    );
}

#[test]
fn committed_partner_account_crd_matches_the_generated_one() {
    let path = support::repo::crd_paths()[1].clone();
    let committed = read(&path);
    let generated = eventbridge_partner_operator::partner_account_crd_yaml().expect("render");
    assert!(
        committed == generated,
        "{} is out of date: run `make crds`",
        path.display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eventbridge-partner-operator"))
        .args(["crd", "--kind", "PartnerAccount"])
        .output()
        .expect("run the operator binary");
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), generated);
}
