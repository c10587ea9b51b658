//! Process to container: the container id in a process's cgroup path, as the
//! container runtimes name their cgroups.
//!
//! - containerd, systemd driver: `.../kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`
//! - CRI-O: `.../crio-<id>.scope` (its `crio-conmon-<id>.scope` is the monitor, not the container)
//! - Docker: `.../docker-<id>.scope`, or `/docker/<id>` with the cgroupfs driver
//! - cgroupfs driver (cgroup v1 or v2): `/kubepods/besteffort/pod<uid>/<id>`
//! - containerd nested in a systemd unit: `...:cri-containerd:<id>`
//!
//! cgroup v1 lists one line per hierarchy (`N:controllers:/path`), cgroup v2
//! one (`0::/path`); any line naming a container counts.

use std::fmt;

use beyla_pipeline::model::Pid;

/// Hex digits in a container id (containerd, CRI-O and Docker alike).
const CONTAINER_ID_LEN: usize = 64;

/// A container's id as the runtime gives it, without the `containerd://` scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(pub String);

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ContainerId {
    /// The id in a pod's `containerStatuses[].containerID`
    /// (`containerd://<id>`, `cri-o://<id>`, `docker://<id>`).
    pub fn from_status(container_id: &str) -> Option<Self> {
        let (_, id) = container_id.split_once("://")?;
        is_container_id(id).then(|| ContainerId(id.to_string()))
    }
}

/// The container process `pid` runs in; None outside containers, for a
/// process already gone, or a cgroup no runtime named.
pub fn container_of(pid: Pid) -> Option<ContainerId> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    container_in(&text)
}

/// The container id named by a `/proc/PID/cgroup` text.
pub fn container_in(cgroup: &str) -> Option<ContainerId> {
    cgroup.lines().find_map(|line| {
        // `hierarchy:controllers:path`; the path may itself contain ':'.
        let path = line.splitn(3, ':').nth(2)?;
        path.rsplit('/').find_map(id_in_segment)
    })
}

/// The id in one path segment: the whole segment, or after the runtime's
/// prefix (`cri-containerd-`, `crio-`, `docker-`, `...:cri-containerd:`),
/// before `.scope`.
fn id_in_segment(segment: &str) -> Option<ContainerId> {
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    if name.contains("conmon") {
        return None;
    }
    let id = name.rsplit(['-', ':']).next()?;
    is_container_id(id).then(|| ContainerId(id.to_string()))
}

fn is_container_id(id: &str) -> bool {
    id.len() == CONTAINER_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}
