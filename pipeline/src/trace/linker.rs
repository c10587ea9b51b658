//! Parent/child links between a server request and the client calls made while
//! serving it: the thread that read the request is the thread that calls out
//! (thread-per-request servers, event loops handling one request at a time).

use rustc_hash::FxHashMap;

use super::context::Parent;
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

    /// A new span's context: a child of `parent`, else the root of a new trace.
    fn context(&mut self, parent: Option<Parent>) -> TraceContext {
        let span_id = self.ids.span_id();
        match parent {
            Some(p) => TraceContext {
                trace_id: p.trace_id,
                span_id,
                parent: Some(p.span_id),
                parent_sampled: p.sampled,
            },
            None => TraceContext {
                trace_id: self.ids.trace_id(),
                span_id,
                parent: None,
                parent_sampled: None,
            },
        }
    }

    /// A traced process started reading a request: it joins `parent` (the
    /// caller's `traceparent`, or a traced caller on this machine), else
    /// starts a trace.
    pub fn server_started(&mut self, pid: Pid, tid: Tid, parent: Option<Parent>) -> TraceContext {
        let context = self.context(parent);
        self.active.entry(pid).or_default().push((tid, context));
        context
    }

    /// A traced process started sending a request: a child of the server request
    /// its thread is serving, or of the only one in progress in the process.
    pub fn client_started(&mut self, pid: Pid, tid: Tid) -> TraceContext {
        let parent = self.active.get(&pid).and_then(|list| {
            list.iter()
                .rev()
                .find(|(t, _)| *t == tid)
                .or(if list.len() == 1 { list.first() } else { None })
                .map(|(_, ctx)| Parent::of(ctx))
        });
        self.context(parent)
    }

    /// A server request already under way turned out to be the child of
    /// `parent` (its caller was seen after it): calls it makes from now on
    /// join `parent`'s trace.
    pub fn rejoin(&mut self, pid: Pid, span_id: SpanId, parent: Parent) {
        let serving = self
            .active
            .get_mut(&pid)
            .and_then(|list| list.iter_mut().find(|(_, ctx)| ctx.span_id == span_id));
        if let Some((_, ctx)) = serving {
            ctx.trace_id = parent.trace_id;
            ctx.parent = Some(parent.span_id);
            ctx.parent_sampled = parent.sampled;
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
    use crate::trace::context::parse_traceparent;

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
        let remote = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let ctx = l.server_started(Pid(1), Tid(1), remote.map(Parent::from));
        assert_eq!(ctx.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent.unwrap().to_string(), "00f067aa0ba902b7");
        assert_eq!(ctx.parent_sampled, Some(true));
    }

    #[test]
    fn a_rejoined_server_request_passes_its_new_trace_to_later_calls() {
        let mut l = Linker::new();
        let server = l.server_started(Pid(2), Tid(20), None);
        let before = l.client_started(Pid(2), Tid(20));
        assert_eq!(before.trace_id, server.trace_id);
        let caller = l.server_started(Pid(1), Tid(10), None);
        l.rejoin(Pid(2), server.span_id, Parent::of(&caller));
        let after = l.client_started(Pid(2), Tid(20));
        assert_eq!(after.trace_id, caller.trace_id);
        assert_eq!(after.parent, Some(server.span_id));
    }
}
