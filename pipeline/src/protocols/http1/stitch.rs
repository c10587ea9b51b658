//! One connection's HTTP/1.x traffic, both directions, to finished exchanges.
//!
//! Requests and responses are framed by their heads (Content-Length, chunked).
//! When framing is unknown (the capture cut a head short, or a response is
//! delimited by close), a message ends when bytes flow the other way, or at close.

use std::collections::VecDeque;

use super::parse::MAX_LINE;
use super::{
    parse_cut_request_line, parse_request_head, parse_request_line, parse_response_head,
    parse_status_line, url_path, BodyFraming, ChunkedDecoder, Exchange, InvalidReason, Parse,
};
use crate::model::{
    DataChunk, Direction, HttpMethod, HttpVersion, ShortString, Tid, TraceContext, MAX_HEADER_TEXT,
};
use crate::protocols::{Anomaly, Hooks, Stitch, Unanswered};

/// Head bytes gathered across syscalls before the head is given up as cut short.
const MAX_HEAD_BUFFER: usize = 16 * 1024;

#[derive(Debug, Default)]
enum State {
    #[default]
    Idle,
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    /// The message ends when bytes go the other way (or at close).
    UntilFlip,
    /// Out of step: ignore bytes until they go the other way.
    Skip,
}

#[derive(Debug, Default)]
struct Side {
    state: State,
    head: Vec<u8>,
    head_start_ns: u64,
    head_tid: Option<Tid>,
    last_end_ns: u64,
}

struct Pending {
    method: HttpMethod,
    path: ShortString,
    version: HttpVersion,
    host: Option<ShortString>,
    user_agent: Option<ShortString>,
    /// Body bytes of the request read so far.
    body_bytes: u64,
    tid: Tid,
    start_mono_ns: u64,
    context: TraceContext,
}

/// The response being read, with the request it answers.
struct Answering {
    request: Pending,
    status: u16,
    body_bytes: u64,
}

pub struct Stitcher {
    request_dir: Direction,
    requests: Side,
    responses: Side,
    pending: VecDeque<Pending>,
    answering: Option<Answering>,
    /// After `101 Switching Protocols` the bytes are no longer HTTP/1.
    upgraded: bool,
}

/// The path of a request target (see [`url_path`]);
/// absolute-form targets (proxies) lose their scheme and authority first.
fn path_of(target: &str) -> ShortString {
    let target = match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map_or("/", |j| &target[i + 3 + j..]),
        None => target,
    };
    url_path(target)
}

/// A head read off the wire; a request has already been given its trace
/// context and queued in `pending`.
enum Head {
    Request {
        framing: Option<BodyFraming>,
    },
    Response {
        status: u16,
        framing: Option<BodyFraming>,
    },
}

/// What a request head (or, cut short, its line) said.
struct Started<'a> {
    /// The token as sent: a known method or an extension one.
    method: &'a str,
    target: &'a str,
    minor_version: u8,
    traceparent: Option<&'a str>,
    host: Option<&'a str>,
    user_agent: Option<&'a str>,
}

/// A request line cut before its version: the version every client sends today.
const CUT_LINE_MINOR_VERSION: u8 = 1;

/// Queues the request a head starts; built in its queue slot, as a request
/// is large enough for each move of it to show in the cost per request.
fn request_head(
    pending: &mut VecDeque<Pending>,
    hooks: &mut impl Hooks<Exchange>,
    started: Started<'_>,
    (start_mono_ns, tid): (u64, Tid),
    framing: Option<BodyFraming>,
) -> Head {
    let context = hooks.request_started(tid, started.traceparent);
    let text = |value: Option<&str>| value.map(|v| ShortString::bounded(v, MAX_HEADER_TEXT));
    pending.push_back(Pending {
        method: HttpMethod::from_token(started.method),
        path: path_of(started.target),
        version: if started.minor_version == 0 {
            HttpVersion::Http10
        } else {
            HttpVersion::Http11
        },
        host: text(started.host),
        user_agent: text(started.user_agent),
        body_bytes: 0,
        tid,
        start_mono_ns,
        context,
    });
    Head::Request { framing }
}

impl Stitcher {
    /// `request_dir`: Ingress when the traced process is the server.
    pub fn new(request_dir: Direction) -> Self {
        Self {
            request_dir,
            requests: Side::default(),
            responses: Side::default(),
            pending: VecDeque::new(),
            answering: None,
            upgraded: false,
        }
    }

    pub fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Exchange>) {
        if self.upgraded {
            return;
        }
        let is_request = chunk.direction == self.request_dir;
        // Bytes this way end whatever the other way could only end by a flip.
        if is_request {
            self.end_response_at_flip(hooks);
        } else if matches!(self.requests.state, State::UntilFlip | State::Skip) {
            self.requests.state = State::Idle;
        }
        self.feed_side(is_request, chunk, hooks);
    }

    /// The connection closed (or went idle for good): finish what can be finished.
    pub fn close(&mut self, hooks: &mut impl Hooks<Exchange>) {
        self.end_response_at_flip(hooks);
        if let Some(answering) = self.answering.take() {
            hooks.abandoned(answering.request.context);
            hooks.anomaly(Anomaly::Unanswered(Unanswered::Closed));
        }
        for pending in self.pending.drain(..) {
            hooks.abandoned(pending.context);
            hooks.anomaly(Anomaly::Unanswered(Unanswered::Closed));
        }
    }

    fn end_response_at_flip(&mut self, hooks: &mut impl Hooks<Exchange>) {
        match self.responses.state {
            State::UntilFlip => {
                let end = self.responses.last_end_ns;
                self.finish_response(end, hooks);
                self.responses.state = State::Idle;
            }
            State::Skip => self.responses.state = State::Idle,
            _ => {}
        }
    }

    /// Counts body bytes of the message being read: the last request started, or the response.
    fn count_body(&mut self, is_request: bool, bytes: u64) {
        let counter = if is_request {
            self.pending.back_mut().map(|p| &mut p.body_bytes)
        } else {
            self.answering.as_mut().map(|a| &mut a.body_bytes)
        };
        if let Some(counter) = counter {
            *counter += bytes;
        }
    }

    fn side(&mut self, is_request: bool) -> &mut Side {
        if is_request {
            &mut self.requests
        } else {
            &mut self.responses
        }
    }

    fn feed_side(
        &mut self,
        is_request: bool,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Exchange>,
    ) {
        let mut data = chunk.data;
        self.side(is_request).last_end_ns = chunk.end_mono_ns;
        loop {
            let side = self.side(is_request);
            match &mut side.state {
                State::Idle => {
                    if data.is_empty() {
                        break;
                    }
                    side.state = State::Head;
                    side.head.clear();
                    side.head_start_ns = chunk.first_byte_ns();
                    side.head_tid = Some(chunk.tid);
                }
                State::Head => {
                    let used = self.read_head(is_request, data, chunk, hooks);
                    data = &data[used.min(data.len())..];
                    if matches!(self.side(is_request).state, State::Head) {
                        break;
                    }
                }
                State::Length(left) => {
                    let take = (*left).min(data.len() as u64);
                    *left -= take;
                    let done = *left == 0;
                    data = &data[take as usize..];
                    if done {
                        side.state = State::Idle;
                    }
                    self.count_body(is_request, take);
                    if done {
                        self.message_done(is_request, chunk.end_mono_ns, hooks);
                    } else {
                        break;
                    }
                }
                State::Chunked(decoder) => match decoder.feed(data) {
                    Ok(progress) => {
                        let consumed = progress.consumed.min(data.len());
                        data = &data[consumed..];
                        if progress.done {
                            side.state = State::Idle;
                        }
                        self.count_body(is_request, consumed as u64);
                        if progress.done {
                            self.message_done(is_request, chunk.end_mono_ns, hooks);
                        } else {
                            break;
                        }
                    }
                    Err(reason) => {
                        hooks.anomaly(Anomaly::Invalid(reason.name()));
                        side.state = State::UntilFlip;
                        break;
                    }
                },
                State::UntilFlip => {
                    self.count_body(is_request, data.len() as u64);
                    break;
                }
                State::Skip => break,
            }
        }
        self.skip_uncaptured(is_request, chunk, hooks);
    }

    /// Accounts for the bytes the probe counted but did not copy.
    fn skip_uncaptured(
        &mut self,
        is_request: bool,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Exchange>,
    ) {
        let gap = chunk.uncaptured();
        if gap == 0 {
            return;
        }
        let side = self.side(is_request);
        match &mut side.state {
            State::Length(left) => {
                let skipped = gap.min(*left);
                *left -= skipped;
                let done = *left == 0;
                if done {
                    side.state = State::Idle;
                }
                self.count_body(is_request, skipped);
                if done {
                    self.message_done(is_request, chunk.end_mono_ns, hooks);
                }
            }
            State::Chunked(decoder) => {
                if !decoder.skip_uncaptured(gap) {
                    side.state = State::UntilFlip;
                }
                self.count_body(is_request, gap);
            }
            State::UntilFlip => self.count_body(is_request, gap),
            // Bytes of a following message we cannot see.
            State::Idle => side.state = State::Skip,
            State::Head | State::Skip => {}
        }
    }

    /// Reads head bytes; returns how many bytes of `data` the head used.
    fn read_head(
        &mut self,
        is_request: bool,
        data: &[u8],
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Exchange>,
    ) -> usize {
        let method = self.pending.front().and_then(|p| p.method.known());
        // Not `self.side()`: the head may be parsed from the side's buffer
        // while the request is queued in `self.pending`.
        let side = if is_request {
            &mut self.requests
        } else {
            &mut self.responses
        };
        let before = side.head.len();
        let at = (side.head_start_ns, side.head_tid.unwrap_or(chunk.tid));
        // Parse in place when the head starts in this chunk; gather only when it spans chunks.
        let (buf, taken): (&[u8], usize) = if before == 0 {
            (data, data.len())
        } else {
            let take = data.len().min(MAX_HEAD_BUFFER.saturating_sub(before));
            side.head.extend_from_slice(&data[..take]);
            (&side.head, take)
        };
        let parsed = if is_request {
            match parse_request_head(buf) {
                Parse::Parsed(h) => Parse::Parsed((
                    request_head(
                        &mut self.pending,
                        hooks,
                        Started {
                            method: h.line.method,
                            target: h.line.target,
                            minor_version: h.line.minor_version,
                            traceparent: h.traceparent,
                            host: h.host,
                            user_agent: h.user_agent,
                        },
                        at,
                        Some(h.body),
                    ),
                    h.head_len,
                )),
                Parse::NeedMore => Parse::NeedMore,
                Parse::Invalid(r) => Parse::Invalid(r),
            }
        } else {
            match parse_response_head(buf, method) {
                Parse::Parsed(h) => Parse::Parsed((
                    Head::Response {
                        status: h.line.status,
                        framing: Some(h.body),
                    },
                    h.head_len,
                )),
                Parse::NeedMore => Parse::NeedMore,
                Parse::Invalid(r) => Parse::Invalid(r),
            }
        };
        match parsed {
            Parse::Parsed((head, head_len)) => {
                let used = head_len.saturating_sub(before);
                self.head_done(is_request, head, chunk.end_mono_ns, hooks);
                self.side(is_request).head.clear();
                used
            }
            Parse::NeedMore => {
                let cut_short = chunk.uncaptured() > 0
                    || taken < data.len()
                    || before + taken >= MAX_HEAD_BUFFER;
                if before == 0 {
                    let side = self.side(is_request);
                    side.head
                        .extend_from_slice(&data[..data.len().min(MAX_HEAD_BUFFER)]);
                }
                if cut_short {
                    self.head_cut_short(is_request, chunk, hooks);
                }
                data.len()
            }
            // A request line longer than the parser reads (a long query
            // string) still names the request when its path is whole.
            Parse::Invalid(InvalidReason::HeadTooLong) if is_request => {
                if before == 0 {
                    let side = self.side(is_request);
                    side.head
                        .extend_from_slice(&data[..data.len().min(MAX_HEAD_BUFFER)]);
                }
                self.head_cut_short(is_request, chunk, hooks);
                data.len()
            }
            Parse::Invalid(reason) => {
                hooks.anomaly(Anomaly::Invalid(reason.name()));
                let side = self.side(is_request);
                side.head.clear();
                side.state = State::Skip;
                data.len()
            }
        }
    }

    /// The capture ended inside a head, or the head is longer than the parser
    /// reads: the first line still names the request or the status (a request
    /// line itself cut short, by a long query string, still gives its method
    /// and its path when the path is whole); the message then ends at the
    /// next flip.
    fn head_cut_short(
        &mut self,
        is_request: bool,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Exchange>,
    ) {
        let side = self.side(is_request);
        let at = (side.head_start_ns, side.head_tid.unwrap_or(chunk.tid));
        let head = std::mem::take(&mut side.head);
        let parsed = if is_request {
            let line = match parse_request_line(&head) {
                Parse::Parsed(l) => Some((l.method, l.target, l.minor_version)),
                Parse::NeedMore | Parse::Invalid(InvalidReason::HeadTooLong) => {
                    parse_cut_request_line(&head[..head.len().min(MAX_LINE)])
                        .map(|(method, target)| (method, target, CUT_LINE_MINOR_VERSION))
                }
                Parse::Invalid(_) => None,
            };
            line.map(|(method, target, minor_version)| {
                let started = Started {
                    method,
                    target,
                    minor_version,
                    traceparent: None,
                    host: None,
                    user_agent: None,
                };
                request_head(&mut self.pending, hooks, started, at, None)
            })
        } else {
            match parse_status_line(&head) {
                Parse::Parsed(l) => Some(Head::Response {
                    status: l.status,
                    framing: None,
                }),
                Parse::NeedMore | Parse::Invalid(_) => None,
            }
        };
        match parsed {
            Some(h) => self.head_done(is_request, h, chunk.end_mono_ns, hooks),
            None => {
                hooks.anomaly(Anomaly::Invalid(InvalidReason::HeadTooLong.name()));
                self.side(is_request).state = State::Skip;
            }
        }
        let side = self.side(is_request);
        side.head = head;
        side.head.clear();
    }

    /// A head is known: start the request or the response, then frame its body.
    fn head_done(
        &mut self,
        is_request: bool,
        head: Head,
        end: u64,
        hooks: &mut impl Hooks<Exchange>,
    ) {
        let framing = match head {
            Head::Request { framing } => framing,
            Head::Response { status, framing } => {
                if (100..200).contains(&status) && status != 101 {
                    // Interim response: the final one follows.
                    self.responses.state = State::Idle;
                    return;
                }
                match self.pending.pop_front() {
                    Some(request) => {
                        self.answering = Some(Answering {
                            request,
                            status,
                            body_bytes: 0,
                        })
                    }
                    None => hooks.anomaly(Anomaly::OrphanResponse),
                }
                if status == 101 {
                    self.finish_response(end, hooks);
                    self.upgraded = true;
                    return;
                }
                framing
            }
        };
        let side = self.side(is_request);
        side.state = match framing {
            Some(BodyFraming::Empty) | Some(BodyFraming::Length(0)) => State::Idle,
            Some(BodyFraming::Length(n)) => State::Length(n),
            Some(BodyFraming::Chunked) => State::Chunked(ChunkedDecoder::default()),
            Some(BodyFraming::UntilClose) | None => State::UntilFlip,
        };
        if matches!(side.state, State::Idle) {
            self.message_done(is_request, end, hooks);
        }
    }

    fn message_done(&mut self, is_request: bool, end: u64, hooks: &mut impl Hooks<Exchange>) {
        if !is_request {
            self.finish_response(end, hooks);
        }
    }

    fn finish_response(&mut self, end: u64, hooks: &mut impl Hooks<Exchange>) {
        if let Some(Answering {
            request: p,
            status,
            body_bytes,
        }) = self.answering.take()
        {
            hooks.exchange(Exchange {
                method: p.method,
                path: p.path,
                status,
                version: p.version,
                host: p.host,
                user_agent: p.user_agent,
                request_body_bytes: p.body_bytes,
                response_body_bytes: body_bytes,
                tid: p.tid,
                start_mono_ns: p.start_mono_ns,
                end_mono_ns: end.max(p.start_mono_ns),
                context: p.context,
            });
        }
    }
}

impl Stitch for Stitcher {
    type Record = Exchange;

    fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Exchange>) {
        Stitcher::feed(self, chunk, hooks);
    }

    fn close(&mut self, hooks: &mut impl Hooks<Exchange>) {
        Stitcher::close(self, hooks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Origin;
    use crate::protocols::testing::{chunk, Recorder};

    struct Conn {
        stitcher: Stitcher,
        hooks: Recorder<Exchange>,
        clock: u64,
        capture: usize,
    }

    impl Conn {
        fn server() -> Self {
            Self {
                stitcher: Stitcher::new(Direction::Ingress),
                hooks: Recorder::default(),
                clock: 0,
                capture: 1024,
            }
        }

        fn send(&mut self, direction: Direction, bytes: &[u8]) {
            self.clock += 10;
            let captured = &bytes[..bytes.len().min(self.capture)];
            let chunk = chunk(
                direction,
                Origin::Accept,
                (80, 5000),
                captured,
                bytes.len() as u64,
                self.clock,
            );
            self.stitcher.feed(&chunk, &mut self.hooks);
        }

        fn summary(&self) -> Vec<(&str, String, u16)> {
            self.hooks
                .records
                .iter()
                .map(|e| (e.method.as_str(), e.path.to_string(), e.status))
                .collect()
        }
    }

    const IN: Direction = Direction::Ingress;
    const OUT: Direction = Direction::Egress;

    #[test]
    fn keep_alive_requests_each_make_an_exchange() {
        let mut c = Conn::server();
        for i in 0..3 {
            c.send(
                IN,
                format!("GET /users/{i}?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
            );
            c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
        assert_eq!(
            c.summary(),
            vec![
                ("GET", "/users/0".into(), 200),
                ("GET", "/users/1".into(), 200),
                ("GET", "/users/2".into(), 200)
            ]
        );
        let e = &c.hooks.records[0];
        // The request's first byte arrived when the read returned (10 + 5).
        assert_eq!((e.start_mono_ns, e.end_mono_ns), (15, 25));
        assert!(c.hooks.anomalies.is_empty());
    }

    #[test]
    fn body_split_over_writes_and_post_body() {
        let mut c = Conn::server();
        c.send(IN, b"POST /users HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
        c.send(IN, b"cde");
        c.send(OUT, b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\n");
        assert!(c.hooks.records.is_empty(), "body not sent yet");
        c.send(OUT, b"done");
        assert_eq!(c.summary(), vec![("POST", "/users".into(), 201)]);
        assert_eq!(c.hooks.records[0].end_mono_ns, 45);
    }

    /// Version, `Host`, `User-Agent` and the body bytes each way, however framed.
    #[test]
    fn exchanges_carry_version_headers_and_body_sizes() {
        let mut c = Conn::server();
        c.send(
            IN,
            b"POST /users HTTP/1.1\r\nHost: shop:8080\r\nUser-Agent: curl/8.5.0\r\nContent-Length: 5\r\n\r\nab",
        );
        c.send(IN, b"cde");
        c.send(
            OUT,
            b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone",
        );
        c.send(IN, b"GET /chunked HTTP/1.0\r\n\r\n");
        c.send(
            OUT,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\npart1;\r\n",
        );
        c.send(OUT, b"0\r\n\r\n");
        // The capture takes 8 bytes of a 1000-byte body: the rest is counted all the same.
        c.capture = 60;
        let mut post = b"PUT /big HTTP/1.1\r\nContent-Length: 1000\r\n\r\n".to_vec();
        post.extend_from_slice(&[b'x'; 1000]);
        c.send(IN, &post);
        c.send(OUT, b"HTTP/1.1 204 No Content\r\n\r\n");
        let got: Vec<_> = c
            .hooks
            .records
            .iter()
            .map(|e| {
                (
                    e.version,
                    e.host.as_deref().map(str::to_string),
                    e.user_agent.as_deref().map(str::to_string),
                    e.request_body_bytes,
                    e.response_body_bytes,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    HttpVersion::Http11,
                    Some("shop:8080".into()),
                    Some("curl/8.5.0".into()),
                    5,
                    4
                ),
                // Chunk framing is body bytes as sent: 6\r\npart1;\r\n0\r\n\r\n.
                (HttpVersion::Http10, None, None, 0, 16),
                (HttpVersion::Http11, None, None, 1000, 0),
            ]
        );
    }

    #[test]
    fn chunked_response_ends_at_last_chunk() {
        let mut c = Conn::server();
        c.send(IN, b"GET /chunked HTTP/1.1\r\n\r\n");
        c.send(
            OUT,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        c.send(OUT, b"6\r\npart1;\r\n");
        c.send(OUT, b"5\r\npart3\r\n");
        assert!(c.hooks.records.is_empty());
        c.send(OUT, b"0\r\n\r\n");
        assert_eq!(c.summary(), vec![("GET", "/chunked".into(), 200)]);
    }

    #[test]
    fn pipelined_requests_in_one_read() {
        let mut c = Conn::server();
        c.send(IN, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            c.summary(),
            vec![("GET", "/a".into(), 200), ("GET", "/b".into(), 404)]
        );
    }

    #[test]
    fn head_longer_than_capture_keeps_method_and_path() {
        let mut c = Conn::server();
        c.capture = 256;
        let big = format!(
            "GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(8192)
        );
        c.send(IN, &big.as_bytes()[..4096]);
        c.send(IN, &big.as_bytes()[4096..]);
        c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        c.send(IN, b"GET /next HTTP/1.1\r\n\r\n");
        c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            c.summary(),
            vec![("GET", "/health".into(), 200), ("GET", "/next".into(), 200)]
        );
    }

    #[test]
    fn response_without_length_ends_at_next_request_or_close() {
        let mut c = Conn::server();
        c.send(IN, b"GET /a HTTP/1.0\r\n\r\n");
        c.send(OUT, b"HTTP/1.0 200 OK\r\n\r\nbody");
        c.send(OUT, b"more");
        assert!(c.hooks.records.is_empty());
        c.send(IN, b"GET /b HTTP/1.0\r\n\r\n");
        assert_eq!(c.summary(), vec![("GET", "/a".into(), 200)]);
        assert_eq!(c.hooks.records[0].end_mono_ns, 35);
        c.send(OUT, b"HTTP/1.0 500 Oops\r\n\r\n");
        c.stitcher.close(&mut c.hooks);
        assert_eq!(c.summary()[1], ("GET", "/b".into(), 500));
    }

    #[test]
    fn garbage_is_counted_and_skipped_until_the_next_flip() {
        let mut c = Conn::server();
        c.send(IN, b"\x16\x03\x01 not http at all\r\n\r\n");
        assert_eq!(c.hooks.anomalies.len(), 1);
        c.send(OUT, b"whatever");
        c.send(IN, b"GET /ok HTTP/1.1\r\n\r\n");
        c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(c.summary(), vec![("GET", "/ok".into(), 200)]);
    }

    #[test]
    fn unanswered_request_is_released_at_close() {
        let mut c = Conn::server();
        c.send(IN, b"GET /slow HTTP/1.1\r\n\r\n");
        c.stitcher.close(&mut c.hooks);
        assert!(c.hooks.records.is_empty());
        assert_eq!(c.hooks.abandoned, 1);
        assert_eq!(
            c.hooks.anomalies,
            vec![Anomaly::Unanswered(Unanswered::Closed)]
        );
    }

    #[test]
    fn interim_100_continue_is_not_the_answer() {
        let mut c = Conn::server();
        c.send(
            IN,
            b"POST /up HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
        );
        c.send(OUT, b"HTTP/1.1 100 Continue\r\n\r\n");
        c.send(IN, b"abc");
        c.send(OUT, b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(c.summary(), vec![("POST", "/up".into(), 204)]);
    }

    #[test]
    fn traceparent_reaches_the_hook() {
        let mut c = Conn::server();
        c.send(IN, b"GET / HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n");
        assert_eq!(
            c.hooks.traceparents,
            vec![Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string()
            )]
        );
    }

    #[test]
    fn path_of_targets() {
        assert_eq!(path_of("/a/b?c=d"), "/a/b");
        assert_eq!(path_of("/a#frag"), "/a");
        assert_eq!(path_of("http://host:80/x?y"), "/x");
        assert_eq!(path_of("http://host"), "/");
        assert_eq!(path_of("*"), "*");
        assert_eq!(path_of("/cart;jsessionid=1A2B3C/items"), "/cart/items");
        assert_eq!(path_of("/login;JSESSIONID=X?next=/a;b"), "/login");
        assert_eq!(path_of("/a;x=1;y=2/b;z/c"), "/a/b/c");
        assert_eq!(path_of("http://h/p;jsessionid=9"), "/p");
        assert_eq!(path_of("/;only"), "/");
    }

    #[test]
    fn request_line_longer_than_the_parser_reads_still_names_the_request() {
        let mut c = Conn::server();
        c.capture = 8191;
        let request = format!(
            "GET /search?q={} HTTP/1.1\r\nHost: a\r\n\r\n",
            "x".repeat(10_000)
        );
        for piece in request.as_bytes().chunks(4096) {
            c.send(IN, piece);
        }
        c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        c.send(IN, b"GET /next HTTP/1.1\r\n\r\n");
        c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            c.summary(),
            vec![("GET", "/search".into(), 200), ("GET", "/next".into(), 200)]
        );
        assert!(c.hooks.anomalies.is_empty(), "{:?}", c.hooks.anomalies);
    }

    #[test]
    fn methods_the_conventions_do_not_know_make_exchanges() {
        let mut c = Conn::server();
        for method in ["PURGE", "get", "PROPFIND", "M-SEARCH"] {
            c.send(IN, format!("{method} /cache HTTP/1.1\r\n\r\n").as_bytes());
            c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
        assert_eq!(
            c.summary(),
            vec![
                ("PURGE", "/cache".into(), 200),
                ("get", "/cache".into(), 200),
                ("PROPFIND", "/cache".into(), 200),
                ("M-SEARCH", "/cache".into(), 200),
            ]
        );
        assert!(c
            .hooks
            .records
            .iter()
            .all(|e| matches!(e.method, HttpMethod::Other(_))));
        assert!(c.hooks.anomalies.is_empty());
    }

    #[test]
    fn request_line_cut_by_the_capture_still_names_the_request() {
        let mut c = Conn::server();
        let query = "x".repeat(1500);
        c.send(
            IN,
            format!("GET /search;jsessionid=AB12?q={query} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        );
        c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert!(c.hooks.anomalies.is_empty(), "{:?}", c.hooks.anomalies);
        // The path itself cut (a longer path, or a request cut by the end of
        // the capture in a pipelined batch): never a guessed, shorter path.
        let path = format!("/{}", "p".repeat(1100));
        c.send(IN, format!("PURGE {path} HTTP/1.1\r\n\r\n").as_bytes());
        c.send(OUT, b"HTTP/1.1 204 No Content\r\n\r\n");
        let mut batch = b"GET /users/1 HTTP/1.1\r\n\r\n".repeat(40);
        batch.extend_from_slice(b"GET /users/12345678901234567890 HTTP/1.1\r\n\r\n");
        assert!(batch[..c.capture].ends_with(b"\r\n\r\nGET /users/1234567890123"));
        c.send(IN, &batch);
        c.send(IN, b"GET /next HTTP/1.1\r\n\r\n");
        c.send(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let summary = c.summary();
        assert_eq!(summary[0], ("GET", "/search".into(), 200));
        assert!(
            summary
                .iter()
                .all(|(_, path, _)| !path.starts_with("/pp") && !path.starts_with("/users/12")),
            "{summary:?}"
        );
        assert_eq!(
            c.hooks.anomalies[0],
            Anomaly::Invalid(InvalidReason::HeadTooLong.name())
        );
    }
}
