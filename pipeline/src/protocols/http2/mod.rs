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
    detect, looks_like_h2, parse_frame, parse_frame_header, plausible_frame_header, FrameReader,
    H2Start, ReadEvent, MAX_KEPT_PAYLOAD, MAX_PLAUSIBLE_FRAME_LEN,
};
pub use types::{
    flags, settings, Frame, FrameHeader, FrameType, GoAway, HeaderBlockFragment, InvalidReason,
    Parse, DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, MAX_FRAME_LEN, PREFACE,
};
