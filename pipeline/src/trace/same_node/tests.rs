use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::trace::Linker;

const CLIENT_PID: Pid = Pid(20);
const SERVER_PID: Pid = Pid(10);

/// A connection from 10.0.0.1:40000 (client) to 10.0.0.2:8080, as the client sees it.
fn client_tuple() -> ConnTuple {
    ConnTuple {
        local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        local_port: 40000,
        remote: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        remote_port: 8080,
    }
}

struct Node {
    same_node: SameNode,
    linker: Linker,
    metrics: Arc<SelfMetrics>,
}

impl Node {
    fn new() -> Self {
        let metrics = Arc::new(SelfMetrics::default());
        Self {
            same_node: SameNode::new(Arc::clone(&metrics)),
            linker: Linker::new(),
            metrics,
        }
    }

    fn client(&mut self, tuple: &ConnTuple, now: u64) -> TraceContext {
        let context = self
            .linker
            .client_started(CLIENT_PID, crate::model::Tid(21));
        if let Some((pid, span)) = self
            .same_node
            .client_started(CLIENT_PID, tuple, context, now)
        {
            self.linker.rejoin(pid, span, Parent::of(&context));
        }
        context
    }

    fn server(&mut self, tuple: &ConnTuple, remote: Option<Parent>, now: u64) -> TraceContext {
        let linker = &mut self.linker;
        self.same_node
            .server_started(SERVER_PID, tuple, remote.is_none(), now, |local| {
                linker.server_started(SERVER_PID, crate::model::Tid(11), remote.or(local), None)
            })
    }

    /// The context a finished span is handed on with.
    fn finish(&mut self, end: SpanKind, tuple: &ConnTuple, context: TraceContext) -> TraceContext {
        let mut fixed = context;
        self.same_node.fix(&mut fixed);
        self.same_node.ended(end, tuple, &context);
        fixed
    }
}

fn is_child(child: &TraceContext, parent: &TraceContext) -> bool {
    child.trace_id == parent.trace_id && child.parent == Some(parent.span_id)
}

#[test]
fn a_server_start_after_its_clients_joins_it() {
    let mut n = Node::new();
    let tuple = client_tuple();
    let client = n.client(&tuple, 1);
    let server = n.server(&tuple.reversed(), None, 2);
    assert!(is_child(&server, &client));
    assert_eq!(
        n.finish(SpanKind::Server, &tuple.reversed(), server),
        server
    );
    assert_eq!(n.finish(SpanKind::Client, &tuple, client), client);
    assert_eq!(n.metrics.get(Counter::SameNodeJoined), 1);
    assert_eq!(n.same_node.waiting(), 0);
}

#[test]
fn a_server_start_before_its_clients_is_joined_late_with_its_calls() {
    let mut n = Node::new();
    let tuple = client_tuple();
    let server = n.server(&tuple.reversed(), None, 1);
    assert_eq!(server.parent, None);
    // The server calls out before its caller's write is seen, and after.
    let early_call = n.linker.client_started(SERVER_PID, crate::model::Tid(11));
    let client = n.client(&tuple, 2);
    let late_call = n.linker.client_started(SERVER_PID, crate::model::Tid(11));
    assert_eq!(late_call.trace_id, client.trace_id);
    assert_eq!(late_call.parent, Some(server.span_id));
    let early = n.finish(SpanKind::Client, &client_tuple_of_call(), early_call);
    let server_out = n.finish(SpanKind::Server, &tuple.reversed(), server);
    assert!(is_child(&server_out, &client));
    assert!(is_child(&early, &server_out));
    assert_eq!(n.metrics.get(Counter::SameNodeJoinedLate), 1);
    // The late join ended with the server span.
    let mut other = early_call;
    n.same_node.fix(&mut other);
    assert_eq!(other.trace_id, early_call.trace_id);
}

/// The server's own downstream call, on another connection.
fn client_tuple_of_call() -> ConnTuple {
    ConnTuple {
        local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        local_port: 50000,
        remote: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
        remote_port: 9000,
    }
}

#[test]
fn pipelined_starts_meet_in_order() {
    let mut n = Node::new();
    let tuple = client_tuple();
    let clients: Vec<_> = (0..3).map(|i| n.client(&tuple, i)).collect();
    let servers: Vec<_> = (0..3)
        .map(|i| n.server(&tuple.reversed(), None, 10 + i))
        .collect();
    for (client, server) in clients.iter().zip(&servers) {
        assert!(is_child(server, client));
    }
}

#[test]
fn a_server_that_joined_its_traceparent_keeps_it_and_the_line() {
    let mut n = Node::new();
    let tuple = client_tuple();
    let remote = Parent {
        trace_id: TraceId([7; 16]),
        span_id: SpanId([8; 8]),
        sampled: Some(true),
    };
    // Client first: the server still takes its traceparent.
    let client = n.client(&tuple, 1);
    let server = n.server(&tuple.reversed(), Some(remote), 2);
    assert_eq!(server.trace_id, remote.trace_id);
    assert_ne!(server.trace_id, client.trace_id);
    // Server first: the client's later start meets it without moving it.
    let server = n.server(&tuple.reversed(), Some(remote), 3);
    let _client = n.client(&tuple, 4);
    assert_eq!(
        n.finish(SpanKind::Server, &tuple.reversed(), server),
        server
    );
    // Then the next request pair joins normally: nothing was left out of line.
    let client = n.client(&tuple, 5);
    let server = n.server(&tuple.reversed(), None, 6);
    assert!(is_child(&server, &client));
    assert_eq!(n.metrics.get(Counter::SameNodeJoinedLate), 0);
}

#[test]
fn ends_without_the_other_end_leave_nothing_behind() {
    let mut n = Node::new();
    let tuple = client_tuple();
    // A client of an untraced server, a server of an untraced client.
    let client = n.client(&tuple, 1);
    n.finish(SpanKind::Client, &tuple, client);
    let other = ConnTuple {
        local_port: 40001,
        ..tuple
    };
    let server = n.server(&other.reversed(), None, 2);
    n.finish(SpanKind::Server, &other.reversed(), server);
    assert_eq!(n.same_node.waiting(), 0);
    // The next server on the first connection is not joined to the finished client.
    let next = n.server(&tuple.reversed(), None, 3);
    assert_eq!(next.parent, None);
    n.finish(SpanKind::Server, &tuple.reversed(), next);
    // Entries stay while their connections are open, and go when they close.
    assert_eq!(n.same_node.waiting.len(), 2);
    n.same_node.closed(SpanKind::Client, &tuple);
    n.same_node.closed(SpanKind::Server, &other.reversed());
    assert!(n.same_node.waiting.is_empty());
}

#[test]
fn unknown_addresses_never_meet() {
    let mut n = Node::new();
    let unknown = ConnTuple {
        local: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        local_port: 0,
        ..client_tuple()
    };
    n.client(&unknown, 1);
    assert_eq!(n.server(&unknown.reversed(), None, 2).parent, None);
    assert_eq!(n.same_node.waiting(), 0);
}

#[test]
fn the_table_is_bounded_and_expires() {
    let mut n = Node::new();
    let tuple = client_tuple();
    for i in 0..MAX_STARTS_PER_CONNECTION + 2 {
        n.client(&tuple, i as u64);
    }
    assert_eq!(n.same_node.waiting(), MAX_STARTS_PER_CONNECTION);
    assert_eq!(n.metrics.get(Counter::SameNodeTableFull), 2);
    n.same_node.expire(EXPIRY_NS + 1_000);
    assert_eq!(n.same_node.waiting(), 0);
    assert_eq!(
        n.metrics.get(Counter::SameNodeExpired),
        MAX_STARTS_PER_CONNECTION as u64
    );
}
