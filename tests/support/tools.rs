//! The pinned tools `hack/tools.sh` installs into `target/tools/bin` (helm, kubeconform,
//! hadolint, glua, ...), found once per test process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The dir `hack/tools.sh` installs the tools into. The script runs once per test process
/// (it skips what is already installed at its pinned version); its progress goes to stderr,
/// and the dir is the last line it prints on stdout.
pub fn bin_dir() -> &'static Path {
    static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();
    BIN_DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/tools.sh");
        let output = Command::new("bash")
            .arg(script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("running hack/tools.sh");
        assert!(
            output.status.success(),
            "hack/tools.sh failed ({}); its output is above",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last_line = stdout.lines().map(str::trim).rfind(|line| !line.is_empty());
        PathBuf::from(last_line.expect("hack/tools.sh prints its bin dir"))
    })
}

/// [`bin_dir`], after asserting that each of `names` is installed there.
pub fn bin_dir_holding(names: &[&str]) -> &'static Path {
    let dir = bin_dir();
    for name in names {
        assert!(
            dir.join(name).is_file(),
            "{name} is missing from {}",
            dir.display()
        );
    }
    dir
}

/// A command that runs the installed tool `name`, after asserting that it is there.
pub fn tool(name: &str) -> Command {
    Command::new(bin_dir_holding(&[name]).join(name))
}
