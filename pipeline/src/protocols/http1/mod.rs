//! HTTP/1.x: bytes to request/response heads and body framing.
mod parse;
pub mod stitch;
#[cfg(test)]
mod tests;
mod types;
pub use parse::{
    looks_like_request, looks_like_response, parse_request_head, parse_request_line,
    parse_response_head, parse_status_line, ChunkedDecoder,
};
pub use types::{BodyFraming, InvalidReason, Method, Parse};
