//! HTTP/2 (RFC 9113) with HPACK (RFC 7541), and gRPC on top: bytes of one connection to
//! frames, header lists and request/response exchanges per stream.
pub mod grpc;
pub mod hpack;
mod parse;
pub mod stitch;
#[cfg(test)]
mod tests;
mod types;
pub use parse::{
    detect, parse_frame, parse_frame_header, plausible_frame_header, FrameReader, H2Start,
    ReadEvent, MAX_KEPT_PAYLOAD, MAX_PLAUSIBLE_FRAME_LEN,
};
pub use types::{
    flags, settings, Frame, FrameHeader, FrameType, GoAway, HeaderBlockFragment, InvalidReason,
    Parse, DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, MAX_FRAME_LEN, PREFACE,
};

use super::{Detection, FirstBytes, Protocol, Stitcher};
use crate::model::Direction;

pub struct Http2;

pub static HTTP2: Http2 = Http2;

impl Protocol for Http2 {
    fn name(&self) -> &'static str {
        "HTTP/2"
    }

    /// The client's preface names the client; a SETTINGS frame sent first is
    /// the server's preface.
    fn detect(&self, first: &FirstBytes<'_>) -> Detection {
        let from_client = match detect(first.data) {
            Some(H2Start::ClientPreface) => true,
            Some(H2Start::ServerSettings) => false,
            None if first.data.len() < 4 && PREFACE.starts_with(first.data) => {
                return Detection::NeedMore
            }
            None => return Detection::No,
        };
        let request_dir = match (from_client, first.direction) {
            (true, direction) => direction,
            (false, Direction::Ingress) => Direction::Egress,
            (false, Direction::Egress) => Direction::Ingress,
        };
        Detection::Yes { request_dir }
    }

    fn open(&self, request_dir: Direction) -> Box<dyn Stitcher> {
        Box::new(stitch::Stitcher::new(request_dir))
    }
}
