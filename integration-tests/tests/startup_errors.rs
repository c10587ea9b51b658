//! The agent refuses to start, with one clear sentence and a non-zero status,
//! when it lacks privileges or is given a bad setting. Run as root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use integration_tests::agent::{agent_binary, agent_command, run_to_exit, set_agent_env};
use integration_tests::require_root;

/// A private copy of the agent binary that user `nobody` may execute (the
/// build tree may be unreachable for it); removed when dropped.
struct BinaryCopy {
    dir: PathBuf,
    binary: PathBuf,
}

impl BinaryCopy {
    fn new() -> BinaryCopy {
        let dir = std::env::temp_dir().join(format!("beyla-unprivileged-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create temp dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let binary = dir.join("beyla");
        fs::copy(agent_binary(), &binary).expect("copy the agent binary");
        fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).expect("chmod binary");
        BinaryCopy { dir, binary }
    }
}

impl Drop for BinaryCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn without_capabilities_names_cap_bpf() {
    require_root();
    let copy = BinaryCopy::new();
    // Run as nobody with no capability at all, not even inheritable ones.
    // The selection is valid so that only the privileges can be wrong.
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&copy.binary)
        .current_dir(&copy.dir);
    set_agent_env(&mut command, &[("BEYLA_OPEN_PORT", "8080")]);
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
