//! Trace and span ids from a fast generator seeded by the kernel's entropy:
//! ids need to be unique, not secret, and cost nothing per span.

use crate::model::{SpanId, TraceId};

pub struct IdGenerator {
    state: u64,
}

impl IdGenerator {
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        // SAFETY: getrandom writes at most seed.len() bytes into the buffer.
        let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
        let seed = if n == 8 {
            u64::from_ne_bytes(seed)
        } else {
            // No entropy source: time and pid still make ids differ between runs.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ (u64::from(std::process::id()) << 32)
        };
        Self { state: seed }
    }

    /// wyrand: one multiply per 64 bits.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }

    fn nonzero(&mut self) -> u64 {
        loop {
            let v = self.next_u64();
            if v != 0 {
                return v;
            }
        }
    }

    pub fn trace_id(&mut self) -> TraceId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.nonzero().to_be_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        TraceId(b)
    }

    pub fn span_id(&mut self) -> SpanId {
        SpanId(self.nonzero().to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_distinct_and_nonzero() {
        let mut g = IdGenerator::new();
        let spans: HashSet<_> = (0..10_000).map(|_| g.span_id()).collect();
        assert_eq!(spans.len(), 10_000);
        assert!(spans.iter().all(|s| s.0 != [0; 8]));
        let traces: HashSet<_> = (0..10_000).map(|_| g.trace_id()).collect();
        assert_eq!(traces.len(), 10_000);
    }
}
