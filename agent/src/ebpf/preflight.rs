//! Start-up checks: each failure is one sentence saying what is missing and how to fix it.

use std::path::Path;

use caps::{CapSet, Capability};
use thiserror::Error;

/// Oldest kernel with the BPF ring buffer.
const MIN_KERNEL: (u32, u32) = (5, 8);
const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS_PATHS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

#[derive(Debug, Error)]
pub enum PreflightError {
    #[error("missing capabilities {missing}: run beyla as root, or grant it CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (setcap, or AmbientCapabilities in a systemd unit)")]
    MissingCapabilities { missing: String },
    #[error("kernel {found} is too old: beyla needs Linux 5.8 or newer (for the BPF ring buffer)")]
    KernelTooOld { found: String },
    #[error("this kernel has no BTF ({BTF_PATH} is missing): beyla needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error("tracefs is not mounted and could not be mounted ({reason}): mount it with `mount -t tracefs tracefs /sys/kernel/tracing`, or in a container mount the host's /sys/kernel/tracing or /sys/kernel/debug")]
    NoTracefs { reason: String },
}

/// Runs every check in order; the first failure stops the agent.
pub fn check() -> Result<(), PreflightError> {
    check_capabilities()?;
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
    let has = |c: Capability| effective.contains(&c);
    let admin = has(Capability::CAP_SYS_ADMIN);
    let mut missing = Vec::new();
    for (cap, admin_covers) in [
        (Capability::CAP_BPF, true),
        (Capability::CAP_PERFMON, true),
        (Capability::CAP_SYS_PTRACE, false),
        (Capability::CAP_DAC_READ_SEARCH, false),
    ] {
        if !(has(cap) || admin_covers && admin) {
            missing.push(cap.to_string());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::MissingCapabilities {
            missing: missing.join(", "),
        })
    }
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
    fn kernel_release_parsing() {
        assert_eq!(parse_release("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.10.209"), Some((5, 10)));
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_release("garbage"), None);
        assert!(parse_release("5.4.0").unwrap() < MIN_KERNEL);
    }
}
