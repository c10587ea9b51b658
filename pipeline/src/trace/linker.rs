//! Parent/child links between a server request and the client calls made while
//! serving it: the thread that read the request is the thread that calls out
//! (thread-per-request servers, event loops handling one request at a time).

use rustc_hash::FxHashMap;

use super::context::parse_traceparent;
use super::ids::IdGenerator;
use crate::model::{Pid, SpanId, Tid, TraceContext};

pub struct Linker {
    ids: IdGenerator,
    /// Server requests in progress, per process, with the thread that read each.
    /// A process's list stays when it empties, so the next request reuses it;
    /// [`Linker::forget_idle`] drops the empty ones now and then.
    active: FxHashMap<Pid, Vec<(Tid, TraceContext)>>,
}

impl Default for Linker {
    fn default() -> Self {
        Self::new()
    }
}

impl Linker {
    pub fn new() -> Self {
        Self {
            ids: IdGenerator::new(),
            active: FxHashMap::default(),
        }
    }

    /// A traced process started reading a request: it joins the caller's trace
    /// when the request carries a valid `traceparent`, else starts a trace.
    pub fn server_started(
        &mut self,
        pid: Pid,
        tid: Tid,
        traceparent: Option<&str>,
    ) -> TraceContext {
        let span_id = self.ids.span_id();
        let context = match traceparent.and_then(parse_traceparent) {
            Some(remote) => TraceContext {
                trace_id: remote.trace_id,
                span_id,
                parent: Some(remote.span_id),
                parent_sampled: Some(remote.sampled),
            },
            None => TraceContext {
                trace_id: self.ids.trace_id(),
                span_id,
                parent: None,
                parent_sampled: None,
            },
        };
        self.active.entry(pid).or_default().push((tid, context));
        context
    }

    /// A traced process started sending a request: a child of the server request
    /// its thread is serving, or of the only one in progress in the process.
    pub fn client_started(&mut self, pid: Pid, tid: Tid) -> TraceContext {
        let span_id = self.ids.span_id();
        let parent = self.active.get(&pid).and_then(|list| {
            list.iter()
                .rev()
                .find(|(t, _)| *t == tid)
                .or(if list.len() == 1 { list.first() } else { None })
                .map(|(_, ctx)| *ctx)
        });
        match parent {
            // The local parent's sampling decision is its caller's flag, or else a
            // function of the shared trace id: inheriting the flag reproduces it.
            Some(p) => TraceContext {
                trace_id: p.trace_id,
                span_id,
                parent: Some(p.span_id),
                parent_sampled: p.parent_sampled,
            },
            None => TraceContext {
                trace_id: self.ids.trace_id(),
                span_id,
                parent: None,
                parent_sampled: None,
            },
        }
    }

    /// The server request with this span ended (answered or abandoned).
    pub fn server_ended(&mut self, pid: Pid, span_id: SpanId) {
        if let Some(list) = self.active.get_mut(&pid) {
            list.retain(|(_, ctx)| ctx.span_id != span_id);
        }
    }

    /// Drops the lists of processes with no request in progress (exited ones among them).
    pub fn forget_idle(&mut self) {
        self.active.retain(|_, list| !list.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_call_on_serving_thread_is_a_child() {
        let mut l = Linker::new();
        let a = l.server_started(Pid(1), Tid(10), None);
        let b = l.server_started(Pid(1), Tid(11), None);
        let c = l.client_started(Pid(1), Tid(11));
        assert_eq!(c.trace_id, b.trace_id);
        assert_eq!(c.parent, Some(b.span_id));
        // Two in flight and an unknown thread: no guess.
        assert_eq!(l.client_started(Pid(1), Tid(12)).parent, None);
        l.server_ended(Pid(1), b.span_id);
        // One in flight: any thread of the process is taken as serving it.
        assert_eq!(l.client_started(Pid(1), Tid(12)).parent, Some(a.span_id));
        l.server_ended(Pid(1), a.span_id);
        assert_eq!(l.client_started(Pid(1), Tid(10)).parent, None);
    }

    #[test]
    fn incoming_traceparent_is_joined() {
        let mut l = Linker::new();
        let ctx = l.server_started(
            Pid(1),
            Tid(1),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(ctx.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent.unwrap().to_string(), "00f067aa0ba902b7");
        assert_eq!(ctx.parent_sampled, Some(true));
    }
}
