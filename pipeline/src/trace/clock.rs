//! Kernel timestamps (CLOCK_MONOTONIC) to wall-clock Unix time.

/// The offset between the two clocks, measured once at start-up.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    offset_ns: i128,
}

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl WallClock {
    /// Takes the tightest of a few paired readings, so the offset is off by
    /// the cost of one clock read at most.
    pub fn measure() -> Self {
        let mut best: Option<(i128, i128)> = None;
        for _ in 0..5 {
            let m1 = now_ns(libc::CLOCK_MONOTONIC);
            let r = now_ns(libc::CLOCK_REALTIME);
            let m2 = now_ns(libc::CLOCK_MONOTONIC);
            let gap = m2 - m1;
            if best.is_none_or(|(g, _)| gap < g) {
                best = Some((gap, r - (m1 + gap / 2)));
            }
        }
        Self {
            offset_ns: best.map(|(_, o)| o).unwrap_or(0),
        }
    }

    pub fn to_unix_ns(self, mono_ns: u64) -> u64 {
        (i128::from(mono_ns) + self.offset_ns).max(0) as u64
    }
}
