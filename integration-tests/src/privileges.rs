//! Running the agent as user `nobody` with a chosen set of capabilities, as
//! a systemd unit or a container without root would.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use crate::agent::{agent_binary, set_agent_env};
use crate::workspace_root;

/// The uid and gid of `nobody`.
const NOBODY: u32 = 65534;

/// The capabilities the agent documents, in the order of the one list in the
/// code (`PRIVILEGES` in agent/src/ebpf/preflight.rs): `CAP_BPF`, ...
pub fn documented_capabilities() -> Vec<String> {
    let path = workspace_root().join("agent/src/ebpf/preflight.rs");
    let source = fs::read_to_string(&path).expect("read preflight.rs");
    let list = &source[source
        .find("pub const PRIVILEGES")
        .expect("PRIVILEGES in preflight.rs")..];
    let list = &list[..list.find("\n];").expect("end of PRIVILEGES")];
    let capabilities: Vec<String> = list
        .split("capability: Capability::")
        .skip(1)
        .map(|rest| rest.split(',').next().unwrap_or_default().to_string())
        .collect();
    assert!(
        capabilities.len() >= 4,
        "no capabilities read from {}",
        path.display()
    );
    capabilities
}

/// A private copy of the agent binary that `nobody` may execute (the build
/// tree may be unreachable for it); removed when dropped.
pub struct BinaryCopy {
    dir: PathBuf,
    binary: PathBuf,
}

impl BinaryCopy {
    pub fn new(tag: &str) -> BinaryCopy {
        let dir = std::env::temp_dir().join(format!("beyla-{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create temp dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let binary = dir.join("beyla");
        fs::copy(agent_binary(), &binary).expect("copy the agent binary");
        fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).expect("chmod binary");
        BinaryCopy { dir, binary }
    }

    /// The agent as `nobody` with exactly `capabilities` (`CAP_BPF`, ...)
    /// effective, permitted, inheritable, ambient and bounding, and no
    /// group; its environment set by [`set_agent_env`] with `env`.
    pub fn as_nobody(&self, capabilities: &[String], env: &[(&str, &str)]) -> Command {
        let set = std::iter::once("-all".to_string())
            .chain(
                capabilities
                    .iter()
                    .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_ascii_lowercase())),
            )
            .collect::<Vec<_>>()
            .join(",");
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(format!("--inh-caps={set}"))
            .arg(format!("--ambient-caps={set}"))
            .arg(format!("--bounding-set={set}"))
            .arg(&self.binary)
            .current_dir(&self.dir);
        set_agent_env(&mut command, env);
        command
    }
}

impl Drop for BinaryCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
