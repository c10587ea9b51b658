//! Application protocols: the bytes of one connection to requests with their
//! responses. Every protocol implements the one contract below and is listed
//! once in [`PROTOCOLS`]; nothing outside its folder names it.
//!
//! A protocol has three parts, as in its folder: `parse` turns bytes into the
//! protocol's messages (answering [`Parse`]), `stitch` pairs requests with
//! responses per connection into the protocol's own record, and the record
//! becomes a protocol-neutral [`Exchange`] ([`Record::into_exchange`]).
//!
//! Adding a protocol: its folder `<name>/{mod,types,parse,stitch,tests}.rs`
//! and `testdata/`, one line in [`PROTOCOLS`], its [`Operation`] variant in the
//! model and its arm in `semconv`.

pub mod http1;
pub mod http2;
pub mod kafka;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod sql;
#[cfg(test)]
pub(crate) mod testing;

use crate::model::{DataChunk, Direction, Operation, SpanKind, Tid, TraceContext};

/// The protocols the assembler tries on a new connection, in this order.
pub static PROTOCOLS: &[&dyn Protocol] = &[
    &http1::HTTP1,
    &http2::HTTP2,
    // Before PostgreSQL: a MySQL greeting could pass for a PostgreSQL CopyData.
    &mysql::MYSQL,
    &postgres::POSTGRES,
    &redis::REDIS,
    &kafka::KAFKA,
];

/// The outcome of parsing bytes that may be cut off anywhere; `E` is the
/// protocol's own reason for refusing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse<T, E> {
    Parsed(T),
    /// The bytes so far can still begin a valid message: call again with more.
    NeedMore,
    /// No continuation of these bytes can be valid.
    Invalid(E),
}

/// Why a parse stopped, for parsers written with `?` inside: the bytes end
/// too soon, or the protocol's reason they cannot be valid.
pub(crate) enum Stop<E> {
    NeedMore,
    Invalid(E),
}

/// A parse written with [`Stop`] as its answer.
pub(crate) fn finish<T, E>(result: Result<T, Stop<E>>) -> Parse<T, E> {
    match result {
        Ok(value) => Parse::Parsed(value),
        Err(Stop::NeedMore) => Parse::NeedMore,
        Err(Stop::Invalid(reason)) => Parse::Invalid(reason),
    }
}

/// What a stitcher could not make sense of; the assembler counts each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// Bytes no continuation can make valid: the protocol's reason, by name.
    Invalid(&'static str),
    /// Bytes went by that could not be followed (a capture gap, a resynchronisation).
    Lost { bytes: u64 },
    /// A response without its request (the request predates tracing).
    OrphanResponse,
    /// A request whose response never came.
    Unanswered(Unanswered),
    /// An exchange whose fields could not be decoded (a connection joined
    /// mid-way): counted, never guessed, and no span.
    Undecodable,
}

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// The connection ended first.
    Closed,
    /// The stream was reset before its response began (HTTP/2 `RST_STREAM`).
    Reset { error_code: u32 },
    /// The stream was above a `GOAWAY`'s last stream id: never processed.
    Refused,
    /// More requests were open than a connection keeps: the oldest was dropped.
    Dropped,
}

/// One request with its response, as the traced process saw them; the
/// assembler adds what it knows of the connection and the process.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// The thread that read (server) or wrote (client) the request.
    pub tid: Tid,
    /// Kernel monotonic nanoseconds: first byte of the request, last byte of the response.
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    pub context: TraceContext,
    pub operation: Operation,
}

/// A protocol's own record of one exchange, as its stitcher produces it.
pub trait Record {
    /// The protocol-neutral exchange, or why there is none: the record's trace
    /// context is then released, and the anomaly counted.
    fn into_exchange(self) -> Result<Exchange, (TraceContext, Anomaly)>;
}

impl Record for Exchange {
    fn into_exchange(self) -> Result<Exchange, (TraceContext, Anomaly)> {
        Ok(self)
    }
}

/// What a stitcher needs from its owner, for one connection.
pub trait Hooks<R> {
    /// A request started: the trace context its span will have (a server joins
    /// the caller's `traceparent`; a client is the child of what its thread serves).
    fn request_started(&mut self, tid: Tid, traceparent: Option<&str>) -> TraceContext;
    /// A request with its response: one span.
    fn exchange(&mut self, record: R);
    /// A started request ended without a span; its context is released.
    fn abandoned(&mut self, context: TraceContext);
    fn anomaly(&mut self, anomaly: Anomaly);
}

/// The first bytes of a connection, and what the probes knew of it.
#[derive(Debug, Clone, Copy)]
pub struct FirstBytes<'a> {
    /// The bytes of the first message, gathered over reads up to a small bound.
    pub data: &'a [u8],
    pub direction: Direction,
    /// Which side the traced process is, when the probes saw the accept or connect.
    pub kind: Option<SpanKind>,
    pub local_port: u16,
    pub remote_port: u16,
}

/// What a protocol makes of a connection's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// This protocol; requests travel in `request_dir`.
    Yes {
        request_dir: Direction,
    },
    /// These bytes may begin this protocol: ask again with more.
    NeedMore,
    /// This protocol, but mid-exchange (a response first): decide on the next message.
    Later,
    No,
}

/// A protocol: recognises its connections and stitches each one.
pub trait Protocol: Sync {
    fn name(&self) -> &'static str;
    fn detect(&self, first: &FirstBytes<'_>) -> Detection;
    fn open(&self, request_dir: Direction) -> Box<dyn Stitcher>;
}

/// One connection's state: fed every chunk, both directions in order, then closed once.
pub trait Stitcher: Send {
    fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut dyn Hooks<Exchange>);
    fn close(&mut self, hooks: &mut dyn Hooks<Exchange>);
}

/// A protocol's stitcher, generic over its hooks, producing its own records;
/// every `Stitch` is a [`Stitcher`] through [`Converting`].
pub trait Stitch: Send {
    type Record: Record;
    fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut impl Hooks<Self::Record>);
    fn close(&mut self, hooks: &mut impl Hooks<Self::Record>);
}

impl<S: Stitch> Stitcher for S {
    fn feed(&mut self, chunk: &DataChunk<'_>, hooks: &mut dyn Hooks<Exchange>) {
        Stitch::feed(self, chunk, &mut Converting(hooks));
    }

    fn close(&mut self, hooks: &mut dyn Hooks<Exchange>) {
        Stitch::close(self, &mut Converting(hooks));
    }
}

/// Turns a protocol's records into exchanges on their way to the owner.
struct Converting<'a>(&'a mut dyn Hooks<Exchange>);

impl<R: Record> Hooks<R> for Converting<'_> {
    fn request_started(&mut self, tid: Tid, traceparent: Option<&str>) -> TraceContext {
        self.0.request_started(tid, traceparent)
    }

    fn exchange(&mut self, record: R) {
        match record.into_exchange() {
            Ok(exchange) => self.0.exchange(exchange),
            Err((context, anomaly)) => {
                self.0.abandoned(context);
                self.0.anomaly(anomaly);
            }
        }
    }

    fn abandoned(&mut self, context: TraceContext) {
        self.0.abandoned(context);
    }

    fn anomaly(&mut self, anomaly: Anomaly) {
        self.0.anomaly(anomaly);
    }
}
