//! Results of the HTTP/1.x parser; values borrow from the captured bytes so parsing never allocates.

pub use crate::model::Method;
use crate::model::{
    HttpMethod, HttpOperation, HttpVersion, Operation, ShortString, Tid, TraceContext,
};
use crate::protocols::{Anomaly, Exchange as Neutral, Record};

/// The outcome of parsing HTTP/1.x bytes.
pub type Parse<T> = crate::protocols::Parse<T, InvalidReason>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// Does not start like HTTP/1.x at all (no method token, no `HTTP/1.` prefix).
    NotHttp,
    BadRequestLine,
    BadStatusLine,
    BadHeader,
    BadContentLength,
    /// Differing Content-Length values, or a request whose Transfer-Encoding does not end in
    /// chunked: the body length cannot be known (RFC 9112 section 6.3).
    ConflictingFraming,
    BadChunk,
    /// A line or head past the parser's limits without its end: most likely not HTTP, or out of sync.
    HeadTooLong,
}

impl InvalidReason {
    /// The reason as counted and logged.
    pub fn name(self) -> &'static str {
        match self {
            InvalidReason::NotHttp => "not HTTP/1.x",
            InvalidReason::BadRequestLine => "bad request line",
            InvalidReason::BadStatusLine => "bad status line",
            InvalidReason::BadHeader => "bad header",
            InvalidReason::BadContentLength => "bad Content-Length",
            InvalidReason::ConflictingFraming => "conflicting body framing",
            InvalidReason::BadChunk => "bad chunk",
            InvalidReason::HeadTooLong => "head too long",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The method token as sent: a known method (see [`Method`]) or an extension one.
    pub method: &'a str,
    pub target: &'a str,
    pub minor_version: u8,
    /// Bytes of the line including its line ending.
    pub len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLine {
    pub status: u16,
    pub minor_version: u8,
    /// Bytes of the line including its line ending.
    pub len: usize,
}

/// How the body after a head ends (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Empty,
    Length(u64),
    Chunked,
    /// Only the connection closing ends it.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub line: RequestLine<'a>,
    /// Bytes from the start of the request line through the blank line.
    pub head_len: usize,
    pub body: BodyFraming,
    /// First non-empty `traceparent` value, if it is UTF-8.
    pub traceparent: Option<&'a str>,
    /// First non-empty `host` value, if it is UTF-8.
    pub host: Option<&'a str>,
    /// First non-empty `user-agent` value, if it is UTF-8.
    pub user_agent: Option<&'a str>,
    pub connection_close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub line: StatusLine,
    /// Bytes from the start of the status line through the blank line.
    pub head_len: usize,
    pub body: BodyFraming,
    pub connection_close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkProgress {
    /// Bytes of the fed data that belong to the chunked body.
    pub consumed: usize,
    /// The final line ending of the body has been consumed.
    pub done: bool,
}

/// A request with its response.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub method: HttpMethod,
    pub path: ShortString,
    pub status: u16,
    pub version: HttpVersion,
    pub host: Option<ShortString>,
    pub user_agent: Option<ShortString>,
    pub request_body_bytes: u64,
    pub response_body_bytes: u64,
    pub tid: Tid,
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    pub context: TraceContext,
}

impl Record for Exchange {
    fn into_exchange(self) -> Result<Neutral, (TraceContext, Anomaly)> {
        Ok(Neutral {
            tid: self.tid,
            start_mono_ns: self.start_mono_ns,
            end_mono_ns: self.end_mono_ns,
            context: self.context,
            operation: Operation::Http(HttpOperation {
                method: self.method,
                path: self.path,
                status: self.status,
                version: self.version,
                host: self.host,
                user_agent: self.user_agent,
                request_body_bytes: self.request_body_bytes,
                response_body_bytes: self.response_body_bytes,
            }),
        })
    }
}
