//! The kernel's traced-PID map: one byte of `BEYLA_PID_*` flags per process,
//! read by every probe and written here through a shared mapping, so that
//! marking a process costs a store rather than a syscall, and any thread may
//! do it without a lock.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use aya::maps::{Map, MapData};

use super::abi;
use super::error::ProbeError;
use crate::discovery::TracedPids;
use beyla_pipeline::model::Pid;

const NAME: &str = "traced_pids";
const PID_MAX_PATH: &str = "/proc/sys/kernel/pid_max";
/// The largest pid_max a 64-bit kernel allows (PID_MAX_LIMIT), used when
/// /proc/sys/kernel/pid_max cannot be read.
const PID_MAX_LIMIT: u32 = 4 * 1024 * 1024;

pub struct PidMap {
    bytes: NonNull<AtomicU8>,
    /// Processes the map covers: pids from 0 to this, exclusive.
    capacity: u32,
    mapped: NonZeroUsize,
    /// Keeps the map's descriptor open while it is mapped.
    _map: MapData,
}

// SAFETY: the mapping lives as long as the PidMap and is only accessed through
// atomics (the probes on other CPUs write single bytes too).
unsafe impl Send for PidMap {}
// SAFETY: as above.
unsafe impl Sync for PidMap {}

impl PidMap {
    /// Elements the map needs to cover every pid this kernel hands out.
    pub(super) fn chunks() -> u32 {
        let pid_max = std::fs::read_to_string(PID_MAX_PATH)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(PID_MAX_LIMIT);
        pid_max.div_ceil(abi::PID_CHUNK)
    }

    pub(super) fn new(map: Map, chunks: u32) -> Result<Self, ProbeError> {
        let Map::Array(data) = map else {
            return Err(ProbeError::MapSetup {
                name: NAME,
                reason: "not an array".into(),
            });
        };
        let len = chunks as usize * abi::PID_CHUNK as usize;
        let mapped = NonZeroUsize::new(len).ok_or_else(|| ProbeError::MapSetup {
            name: NAME,
            reason: "sized for no process".into(),
        })?;
        // SAFETY: a shared mapping of the map's fd, of the size the kernel
        // allocated for it (BPF_F_MMAPABLE arrays are page-aligned); checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                data.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(ProbeError::MapSetup {
                name: NAME,
                reason: format!("mmap: {}", std::io::Error::last_os_error()),
            });
        }
        Ok(Self {
            bytes: NonNull::new(ptr.cast()).expect("mmap returned a non-null mapping"),
            capacity: chunks * abi::PID_CHUNK,
            mapped,
            _map: data,
        })
    }

    fn byte(&self, pid: Pid) -> Option<&AtomicU8> {
        // SAFETY: in bounds (checked) of a mapping that lives as long as self.
        (pid.0 < self.capacity).then(|| unsafe { &*self.bytes.as_ptr().add(pid.0 as usize) })
    }

    /// Adds a flag to a traced process (`PID_TLS` once its OpenSSL probes are
    /// attached); not if it stopped being traced meanwhile.
    pub(super) fn add_flag(&self, pid: Pid, flag: u8) {
        if let Some(b) = self.byte(pid) {
            let _ = b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v & abi::PID_TRACED != 0).then_some(v | flag)
            });
        }
    }
}

impl TracedPids for PidMap {
    fn trace(&self, pid: Pid) {
        match self.byte(pid) {
            // TRACED, keeping the TLS bit the library probes may have set.
            Some(b) => {
                b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v & abi::PID_TLS | abi::PID_TRACED)
                })
                .ok();
            }
            None => log::warn!(
                "pid={pid} is beyond the {} processes the traced-PID map was sized for at start (kernel.pid_max was raised): not traced",
                self.capacity
            ),
        }
    }

    fn untrace(&self, pid: Pid) {
        if let Some(b) = self.byte(pid) {
            b.store(0, Ordering::Relaxed);
        }
    }

    fn marked(&self) -> Vec<Pid> {
        // SAFETY: the whole mapping, as atomics: the probes write it concurrently.
        let all =
            unsafe { std::slice::from_raw_parts(self.bytes.as_ptr(), self.capacity as usize) };
        all.iter()
            .enumerate()
            .filter(|(_, b)| b.load(Ordering::Relaxed) & (abi::PID_TRACED | abi::PID_PENDING) != 0)
            .map(|(pid, _)| Pid(pid as u32))
            .collect()
    }
}

impl Drop for PidMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new(), not used after this.
        unsafe { libc::munmap(self.bytes.as_ptr().cast(), self.mapped.get()) };
    }
}
