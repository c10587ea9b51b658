//! HTTP/2 framing (RFC 9113 section 4 and 6): frame headers, types, flags.

/// What every client connection begins with (RFC 9113 section 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bytes of a frame header: length (24 bits), type, flags, reserved bit and stream id (31 bits).
pub const FRAME_HEADER_LEN: usize = 9;

/// The largest payload a frame header can announce (2^24 - 1).
pub const MAX_FRAME_LEN: u32 = (1 << 24) - 1;

/// The largest payload any endpoint may send before SETTINGS_MAX_FRAME_SIZE raises it.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 1 << 14;

/// The outcome of parsing HTTP/2 bytes.
pub type Parse<T> = crate::protocols::Parse<T, InvalidReason>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// A frame whose length does not fit its type (SETTINGS not a multiple of 6, PING not 8, ...).
    BadLength,
    /// A frame on stream 0 that needs a stream, or on a stream that must be 0.
    BadStreamId,
    /// Padding longer than the payload that carries it.
    BadPadding,
    /// A header block could not be decoded.
    Hpack(super::hpack::HpackError),
    /// The client connection preface started but went wrong.
    BadPreface,
    /// A header block that is not followed by its CONTINUATION frames.
    BrokenHeaderBlock,
}

impl InvalidReason {
    /// The reason as counted and logged.
    pub fn name(self) -> &'static str {
        match self {
            InvalidReason::BadLength => "bad frame length",
            InvalidReason::BadStreamId => "bad stream id",
            InvalidReason::BadPadding => "bad padding",
            InvalidReason::Hpack(_) => "undecodable header block",
            InvalidReason::BadPreface => "bad connection preface",
            InvalidReason::BrokenHeaderBlock => "broken header block",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    /// Extension frames are to be ignored (RFC 9113 section 4.1).
    Unknown(u8),
}

impl FrameType {
    pub fn from_u8(b: u8) -> Self {
        match b {
            0 => FrameType::Data,
            1 => FrameType::Headers,
            2 => FrameType::Priority,
            3 => FrameType::RstStream,
            4 => FrameType::Settings,
            5 => FrameType::PushPromise,
            6 => FrameType::Ping,
            7 => FrameType::GoAway,
            8 => FrameType::WindowUpdate,
            9 => FrameType::Continuation,
            other => FrameType::Unknown(other),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            FrameType::Data => 0,
            FrameType::Headers => 1,
            FrameType::Priority => 2,
            FrameType::RstStream => 3,
            FrameType::Settings => 4,
            FrameType::PushPromise => 5,
            FrameType::Ping => 6,
            FrameType::GoAway => 7,
            FrameType::WindowUpdate => 8,
            FrameType::Continuation => 9,
            FrameType::Unknown(b) => b,
        }
    }

    /// Flags the type defines; others are ignored by receivers, and never sent by the
    /// implementations we know, so they make a header implausible when resynchronising.
    pub fn defined_flags(self) -> u8 {
        match self {
            FrameType::Data => flags::END_STREAM | flags::PADDED,
            FrameType::Headers => {
                flags::END_STREAM | flags::END_HEADERS | flags::PADDED | flags::PRIORITY
            }
            FrameType::PushPromise => flags::END_HEADERS | flags::PADDED,
            FrameType::Continuation => flags::END_HEADERS,
            FrameType::Settings | FrameType::Ping => flags::ACK,
            FrameType::Priority
            | FrameType::RstStream
            | FrameType::GoAway
            | FrameType::WindowUpdate => 0,
            FrameType::Unknown(_) => 0xff,
        }
    }
}

/// Frame flags (RFC 9113 section 6).
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS and PING acknowledgements share END_STREAM's bit.
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameters we read (RFC 9113 section 6.5.2).
pub mod settings {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload bytes after the 9-byte header.
    pub length: u32,
    pub kind: FrameType,
    pub flags: u8,
    /// The reserved bit is dropped.
    pub stream_id: u32,
}

impl FrameHeader {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Header plus payload.
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.length as usize
    }

    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_LEN] {
        let l = self.length.to_be_bytes();
        let s = (self.stream_id & 0x7fff_ffff).to_be_bytes();
        [
            l[1],
            l[2],
            l[3],
            self.kind.as_u8(),
            self.flags,
            s[0],
            s[1],
            s[2],
            s[3],
        ]
    }
}

/// One whole frame; the payload borrows from the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    pub payload: &'a [u8],
}

/// The parts of a HEADERS or PUSH_PROMISE payload (RFC 9113 sections 6.2 and 6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBlockFragment<'a> {
    pub fragment: &'a [u8],
    /// PUSH_PROMISE only: the stream the server reserves.
    pub promised_stream_id: Option<u32>,
}

/// A GOAWAY's fixed part (RFC 9113 section 6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAway {
    pub last_stream_id: u32,
    pub error_code: u32,
}
