//! Redis: RESP2 and RESP3 (the serialization protocol of Redis and its forks) from bytes to
//! commands and replies.
mod parse;
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
