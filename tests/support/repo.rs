//! The repository the tests run in: its root, the files tests read from it, and the CRD
//! that `make crds` generates.

// Each test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The file name of the operator's CRD, in `crds/` (and in the chart's `crds/`).
pub const CRD_FILE: &str = "partnereventsources.eventbridgepartner.dev.yaml";

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The operator's CRD as `make crds` writes it: `crds/<CRD_FILE>`.
pub fn crd_path() -> PathBuf {
    root().join("crds").join(CRD_FILE)
}

/// The file name of the PartnerAccount CRD, in `crds/`.
pub const PARTNER_ACCOUNT_CRD_FILE: &str = "partneraccounts.eventbridgepartner.dev.yaml";

/// Every CRD the operator defines, as `make crds` writes them.
pub fn crd_paths() -> Vec<PathBuf> {
    vec![
        crd_path(),
        root().join("crds").join(PARTNER_ACCOUNT_CRD_FILE),
    ]
}

/// Reads a file of the repository (`path` relative to the root, or absolute).
pub fn read(path: impl AsRef<Path>) -> String {
    let path = root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The files in directory `dir` of the repository (relative to the root, or absolute),
/// sorted by path so that tests go through them in a stable order.
pub fn sorted_files(dir: impl AsRef<Path>) -> Vec<PathBuf> {
    let dir = root().join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    files.sort();
    files
}
