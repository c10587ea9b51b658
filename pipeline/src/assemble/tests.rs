//! Replays kernel chunks of a server that calls out while serving, and checks
//! the requests that come out: kinds, fields and parent links.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::model::Operation;
use crate::model::{DataChunk, Direction, HttpOperation, Origin, Resource, RpcOperation};
use crate::selfmetrics::Counter;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// (kind, method, path, status) of an HTTP request, or of the HTTP/2 request of a call.
fn http(q: &Request) -> (SpanKind, &str, &str, u16) {
    let HttpOperation {
        method,
        path,
        status,
        ..
    } = q.operation.http().expect("an HTTP request");
    (q.kind, method.as_str(), path.as_str(), *status)
}

fn rpc(q: &Request) -> &RpcOperation {
    match &q.operation {
        Operation::Rpc(rpc) => rpc,
        other => panic!("not a gRPC call: {other:?}"),
    }
}

/// One connection of the traced process (pid 10 unless said), always used by thread 11.
#[derive(Clone, Copy)]
struct Leg {
    pid: u32,
    conn: u64,
    origin: Origin,
    local_port: u16,
    remote_port: u16,
}

const fn leg(conn: u64, origin: Origin, local_port: u16, remote_port: u16) -> Leg {
    Leg {
        pid: 10,
        conn,
        origin,
        local_port,
        remote_port,
    }
}

struct Replay {
    assembler: Assembler,
    metrics: Arc<SelfMetrics>,
    clock: u64,
}

impl Replay {
    fn new() -> Self {
        Self::joining(true)
    }

    /// `join_traceparent`: whether server requests join their `traceparent`.
    fn joining(join_traceparent: bool) -> Self {
        let registry = Registry::default();
        for (pid, service_name) in [(10, "svc"), (20, "front")] {
            registry.insert(Resource {
                service_name: service_name.into(),
                service_namespace: String::new(),
                pid: Pid(pid),
                attributes: Arc::from([]),
                kubernetes: None,
                language: Default::default(),
            });
        }
        let metrics = Arc::new(SelfMetrics::default());
        Self {
            assembler: Assembler::new(registry, Arc::clone(&metrics), join_traceparent),
            metrics,
            clock: 1000,
        }
    }

    fn chunk(&mut self, leg: Leg, direction: Direction, data: &[u8]) {
        self.clock += 100;
        let chunk = DataChunk {
            pid: Pid(leg.pid),
            tid: Tid(11),
            conn: ConnId(leg.conn),
            direction,
            origin: leg.origin,
            tuple: ConnTuple {
                local: LOCALHOST,
                local_port: leg.local_port,
                remote: LOCALHOST,
                remote_port: leg.remote_port,
            },
            start_mono_ns: self.clock,
            end_mono_ns: self.clock + 10,
            bytes: data.len() as u64,
            tls: false,
            data,
        };
        self.assembler.on_data(&chunk);
    }

    fn drain(&mut self) -> Vec<Request> {
        self.assembler.finished().collect()
    }
}

#[test]
fn client_call_while_serving_is_a_child_of_the_server_span() {
    let mut r = Replay::new();
    let (ing, eg) = (Direction::Ingress, Direction::Egress);
    let (server, client) = (
        leg(1, Origin::Accept, 8080, 40000),
        leg(2, Origin::Connect, 50000, 9000),
    );
    r.chunk(server, ing, b"GET /downstream HTTP/1.1\r\nHost: x\r\n\r\n");
    r.chunk(client, eg, b"GET /health HTTP/1.1\r\nHost: y\r\n\r\n");
    r.chunk(
        client,
        ing,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    r.chunk(
        server,
        eg,
        b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\ndownstream 200",
    );
    let out = r.drain();
    assert_eq!(out.len(), 2);
    let (client, server) = (&out[0], &out[1]);
    assert_eq!(http(client), (SpanKind::Client, "GET", "/health", 200));
    assert_eq!(http(server), (SpanKind::Server, "GET", "/downstream", 200));
    assert_eq!(client.context.trace_id, server.context.trace_id);
    assert_eq!(client.context.parent, Some(server.context.span_id));
    assert_eq!(server.context.parent, None);
    assert_eq!(
        server.conn.endpoints(SpanKind::Server),
        (LOCALHOST, 8080, LOCALHOST)
    );
    assert_eq!(
        client.conn.endpoints(SpanKind::Client),
        (LOCALHOST, 9000, LOCALHOST)
    );
    assert_eq!((server.start_mono_ns, server.end_mono_ns), (1110, 1410));
    assert_eq!(server.resource.service_name, "svc");
}

#[test]
fn connection_predating_the_agent_takes_its_role_from_the_first_request() {
    let mut r = Replay::new();
    let old = leg(3, Origin::Unknown, 50000, 80);
    r.chunk(
        old,
        Direction::Egress,
        b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    r.chunk(old, Direction::Ingress, b"HTTP/1.1 204 No Content\r\n\r\n");
    let out = r.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(http(&out[0]), (SpanKind::Client, "POST", "/x", 204));
}

#[test]
fn untraced_process_and_unsupported_protocol_are_counted() {
    let mut r = Replay::new();
    let stranger = Leg {
        pid: 99,
        ..leg(4, Origin::Accept, 80, 1)
    };
    r.chunk(stranger, Direction::Ingress, b"GET / HTTP/1.1\r\n\r\n");
    // A TLS ClientHello on the socket: no protocol reads ciphertext.
    let tls = leg(5, Origin::Accept, 443, 1);
    r.chunk(
        tls,
        Direction::Ingress,
        b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03",
    );
    r.chunk(tls, Direction::Ingress, b"GET / HTTP/1.1\r\n\r\n");
    assert!(r.drain().is_empty());
    assert_eq!(r.metrics.get(Counter::EventsUntraced), 1);
    assert_eq!(r.metrics.get(Counter::ConnectionsUnsupported), 1);
}

#[test]
fn close_releases_unanswered_requests() {
    let mut r = Replay::new();
    r.chunk(
        leg(6, Origin::Accept, 80, 1),
        Direction::Ingress,
        b"GET /slow HTTP/1.1\r\n\r\n",
    );
    r.assembler.on_close(ConnId(6));
    assert!(r.drain().is_empty());
    assert_eq!(r.metrics.get(Counter::UnansweredRequests), 1);
}

/// Real grpcio bytes (protocols/http2/testdata), replayed into a traced server
/// in syscall-sized pieces: the client's whole stream, then the server's.
#[test]
fn grpc_over_http2_becomes_rpc_requests() {
    let client = include_bytes!("../protocols/http2/testdata/py_grpc_client.bin");
    let server = include_bytes!("../protocols/http2/testdata/py_grpc_server.bin");
    let mut r = Replay::new();
    let conn = leg(7, Origin::Accept, 50051, 41000);
    for piece in client.chunks(100) {
        r.chunk(conn, Direction::Ingress, piece);
    }
    for piece in server.chunks(100) {
        r.chunk(conn, Direction::Egress, piece);
    }
    let out = r.drain();
    let calls: Vec<_> = out
        .iter()
        .map(|q| {
            let (kind, method, path, status) = http(q);
            let rpc = rpc(q);
            (
                kind,
                method,
                path,
                status,
                rpc.service.as_str(),
                rpc.method.as_str(),
                rpc.status_code,
            )
        })
        .collect();
    let greeter = "demo.v1.Greeter";
    assert_eq!(
        calls,
        vec![
            (
                SpanKind::Server,
                "POST",
                "/demo.v1.Greeter/SayHello",
                200,
                greeter,
                "SayHello",
                Some(0)
            ),
            (
                SpanKind::Server,
                "POST",
                "/demo.v1.Greeter/StreamHellos",
                200,
                greeter,
                "StreamHellos",
                Some(0)
            ),
            (
                SpanKind::Server,
                "POST",
                "/demo.v1.Greeter/SayHello",
                200,
                greeter,
                "SayHello",
                Some(5)
            ),
            (
                SpanKind::Server,
                "POST",
                "/demo.v1.Greeter/SayHello",
                200,
                greeter,
                "SayHello",
                Some(0)
            ),
        ]
    );
    assert!(
        out[0].context.parent.is_some(),
        "the first call carried traceparent metadata"
    );
    assert_eq!(
        r.metrics.get(Counter::ParseErrors) + r.metrics.get(Counter::UndecodableRequests),
        0
    );
}

/// A request line that arrives a byte or two at a time is still one request.
#[test]
fn request_start_split_over_short_reads_is_joined() {
    let mut r = Replay::new();
    let conn = leg(8, Origin::Accept, 8080, 40001);
    r.chunk(conn, Direction::Ingress, b"G");
    r.chunk(conn, Direction::Ingress, b"ET");
    r.chunk(
        conn,
        Direction::Ingress,
        b" /split HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    r.chunk(
        conn,
        Direction::Egress,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    r.chunk(conn, Direction::Ingress, b"GET /next HTTP/1.1\r\n\r\n");
    r.chunk(conn, Direction::Egress, b"HTTP/1.1 204 No Content\r\n\r\n");
    let out = r.drain();
    assert_eq!(
        out.iter().map(http).collect::<Vec<_>>(),
        vec![
            (SpanKind::Server, "GET", "/split", 200),
            (SpanKind::Server, "GET", "/next", 204)
        ]
    );
    // The request started with its first byte's read.
    assert_eq!(out[0].start_mono_ns, 1110);
    assert_eq!(r.metrics.get(Counter::ConnectionsUnsupported), 0);
}

/// With `track_request_headers` off (Beyla's default), an incoming
/// `traceparent` is not followed: the server span starts its own trace.
#[test]
fn traceparent_is_joined_only_when_asked() {
    const REQUEST: &[u8] = b"GET /t HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for join in [true, false] {
        let mut r = Replay::joining(join);
        let conn = leg(9, Origin::Accept, 8080, 40002);
        r.chunk(conn, Direction::Ingress, REQUEST);
        r.chunk(conn, Direction::Egress, RESPONSE);
        let out = r.drain();
        let context = out[0].context;
        assert_eq!(
            context.trace_id.to_string() == "4bf92f3577b34da6a3ce929d0e0e4736",
            join
        );
        assert_eq!(context.parent.is_some(), join);
    }
}

/// One connection with both ends traced: a client (pid 20, port 40000) calls
/// a server (pid 10, port 8080) on this machine. Each read is one chunk at
/// the sender and one at the receiver; `server_first` puts the receiver's
/// chunk of each read first, as the ring buffer does when the reader's
/// syscall returns before the writer's.
struct BothEnds {
    r: Replay,
    client: Leg,
    server: Leg,
    server_first: bool,
}

impl BothEnds {
    fn new(r: Replay, conn: u64, server_first: bool) -> Self {
        Self {
            r,
            client: Leg {
                pid: 20,
                ..leg(conn, Origin::Connect, 40000, 8080)
            },
            server: leg(conn + 1, Origin::Accept, 8080, 40000),
            server_first,
        }
    }

    /// One read's bytes, sent by the client (`from_client`) or the server.
    fn send(&mut self, from_client: bool, data: &[u8]) {
        let (sender, receiver) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let send = |r: &mut Replay| r.chunk(sender, Direction::Egress, data);
        let receive = |r: &mut Replay| r.chunk(receiver, Direction::Ingress, data);
        if self.server_first && from_client {
            receive(&mut self.r);
            send(&mut self.r);
        } else {
            send(&mut self.r);
            receive(&mut self.r);
        }
    }

    /// Every server span is the child of the client span of the same
    /// request (the n-th of each, by start); returns how many pairs.
    fn assert_joined(&mut self) -> usize {
        let out = self.r.drain();
        let mut clients: Vec<&Request> =
            out.iter().filter(|q| q.kind == SpanKind::Client).collect();
        let mut servers: Vec<&Request> =
            out.iter().filter(|q| q.kind == SpanKind::Server).collect();
        clients.sort_by_key(|q| q.start_mono_ns);
        servers.sort_by_key(|q| q.start_mono_ns);
        assert_eq!(clients.len(), servers.len(), "{out:#?}");
        assert!(!clients.is_empty());
        for (client, server) in clients.iter().zip(&servers) {
            assert_eq!(client.pid, Pid(20));
            assert_eq!(server.pid, Pid(10));
            assert_eq!(client.operation, server.operation);
            assert_eq!(
                server.context.trace_id, client.context.trace_id,
                "{client:?}\n{server:?}"
            );
            assert_eq!(server.context.parent, Some(client.context.span_id));
            assert_eq!(client.context.parent, None);
        }
        clients.len()
    }
}

#[test]
fn http1_server_on_this_machine_joins_its_traced_client_whichever_end_is_read_first() {
    for server_first in [false, true] {
        let mut both = BothEnds::new(Replay::new(), 100, server_first);
        for i in 0..5 {
            both.send(
                true,
                format!("GET /users/{i} HTTP/1.1\r\nHost: back\r\n\r\n").as_bytes(),
            );
            both.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
        // Pipelined: three requests in one write, their answers in another.
        both.send(
            true,
            b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
        );
        both.send(
            false,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        );
        assert_eq!(both.assert_joined(), 8);
        let joins = (
            both.r.metrics.get(Counter::SameNodeJoined),
            both.r.metrics.get(Counter::SameNodeJoinedLate),
        );
        assert_eq!(joins, if server_first { (0, 8) } else { (8, 0) });
    }
}

/// The late join moves the calls the server made while serving, too.
#[test]
fn a_late_joined_server_brings_its_downstream_calls_into_the_trace() {
    let mut both = BothEnds::new(Replay::new(), 110, true);
    let downstream = leg(112, Origin::Connect, 50000, 9000);
    both.send(true, b"GET /downstream HTTP/1.1\r\n\r\n");
    both.r.chunk(
        downstream,
        Direction::Egress,
        b"GET /health HTTP/1.1\r\n\r\n",
    );
    both.r.chunk(
        downstream,
        Direction::Ingress,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    both.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let out = both.r.drain();
    let find = |pid, path: &str| {
        out.iter()
            .find(|q| q.pid == Pid(pid) && http(q).2 == path)
            .unwrap_or_else(|| panic!("no span of pid {pid} for {path}: {out:#?}"))
    };
    let (front, back, call) = (
        find(20, "/downstream"),
        find(10, "/downstream"),
        find(10, "/health"),
    );
    assert_eq!(back.context.parent, Some(front.context.span_id));
    assert_eq!(call.context.parent, Some(back.context.span_id));
    for q in [back, call] {
        assert_eq!(q.context.trace_id, front.context.trace_id);
    }
}

/// Real grpcio bytes: the calls' HTTP/2 streams meet in order, both ends
/// decoding the same header blocks.
#[test]
fn grpc_calls_on_this_machine_join_their_clients() {
    let client = include_bytes!("../protocols/http2/testdata/py_grpc_client.bin");
    let server = include_bytes!("../protocols/http2/testdata/py_grpc_server.bin");
    for server_first in [false, true] {
        // The first call carries traceparent metadata; not followed here.
        let mut both = BothEnds::new(Replay::joining(false), 120, server_first);
        for piece in client.chunks(100) {
            both.send(true, piece);
        }
        for piece in server.chunks(100) {
            both.send(false, piece);
        }
        assert_eq!(both.assert_joined(), 4);
    }
}

/// A captured PostgreSQL session (pgx), replayed read by read to both ends.
#[test]
fn sql_statements_on_this_machine_join_their_clients() {
    use crate::protocols::sql::capture::{records, Side};
    let capture = include_bytes!("../protocols/postgres/testdata/go_pgx.cap");
    for server_first in [false, true] {
        let mut both = BothEnds::new(Replay::new(), 130, server_first);
        for (side, bytes) in records(capture) {
            both.send(side == Side::Client, &bytes);
        }
        assert!(both.assert_joined() > 3);
    }
}

/// Context propagation: the spans carry the ids the kernel gave their
/// requests (the ones its `traceparent` sent on), matched by connection and,
/// for a client, by the start of the write the header went into.
#[test]
fn spans_take_the_ids_the_kernel_gave_their_requests() {
    use crate::model::{ContextRole, KernelContext, KernelIds, SpanId, TraceId};
    let mut r = Replay::new();
    let (ing, eg) = (Direction::Ingress, Direction::Egress);
    let (server, client) = (
        leg(1, Origin::Accept, 8080, 40000),
        leg(2, Origin::Connect, 50000, 9000),
    );
    let trace = TraceId([7; 16]);
    r.assembler.on_context(&KernelContext {
        conn: ConnId(1),
        role: ContextRole::Server,
        ids: KernelIds {
            trace_id: trace,
            span_id: SpanId([1; 8]),
            parent: None,
        },
    });
    r.chunk(server, ing, b"GET /downstream HTTP/1.1\r\nHost: x\r\n\r\n");
    // The next chunk starts at clock + 100: the write the header went into.
    r.assembler.on_context(&KernelContext {
        conn: ConnId(2),
        role: ContextRole::Client {
            start_mono_ns: r.clock + 100,
        },
        ids: KernelIds {
            trace_id: trace,
            span_id: SpanId([2; 8]),
            parent: Some(SpanId([1; 8])),
        },
    });
    r.chunk(client, eg, b"GET /health HTTP/1.1\r\nHost: y\r\n\r\n");
    r.chunk(
        client,
        ing,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    // A second call on the connection, which the kernel left alone: ids of its own.
    r.chunk(client, eg, b"GET /health HTTP/1.1\r\nHost: y\r\n\r\n");
    r.chunk(
        client,
        ing,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    r.chunk(
        server,
        eg,
        b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\ndownstream 200",
    );
    let out = r.drain();
    assert_eq!(out.len(), 3);
    let (first, second, server) = (&out[0].context, &out[1].context, &out[2].context);
    assert_eq!(
        (server.trace_id, server.span_id, server.parent),
        (trace, SpanId([1; 8]), None)
    );
    assert_eq!(
        (first.trace_id, first.span_id, first.parent),
        (trace, SpanId([2; 8]), Some(SpanId([1; 8])))
    );
    assert_eq!(
        (second.trace_id, second.parent),
        (trace, Some(SpanId([1; 8])))
    );
    assert_ne!(second.span_id, SpanId([2; 8]));
}
