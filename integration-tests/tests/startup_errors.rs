//! The agent refuses to start, with one clear sentence and a non-zero status,
//! when it lacks privileges or is given a bad setting. Run as root.

use integration_tests::agent::{agent_command, run_to_exit};
use integration_tests::privileges::BinaryCopy;
use integration_tests::require_root;

#[test]
fn without_capabilities_names_cap_bpf() {
    require_root();
    let copy = BinaryCopy::new("unprivileged");
    // Run as nobody with no capability at all, not even inheritable ones.
    // The selection is valid so that only the privileges can be wrong.
    let command = copy.as_nobody(&[], &[("BEYLA_OPEN_PORT", "8080")]);
    let (status, stderr) = run_to_exit(command);
    assert!(
        !status.success(),
        "the agent started as an unprivileged user (status {status}); stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("CAP_BPF"),
        "without capabilities the agent must say which are missing (CAP_BPF...), got:\n{stderr}"
    );
    assert_no_panic(&stderr);
}

#[test]
fn open_port_with_dangling_range() {
    assert_rejects_open_port("80-");
}

#[test]
fn open_port_not_a_number() {
    assert_rejects_open_port("abc");
}

#[test]
fn open_port_out_of_range() {
    assert_rejects_open_port("70000");
}

/// The agent, run as root with `BEYLA_OPEN_PORT=value`, must exit non-zero
/// with a message naming the variable and the value.
fn assert_rejects_open_port(value: &str) {
    require_root();
    let (status, stderr) = run_to_exit(agent_command(&[("BEYLA_OPEN_PORT", value)]));
    assert!(
        !status.success(),
        "BEYLA_OPEN_PORT={value:?} was accepted (status {status}); stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("BEYLA_OPEN_PORT") && stderr.contains(value),
        "the error for BEYLA_OPEN_PORT={value:?} must name the variable and the value, got:\n{stderr}"
    );
    assert_no_panic(&stderr);
}

/// A refusal is a sentence for the user, never a crash.
fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked"),
        "the agent panicked instead of reporting the error:\n{stderr}"
    );
}
