//! The allocator's policy. glibc's malloc keeps what the agent frees: a burst
//! of traffic (50,000 distinct paths, a queue filled while a receiver is down)
//! grows its heaps, and their memory stayed with the process after the series
//! expired and the queues drained (RSS 89 MB instead of 27). Large blocks are
//! mapped on their own, so they go back as soon as they are freed; two arenas
//! at most, so the threads' frees do not scatter over one heap each; and free
//! pages inside the heaps are handed back every [`RELEASE_INTERVAL`].

use std::time::Duration;

/// Blocks at least this large get their own mapping, returned when freed: a
/// scrape's text, hash tables grown by a burst, big queues.
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
/// Arenas at most, for the reader, the control plane and the OTLP thread.
const MAX_ARENAS: libc::c_int = 2;
/// How often free heap pages are handed back to the kernel.
pub const RELEASE_INTERVAL: Duration = Duration::from_secs(10);

/// Sets the policy; call before the agent starts its threads.
#[cfg(target_env = "gnu")]
pub fn tune() {
    // SAFETY: mallopt only changes malloc's parameters; both are in range.
    // A refusal (0) leaves glibc's defaults, which only cost memory.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, MAX_ARENAS);
    }
}

/// Hands free heap pages back to the kernel.
#[cfg(target_env = "gnu")]
pub fn release() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other C libraries (musl) return freed memory on their own.
#[cfg(not(target_env = "gnu"))]
pub fn tune() {}

#[cfg(not(target_env = "gnu"))]
pub fn release() {}

/// Runs on the control plane for the agent's life.
pub async fn release_periodically() {
    loop {
        smol::Timer::after(RELEASE_INTERVAL).await;
        release();
    }
}
