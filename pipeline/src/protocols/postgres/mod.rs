//! PostgreSQL wire protocol v3: bytes to startup, frontend and backend messages,
//! stitched into one span per statement run.
mod parse;
pub mod stitch;
#[cfg(test)]
mod tests;
mod types;
pub use parse::{
    decode_backend, decode_frontend, parse_backend, parse_encryption_answer, parse_frontend,
    parse_header, parse_startup, BACKEND_TAGS, FRONTEND_TAGS, HEADER_LEN, MAX_MESSAGE, MAX_STARTUP,
};
pub use types::{
    Backend, Fields, Frontend, Header, InvalidReason, Message, Params, Parse, Startup, Target,
};

use super::sql::{decode, summarize, Dialect};
use super::{Detection, FirstBytes, Protocol, Stitcher};
use crate::model::Direction;

/// Backend messages that only answer a client: a connection whose first bytes are
/// these began before tracing, or its start went uncaptured.
const ANSWER_TAGS: &[u8] = b"RTDCZE123nstIGH";

pub struct Postgres;

pub static POSTGRES: Postgres = Postgres;

impl Protocol for Postgres {
    fn name(&self) -> &'static str {
        "PostgreSQL"
    }

    /// A startup packet (with its mandatory `user`) or an SSL/GSSAPI encryption request
    /// names the client. A connection that began before tracing is recognised by a
    /// client message carrying a statement (Query, Parse, Bind), or answers first.
    fn detect(&self, first: &FirstBytes<'_>) -> Detection {
        match parse_startup(first.data) {
            Parse::Parsed(m) => match m.body {
                Startup::Start { params, .. } if params.get("user").is_some() => Detection::Yes {
                    request_dir: first.direction,
                },
                Startup::SslRequest | Startup::GssEncRequest => Detection::Yes {
                    request_dir: first.direction,
                },
                Startup::Start { .. } | Startup::CancelRequest => Detection::No,
            },
            Parse::NeedMore => Detection::NeedMore,
            Parse::Invalid(_) => mid_stream(first),
        }
    }

    fn open(&self, request_dir: Direction) -> Box<dyn Stitcher> {
        Box::new(stitch::Stitcher::new(request_dir))
    }
}

/// Every byte of `data` is whole messages of one direction (or the start of one more);
/// `parse` gives a parsed message's length.
fn all_messages(data: &[u8], parse: impl Fn(&[u8]) -> Parse<usize>) -> bool {
    let mut pos = 0;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        match parse(rest) {
            Parse::Parsed(len) => pos += len,
            Parse::NeedMore => return true,
            Parse::Invalid(_) => return false,
        }
    }
    true
}

fn frontend_len(data: &[u8]) -> Parse<usize> {
    match parse_frontend(data) {
        Parse::Parsed(m) => Parse::Parsed(m.len),
        Parse::NeedMore => Parse::NeedMore,
        Parse::Invalid(reason) => Parse::Invalid(reason),
    }
}

fn backend_len(data: &[u8]) -> Parse<usize> {
    match parse_backend(data) {
        Parse::Parsed(m) => Parse::Parsed(m.len),
        Parse::NeedMore => Parse::NeedMore,
        Parse::Invalid(reason) => Parse::Invalid(reason),
    }
}

fn mid_stream(first: &FirstBytes<'_>) -> Detection {
    let statement = match parse_frontend(first.data) {
        Parse::Parsed(m) => match m.body {
            Frontend::Query { text } | Frontend::Parse { query: text, .. } => {
                summarize(&decode(text), Dialect::Postgres)
                    .operation
                    .is_some()
            }
            Frontend::Bind { .. } => true,
            _ => false,
        },
        Parse::NeedMore | Parse::Invalid(_) => false,
    };
    if statement && all_messages(first.data, frontend_len) {
        return Detection::Yes {
            request_dir: first.direction,
        };
    }
    let answer = first
        .data
        .first()
        .is_some_and(|tag| ANSWER_TAGS.contains(tag))
        && matches!(parse_backend(first.data), Parse::Parsed(_))
        && all_messages(first.data, backend_len);
    if answer {
        Detection::Later
    } else {
        Detection::No
    }
}
