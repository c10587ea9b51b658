//! Bytes to frames: a frame parser over a byte buffer, and a per-direction reader that
//! follows frames across syscalls and over bytes the probe did not copy.

use super::types::{
    flags, FrameHeader, FrameType, GoAway, HeaderBlockFragment, InvalidReason, Parse,
    DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, PREFACE,
};
use super::Frame;

/// Payload bytes a reader gathers for one frame; longer frames' payloads are skipped by count.
pub const MAX_KEPT_PAYLOAD: usize = 64 * 1024;
/// The largest frame a resynchronising reader believes in: implementations raise
/// SETTINGS_MAX_FRAME_SIZE to at most a few MiB.
pub const MAX_PLAUSIBLE_FRAME_LEN: u32 = 16 * 1024 * 1024 - 1;
/// The largest first SETTINGS frame detection believes in (a dozen parameters).
const MAX_DETECT_SETTINGS_LEN: u32 = 6 * 12;

/// Reads a frame header and checks what the header alone can tell (RFC 9113 section 6).
pub fn parse_frame_header(buf: &[u8]) -> Parse<FrameHeader> {
    let Some(b) = buf.get(..FRAME_HEADER_LEN) else {
        return Parse::NeedMore;
    };
    let header = FrameHeader {
        length: u32::from_be_bytes([0, b[0], b[1], b[2]]),
        kind: FrameType::from_u8(b[3]),
        flags: b[4],
        stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
    };
    match check_header(&header) {
        Some(reason) => Parse::Invalid(reason),
        None => Parse::Parsed(header),
    }
}

fn check_header(h: &FrameHeader) -> Option<InvalidReason> {
    let needs_stream = matches!(
        h.kind,
        FrameType::Data
            | FrameType::Headers
            | FrameType::Priority
            | FrameType::RstStream
            | FrameType::PushPromise
            | FrameType::Continuation
    );
    let no_stream = matches!(
        h.kind,
        FrameType::Settings | FrameType::Ping | FrameType::GoAway
    );
    if (needs_stream && h.stream_id == 0) || (no_stream && h.stream_id != 0) {
        return Some(InvalidReason::BadStreamId);
    }
    let length_ok = match h.kind {
        FrameType::Priority => h.length == 5,
        FrameType::RstStream | FrameType::WindowUpdate => h.length == 4,
        FrameType::Ping => h.length == 8,
        FrameType::GoAway => h.length >= 8,
        FrameType::Settings if h.has(flags::ACK) => h.length == 0,
        FrameType::Settings => h.length.is_multiple_of(6),
        FrameType::PushPromise => h.length >= 4,
        FrameType::Data | FrameType::Headers => {
            let padded = u32::from(h.has(flags::PADDED));
            let priority = if h.kind == FrameType::Headers && h.has(flags::PRIORITY) {
                5
            } else {
                0
            };
            h.length >= padded + priority
        }
        FrameType::Continuation | FrameType::Unknown(_) => true,
    };
    if !length_ok {
        return Some(InvalidReason::BadLength);
    }
    None
}

/// Parses one whole frame from the start of `buf`; consumes nothing unless parsed
/// (`frame.header.frame_len()` bytes then).
pub fn parse_frame(buf: &[u8]) -> Parse<Frame<'_>> {
    let header = match parse_frame_header(buf) {
        Parse::Parsed(h) => h,
        Parse::NeedMore => return Parse::NeedMore,
        Parse::Invalid(r) => return Parse::Invalid(r),
    };
    let Some(payload) = buf.get(FRAME_HEADER_LEN..header.frame_len()) else {
        return Parse::NeedMore;
    };
    let frame = Frame { header, payload };
    if matches!(
        header.kind,
        FrameType::Data | FrameType::Headers | FrameType::PushPromise
    ) && unpadded(&frame).is_none()
    {
        return Parse::Invalid(InvalidReason::BadPadding);
    }
    Parse::Parsed(frame)
}

/// The payload without its padding (RFC 9113 section 6.1).
fn unpadded<'a>(frame: &Frame<'a>) -> Option<&'a [u8]> {
    if !frame.header.has(flags::PADDED) {
        return Some(frame.payload);
    }
    let (&pad, rest) = frame.payload.split_first()?;
    rest.len().checked_sub(pad as usize).map(|end| &rest[..end])
}

impl<'a> Frame<'a> {
    /// A DATA frame's data, without padding.
    pub fn data(&self) -> Option<&'a [u8]> {
        (self.header.kind == FrameType::Data)
            .then(|| unpadded(self))
            .flatten()
    }

    /// The header block fragment of a HEADERS, PUSH_PROMISE or CONTINUATION frame.
    pub fn header_block(&self) -> Option<HeaderBlockFragment<'a>> {
        match self.header.kind {
            FrameType::Headers => {
                let p = unpadded(self)?;
                let fragment = if self.header.has(flags::PRIORITY) {
                    p.get(5..)?
                } else {
                    p
                };
                Some(HeaderBlockFragment {
                    fragment,
                    promised_stream_id: None,
                })
            }
            FrameType::PushPromise => {
                let p = unpadded(self)?;
                let id = p.get(..4)?;
                Some(HeaderBlockFragment {
                    fragment: &p[4..],
                    promised_stream_id: Some(
                        u32::from_be_bytes([id[0], id[1], id[2], id[3]]) & 0x7fff_ffff,
                    ),
                })
            }
            FrameType::Continuation => Some(HeaderBlockFragment {
                fragment: self.payload,
                promised_stream_id: None,
            }),
            _ => None,
        }
    }

    /// An RST_STREAM's error code.
    pub fn rst_error_code(&self) -> Option<u32> {
        (self.header.kind == FrameType::RstStream)
            .then(|| be32(self.payload))
            .flatten()
    }

    pub fn goaway(&self) -> Option<GoAway> {
        if self.header.kind != FrameType::GoAway {
            return None;
        }
        Some(GoAway {
            last_stream_id: be32(self.payload)? & 0x7fff_ffff,
            error_code: be32(self.payload.get(4..)?)?,
        })
    }

    /// A SETTINGS frame's (identifier, value) pairs; empty for an ACK.
    pub fn settings(&self) -> impl Iterator<Item = (u16, u32)> + 'a {
        let payload = if self.header.kind == FrameType::Settings {
            self.payload
        } else {
            &[]
        };
        payload
            .chunks_exact(6)
            .map(|c| (u16::from_be_bytes([c[0], c[1]]), be32(&c[2..]).unwrap_or(0)))
    }
}

fn be32(b: &[u8]) -> Option<u32> {
    let b = b.get(..4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// How a connection's first bytes say it is HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2Start {
    /// The client preface: the sender is the client.
    ClientPreface,
    /// A SETTINGS frame first: the server's connection preface.
    ServerSettings,
}

/// Recognises the first bytes of either side of an HTTP/2 connection (RFC 9113 section 3.4).
/// A prefix of the preface shorter than the preface counts once it is at least 4 bytes.
pub fn detect(prefix: &[u8]) -> Option<H2Start> {
    let n = prefix.len().min(PREFACE.len());
    if n >= 4 && prefix[..n] == PREFACE[..n] {
        return Some(H2Start::ClientPreface);
    }
    let Parse::Parsed(h) = parse_frame_header(prefix) else {
        return None;
    };
    // Setting ids are not checked: gRPC's C core sends its own (0xfe03).
    let plausible =
        h.kind == FrameType::Settings && h.flags == 0 && h.length <= MAX_DETECT_SETTINGS_LEN;
    plausible.then_some(H2Start::ServerSettings)
}

/// A frame header that a reader out of step will take as the start of a frame.
pub fn plausible_frame_header(buf: &[u8]) -> bool {
    let Parse::Parsed(h) = parse_frame_header(buf) else {
        return false;
    };
    if matches!(h.kind, FrameType::Unknown(_)) || h.flags & !h.kind.defined_flags() != 0 {
        return false;
    }
    let max = match h.kind {
        FrameType::Data => MAX_PLAUSIBLE_FRAME_LEN,
        FrameType::Settings => 6 * 32,
        _ => (MAX_KEPT_PAYLOAD as u32).max(DEFAULT_MAX_FRAME_LEN),
    };
    if h.length > max {
        return false;
    }
    // When the next header is in view too, it must be plausible as well.
    match buf.get(h.frame_len()..) {
        Some(next) if next.len() >= FRAME_HEADER_LEN => plausible_frame_header(next),
        _ => true,
    }
}

/// What a [`FrameReader`] hands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEvent<'a> {
    /// A whole frame. `payload` is `None` when it was skipped: DATA (only its header matters),
    /// payloads over [`MAX_KEPT_PAYLOAD`], and payloads the capture cut.
    Frame {
        header: FrameHeader,
        payload: Option<&'a [u8]>,
        /// When the frame's first byte went by.
        start_ns: u64,
    },
    /// Bytes went by that could not be followed: frames (and header blocks) were missed.
    Lost { bytes: u64 },
    /// The bytes are not HTTP/2 frames (an impossible header); the reader waits for a
    /// plausible frame header at the start of a later syscall.
    Invalid(InvalidReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// At the stream's start: a client preface may come first.
    Start,
    /// Gathering a frame header in `buf`.
    Header,
    /// Reading `left` more payload bytes; kept in `buf` when `keep`.
    Payload {
        header: FrameHeader,
        left: u32,
        keep: bool,
        cut: bool,
    },
    /// Out of step: bytes are dropped until a syscall starts with a plausible header.
    Lost,
}

/// One direction of one connection: syscall data to frames.
#[derive(Debug, Clone)]
pub struct FrameReader {
    state: ReadState,
    buf: Vec<u8>,
    /// When the frame being read started.
    frame_start_ns: u64,
    /// Bytes dropped while out of step, reported with the next event.
    lost: u64,
    /// Total bytes lost to capture gaps and resynchronisation, for self-metrics.
    pub lost_total: u64,
    pub resyncs: u64,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    pub fn new() -> Self {
        Self {
            state: ReadState::Start,
            buf: Vec::new(),
            frame_start_ns: 0,
            lost: 0,
            lost_total: 0,
            resyncs: 0,
        }
    }

    /// Is the reader out of step, waiting to resynchronise?
    pub fn is_lost(&self) -> bool {
        self.state == ReadState::Lost
    }

    /// Feeds one syscall's captured bytes (`data`), of `total` bytes moved; `first_byte_ns`
    /// is when its first byte went by.
    pub fn feed(
        &mut self,
        data: &[u8],
        total: u64,
        first_byte_ns: u64,
        out: &mut impl FnMut(ReadEvent<'_>),
    ) {
        let gap = total.saturating_sub(data.len() as u64);
        if self.state == ReadState::Lost {
            if !plausible_frame_header(data) {
                self.lose(total);
                return;
            }
            self.resyncs += 1;
            self.state = ReadState::Header;
            self.buf.clear();
        }
        if self.lost > 0 {
            out(ReadEvent::Lost { bytes: self.lost });
            self.lost = 0;
        }
        let left_over = self.consume(data, first_byte_ns, out);
        if self.state == ReadState::Lost {
            self.lose(left_over as u64 + gap);
        } else if gap > 0 {
            self.skip_gap(gap, out);
        }
    }

    fn lose(&mut self, bytes: u64) {
        self.state = ReadState::Lost;
        self.buf.clear();
        self.lost += bytes;
        self.lost_total += bytes;
    }

    /// Reads frames from `data`; when the bytes turn out not to be frames, returns how many
    /// were left unread (the reader is then lost).
    fn consume(
        &mut self,
        mut data: &[u8],
        first_byte_ns: u64,
        out: &mut impl FnMut(ReadEvent<'_>),
    ) -> usize {
        while !data.is_empty() {
            match self.state {
                ReadState::Start => {
                    let have = self.buf.len();
                    let n = (PREFACE.len() - have).min(data.len());
                    if PREFACE[have..have + n] != data[..n] {
                        if have > 0 {
                            out(ReadEvent::Invalid(InvalidReason::BadPreface));
                            self.state = ReadState::Lost;
                            return data.len() + have;
                        }
                        // No preface: frames from the first byte (a server, or joined late).
                        self.state = ReadState::Header;
                        continue;
                    }
                    self.buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.buf.len() == PREFACE.len() {
                        self.buf.clear();
                        self.state = ReadState::Header;
                    }
                }
                ReadState::Header => {
                    if self.buf.is_empty() {
                        self.frame_start_ns = first_byte_ns;
                        // Parse in place when the whole frame is in this syscall.
                        if let Parse::Parsed(frame) = parse_frame(data) {
                            if frame.header.kind != FrameType::Data
                                && frame.payload.len() <= MAX_KEPT_PAYLOAD
                            {
                                data = &data[frame.header.frame_len()..];
                                out(ReadEvent::Frame {
                                    header: frame.header,
                                    payload: Some(frame.payload),
                                    start_ns: self.frame_start_ns,
                                });
                                continue;
                            }
                        }
                    }
                    let n = (FRAME_HEADER_LEN - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    match parse_frame_header(&self.buf) {
                        Parse::NeedMore => {}
                        Parse::Invalid(reason) => {
                            out(ReadEvent::Invalid(reason));
                            let unread = data.len() + self.buf.len();
                            self.state = ReadState::Lost;
                            return unread;
                        }
                        Parse::Parsed(header) => {
                            self.buf.clear();
                            self.state = ReadState::Payload {
                                header,
                                left: header.length,
                                keep: header.kind != FrameType::Data
                                    && header.length as usize <= MAX_KEPT_PAYLOAD,
                                cut: false,
                            };
                            self.payload_done(out);
                        }
                    }
                }
                ReadState::Payload {
                    header,
                    left,
                    keep,
                    cut,
                } => {
                    let n = (left as usize).min(data.len());
                    if keep {
                        self.buf.extend_from_slice(&data[..n]);
                    }
                    data = &data[n..];
                    self.state = ReadState::Payload {
                        header,
                        left: left - n as u32,
                        keep,
                        cut,
                    };
                    self.payload_done(out);
                }
                ReadState::Lost => return data.len(),
            }
        }
        0
    }

    /// Hands on the frame being read once its payload is complete.
    fn payload_done(&mut self, out: &mut impl FnMut(ReadEvent<'_>)) {
        if let ReadState::Payload {
            header,
            left: 0,
            keep,
            cut,
        } = self.state
        {
            let mut payload = (keep && !cut).then_some(&self.buf[..]);
            if let Some(p) = payload {
                let frame = Frame { header, payload: p };
                if matches!(
                    header.kind,
                    FrameType::Data | FrameType::Headers | FrameType::PushPromise
                ) && unpadded(&frame).is_none()
                {
                    out(ReadEvent::Invalid(InvalidReason::BadPadding));
                    payload = None;
                }
            }
            out(ReadEvent::Frame {
                header,
                payload,
                start_ns: self.frame_start_ns,
            });
            self.buf.clear();
            self.state = ReadState::Header;
        }
    }

    /// Steps over bytes the syscall moved but the probe did not copy.
    fn skip_gap(&mut self, gap: u64, out: &mut impl FnMut(ReadEvent<'_>)) {
        match self.state {
            ReadState::Payload {
                header,
                left,
                keep,
                cut,
            } if gap <= u64::from(left) => {
                self.state = ReadState::Payload {
                    header,
                    left: left - gap as u32,
                    keep,
                    cut: cut || (keep && gap > 0),
                };
                self.lost_total += if keep { gap } else { 0 };
                self.payload_done(out);
            }
            ReadState::Payload {
                header, left, keep, ..
            } => {
                // The gap ends the frame and goes on past its end: the next header is unseen.
                self.state = ReadState::Payload {
                    header,
                    left: 0,
                    keep,
                    cut: true,
                };
                self.payload_done(out);
                self.lose(gap - u64::from(left));
            }
            ReadState::Start | ReadState::Header | ReadState::Lost => self.lose(gap),
        }
    }
}
