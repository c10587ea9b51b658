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
        registry.insert(Resource {
            service_name: "svc".into(),
            service_namespace: String::new(),
            pid: Pid(10),
            attributes: Arc::from([]),
            kubernetes: None,
        });
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
