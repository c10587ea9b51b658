//! Redis: RESP2 and RESP3 (the serialization protocol of Redis and its forks) from bytes to
//! commands and replies.
mod parse;
pub mod stitch;
#[cfg(test)]
mod tests;
mod types;
pub use parse::{
    parse_command, parse_command_start, parse_header, parse_reply_start, parse_value, push_kind,
    ValueWalker, Walk, MAX_AGGREGATE_LEN, MAX_BLOB_LEN, MAX_DEPTH, MAX_LINE,
};
pub use types::{
    Args, Command, CommandStart, Elements, Frame, Header, InvalidReason, Kind, Parse, PushKind,
    ReplyStart, Shape, Value,
};

use super::{Detection, FirstBytes, Protocol, Stitcher};
use crate::model::Direction;

/// Longest command name believed at detection (`CLIENT`, `FT.AGGREGATE`, `RESTORE-ASKING`).
const MAX_COMMAND_NAME: usize = 32;

pub struct Redis;

pub static REDIS: Redis = Redis;

impl Protocol for Redis {
    fn name(&self) -> &'static str {
        "Redis"
    }

    /// A command: an array of bulk strings whose first is a plausible command name. Replies
    /// (`+OK`, `:1`) are too plain to tell Redis from other protocols, so never decide.
    fn detect(&self, first: &FirstBytes<'_>) -> Detection {
        match parse_command_start(first.data) {
            Parse::Parsed(start)
                if !start.name.is_empty()
                    && start.name.len() <= MAX_COMMAND_NAME
                    && start.name.iter().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'|')
                    }) =>
            {
                Detection::Yes {
                    request_dir: first.direction,
                }
            }
            Parse::NeedMore => Detection::NeedMore,
            _ => Detection::No,
        }
    }

    fn open(&self, request_dir: Direction) -> Box<dyn Stitcher> {
        Box::new(stitch::RedisStitcher::new(request_dir))
    }
}
