//! Running a command (a tool, kubectl, the operator binary) and reporting its failure with
//! what it printed.

// Each test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `command` and returns its output, whatever its exit status.
pub fn output_of(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// Runs `command` with `input` on stdin and returns its output, whatever its exit status.
pub fn output_with_input(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    // Dropped at the end of the statement, which closes stdin so the command sees its end.
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .unwrap_or_else(|e| panic!("writing the stdin of {command:?}: {e}"));
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {command:?}: {e}"))
}

/// Runs `command`, panics with its stdout and stderr unless it succeeds, returns its
/// stdout.
pub fn run(command: &mut Command) -> String {
    let output = output_of(command);
    stdout_of_success(command, output)
}

/// Runs `command` with `input` on stdin; like [`run`].
pub fn run_with_input(command: &mut Command, input: &str) -> String {
    let output = output_with_input(command, input);
    stdout_of_success(command, output)
}

/// The stdout of `command`'s `output`; panics with its stdout and stderr unless it
/// succeeded.
pub fn stdout_of_success(command: &Command, output: Output) -> String {
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}
