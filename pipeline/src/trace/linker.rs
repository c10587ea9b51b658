//! Parent/child links between a server request and the client calls made while
//! serving it: the thread that read the request is the thread that calls out
//! (thread-per-request servers, event loops handling one request at a time).

use rustc_hash::FxHashMap;

use super::context::Parent;
use super::ids::IdGenerator;
use crate::model::{KernelIds, Pid, SpanId, Tid, TraceContext};

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

    /// A new span's context: a child of `parent`, else the root of a new
    /// trace; with the kernel's ids when it gave the request some.
    fn context(&mut self, parent: Option<Parent>, given: Option<KernelIds>) -> TraceContext {
        let span_id = given.map_or_else(|| self.ids.span_id(), |g| g.span_id);
        match parent {
            Some(p) => TraceContext {
                trace_id: p.trace_id,
                span_id,
                parent: Some(p.span_id),
                parent_sampled: p.sampled,
            },
            None => TraceContext {
                trace_id: given.map_or_else(|| self.ids.trace_id(), |g| g.trace_id),
                span_id,
                parent: None,
                parent_sampled: None,
            },
        }
    }

    /// A traced process started reading a request: it joins `parent` (the
    /// caller's `traceparent`, or a traced caller on this machine), else
    /// starts a trace; `given`: the ids the kernel gave it (and passes on to
    /// the calls it makes).
    pub fn server_started(
        &mut self,
        pid: Pid,
        tid: Tid,
        parent: Option<Parent>,
        given: Option<KernelIds>,
    ) -> TraceContext {
        let context = self.context(parent, given);
        self.active.entry(pid).or_default().push((tid, context));
        context
    }

    /// A traced process started sending a request: a child of the server request
    /// its thread is serving, or of the only one in progress in the process.
    pub fn client_started(&mut self, pid: Pid, tid: Tid) -> TraceContext {
        let parent = self.serving(pid, tid);
        self.context(parent, None)
    }

    /// A traced process started sending a request the kernel wrote a
    /// `traceparent` into: its ids are the header's, as the server sees them.
    pub fn client_started_as(&mut self, pid: Pid, tid: Tid, given: KernelIds) -> TraceContext {
        let serving = self.serving(pid, tid);
        TraceContext {
            trace_id: given.trace_id,
            span_id: given.span_id,
            parent: given.parent,
            parent_sampled: serving
                .filter(|p| Some(p.span_id) == given.parent)
                .and_then(|p| p.sampled),
        }
    }

    /// The server request a client call of this thread is made for: the
    /// thread's own, or the only one in progress in the process.
    fn serving(&self, pid: Pid, tid: Tid) -> Option<Parent> {
        self.active.get(&pid).and_then(|list| {
            list.iter()
                .rev()
                .find(|(t, _)| *t == tid)
                .or(if list.len() == 1 { list.first() } else { None })
                .map(|(_, ctx)| Parent::of(ctx))
        })
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
    use crate::model::TraceId;
    use crate::trace::context::parse_traceparent;

    #[test]
    fn client_call_on_serving_thread_is_a_child() {
        let mut l = Linker::new();
        let a = l.server_started(Pid(1), Tid(10), None, None);
        let b = l.server_started(Pid(1), Tid(11), None, None);
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
        let ctx = l.server_started(Pid(1), Tid(1), remote.map(Parent::from), None);
        assert_eq!(ctx.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent.unwrap().to_string(), "00f067aa0ba902b7");
        assert_eq!(ctx.parent_sampled, Some(true));
    }

    #[test]
    fn the_kernels_ids_are_the_spans_ids() {
        let mut l = Linker::new();
        let kernel = |n: u8, parent| KernelIds {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            parent,
        };
        // A server request without a caller: the kernel's trace and span.
        let server = l.server_started(Pid(1), Tid(10), None, Some(kernel(1, None)));
        assert_eq!(
            (server.trace_id, server.span_id),
            (TraceId([1; 16]), SpanId([1; 8]))
        );
        // With a caller: the caller's trace, the kernel's span.
        let remote = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let joined = l.server_started(
            Pid(2),
            Tid(20),
            remote.map(Parent::from),
            Some(kernel(2, None)),
        );
        assert_eq!(
            joined.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(joined.span_id, SpanId([2; 8]));
        // The call the kernel wrote a traceparent into: the header's ids, and
        // the serving request's sampled flag when it is the parent named.
        let call = l.client_started_as(Pid(2), Tid(20), kernel(3, Some(SpanId([2; 8]))));
        assert_eq!(call.span_id, SpanId([3; 8]));
        assert_eq!(call.parent, Some(SpanId([2; 8])));
        assert_eq!(call.parent_sampled, Some(true));
    }

    #[test]
    fn a_rejoined_server_request_passes_its_new_trace_to_later_calls() {
        let mut l = Linker::new();
        let server = l.server_started(Pid(2), Tid(20), None, None);
        let before = l.client_started(Pid(2), Tid(20));
        assert_eq!(before.trace_id, server.trace_id);
        let caller = l.server_started(Pid(1), Tid(10), None, None);
        l.rejoin(Pid(2), server.span_id, Parent::of(&caller));
        let after = l.client_started(Pid(2), Tid(20));
        assert_eq!(after.trace_id, caller.trace_id);
        assert_eq!(after.parent, Some(server.span_id));
    }
}
