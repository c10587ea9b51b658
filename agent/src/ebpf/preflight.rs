//! Start-up checks: each failure is one sentence saying what is missing and how to fix it.

use std::path::Path;

use caps::{CapSet, Capability};
use thiserror::Error;

/// Oldest kernel with the BPF ring buffer.
const MIN_KERNEL: (u32, u32) = (5, 8);
const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS_PATHS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const PERF_EVENT_PARANOID: &str = "/proc/sys/kernel/perf_event_paranoid";
/// Above this level (a Debian and Ubuntu kernel patch; their default is 3)
/// perf_event_open() is refused to any process without CAP_SYS_ADMIN.
const PARANOID_NEEDS_ADMIN: i32 = 2;

/// What the agent cannot do without a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing works: the agent refuses to start.
    Start,
    /// One feature, named as in the `feature` label of
    /// `beyla_probe_attach_failures_total`: the agent starts, warns and counts.
    Feature(&'static str),
}

/// One capability the agent needs when it does not run as root, and why.
#[derive(Debug)]
pub struct Privilege {
    pub capability: Capability,
    /// A broader capability that the kernel accepts in its place.
    pub or: Option<Capability>,
    pub need: Need,
    pub why: &'static str,
}

/// The capabilities of an unprivileged agent, measured as user `nobody`
/// against real HTTP and HTTPS servers. The one list: the README, the NixOS
/// module, the OCI and Kubernetes pages, the DaemonSet and the Helm chart
/// grant exactly these (scripts/check-packaging.sh compares them).
pub const PRIVILEGES: &[Privilege] = &[
    Privilege {
        capability: Capability::CAP_BPF,
        or: Some(Capability::CAP_SYS_ADMIN),
        need: Need::Start,
        why: "bpf(): create the maps and load the probes",
    },
    Privilege {
        capability: Capability::CAP_PERFMON,
        or: Some(Capability::CAP_SYS_ADMIN),
        need: Need::Start,
        why: "perf_event_open(): attach the probes to the syscall tracepoints; read kernel memory from them",
    },
    Privilege {
        capability: Capability::CAP_SYS_PTRACE,
        or: None,
        need: Need::Start,
        why: "other users' /proc/PID/exe, environ, maps, fd and root pass the kernel's ptrace access check",
    },
    Privilege {
        capability: Capability::CAP_DAC_READ_SEARCH,
        or: None,
        need: Need::Start,
        why: "read tracefs (root-only: the tracepoint ids), other users' /proc/PID/fd and the files their processes run",
    },
    Privilege {
        capability: Capability::CAP_SYS_ADMIN,
        or: None,
        need: Need::Feature(OPENSSL),
        why: "perf_event_open() of uprobes (OpenSSL, HTTPS) since the kernel requires it for them; mount tracefs when it is not mounted",
    },
];

/// The feature of the OpenSSL uprobes.
pub const OPENSSL: &str = "openssl";

/// The capability a feature needs, from [`PRIVILEGES`].
pub fn capability_for(feature: &str) -> Option<Capability> {
    PRIVILEGES
        .iter()
        .find(|p| matches!(p.need, Need::Feature(f) if f == feature))
        .map(|p| p.capability)
}

#[derive(Debug, Error)]
pub enum PreflightError {
    #[error("missing capabilities {missing}: run beyla as root, or grant it {} (setcap, or AmbientCapabilities in a systemd unit)", all_capabilities())]
    MissingCapabilities { missing: String },
    #[error("kernel.perf_event_paranoid is {level}: above {PARANOID_NEEDS_ADMIN} (a Debian and Ubuntu kernel patch) perf_event_open() is refused to every process without CAP_SYS_ADMIN, CAP_PERFMON or not, so no probe can attach: grant CAP_SYS_ADMIN (it is in the documented list), or set `sysctl kernel.perf_event_paranoid={PARANOID_NEEDS_ADMIN}`")]
    PerfParanoid { level: i32 },
    #[error("kernel {found} is too old: beyla needs Linux 5.8 or newer (for the BPF ring buffer)")]
    KernelTooOld { found: String },
    #[error("this kernel has no BTF ({BTF_PATH} is missing): beyla needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error("tracefs is not mounted and could not be mounted ({reason}): mount it with `mount -t tracefs tracefs /sys/kernel/tracing`, or in a container mount the host's /sys/kernel/tracing or /sys/kernel/debug")]
    NoTracefs { reason: String },
}

/// `CAP_BPF, CAP_PERFMON, ...`, in the order of [`PRIVILEGES`].
fn all_capabilities() -> String {
    PRIVILEGES
        .iter()
        .map(|p| p.capability.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs every check in order; the first failure stops the agent.
pub fn check() -> Result<(), PreflightError> {
    check_capabilities()?;
    check_perf_paranoid()?;
    check_kernel_version()?;
    if !Path::new(BTF_PATH).exists() {
        return Err(PreflightError::NoBtf);
    }
    ensure_tracefs()?;
    raise_memlock_limit();
    raise_fd_limit();
    Ok(())
}

fn check_capabilities() -> Result<(), PreflightError> {
    let effective = caps::read(None, CapSet::Effective).unwrap_or_default();
    let missing: Vec<String> = PRIVILEGES
        .iter()
        .filter(|p| p.need == Need::Start)
        .filter(|p| {
            !effective.contains(&p.capability) && !p.or.is_some_and(|or| effective.contains(&or))
        })
        .map(|p| p.capability.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::MissingCapabilities {
            missing: missing.join(", "),
        })
    }
}

fn check_perf_paranoid() -> Result<(), PreflightError> {
    let admin = caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).unwrap_or(false);
    let level = std::fs::read_to_string(PERF_EVENT_PARANOID)
        .ok()
        .and_then(|l| l.trim().parse().ok());
    match level {
        Some(level) if paranoid_blocks(level, admin) => Err(PreflightError::PerfParanoid { level }),
        _ => Ok(()),
    }
}

fn paranoid_blocks(level: i32, admin: bool) -> bool {
    level > PARANOID_NEEDS_ADMIN && !admin
}

fn check_kernel_version() -> Result<(), PreflightError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    match parse_release(release) {
        Some(v) if v >= MIN_KERNEL => Ok(()),
        _ => Err(PreflightError::KernelTooOld {
            found: release.to_string(),
        }),
    }
}

/// `6.1.0-18-amd64` -> (6, 1).
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn tracefs_mounted() -> bool {
    TRACEFS_PATHS
        .iter()
        .any(|p| Path::new(p).join("events").is_dir())
}

fn ensure_tracefs() -> Result<(), PreflightError> {
    if tracefs_mounted() {
        return Ok(());
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: plain mount(2) with NUL-terminated constant strings.
    let rc = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 && tracefs_mounted() {
        log::info!("mounted tracefs at /sys/kernel/tracing");
        return Ok(());
    }
    Err(PreflightError::NoTracefs {
        reason: std::io::Error::last_os_error().to_string(),
    })
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The open-files limit up to its hard limit: every traced library's probes,
/// the metrics endpoint's clients and /proc reads hold descriptors, and the
/// usual soft limit (1,024) is reached long before the hard one.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a valid struct.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
        }
    };
    if !raised {
        log::debug!(
            "could not raise RLIMIT_NOFILE: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_needs_cap_sys_admin_and_the_error_names_every_capability() {
        assert_eq!(capability_for(OPENSSL), Some(Capability::CAP_SYS_ADMIN));
        assert_eq!(capability_for("no such feature"), None);
        let message = PreflightError::MissingCapabilities {
            missing: "CAP_SYS_PTRACE".into(),
        }
        .to_string();
        assert!(
            message.starts_with("missing capabilities CAP_SYS_PTRACE: run beyla as root, or grant it CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN (setcap"),
            "{message}"
        );
    }

    #[test]
    fn paranoid_above_two_needs_cap_sys_admin() {
        assert!(paranoid_blocks(3, false));
        assert!(!paranoid_blocks(3, true));
        assert!(!paranoid_blocks(2, false));
        assert!(!paranoid_blocks(-1, false));
    }

    #[test]
    fn kernel_release_parsing() {
        assert_eq!(parse_release("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.10.209"), Some((5, 10)));
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_release("garbage"), None);
        assert!(parse_release("5.4.0").unwrap() < MIN_KERNEL);
    }
}
