//! Context propagation by header: the sock_ops program that puts the sockets
//! traced processes connect into a sockhash, and the sk_msg program on it that
//! writes `traceparent` into their outgoing HTTP/1 requests
//! (ebpf/probes/propagation.bpf.c). Loaded only when asked for.

use std::fs::File;
use std::path::PathBuf;

use aya::maps::{MapData, SockHash};
use aya::programs::{CgroupAttachMode, SkMsg, SockOps};
use aya::util::KernelVersion;
use aya::Ebpf;

use super::error::ProbeError;

const SOCK_OPS: &str = "mark_traced_sockets";
const SK_MSG: &str = "inject_traceparent";
const SOCKETS: &str = "propagated_sockets";
/// The sk_msg program searches request heads with bpf_loop (kernel 5.17).
const MINIMUM_KERNEL: KernelVersion = KernelVersion::new(5, 17, 0);

/// The attached programs; dropping them detaches them. (What they did is
/// counted in `propagation_counts`, read with the kernel's drop counters.)
pub struct HeaderInjection {
    _links: Vec<Box<dyn Send>>,
    _sockets: SockHash<MapData, u64>,
}

impl HeaderInjection {
    /// Attaches the sock_ops program to the root of the cgroup v2 hierarchy
    /// (every socket on the machine; it marks only traced processes') and
    /// the sk_msg program to the sockhash it fills.
    pub fn attach(ebpf: &mut Ebpf) -> Result<Self, ProbeError> {
        if KernelVersion::current().is_ok_and(|v| v < MINIMUM_KERNEL) {
            return Err(ProbeError::MapSetup {
                name: SOCKETS,
                reason: "context propagation by header (ebpf.context_propagation) needs kernel \
                         5.17 or later (bpf_loop); set it to disabled on this kernel"
                    .into(),
            });
        }
        let root = cgroup2_root()?;
        let cgroup = File::open(&root).map_err(|e| ProbeError::MapSetup {
            name: SOCKETS,
            reason: format!("opening the cgroup v2 root {}: {e}", root.display()),
        })?;
        let failed = |program: &'static str, target: String| {
            move |source| ProbeError::Attach {
                program,
                target: target.clone(),
                source: Box::new(source),
            }
        };
        let sockets =
            SockHash::<MapData, u64>::try_from(take(ebpf, SOCKETS)?).map_err(|source| {
                ProbeError::Map {
                    name: SOCKETS,
                    source,
                }
            })?;
        let mut links: Vec<Box<dyn Send>> = Vec::new();

        // A link (kernels from 5.7): the kernel takes no flags with one, and
        // links attached to one cgroup run side by side, so another agent's
        // programs there stay.
        let target = format!("cgroup {}", root.display());
        let sock_ops: &mut SockOps = program(ebpf, SOCK_OPS)?
            .try_into()
            .map_err(failed(SOCK_OPS, target.clone()))?;
        sock_ops.load().map_err(failed(SOCK_OPS, target.clone()))?;
        let id = sock_ops
            .attach(&cgroup, CgroupAttachMode::Single)
            .map_err(failed(SOCK_OPS, target.clone()))?;
        links.push(Box::new(
            sock_ops.take_link(id).map_err(failed(SOCK_OPS, target))?,
        ));

        let target = format!("sockhash {SOCKETS}");
        let sk_msg: &mut SkMsg = program(ebpf, SK_MSG)?
            .try_into()
            .map_err(failed(SK_MSG, target.clone()))?;
        sk_msg.load().map_err(failed(SK_MSG, target.clone()))?;
        let id = sk_msg
            .attach(sockets.fd())
            .map_err(failed(SK_MSG, target.clone()))?;
        links.push(Box::new(
            sk_msg.take_link(id).map_err(failed(SK_MSG, target))?,
        ));

        Ok(Self {
            _links: links,
            _sockets: sockets,
        })
    }
}

fn program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut aya::programs::Program, ProbeError> {
    ebpf.program_mut(name)
        .ok_or_else(|| ProbeError::Missing(name.into()))
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(name)
        .ok_or_else(|| ProbeError::Missing(name.into()))
}

/// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on current
/// distributions, /sys/fs/cgroup/unified on hybrid ones.
fn cgroup2_root() -> Result<PathBuf, ProbeError> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts
        .lines()
        .find_map(|line| {
            // Fields: id parent major:minor root mount-point options... - fstype source options
            let (before, after) = line.split_once(" - ")?;
            let mount_point = before.split(' ').nth(4)?;
            (after.split(' ').next()? == "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .ok_or_else(|| ProbeError::MapSetup {
            name: SOCKETS,
            reason: "context propagation by header needs the cgroup v2 hierarchy mounted \
                     (mount -t cgroup2 none /sys/fs/cgroup)"
                .into(),
        })
}
