//! Head sampling of traces. Decisions are a function of the trace id (and of the
//! caller's sampled flag), so every agent on a trace decides the same way.
//! Sampling thins traces only: metrics count every request.

use crate::model::{TraceContext, TraceId};

/// The OpenTelemetry samplers, as configured; ratios are in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerConfig {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    /// Keeps this fraction of traces, in [0, 1].
    TraceIdRatio(f64),
    /// Follows the parent's sampled flag when there is a parent; else the root sampler.
    ParentBased(Box<Sampler>),
}

impl Default for Sampler {
    /// Beyla's and OpenTelemetry's default: `parentbased_always_on`.
    fn default() -> Self {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    }
}

impl From<SamplerConfig> for Sampler {
    fn from(config: SamplerConfig) -> Self {
        let parent_based = |root| Sampler::ParentBased(Box::new(root));
        match config {
            SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
            SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
            SamplerConfig::TraceIdRatio(r) => Sampler::TraceIdRatio(r),
            SamplerConfig::ParentBasedAlwaysOn => parent_based(Sampler::AlwaysOn),
            SamplerConfig::ParentBasedAlwaysOff => parent_based(Sampler::AlwaysOff),
            SamplerConfig::ParentBasedTraceIdRatio(r) => parent_based(Sampler::TraceIdRatio(r)),
        }
    }
}

/// The ratio rule of OpenTelemetry's Go SDK (which Beyla uses): the trace id's
/// low 8 bytes, read big-endian and shifted right once, below ratio * 2^63.
fn ratio_keeps(trace_id: TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id.0[8..]);
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    (u64::from_be_bytes(low) >> 1) < bound
}

impl Sampler {
    pub fn keeps(&self, context: &TraceContext) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio(ratio) => ratio_keeps(context.trace_id, *ratio),
            Sampler::ParentBased(root) => match context.parent_sampled {
                Some(sampled) => sampled,
                None => root.keeps(context),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SpanId;

    fn ctx(trace_id: TraceId, parent_sampled: Option<bool>) -> TraceContext {
        TraceContext {
            trace_id,
            span_id: SpanId([1; 8]),
            parent: None,
            parent_sampled,
        }
    }

    /// Trace ids from a fixed sequence, so the statistical test is repeatable.
    fn trace_ids(n: usize) -> impl Iterator<Item = TraceId> {
        let mut state: u64 = 0x5eed;
        (0..n).map(move |_| {
            let mut id = [0u8; 16];
            for half in id.chunks_exact_mut(8) {
                state = state.wrapping_add(0xa076_1d64_78bd_642f);
                let t = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
                half.copy_from_slice(&(((t >> 64) ^ t) as u64).to_be_bytes());
            }
            TraceId(id)
        })
    }

    #[test]
    fn ratio_keeps_a_binomially_plausible_fraction() {
        let sampler = Sampler::TraceIdRatio(0.1);
        let kept = trace_ids(10_000)
            .filter(|id| sampler.keeps(&ctx(*id, None)))
            .count();
        // Binomial(10000, 0.1): mean 1000, sd 30; 99.9% two-sided is +-3.29 sd.
        assert!((902..=1098).contains(&kept), "kept {kept} of 10000");
    }

    #[test]
    fn ratio_decision_depends_on_the_trace_id_only() {
        let sampler = Sampler::TraceIdRatio(0.5);
        for id in trace_ids(1000) {
            assert_eq!(
                sampler.keeps(&ctx(id, None)),
                sampler.keeps(&ctx(id, Some(false)))
            );
        }
        let mut low = TraceId([0xff; 16]);
        low.0[8..].copy_from_slice(&[0; 8]);
        assert!(sampler.keeps(&ctx(low, None)), "smallest low half is kept");
        assert!(
            !sampler.keeps(&ctx(TraceId([0xff; 16]), None)),
            "largest is not"
        );
        assert!(Sampler::TraceIdRatio(1.0).keeps(&ctx(TraceId([0xff; 16]), None)));
        assert!(!Sampler::TraceIdRatio(0.0).keeps(&ctx(low, None)));
    }

    #[test]
    fn parent_based_follows_the_parent_flag() {
        let on = Sampler::default();
        let id = TraceId([0xff; 16]);
        assert!(on.keeps(&ctx(id, None)));
        assert!(on.keeps(&ctx(id, Some(true))));
        assert!(!on.keeps(&ctx(id, Some(false))));
        let ratio = Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.0)));
        assert!(
            ratio.keeps(&ctx(id, Some(true))),
            "a sampled parent wins over the ratio"
        );
        assert!(!ratio.keeps(&ctx(id, None)));
        assert!(!Sampler::AlwaysOff.keeps(&ctx(id, Some(true))));
    }
}
