//! HTTP/1.x: bytes to request/response heads and body framing, stitched into
//! one exchange per request.
mod parse;
pub mod stitch;
#[cfg(test)]
mod tests;
mod types;
pub use parse::{
    looks_like_request, looks_like_response, may_begin_request, parse_cut_request_line,
    parse_request_head, parse_request_line, parse_response_head, parse_status_line, url_path,
    ChunkedDecoder, MAX_METHOD_LEN,
};
pub use types::{BodyFraming, Exchange, InvalidReason, Method, Parse};

use super::{Detection, FirstBytes, Protocol, Stitcher};
use crate::model::Direction;

pub struct Http1;

pub static HTTP1: Http1 = Http1;

impl Protocol for Http1 {
    fn name(&self) -> &'static str {
        "HTTP/1.x"
    }

    /// A request line names the side that sent it; a status line first means
    /// the request predates tracing, so the next message decides.
    fn detect(&self, first: &FirstBytes<'_>) -> Detection {
        if looks_like_request(first.data) {
            Detection::Yes {
                request_dir: first.direction,
            }
        } else if looks_like_response(first.data) {
            Detection::Later
        } else if may_begin_request(first.data) {
            Detection::NeedMore
        } else {
            Detection::No
        }
    }

    fn open(&self, request_dir: Direction) -> Box<dyn Stitcher> {
        Box::new(stitch::Stitcher::new(request_dir))
    }
}
