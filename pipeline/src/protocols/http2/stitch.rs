//! One connection's HTTP/2 traffic, both directions, to finished exchanges: one per stream.
//!
//! A stream's request starts at its first HEADERS in the request direction and the exchange
//! ends when the response's END_STREAM goes by (after the trailers, for gRPC). Each
//! direction has its own frame reader and HPACK decoder, fed every header block in order,
//! whether or not its stream is tracked, so that the dynamic table stays in step.

use std::collections::BTreeMap;

use super::grpc;
use super::hpack::{Decoder, HeaderList, Lookup};
use super::{
    flags, settings, Frame, FrameHeader, FrameReader, FrameType, InvalidReason, ReadEvent, PREFACE,
};
use crate::model::{
    DataChunk, Direction, HttpMethod, HttpOperation, HttpVersion, Operation, RpcOperation,
    ShortString, Tid, TraceContext, MAX_HEADER_TEXT,
};
use crate::protocols::{http1, Anomaly, Exchange as Neutral, Hooks, Record, Stitch, Unanswered};

/// Streams tracked at once per connection; beyond this the oldest is dropped and counted.
pub const MAX_STREAMS: usize = 1024;
/// Bytes of one header block gathered over CONTINUATION frames; a longer block is
/// skipped and the direction's HPACK context lost.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// A gRPC call carried by an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// `pkg.Service` from `:path` `/pkg.Service/Method`; None when the path is unknown or
    /// not of that shape.
    pub service: Option<String>,
    pub method: Option<String>,
    /// `grpc-status` from the trailers (or a trailers-only response); None when it never
    /// came or could not be decoded.
    pub status_code: Option<u32>,
    /// `grpc-message`, as sent (percent-encoded).
    pub message: Option<String>,
}

/// A request with its response, on one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// `:method`; None when it could not be decoded (a dynamic table entry never seen).
    pub method: Option<String>,
    /// `:path` without its query; None when unknown.
    pub path: Option<String>,
    pub authority: Option<String>,
    pub user_agent: Option<String>,
    /// Payload bytes of the DATA frames of the request and of the response.
    pub request_body_bytes: u64,
    pub response_body_bytes: u64,
    /// The final `:status`; None when unknown.
    pub status: Option<u16>,
    pub grpc: Option<GrpcCall>,
    pub stream_id: u32,
    pub tid: Tid,
    /// Kernel monotonic nanoseconds: first byte of the request's HEADERS, end of the syscall
    /// that carried the response's END_STREAM.
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    pub context: TraceContext,
}

/// A header block being gathered over HEADERS/PUSH_PROMISE and CONTINUATION frames.
struct Block {
    stream_id: u32,
    push: bool,
    end_stream: bool,
    bytes: Vec<u8>,
    /// Some of it was skipped: it cannot be decoded.
    lost: bool,
    start_ns: u64,
    tid: Tid,
}

#[derive(Default)]
struct Side {
    reader: FrameReader,
    decoder: Decoder,
    block: Option<Block>,
    seen_bytes: bool,
}

impl Side {
    fn lose_sync(&mut self) {
        self.decoder.lose_sync();
        self.block = None;
    }
}

struct Stream {
    method: Option<String>,
    path: Option<String>,
    authority: Option<String>,
    user_agent: Option<String>,
    request_body_bytes: u64,
    response_body_bytes: u64,
    grpc: bool,
    tid: Tid,
    start_ns: u64,
    context: TraceContext,
    /// A final response head was read.
    responded: bool,
    status: Option<u16>,
    grpc_status: Option<u32>,
    grpc_message: Option<String>,
}

pub struct Stitcher {
    request_dir: Direction,
    requests: Side,
    responses: Side,
    streams: BTreeMap<u32, Stream>,
    /// Client stream ids only grow: a request HEADERS at or below this is trailers or stale.
    highest_request_id: u32,
    /// Whether the connection was seen from its first byte; None until the bytes tell.
    from_start: Option<bool>,
}

/// A header value as UTF-8 text, when known.
fn text(list: &HeaderList, name: &[u8]) -> Option<String> {
    list.get(name).as_str().map(str::to_string)
}

fn is_grpc(list: &HeaderList) -> bool {
    matches!(list.get(b"content-type"), Lookup::Value(v) if grpc::is_grpc_content_type(v))
}

impl Stitcher {
    /// `request_dir`: Ingress when the traced process is the server.
    pub fn new(request_dir: Direction) -> Self {
        Self {
            request_dir,
            requests: Side::default(),
            responses: Side::default(),
            streams: BTreeMap::new(),
            highest_request_id: 0,
            from_start: None,
        }
    }

    /// Streams with a request and no finished response yet.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes lost to capture gaps and resynchronisation, and resynchronisations, both ways.
    pub fn lost(&self) -> (u64, u64) {
        (
            self.requests.reader.lost_total + self.responses.reader.lost_total,
            self.requests.reader.resyncs + self.responses.reader.resyncs,
        )
    }

    pub fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Exchange>) {
        let is_request = chunk.direction == self.request_dir;
        self.note_start(is_request, chunk.data);
        let mut reader = std::mem::take(&mut self.side(is_request).reader);
        reader.feed(
            chunk.data,
            chunk.bytes.max(chunk.data.len() as u64),
            chunk.first_byte_ns(),
            &mut |event| self.on_event(is_request, event, chunk, hooks),
        );
        self.side(is_request).reader = reader;
    }

    /// The connection closed (or went idle for good): open streams are released.
    pub fn close(&mut self, hooks: &mut impl Hooks<Exchange>) {
        for (_, stream) in std::mem::take(&mut self.streams) {
            hooks.abandoned(stream.context);
            hooks.anomaly(Anomaly::Unanswered(Unanswered::Closed));
        }
    }

    fn side(&mut self, is_request: bool) -> &mut Side {
        if is_request {
            &mut self.requests
        } else {
            &mut self.responses
        }
    }

    /// A connection whose client did not start with the preface (or whose server did not
    /// start with SETTINGS) began before tracing: its dynamic tables are unknown.
    fn note_start(&mut self, is_request: bool, data: &[u8]) {
        let side = self.side(is_request);
        if side.seen_bytes || data.is_empty() {
            return;
        }
        side.seen_bytes = true;
        if self.from_start.is_some() {
            return;
        }
        let n = data.len().min(PREFACE.len());
        let fresh = if is_request {
            data[..n] == PREFACE[..n]
        } else {
            data.len() < 4 || (data[3] == FrameType::Settings.as_u8() && data.get(4) != Some(&1))
        };
        if fresh {
            if is_request {
                self.from_start = Some(true);
            }
        } else {
            self.from_start = Some(false);
            self.requests.decoder.lose_sync();
            self.responses.decoder.lose_sync();
        }
    }

    fn on_event(
        &mut self,
        is_request: bool,
        event: ReadEvent<'_>,
        chunk: &DataChunk<'_>,
        hooks: &mut impl Hooks<Exchange>,
    ) {
        match event {
            ReadEvent::Lost { bytes } => {
                self.side(is_request).lose_sync();
                hooks.anomaly(Anomaly::Lost { bytes });
            }
            ReadEvent::Invalid(reason) => {
                self.side(is_request).lose_sync();
                hooks.anomaly(Anomaly::Invalid(reason.name()));
            }
            ReadEvent::Frame {
                header,
                payload,
                start_ns,
            } => self.on_frame(is_request, header, payload, (start_ns, chunk), hooks),
        }
    }

    fn on_frame(
        &mut self,
        is_request: bool,
        header: FrameHeader,
        payload: Option<&[u8]>,
        (start_ns, chunk): (u64, &DataChunk<'_>),
        hooks: &mut impl Hooks<Exchange>,
    ) {
        let end_ns = chunk.end_mono_ns;
        let side = self.side(is_request);
        if let Some(block) = &side.block {
            if header.kind != FrameType::Continuation || header.stream_id != block.stream_id {
                side.lose_sync();
                hooks.anomaly(Anomaly::Invalid(InvalidReason::BrokenHeaderBlock.name()));
            }
        }
        let frame = payload.map(|payload| Frame { header, payload });
        match header.kind {
            FrameType::Headers | FrameType::PushPromise => {
                let fragment = frame.and_then(|f| f.header_block());
                let block = Block {
                    stream_id: header.stream_id,
                    push: header.kind == FrameType::PushPromise,
                    end_stream: header.kind == FrameType::Headers && header.has(flags::END_STREAM),
                    bytes: fragment.map_or_else(Vec::new, |f| f.fragment.to_vec()),
                    lost: fragment.is_none(),
                    start_ns,
                    tid: chunk.tid,
                };
                let side = self.side(is_request);
                side.block = Some(block);
                if header.has(flags::END_HEADERS) {
                    self.finish_block(is_request, end_ns, hooks);
                }
            }
            FrameType::Continuation => {
                let side = self.side(is_request);
                let Some(block) = &mut side.block else {
                    side.lose_sync();
                    hooks.anomaly(Anomaly::Invalid(InvalidReason::BrokenHeaderBlock.name()));
                    return;
                };
                match payload {
                    Some(p) if !block.lost && block.bytes.len() + p.len() <= MAX_HEADER_BLOCK => {
                        block.bytes.extend_from_slice(p);
                    }
                    _ => {
                        block.lost = true;
                        block.bytes = Vec::new();
                    }
                }
                if header.has(flags::END_HEADERS) {
                    self.finish_block(is_request, end_ns, hooks);
                }
            }
            FrameType::Data => {
                if let Some(stream) = self.streams.get_mut(&header.stream_id) {
                    let body = if is_request {
                        &mut stream.request_body_bytes
                    } else {
                        &mut stream.response_body_bytes
                    };
                    *body += u64::from(header.length);
                }
                if header.has(flags::END_STREAM) {
                    self.end_stream(is_request, header.stream_id, end_ns, hooks);
                }
            }
            FrameType::RstStream => {
                let code = frame.and_then(|f| f.rst_error_code());
                self.reset(header.stream_id, code, end_ns, hooks);
            }
            FrameType::GoAway => {
                // Sent by the server: client streams above the last id were never processed.
                if let (false, Some(goaway)) = (is_request, frame.and_then(|f| f.goaway())) {
                    self.refuse_above(goaway.last_stream_id, hooks);
                }
            }
            FrameType::Settings => {
                if let Some(f) = frame {
                    // Each side's SETTINGS bound the table of the headers it receives.
                    let other = self.side(!is_request);
                    for (id, value) in f.settings() {
                        if id == settings::HEADER_TABLE_SIZE {
                            other.decoder.set_limit(value);
                        }
                    }
                }
            }
            FrameType::Priority
            | FrameType::Ping
            | FrameType::WindowUpdate
            | FrameType::Unknown(_) => {}
        }
    }

    /// A whole header block: decode it (always, to keep the table in step), then apply it.
    fn finish_block(&mut self, is_request: bool, end_ns: u64, hooks: &mut impl Hooks<Exchange>) {
        let side = self.side(is_request);
        let Some(block) = side.block.take() else {
            return;
        };
        let list = if block.lost {
            side.decoder.lose_sync();
            HeaderList {
                fields: Vec::new(),
                truncated: true,
            }
        } else {
            match side.decoder.decode(&block.bytes) {
                Ok(list) => list,
                Err(e) => {
                    hooks.anomaly(Anomaly::Invalid(InvalidReason::Hpack(e).name()));
                    HeaderList {
                        fields: Vec::new(),
                        truncated: true,
                    }
                }
            }
        };
        if block.push {
            // A pushed request: the server answers it on a stream we do not report.
            return;
        }
        if is_request {
            self.request_headers(&block, &list, hooks);
        } else {
            self.response_headers(block.stream_id, &list);
        }
        if block.end_stream {
            self.end_stream(is_request, block.stream_id, end_ns, hooks);
        }
    }

    fn request_headers(
        &mut self,
        block: &Block,
        list: &HeaderList,
        hooks: &mut impl Hooks<Exchange>,
    ) {
        let id = block.stream_id;
        if id <= self.highest_request_id {
            // Request trailers, or a stream already finished or dropped.
            return;
        }
        self.highest_request_id = id;
        let traceparent = list.get(b"traceparent").as_str();
        let context = hooks.request_started(block.tid, traceparent);
        let stream = Stream {
            method: text(list, b":method"),
            path: list
                .get(b":path")
                .as_str()
                .map(|p| http1::url_path(p).to_string()),
            authority: text(list, b":authority"),
            user_agent: text(list, b"user-agent"),
            request_body_bytes: 0,
            response_body_bytes: 0,
            grpc: is_grpc(list),
            tid: block.tid,
            start_ns: block.start_ns,
            context,
            responded: false,
            status: None,
            grpc_status: None,
            grpc_message: None,
        };
        self.streams.insert(id, stream);
        if self.streams.len() > MAX_STREAMS {
            if let Some((_, oldest)) = self.streams.pop_first() {
                hooks.abandoned(oldest.context);
                hooks.anomaly(Anomaly::Unanswered(Unanswered::Dropped));
            }
        }
    }

    fn response_headers(&mut self, id: u32, list: &HeaderList) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if !stream.responded {
            let status = list.get(b":status").as_str().and_then(|s| s.parse().ok());
            if let Some(100..=199) = status {
                // Interim response: the final one follows.
                return;
            }
            stream.responded = true;
            stream.status = status;
            stream.grpc |= is_grpc(list);
        }
        if let Lookup::Value(v) = list.get(b"grpc-status") {
            stream.grpc_status = grpc::parse_status(v);
        }
        if let Some(message) = text(list, b"grpc-message") {
            stream.grpc_message = Some(message);
        }
    }

    fn end_stream(
        &mut self,
        is_request: bool,
        id: u32,
        end_ns: u64,
        hooks: &mut impl Hooks<Exchange>,
    ) {
        if is_request {
            return;
        }
        match self.streams.remove(&id) {
            Some(stream) => hooks.exchange(exchange(id, stream, end_ns)),
            // Even streams are pushed by the server; odd ones are requests we never saw.
            None if id % 2 == 1 => hooks.anomaly(Anomaly::OrphanResponse),
            None => {}
        }
    }

    /// RST_STREAM either way: a stream whose response had begun is reported as far as it
    /// went; otherwise it is abandoned.
    fn reset(&mut self, id: u32, code: Option<u32>, end_ns: u64, hooks: &mut impl Hooks<Exchange>) {
        let Some(stream) = self.streams.remove(&id) else {
            return;
        };
        if stream.responded {
            hooks.exchange(exchange(id, stream, end_ns));
        } else {
            hooks.abandoned(stream.context);
            hooks.anomaly(Anomaly::Unanswered(Unanswered::Reset {
                error_code: code.unwrap_or(0),
            }));
        }
    }

    fn refuse_above(&mut self, last_stream_id: u32, hooks: &mut impl Hooks<Exchange>) {
        let refused = self.streams.split_off(&last_stream_id.saturating_add(1));
        for (_, stream) in refused {
            hooks.abandoned(stream.context);
            hooks.anomaly(Anomaly::Unanswered(Unanswered::Refused));
        }
    }
}

fn exchange(stream_id: u32, s: Stream, end_ns: u64) -> Exchange {
    let grpc = s.grpc.then(|| {
        let (service, method) = match s.path.as_deref().and_then(grpc::split_path) {
            Some((service, method)) => (Some(service.to_string()), Some(method.to_string())),
            None => (None, None),
        };
        GrpcCall {
            service,
            method,
            status_code: s.grpc_status,
            message: s.grpc_message,
        }
    });
    Exchange {
        method: s.method,
        path: s.path,
        authority: s.authority,
        user_agent: s.user_agent,
        request_body_bytes: s.request_body_bytes,
        response_body_bytes: s.response_body_bytes,
        status: s.status,
        grpc,
        stream_id,
        tid: s.tid,
        start_mono_ns: s.start_ns,
        end_mono_ns: end_ns,
        context: s.context,
    }
}

/// Values HPACK could not decode (a connection joined mid-way) are never
/// guessed: such an exchange gives no span.
impl Record for Exchange {
    fn into_exchange(self) -> Result<Neutral, (TraceContext, Anomaly)> {
        let method = self.method.as_deref().map(HttpMethod::from_token);
        let (Some(method), Some(path), Some(status)) = (method, self.path, self.status) else {
            return Err((self.context, Anomaly::Undecodable));
        };
        let text = |value: Option<String>| value.map(|v| ShortString::bounded(&v, MAX_HEADER_TEXT));
        let http = HttpOperation {
            method,
            path: path.as_str().into(),
            status,
            version: HttpVersion::Http2,
            host: text(self.authority),
            user_agent: text(self.user_agent),
            request_body_bytes: self.request_body_bytes,
            response_body_bytes: self.response_body_bytes,
        };
        let call = self
            .grpc
            .and_then(|call| Some((call.service?, call.method?, call.status_code)));
        let operation = match call {
            Some((service, rpc_method, status_code)) => Operation::Rpc(Box::new(RpcOperation {
                system: "grpc",
                service: service.as_str().into(),
                method: rpc_method.as_str().into(),
                status_code,
                http,
            })),
            None => Operation::Http(http),
        };
        Ok(Neutral {
            tid: self.tid,
            start_mono_ns: self.start_mono_ns,
            end_mono_ns: self.end_mono_ns,
            context: self.context,
            operation,
        })
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
